// Package counters keeps an example NF's statistics (ONVM's static stats
// structs: packets accepted, dropped, per port...) in a state array, so the
// counts are part of each burst's transaction and an NF that takes over
// after a crash goes on from the committed counts instead of from zero.
package counters

import (
	"github.com/reinforce-nfv/reinforce/nflib"
	"github.com/reinforce-nfv/reinforce/shm/state"
)

// Counters is a fixed set of uint64 counters in the NF's state.
type Counters struct {
	a *state.Array[uint64]
}

// Open opens (or creates) the NF's counter array name of n counters.
func Open(nf *nflib.NF, name string, n int) (*Counters, error) {
	a, err := nflib.NewArray[uint64](nf, name, n)
	if err != nil {
		return nil, err
	}
	return &Counters{a: a}, nil
}

// OpenFile is Open on a state file directly, for tests without an NF.
func OpenFile(f *state.File, name string, n int) (*Counters, error) {
	a, err := state.NewArray[uint64](f, name, n)
	if err != nil {
		return nil, err
	}
	return &Counters{a: a}, nil
}

// Add adds d to counter i. A failed write fails the open transaction by
// itself (docs/state.md), so the error needs no handling here.
func (c *Counters) Add(i int, d uint64) {
	v, _ := c.a.Get(i)
	c.a.Set(i, v+d)
}

// Get is counter i.
func (c *Counters) Get(i int) uint64 {
	v, _ := c.a.Get(i)
	return v
}

// Len is the number of counters.
func (c *Counters) Len() int { return c.a.Len() }
