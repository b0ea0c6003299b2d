package shm_test

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/reinforce-nfv/reinforce/internal/testenv"
	"github.com/reinforce-nfv/reinforce/shm"
	"github.com/reinforce-nfv/reinforce/shm/shmtest"
)

// newRingPair opens two handles on one assigned ring: the producer's and the consumer's.
func newRingPair(t *testing.T) (prod, cons *shm.Ring) {
	t.Helper()
	r := shmtest.TempRegion(t, shmtest.SmallOptions())
	if err := r.Pool().AssignRing(1, 1, 2, 1); err != nil {
		t.Fatal(err)
	}
	p, err := r.OpenRing(1)
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.OpenRing(1)
	if err != nil {
		t.Fatal(err)
	}
	return p, c
}

func seqSlots(from, n int) []shm.Slot {
	s := make([]shm.Slot, n)
	for i := range s {
		s[i] = shm.Slot(from + i)
	}
	return s
}

func TestRingFIFOAndBurstEdges(t *testing.T) {
	p, c := newRingPair(t)
	capacity := int(p.Cap())
	out := make([]shm.Slot, capacity+10)

	if n, err := c.Dequeue(out); n != 0 || err != nil {
		t.Fatalf("empty ring dequeued %d, %v", n, err)
	}
	// Burst: as many as fit.
	n, err := p.Enqueue(seqSlots(0, capacity+5))
	if n != capacity || err != nil {
		t.Fatalf("enqueue into empty ring of %d: got %d, %v", capacity, n, err)
	}
	if n, _ := p.Enqueue(seqSlots(0, 1)); n != 0 {
		t.Fatalf("full ring accepted %d", n)
	}
	if ok, _ := p.StageBulk(seqSlots(0, 1)); ok {
		t.Fatal("bulk stage into a full ring succeeded")
	}
	n, _ = c.Dequeue(out[:capacity-1])
	if n != capacity-1 {
		t.Fatalf("dequeue %d of %d", n, capacity-1)
	}
	for i := 0; i < n; i++ {
		if out[i] != shm.Slot(i) {
			t.Fatalf("entry %d = %d", i, out[i])
		}
	}
	// Bulk: all or nothing.
	if ok, _ := c.PeekBulk(out[:2]); ok {
		t.Fatal("bulk peek of 2 with 1 available succeeded")
	}
	if ok, _ := p.StageBulk(seqSlots(100, capacity)); ok {
		t.Fatal("bulk stage larger than free space succeeded")
	}
	if ok, _ := p.StageBulk(seqSlots(100, capacity-1)); !ok {
		t.Fatal("bulk stage that fits failed")
	}
	p.Publish()
	if c.Count() != uint32(capacity) {
		t.Fatalf("count %d, want %d", c.Count(), capacity)
	}
}

func TestRingTwoPhaseProduceInvisibleUntilPublish(t *testing.T) {
	p, c := newRingPair(t)
	out := make([]shm.Slot, 8)
	p.Stage(seqSlots(1, 4))
	if n, _ := c.Peek(out); n != 0 {
		t.Fatalf("consumer saw %d staged entries before publish", n)
	}
	p.Unstage()
	p.Stage(seqSlots(10, 2))
	p.Publish()
	if n, _ := c.Peek(out); n != 2 || out[0] != 10 || out[1] != 11 {
		t.Fatalf("after unstage+stage+publish got %v", out[:n])
	}
}

func TestRingTwoPhaseConsumeRedelivers(t *testing.T) {
	p, c := newRingPair(t)
	out := make([]shm.Slot, 8)
	p.Enqueue(seqSlots(5, 3))
	c.Peek(out)
	if free, _ := p.Free(); free != p.Cap()-3 {
		t.Fatalf("peek freed space before release: free %d", free)
	}
	// A new consumer (a restart) starts from the shared index: same entries.
	c.Sync()
	if n, _ := c.Peek(out); n != 3 || out[0] != 5 {
		t.Fatalf("redelivery got %v", out[:n])
	}
	c.Release()
	if free, _ := p.Free(); free != p.Cap() {
		t.Fatalf("free after release %d", free)
	}
}

