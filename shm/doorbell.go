package shm

import (
	"sync/atomic"
	"time"
	"unsafe"
)

// Doorbell is a futex word in the region on which a consumer sleeps when it
// has no work, and which producers ring after publishing. Producers make the
// wake-up syscall only when someone really sleeps (the sleepers count), so a
// busy data path never enters the kernel.
//
// The protocol is Dekker's: the sleeper increments sleepers, then re-checks
// its condition; the producer publishes, then loads sleepers. Go's atomics
// are sequentially consistent, so either the producer sees the sleeper or
// the sleeper sees the published work.
//
// A Doorbell may be used from any number of goroutines and processes.
type Doorbell struct {
	seq      *atomic.Uint32 // bumped on each wake; the futex word
	sleepers *atomic.Uint32
}

func newDoorbell(p unsafe.Pointer) Doorbell {
	w := (*doorbellWord)(p)
	return Doorbell{
		seq:      (*atomic.Uint32)(unsafe.Pointer(&w.seq)),
		sleepers: (*atomic.Uint32)(unsafe.Pointer(&w.sleepers)),
	}
}

// Valid reports whether the doorbell refers to region memory.
func (b Doorbell) Valid() bool { return b.seq != nil }

// Ring wakes every sleeper, if there is one. Call it AFTER publishing the
// work it announces (pairs with the sleepers increment in Sleep).
func (b Doorbell) Ring() {
	if b.seq == nil || b.sleepers.Load() == 0 {
		return
	}
	b.seq.Add(1)
	futexWakeWord(b.seq, 1<<30)
}

// Sleep blocks until ready() holds, the doorbell rings, or d passes (d <= 0:
// no limit). It returns ready()'s value on return. ready is evaluated after
// the sleeper is registered, so a Ring that follows a publication ready()
// would see is never missed.
func (b Doorbell) Sleep(ready func() bool, d time.Duration) bool {
	if b.seq == nil {
		return ready()
	}
	b.sleepers.Add(1)
	key := b.seq.Load()
	if ready() {
		b.sleepers.Add(^uint32(0))
		return true
	}
	futexWaitWord(b.seq, key, d)
	b.sleepers.Add(^uint32(0))
	return ready()
}

// Waiter spins on a condition for a short while, then sleeps on a doorbell.
// Spinning covers the common case of work arriving within microseconds
// without a syscall; sleeping makes an idle process cost nothing. Never use
// Go timers to pace microseconds: they sleep about 1 ms on these machines.
type Waiter struct {
	Bell  Doorbell
	Spins int           // polls of ready() before sleeping; 0 means 2000
	Max   time.Duration // longest single sleep; 0 means 100 ms (so stop flags are seen)
}

// Wait returns once ready() holds (true) or after one sleep of at most Max
// with ready() still false. Callers loop, checking their stop condition.
func (w *Waiter) Wait(ready func() bool) bool {
	spins := w.Spins
	if spins <= 0 {
		spins = 2000
	}
	for i := 0; i < spins; i++ {
		if ready() {
			return true
		}
	}
	d := w.Max
	if d <= 0 {
		d = 100 * time.Millisecond
	}
	return w.Bell.Sleep(ready, d)
}
