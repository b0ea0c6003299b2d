package shm_test

import (
	"errors"
	"testing"

	"github.com/reinforce-nfv/reinforce/shm"
	"github.com/reinforce-nfv/reinforce/shm/shmtest"
)

// FuzzAttach attaches to arbitrary region images held by a "live creator"
// (this process holds the lock). Attach must return an error or a region
// whose accessors stay inside the mapping; it must never panic or fault.
// The seed corpus has one image per kind of corruption.
// fuzzHeader covers the header fields and the section table.
const fuzzHeader = 512

func FuzzAttach(f *testing.F) {
	o := shmtest.SmallOptions()
	o.Slots, o.Rings, o.RingCap, o.Owners, o.CacheCap, o.DataBytes = 16, 2, 16, 2, 16, 64
	good := shmtest.TempRegion(f, o)
	img := append([]byte(nil), good.Mem()...)
	good.Close()
	// The input is the first fuzzHeader bytes of the image plus the file
	// size: every field Attach validates lives there, and small inputs keep
	// the fuzzer (and its minimiser) fast.
	f.Add(img[:fuzzHeader], uint32(len(img)))
	for _, c := range corruptions(img) {
		f.Add(c.data[:min(fuzzHeader, len(c.data))], uint32(len(c.data)))
	}
	f.Fuzz(func(t *testing.T, hdr []byte, size uint32) {
		data := append([]byte(nil), img...)
		copy(data, hdr)
		size %= uint32(2 * len(img))
		if int(size) <= len(data) {
			data = data[:size]
		} else {
			data = append(data, make([]byte, int(size)-len(data))...)
		}
		path := writeLocked(t, data)
		r, err := shm.Attach(path)
		if err != nil {
			if !errors.Is(err, shm.ErrBadLayout) && !errors.Is(err, shm.ErrStaleRegion) {
				t.Logf("attach error of another kind: %v", err)
			}
			return
		}
		defer r.Close()
		// A header that validates must give in-bounds accessors, whatever
		// the rest of the image holds.
		out := make([]shm.Slot, 8)
		for i := uint32(0); i < r.NumRings() && i < 4; i++ {
			ring, err := r.OpenRing(i)
			if err != nil {
				continue
			}
			ring.Peek(out)
			ring.Stage(out)
		}
		for _, s := range []shm.Slot{0, shm.Slot(r.NumSlots() - 1), shm.Slot(r.NumSlots()), shm.NoSlot} {
			_ = r.Packet(s)
			r.Meta(s).Len = 1
		}
		for o := shm.OwnerID(1); uint32(o) < r.NumOwners() && o < 4; o++ {
			if c, err := r.OpenCache(o); err == nil {
				c.Alloc(out)
				c.Free(out)
			}
		}
	})
}