func TestRingWrapAround(t *testing.T) {
	p, c := newRingPair(t)
	start := uint32(1<<32 - 700) // indices cross 2^32 during the test
	p.ResetIndices(start)
	c.Sync()
	out := make([]shm.Slot, 64)
	next, want := 0, 0
	for want < 5000 {
		n, err := p.Enqueue(seqSlots(next, 37))
		if err != nil {
			t.Fatal(err)
		}
		next += n
		m, err := c.Dequeue(out[:29])
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < m; i++ {
			if out[i] != shm.Slot(want) {
				t.Fatalf("after wrap: entry %d = %d", want, out[i])
			}
			want++
		}
	}
	if cons, _ := c.Window(); cons < start {
		return // crossed zero: good
	}
	t.Fatal("indices did not wrap")
}

func TestRingCorruptIndicesRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		bad  func(p, c *shm.Ring)
		side string
	}{
		{"producer index far ahead", func(p, c *shm.Ring) { p.ScribbleProd(1 << 30) }, "consumer"},
		{"consumer index ahead of producer", func(p, c *shm.Ring) { c.ScribbleCons(50) }, "producer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, c := newRingPair(t)
			p.Enqueue(seqSlots(0, 10))
			tc.bad(p, c)
			out := make([]shm.Slot, 8)
			var err error
			if tc.side == "consumer" {
				_, err = c.Peek(out)
			} else {
				_, err = p.Stage(seqSlots(0, int(p.Cap())))
			}
			var ce *shm.CorruptError
			if !errors.As(err, &ce) || !errors.Is(err, shm.ErrCorrupt) {
				t.Fatalf("got %v, want a CorruptError", err)
			}
		})
	}
}

// TestRingMatchesSliceQueue drives the ring and a plain slice queue with the
// same random operations and compares every result.
func TestRingMatchesSliceQueue(t *testing.T) {
	rng := rand.New(rand.NewPCG(testenv.Seed(t), 1))
	p, c := newRingPair(t)
	p.ResetIndices(rng.Uint32())
	c.Sync()
	var model []shm.Slot // published, unreleased
	staged, peeked := 0, 0
	next := shm.Slot(0)
	out := make([]shm.Slot, 70)
	for step := 0; step < 100000; step++ {
		switch op := rng.IntN(7); op {
		case 0, 1: // stage a burst
			k := rng.IntN(65)
			n, _ := p.Stage(seqSlots(int(next), k))
			room := int(p.Cap()) - len(model) - staged
			if n != min(k, room) {
				t.Fatalf("step %d: staged %d of %d with room %d", step, n, k, room)
			}
			next += shm.Slot(n)
			staged += n
		case 2: // publish
			p.Publish()
			for i := staged; i > 0; i-- {
				model = append(model, next-shm.Slot(i))
			}
			staged = 0
		case 3: // unstage
			p.Unstage()
			next -= shm.Slot(staged)
			staged = 0
		case 4, 5: // peek
			k := rng.IntN(65)
			n, _ := c.Peek(out[:k])
			if want := min(k, len(model)-peeked); n != want {
				t.Fatalf("step %d: peeked %d, want %d", step, n, want)
			}
			for i := 0; i < n; i++ {
				if out[i] != model[peeked+i] {
					t.Fatalf("step %d: entry %d = %d, want %d", step, i, out[i], model[peeked+i])
				}
			}
			peeked += n
		case 6: // release or rewind
			if rng.IntN(2) == 0 {
				c.Release()
				model = model[peeked:]
			} else {
				c.Rewind()
			}
			peeked = 0
		}
	}
}

func TestRingHotPathAllocationFree(t *testing.T) {
	p, c := newRingPair(t)
	in, out := seqSlots(0, 32), make([]shm.Slot, 32)
	allocs := testing.AllocsPerRun(1000, func() {
		p.Enqueue(in)
		c.Dequeue(out)
	})
	if allocs != 0 {
		t.Fatalf("enqueue+dequeue allocates %.1f times per burst", allocs)
	}
}
