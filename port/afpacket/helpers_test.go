package afpacket_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/pkt"
	"github.com/reinforce-nfv/reinforce/port"
	"github.com/reinforce-nfv/reinforce/port/afpacket"
	"github.com/reinforce-nfv/reinforce/port/afpacket/afpackettest"
	"github.com/reinforce-nfv/reinforce/shm"
	"github.com/reinforce-nfv/reinforce/shm/shmtest"
)

// testEtherType marks the tests' frames: IEEE 802 "local experimental
// EtherType 1", which nothing else on a test pair sends.
const testEtherType = 0x88B5

// progressTimeout fails a stream that makes no progress for this long.
const progressTimeout = 5 * time.Second

// newRegion creates a region with slots of dataBytes and owners caches
// (owner IDs 1..owners, one per goroutine that allocates or frees), its
// pool serviced by the service loop until the test ends.
func newRegion(t testing.TB, dataBytes uint32, owners int) (*shm.Region, []*shm.Cache) {
	t.Helper()
	o := shmtest.SmallOptions()
	o.DataBytes = dataBytes
	r := shmtest.TempRegion(t, o)
	caches := make([]*shm.Cache, owners)
	for i := range caches {
		ow := shm.OwnerID(i + 1)
		if err := r.Pool().AddOwner(ow, 0); err != nil {
			t.Fatal(err)
		}
		c, err := r.OpenCache(ow)
		if err != nil {
			t.Fatal(err)
		}
		caches[i] = c
	}
	r.Pool().StartService()
	t.Cleanup(r.Pool().StopService)
	return r, caches
}

// openPort opens an afpacket port on iface in pair's namespace, closed when
// the test ends (before the namespace goes).
func openPort(t testing.TB, pair *afpackettest.Pair, id uint16, iface string, cfg afpacket.Config) *afpacket.Port {
	t.Helper()
	var p *afpacket.Port
	if err := pair.Do(func() (err error) {
		p, err = afpacket.New(id, iface, cfg)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("close %s: %v", p.Name(), err)
		}
	})
	return p
}

// stream describes a numbered sequence of test frames: frame i's length,
// 802.1Q tag and payload are functions of the stream and i, so a receiver
// rebuilds what it should get.
type stream struct {
	id        byte // last byte of the source MAC, and a payload seed
	minLen    int  // frame lengths cycle through minLen..maxLen
	maxLen    int
	vlanEvery int // every vlanEvery-th frame carries a tag; 0 for none
}

// frame writes frame i into b and returns its length.
func (s stream) frame(b []byte, i int) int {
	n := s.minLen + (i*37)%(s.maxLen-s.minLen+1)
	f := b[:n]
	copy(f[0:6], []byte{0x02, 0, 0, 0, 0, 0xFF})
	copy(f[6:12], []byte{0x02, 0, 0, 0, 0, s.id})
	off := 12
	if s.vlanEvery > 0 && i%s.vlanEvery == 0 {
		binary.BigEndian.PutUint16(f[12:], pkt.EtherTypeVLAN)
		binary.BigEndian.PutUint16(f[14:], uint16(i%8)<<13|uint16(1+i%4094)) // PCP and VID
		off = 16
	}
	binary.BigEndian.PutUint16(f[off:], testEtherType)
	binary.BigEndian.PutUint64(f[off+2:], uint64(i))
	for j := off + 10; j < n; j++ {
		f[j] = byte(i*131 + j*7 + int(s.id))
	}
	return n
}

// bytes returns a new copy of frame i.
func (s stream) bytes(i int) []byte {
	f := make([]byte, s.maxLen)
	return f[:s.frame(f, i)]
}

// parse returns the stream ID and number of a test frame; ok is false for
// any other frame.
func parse(f []byte) (id byte, i int, ok bool) {
	if len(f) < 26 {
		return 0, 0, false
	}
	off := 12
	if binary.BigEndian.Uint16(f[12:]) == pkt.EtherTypeVLAN {
		off = 16
	}
	if binary.BigEndian.Uint16(f[off:]) != testEtherType {
		return 0, 0, false
	}
	return f[11], int(binary.BigEndian.Uint64(f[off+2:])), true
}

