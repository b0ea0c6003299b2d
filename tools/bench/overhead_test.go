package main

import (
	"encoding/binary"
	"testing"

	"github.com/reinforce-nfv/reinforce/pkt"
	"github.com/reinforce-nfv/reinforce/pkt/probe"
	"github.com/reinforce-nfv/reinforce/shm"
	"github.com/reinforce-nfv/reinforce/shm/shmtest"
)

// The probe port generates valid probes, flow after flow with per-flow
// sequence numbers, and its sink accepts exactly what stamp and mutate
// make of them: a stamp counting up by one per flow, one mutation.
func TestProbePortGeneratesAndChecks(t *testing.T) {
	r := shmtest.TempRegion(t, shmtest.SmallOptions())
	if err := r.Pool().AddOwner(3, 0); err != nil {
		t.Fatal(err)
	}
	c, err := r.OpenCache(3)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newProbePort(0, 3, 128, 0)
	if err != nil {
		t.Fatal(err)
	}
	var s [9]shm.Slot
	n := 0
	for n < len(s) {
		n += p.RxBurst(c, s[n:])
		r.Pool().Service()
	}
	var h pkt.Headers
	for i, sl := range s {
		b := r.Packet(sl)
		off, ok := probe.Find(&h, b)
		if !ok || !h.VerifyL4Checksum(b) {
			t.Fatalf("frame %d: probe %v, checksum valid %v", i, ok, h.VerifyL4Checksum(b))
		}
		var rec probe.Record
		rec.Get(b[off:])
		if rec.Flow != uint32(i%3) || rec.Seq != uint64(i/3) {
			t.Fatalf("frame %d: flow %d seq %d, want %d %d", i, rec.Flow, rec.Seq, i%3, i/3)
		}
		// What stamp -f 0 and mutate do.
		probe.SetUint32(b, off+probe.OffStamp0, probe.ChecksumOffset(&h), uint32(i/3+1))
		probe.SetUint32(b, off+probe.OffMutate, probe.ChecksumOffset(&h), 1)
	}
	// A frame mutated twice and a repeated stamp are caught.
	b := r.Packet(s[8])
	binary.BigEndian.PutUint32(b[probeAt+probe.OffMutate:], 2)
	binary.BigEndian.PutUint32(b[probeAt+probe.OffStamp0:], 2)
	if k := p.TxBurst(c, s[:]); k != len(s) {
		t.Fatalf("TxBurst took %d of %d", k, len(s))
	}
	if p.bad.Load() != 1 || p.stampGaps.Load() != 1 || p.txPkts.Load() != 9 {
		t.Fatalf("bad %d, stamp gaps %d, sent %d; want 1, 1, 9", p.bad.Load(), p.stampGaps.Load(), p.txPkts.Load())
	}
}

func TestMedianOf(t *testing.T) {
	runs := []*OverheadRun{{Mpps: 3}, {Mpps: 1}, {Mpps: 2}, {Mpps: 9, Error: "x"}, {Transactions: true, Mpps: 4}, {Transactions: true, Mpps: 6}}
	mpps := func(r *OverheadRun) float64 { return r.Mpps }
	if m := medianOf(runs, false, mpps); m != 2 {
		t.Errorf("median off = %v, want 2 (failed runs left out)", m)
	}
	if m := medianOf(runs, true, mpps); m != 5 {
		t.Errorf("median on = %v, want 5", m)
	}
	if m := medianOf(nil, true, mpps); m != 0 {
		t.Errorf("median of nothing = %v", m)
	}
}
