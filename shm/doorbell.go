package shm

import (
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
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

// Wakeups is how many times the doorbell has rung someone awake (a Ring
// that found a sleeper), since the region was created; it wraps at 2^32.
// Any process may read it: for stats (ONVM's shared-core "wakeups").
func (b Doorbell) Wakeups() uint32 {
	if b.seq == nil {
		return 0
	}
	return b.seq.Load()
}

// Sleeping reports whether a process sleeps on the doorbell right now (ONVM's
// shared-core sleep flag, shown as S in its stats). The answer may be stale
// at once; it is for stats, never for synchronisation.
func (b Doorbell) Sleeping() bool { return b.seq != nil && b.sleepers.Load() != 0 }

// Line is the doorbell's futex word as a plain atomic on its own cache line,
// for measuring what moving one cache line between processes costs
// (tools/bench chain's ping-pong floor, TARGETS.md T4). Use it only on a
// doorbell nobody sleeps on: stores to it wake no one. Nil if !Valid().
func (b Doorbell) Line() *atomic.Uint32 { return b.seq }

// Waiter spins on a condition for a short while, then sleeps on a doorbell.
// Spinning covers the common case of work arriving within microseconds
// without a syscall; sleeping makes an idle process cost nothing. Never use
// Go timers to pace microseconds: they sleep about 1 ms on these machines.
//
// Between spinning and sleeping it may yield the CPU (sched_yield) a few
// times: when processes share a CPU (shared-core mode), a yield lets the
// one that has work run at once instead of after the spinner's time slice,
// and costs a fraction of a microsecond when nobody else wants the CPU.
//
// SpinFor spins by the clock instead of by count. A sleep and its wake-up
// cost about 50–80 µs of latency here (TARGETS.md), so spinning for about
// that long before sleeping never loses more than twice what the best
// choice in hindsight would have (the ski-rental argument), while an idle
// process still sleeps after a fraction of a millisecond.
type Waiter struct {
	Bell    Doorbell
	Spins   int           // polls of ready() before sleeping; 0 means 2000
	SpinFor time.Duration // if > 0, poll for this long instead of Spins times
	Yields  int           // sched_yield calls, each followed by a poll, after spinning; 0 means none
	Max     time.Duration // longest single sleep; 0 means 100 ms; < 0 means no limit (the bell must be rung)
}

// Wait returns once ready() holds (true) or after one sleep of at most Max
// with ready() still false. Callers loop, checking their stop condition.
func (w *Waiter) Wait(ready func() bool) bool {
	return w.WaitFor(ready, 0)
}

// WaitFor is Wait with the sleep limited to d as well when d > 0 (the
// sooner of d and Max): for callers that know when work falls due, such as
// a rate-paced port.
func (w *Waiter) WaitFor(ready func() bool, d time.Duration) bool {
	if w.SpinFor > 0 {
		// The clock is read once every 256 polls, and not before the first
		// 256: work that comes back within a microsecond (a chain with one
		// packet in flight calls Wait millions of times a second) must not
		// pay a clock read, which profiled at 15 % of such an NF's time.
		var deadline time.Time
		for {
			for i := 0; i < 256; i++ {
				if ready() {
					return true
				}
			}
			now := time.Now()
			if deadline.IsZero() {
				deadline = now.Add(w.SpinFor)
			} else if now.After(deadline) {
				break
			}
		}
	} else {
		spins := w.Spins
		if spins <= 0 {
			spins = 2000
		}
		for i := 0; i < spins; i++ {
			if ready() {
				return true
			}
		}
	}
	for i := 0; i < w.Yields; i++ {
		unix.Syscall(unix.SYS_SCHED_YIELD, 0, 0, 0)
		if ready() {
			return true
		}
	}
	max := w.Max
	switch {
	case max == 0:
		max = 100 * time.Millisecond
	case max < 0:
		max = 0 // Sleep: no limit
	}
	if d > 0 && (max == 0 || d < max) {
		max = d
	}
	return w.Bell.Sleep(ready, max)
}
