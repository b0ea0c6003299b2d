package check

import (
	"strings"
	"testing"

	"github.com/reinforce-nfv/reinforce/internal/testenv"
	"github.com/reinforce-nfv/reinforce/pkt/probe"
)

func rec(flow uint32, seq uint64) *probe.Record {
	return &probe.Record{Flow: flow, Seq: seq, SentNs: 1000}
}

func newChecker(t *testing.T, o Options) *Checker {
	t.Helper()
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCleanStreamIsOK(t *testing.T) {
	c := newChecker(t, Options{})
	for seq := range uint64(100) {
		for f := range uint32(4) {
			c.Add(rec(f, seq), 1000+int64(seq)*10)
		}
	}
	r := c.Report(map[uint32]uint64{0: 100, 1: 100, 2: 100, 3: 100})
	if !r.OK || r.Received != 400 || r.Expected != 400 || r.Lost+r.Duplicated+r.Reordered+r.Unexpected != 0 || len(r.Flows) != 4 {
		t.Fatalf("clean stream: %+v", r)
	}
	if r.Latency.Min != 0 || r.Latency.Max != 990 || r.Latency.Count != 400 {
		t.Errorf("latency %+v, want min 0, max 990, count 400", r.Latency)
	}
}

func TestLossDuplicateReorder(t *testing.T) {
	c := newChecker(t, Options{})
	for _, s := range []uint64{0, 1, 3, 2, 3, 5, 7} { // 4 and 6 lost, 2 late, 3 twice; 8, 9 lost at the tail
		c.Add(rec(7, s), 2000)
	}
	r := c.Report(map[uint32]uint64{7: 10})
	f := r.Flows[0]
	if f.Received != 7 || f.Lost != 4 || f.Duplicated != 1 || f.Reordered != 1 || r.OK {
		t.Fatalf("flow report %+v (OK %v), want received 7, lost 4, duplicated 1, reordered 1, not OK", f, r.OK)
	}
	// Without the sent counts, the tail loss is invisible.
	if r := c.Report(nil); r.Flows[0].Lost != 2 || r.Flows[0].Expected != 8 {
		t.Errorf("without expected counts: lost %d of %d, want 2 of 8", r.Flows[0].Lost, r.Flows[0].Expected)
	}
	if len(r.Violations) != 2 || !strings.Contains(r.Violations[0], "seq 2 after 3") || !strings.Contains(r.Violations[1], "seq 3 duplicated") {
		t.Errorf("violations %q", r.Violations)
	}
}

func TestMissingAndUnexpectedFlows(t *testing.T) {
	c := newChecker(t, Options{})
	c.Add(rec(1, 0), 0)
	c.Add(rec(9, 0), 0) // nobody sent flow 9
	c.Add(rec(1, 5), 0) // nor sequence number 5 of flow 1
	r := c.Report(map[uint32]uint64{1: 2, 2: 3})
	if r.OK || r.Lost != 4 || r.Unexpected != 2 || len(r.Flows) != 3 {
		t.Fatalf("report %+v: want lost 4 (1 of flow 1, 3 of flow 2), unexpected 2, 3 flows", r)
	}
}

func TestStamps(t *testing.T) {
	c := newChecker(t, Options{Stamps: []int{0, 2}})
	add := func(seq uint64, s0, s2 uint32) {
		r := rec(3, seq)
		r.Stamp[0], r.Stamp[2] = s0, s2
		r.Stamp[1] = 12345 // not checked
		c.Add(r, 0)
	}
	add(0, 10, 100) // the first packet sets the start
	add(1, 11, 101)
	add(2, 11, 102) // stamp 0 repeated
	add(3, 10, 103) // stamp 0 fell
	add(4, 13, 104) // stamp 0 jumped (from 10)
	add(5, 14, 106) // stamp 2 jumped
	r := c.Report(nil)
	st := r.Flows[0].Stamps
	if len(st) != 2 || st[0] != (StampViolations{Repeated: 1, Regressed: 1, Skipped: 1}) || st[1] != (StampViolations{Skipped: 1}) {
		t.Fatalf("stamp violations %+v", st)
	}
	if r.StampErrors != 4 || r.OK {
		t.Errorf("stamp errors %d, OK %v; want 4, false", r.StampErrors, r.OK)
	}
	// Stamps count per flow: another flow starts its own sequence.
	r2 := rec(4, 0)
	r2.Stamp[0], r2.Stamp[2] = 500, 7
	c.Add(r2, 0)
	if got := c.Report(nil).StampErrors; got != 4 {
		t.Errorf("a new flow's first stamps counted as violations: %d", got)
	}
	// Wrap-around is a rise by one.
	c2 := newChecker(t, Options{Stamps: []int{1}})
	a, b := rec(0, 0), rec(0, 1)
	a.Stamp[1], b.Stamp[1] = 1<<32-1, 0
	c2.Add(a, 0)
	c2.Add(b, 0)
	if r := c2.Report(nil); !r.OK {
		t.Errorf("wrap-around flagged: %+v", r.Flows[0].Stamps)
	}
}

func TestMutate(t *testing.T) {
	c := newChecker(t, Options{CheckMutate: true, Mutate: 2})
	for seq, m := range []uint32{2, 2, 1, 2, 3} {
		r := rec(0, uint64(seq))
		r.Mutate = m
		c.Add(r, 0)
	}
	if r := c.Report(nil); r.MutateErrors != 2 || r.OK {
		t.Fatalf("mutate errors %d (OK %v), want 2", r.MutateErrors, r.OK)
	}
	c0 := newChecker(t, Options{CheckMutate: true}) // -mutate 0: as sent
	c0.Add(rec(0, 0), 0)
	if r := c0.Report(nil); !r.OK {
		t.Errorf("mutate 0 with counter 0 flagged")
	}
}

func TestBadOptions(t *testing.T) {
	for _, s := range []int{-1, probe.Stamps} {
		if _, err := New(Options{Stamps: []int{s}}); err == nil {
			t.Errorf("stamp field %d accepted", s)
		}
	}
}

func TestUntrackedBeyondMaxSeq(t *testing.T) {
	c := newChecker(t, Options{MaxSeq: 128})
	c.Add(rec(0, 1<<40), 0) // a corrupt or hostile number must not grow the bitmap
	r := c.Report(nil)
	if r.Untracked != 1 || r.OK {
		t.Fatalf("untracked %d, OK %v", r.Untracked, r.OK)
	}
}

func TestOther(t *testing.T) {
	c := newChecker(t, Options{})
	c.AddOther(5, false)
	c.AddOther(7, true)
	r := c.Report(nil)
	if r.Other != 2 || r.Malformed != 1 || r.OtherHashSum != 12 || !r.OK {
		t.Fatalf("other %d malformed %d sum %d OK %v", r.Other, r.Malformed, r.OtherHashSum, r.OK)
	}
}

func TestHistQuantiles(t *testing.T) {
	var h Hist
	for v := uint64(1); v <= 100000; v++ {
		h.Add(v)
	}
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := q * 100000
		got := float64(h.Quantile(q))
		if got > want || got < want*(1-1.0/16)-1 {
			t.Errorf("q%v = %v, want within 1/16 below %v", q, got, want)
		}
	}
	if p := h.Percentiles(); p.Min != 1 || p.Max != 100000 || p.Count != 100000 {
		t.Errorf("percentiles %+v", p)
	}
	var e Hist
	if e.Quantile(0.5) != 0 {
		t.Error("empty histogram")
	}
	top := bucket(1<<64 - 1) // the last bucket, whose end overflows
	rng := testenv.Rand(t)
	for range 10000 {
		v := rng.Uint64()
		i := bucket(v)
		if i < 0 || i > top || low(i) > v || (i < top && low(i+1) <= v) {
			t.Fatalf("value %d in bucket %d [%d, %d)", v, i, low(i), low(i+1))
		}
	}
}

func TestAddDoesNotAllocate(t *testing.T) {
	c := newChecker(t, Options{Stamps: []int{0}, CheckMutate: true})
	r := rec(1, 0)
	c.Add(r, 0)
	r.Seq = 4000
	c.Add(r, 0) // grows the bitmap
	c.o.MaxExamples = 0
	c.examples = c.examples[:0:0]
	n := testing.AllocsPerRun(1000, func() {
		r.Seq++
		r.Seq %= 4000
		r.Stamp[0]++
		c.Add(r, 5)
	})
	if n != 0 {
		t.Errorf("Add allocates %.1f times per call", n)
	}
}
