package main

import (
	"container/heap"
	"math/rand/v2"
	"time"
)

// Params are the impairments of one direction. Probabilities are in [0, 1].
type Params struct {
	Loss, Dup, Reorder float64
	// Delay is added to every frame; Jitter adds up to that much more,
	// uniformly.
	Delay, Jitter time.Duration
	// ReorderDelay is the extra delay of a reordered frame: frames behind it
	// within that time overtake it.
	ReorderDelay time.Duration
}

// Counters count what one direction did.
type Counters struct {
	In, Out, Lost, Duplicated, Reordered, Blackholed uint64
}

type held struct {
	due   time.Time
	seq   uint64 // FIFO among equal due times
	frame []byte
}

type heldHeap []held

func (h heldHeap) Len() int { return len(h) }
func (h heldHeap) Less(i, j int) bool {
	if h[i].due.Equal(h[j].due) {
		return h[i].seq < h[j].seq
	}
	return h[i].due.Before(h[j].due)
}
func (h heldHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *heldHeap) Push(x any)   { *h = append(*h, x.(held)) }
func (h *heldHeap) Pop() any     { o := *h; x := o[len(o)-1]; *h = o[:len(o)-1]; return x }

// Impairer decides the fate of each frame of one direction: a pure value
// driven by a seeded generator and the times it is given, so a run with
// the same seed and arrivals makes the same decisions.
type Impairer struct {
	P          Params
	BlackUntil time.Time // frames arriving before this are dropped
	MaxHeld    int       // frames held at most (beyond: dropped as lost)
	rng        *rand.Rand
	q          heldHeap
	seq        uint64
	C          Counters
}

// NewImpairer returns an Impairer seeded with seed.
func NewImpairer(p Params, seed, stream uint64) *Impairer {
	return &Impairer{P: p, MaxHeld: 4096, rng: rand.New(rand.NewPCG(seed, stream))}
}

// Arrive takes a frame (owned by the Impairer from now on) that arrived at
// now.
func (m *Impairer) Arrive(now time.Time, f []byte) {
	m.C.In++
	if now.Before(m.BlackUntil) {
		m.C.Blackholed++
		return
	}
	if m.rng.Float64() < m.P.Loss {
		m.C.Lost++
		return
	}
	copies := 1
	if m.rng.Float64() < m.P.Dup {
		copies = 2
		m.C.Duplicated++
	}
	for i := range copies {
		d := m.P.Delay
		if m.P.Jitter > 0 {
			d += time.Duration(m.rng.Int64N(int64(m.P.Jitter)))
		}
		if m.rng.Float64() < m.P.Reorder {
			d += m.P.ReorderDelay
			m.C.Reordered++
		}
		if i == 1 {
			d += m.P.ReorderDelay / 4 // the copy follows a little later
		}
		if len(m.q) >= m.MaxHeld {
			m.C.Lost++
			continue
		}
		m.seq++
		heap.Push(&m.q, held{due: now.Add(d), seq: m.seq, frame: f})
	}
}

// Due pops the frames due at now, in order, appending them to out.
func (m *Impairer) Due(now time.Time, out [][]byte) [][]byte {
	for len(m.q) > 0 && !m.q[0].due.After(now) {
		h := heap.Pop(&m.q).(held)
		m.C.Out++
		out = append(out, h.frame)
	}
	return out
}

// Next returns when the next held frame is due (zero when none is held).
func (m *Impairer) Next() time.Time {
	if len(m.q) == 0 {
		return time.Time{}
	}
	return m.q[0].due
}
