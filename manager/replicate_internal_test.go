package manager

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/reinforce-nfv/reinforce/internal/testenv"
	"github.com/reinforce-nfv/reinforce/manager/config"
	"github.com/reinforce-nfv/reinforce/shm/state"
)

// applyModel applies a payload's writes to a byte-slice model of a file.
func applyModel(t *testing.T, p []byte, files map[uint16][]byte) {
	t.Helper()
	err := decodePayload(p, func(r *payloadRec) error {
		if r.typ != prWrite {
			return nil
		}
		b := files[r.inst]
		if need := int(r.off) + len(r.data); need > len(b) {
			b = append(b, make([]byte, need-len(b))...)
		}
		copy(b[r.off:], r.data)
		files[r.inst] = b
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCoalescerLastWriteWins: random writes (exact repeats and partial
// overlaps, two instances) coalesced and applied give the same bytes as
// applying every write in order; exact repeats are dropped; the shadow
// built from the coalesced writes gives the same bytes too.
func TestCoalescerLastWriteWins(t *testing.T) {
	rng := testenv.Rand(t)
	for round := 0; round < 200; round++ {
		var co coalescer
		co.reset()
		want := map[uint16][]byte{}
		var sh [2]shadow
		total := 0
		for i := 0; i < 1+rng.IntN(60); i++ {
			inst := uint16(1 + rng.IntN(2))
			off := uint64(4096 + 8*rng.IntN(16)) // a few slots: many repeats and overlaps
			if rng.IntN(10) == 0 {
				off = uint64(64 + rng.IntN(8000)) // anywhere, crossing pages
			}
			d := make([]byte, 1+rng.IntN(24))
			for k := range d {
				d[k] = byte(rng.Uint32())
			}
			applyModel(t, appendWrite(nil, inst, off, d), want)
			co.add(inst, state.Write{Off: off, Data: d})
			total++
		}
		p := co.encode(nil, func(inst uint16, off uint64, d []byte) { sh[inst-1].write(off, d) })
		got := map[uint16][]byte{}
		applyModel(t, p, got)
		n := 0
		_ = decodePayload(p, func(*payloadRec) error { n++; return nil })
		if n > total || n != co.live {
			t.Fatalf("round %d: %d records for %d writes (%d live)", round, n, total, co.live)
		}
		for inst, w := range want {
			g := got[inst]
			if !bytes.Equal(g, w[:len(g)]) || len(bytes.Trim(w[len(g):], "\x00")) != 0 {
				t.Fatalf("round %d instance %d: coalesced writes differ from the writes in order", round, inst)
			}
			// The shadow, as a snapshot, reproduces the same bytes.
			snap := map[uint16][]byte{}
			applyModel(t, sh[inst-1].appendTo(nil, inst), snap)
			s := snap[inst]
			if !bytes.Equal(s, w[:len(s)]) || len(bytes.Trim(w[len(s):], "\x00")) != 0 {
				t.Fatalf("round %d instance %d: shadow snapshot differs", round, inst)
			}
		}
	}
}

// TestDecodePayloadRejects: truncated and unknown records are errors,
// never panics.
func TestDecodePayloadRejects(t *testing.T) {
	good := appendFile(appendWrite(nil, 1, 4096, []byte("abcdefgh")), 2, 7, 1<<20, 1<<16, 9)
	if err := decodePayload(good, func(*payloadRec) error { return nil }); err != nil {
		t.Fatal(err)
	}
	for cut := 1; cut < len(good); cut++ {
		if err := decodePayload(good[:cut], func(*payloadRec) error { return nil }); cut != 24 && !errors.Is(err, errPayload) {
			t.Fatalf("cut at %d: %v", cut, err)
		}
	}
	bad := bytes.Clone(good)
	bad[0] = 9
	if err := decodePayload(bad, func(*payloadRec) error { return nil }); !errors.Is(err, errPayload) {
		t.Fatalf("unknown type: %v", err)
	}
	bad = bytes.Clone(good)
	bad[4] = 0xff // length beyond the payload
	if err := decodePayload(bad, func(*payloadRec) error { return nil }); !errors.Is(err, errPayload) {
		t.Fatalf("long write: %v", err)
	}
}

// FuzzDecodePayload: any bytes decode to an error or to records whose
// slices lie inside the input.
func FuzzDecodePayload(f *testing.F) {
	f.Add(appendFile(appendWrite(nil, 1, 4096, []byte("abcdefgh")), 2, 7, 1<<20, 1<<16, 9))
	_, _, _, rt := rtTestRecords()
	f.Add(rt)
	f.Fuzz(func(t *testing.T, p []byte) {
		_ = decodePayload(p, func(r *payloadRec) error {
			if len(r.data) > len(p) {
				t.Fatalf("record of %d bytes from %d", len(r.data), len(p))
			}
			// A checked run-time record decodes without panicking, and
			// encodes back to the same bytes.
			switch r.typ {
			case prFlow:
				ft := tupleOf(r.data)
				if !bytes.Equal(appendFlowRec(nil, r.op == prOpDel, &ft)[prWriteHdr:], r.data) {
					t.Fatalf("flow record does not round-trip")
				}
			case prRules:
				_ = rulesOf(r.data)
			case prBuckets:
				tbl := bucketsOf(r.data)
				if !bytes.Equal(appendBucketsRec(nil, r.svc, &tbl)[prWriteHdr:], r.data) {
					t.Fatalf("bucket record does not round-trip")
				}
			}
			return nil
		})
	})
}

// TestSnapshotInstallsPrimaryFile: a state file with containers, read
// through its log into a shadow (as the primary does), installed by the
// standby side into a new file, gives the same directory, data, seed and
// layout digest.
func TestSnapshotInstallsPrimaryFile(t *testing.T) {
	dir := t.TempDir()
	pf, err := state.Open(filepath.Join(dir, "p.state"), state.Options{DataBytes: 1 << 20, LogBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	rd := pf.NewLogReader()
	mp, err := state.NewMap[uint32, uint64](pf, "m", 100)
	if err != nil {
		t.Fatal(err)
	}
	v, err := state.NewValue[[3]uint64](pf, "v")
	if err != nil {
		t.Fatal(err)
	}
	for i := uint32(0); i < 60; i++ {
		tx := pf.Tx()
		if err := tx.Begin(); err != nil {
			t.Fatal(err)
		}
		if err := mp.Put(i%17, uint64(i)); err != nil {
			t.Fatal(err)
		}
		if i%5 == 0 {
			mp.Delete(i % 7)
		}
		v.Store([3]uint64{uint64(i), 2, 3})
		if err := tx.Commit(nil, nil, nil); err != nil {
			t.Fatal(err)
		}
		tx.Done()
	}
	var sh shadow
	for {
		c, ok, err := rd.Next(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		for _, w := range c.Writes {
			sh.write(w.Off, w.Data)
		}
		rd.Release(c.End)
	}
	snap := appendFile(nil, 1, pf.Seed(), 1<<20, 1<<20, pf.LayoutDigest())
	snap = sh.appendTo(snap, 1)

	m := &Manager{}
	c := &repChain{r: &replication{m: m}, insts: []*repInst{{id: 1, path: filepath.Join(dir, "s.state")}}}
	c.cfg.Chain = "t"
	if err := c.installSnapshotWith(snap, 0); err != nil {
		t.Fatal(err)
	}
	sf := c.insts[0].file
	defer sf.Close()
	pd, pb := pf.Containers()
	sd, sb := sf.Containers()
	if !bytes.Equal(pd, sd) || !bytes.Equal(pb, sb) || sf.Seed() != pf.Seed() || sf.LayoutDigest() != pf.LayoutDigest() {
		t.Fatalf("installed file differs: dir %v data %v seed %v digest %v", bytes.Equal(pd, sd), bytes.Equal(pb, sb),
			sf.Seed() == pf.Seed(), sf.LayoutDigest() == pf.LayoutDigest())
	}
	if c.st.digestMismatch.Load() != 0 {
		t.Fatal("digest mismatch counted")
	}
	sm, err := state.NewMap[uint32, uint64](sf, "m", 100)
	if err != nil {
		t.Fatal(err)
	}
	mp.Range(func(k uint32, v uint64) bool {
		if g, ok := sm.Get(k); !ok || g != v {
			t.Fatalf("key %d: %d %v, want %d", k, g, ok, v)
		}
		return true
	})
	if sm.Len() != mp.Len() {
		t.Fatalf("standby map has %d entries, primary %d", sm.Len(), mp.Len())
	}
}

// TestSnapshotGenerationsKeepLogSize: a chain failed over back and forth
// sends snapshots from files that were themselves installed from
// snapshots. Each generation's standby file must have the same log size:
// the snapshot carries the configured sizes, not the sending file's (a
// standby's file has a bigger log, and sending that grew the log 4 times
// per generation until no standby could create its file).
func TestSnapshotGenerationsKeepLogSize(t *testing.T) {
	dir := t.TempDir()
	const dataBytes, logBytes = 1 << 20, 1 << 20
	pf, err := state.Open(filepath.Join(dir, "g0.state"), state.Options{DataBytes: dataBytes, LogBytes: logBytes})
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	mk := func(gen int, f *state.File) *repChain {
		m := &Manager{}
		m.cfg.Chains = []config.Chain{{Name: "t"}}
		m.cfg.Replication.StateBytes, m.cfg.Replication.StateLogBytes = dataBytes, logBytes
		c := &repChain{r: &replication{m: m}, insts: []*repInst{{id: 1, path: filepath.Join(dir, fmt.Sprintf("g%d.state", gen)), file: f}}}
		c.cfg.Chain = "t"
		return c
	}
	src := mk(0, pf)
	want := uint64(max(repStandbyLog, 4*logBytes))
	for gen := 1; gen <= 6; gen++ {
		snap := src.snapshot()
		dst := mk(gen, nil)
		if err := dst.installSnapshotWith(snap, 0); err != nil {
			t.Fatalf("generation %d: %v", gen, err)
		}
		f := dst.insts[0].file
		defer f.Close()
		if got := f.Stats().LogBytes; got != want {
			t.Fatalf("generation %d: standby file log %d bytes, want %d", gen, got, want)
		}
		src = dst // promoted: its snapshot feeds the next standby
	}
}