// send transmits frames 0..n-1 of s from p, with c allocating and freeing,
// keeping at most window frames ahead of *acked (frames the receiver has
// taken). Frames the kernel refuses are sent again, in order. It returns how
// many refusals it saw and the bytes sent.
func send(p *afpacket.Port, r *shm.Region, c *shm.Cache, s stream, n int, acked *atomic.Int64, window int) (refused int, sent uint64, err error) {
	var batch [shm.BurstSize]shm.Slot
	nb, next := 0, 0
	last := time.Now()
	for next < n || nb > 0 {
		want := min(len(batch)-nb, n-next, window-(next-int(acked.Load())))
		if want > 0 {
			k := c.Alloc(batch[nb : nb+want])
			for _, sl := range batch[nb : nb+k] {
				l := s.frame(r.Buf(sl)[shm.HeadroomBytes:], next)
				r.Meta(sl).Len = uint32(l)
				sent += uint64(l)
				next++
			}
			nb += k
		}
		k := 0
		if nb > 0 {
			k = p.TxBurst(c, batch[:nb])
			refused += nb - k
			nb = copy(batch[:], batch[k:nb]) // the refused go first next time
		}
		if k > 0 {
			last = time.Now()
		} else {
			if time.Since(last) > progressTimeout {
				freeAll(c, batch[:nb])
				return refused, sent, fmt.Errorf("%s: sent %d of %d frames, then nothing for %v (%+v)", p.Name(), next-nb, n, progressTimeout, p.Detail())
			}
			runtime.Gosched()
		}
	}
	return refused, sent, nil
}

// receive takes frames from p, with c allocating and freeing, until it has
// frames 0..n-1 of s: each must be the next one, byte for byte, with the
// Meta RX sets. Other test frames are an error (a port must not receive
// what it sent); frames that are not test frames are counted as noise. It
// stores its progress in *acked.
func receive(p *afpacket.Port, r *shm.Region, c *shm.Cache, s stream, n int, acked *atomic.Int64) (noise int, err error) {
	var buf [shm.BurstSize]shm.Slot
	want := make([]byte, s.maxLen)
	start := port.Nanotime()
	got := 0
	last := time.Now()
	for got < n {
		k := p.RxBurst(c, buf[:])
		if k == 0 {
			if time.Since(last) > progressTimeout {
				return noise, fmt.Errorf("%s: received %d of %d frames, then nothing for %v (%+v)", p.Name(), got, n, progressTimeout, p.Detail())
			}
			runtime.Gosched()
			continue
		}
		last = time.Now()
		for _, sl := range buf[:k] {
			if err == nil {
				err = check(p, r, sl, s, got, want, start, &noise, &got)
			}
		}
		freeAll(c, buf[:k])
		acked.Store(int64(got))
		if err != nil {
			return noise, err
		}
	}
	return noise, nil
}

// check verifies that slot sl holds frame i of s (counting it in *got) or
// a frame that is not a test frame (counted in *noise).
func check(p *afpacket.Port, r *shm.Region, sl shm.Slot, s stream, i int, want []byte, start int64, noise, got *int) error {
	f := r.Packet(sl)
	id, seq, ok := parse(f)
	if !ok {
		*noise++
		return nil
	}
	if id != s.id || seq != i {
		return fmt.Errorf("%s: frame %d of stream %d, want frame %d of stream %d", p.Name(), seq, id, i, s.id)
	}
	m := r.Meta(sl)
	if m.Port != p.ID() || m.DataOff != shm.HeadroomBytes || m.Timestamp < start || m.Timestamp > port.Nanotime() {
		return fmt.Errorf("%s: frame %d: meta port %d, data offset %d, stamp %d (since %d)", p.Name(), i, m.Port, m.DataOff, m.Timestamp, start)
	}
	if w := want[:s.frame(want, i)]; !bytes.Equal(f, w) {
		return fmt.Errorf("%s: frame %d differs:\n got % x\nwant % x", p.Name(), i, f[:min(len(f), 32)], w[:min(len(w), 32)])
	}
	*got++
	return nil
}

// freeAll frees s with c, waiting while c's drain ring is full (the pool's
// service loop empties it).
func freeAll(c *shm.Cache, s []shm.Slot) {
	for done := 0; done < len(s); {
		k := c.Free(s[done:])
		done += k
		if k == 0 {
			runtime.Gosched()
		}
	}
}

// drainQuiet polls p for d (several block timeouts, so any frame already
// in the ring is handed over) and fails t if a test frame arrives.
func drainQuiet(t testing.TB, p *afpacket.Port, c *shm.Cache, d time.Duration) {
	t.Helper()
	var buf [shm.BurstSize]shm.Slot
	r := c.Region()
	for end := time.Now().Add(d); time.Now().Before(end); {
		k := p.RxBurst(c, buf[:])
		for _, sl := range buf[:k] {
			if id, i, ok := parse(r.Packet(sl)); ok {
				t.Errorf("%s: unexpected frame %d of stream %d", p.Name(), i, id)
			}
		}
		freeAll(c, buf[:k])
		if k == 0 {
			runtime.Gosched()
		}
	}
}
