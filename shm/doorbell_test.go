package shm_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/shm"
	"github.com/reinforce-nfv/reinforce/shm/shmtest"
)

func testBell(t *testing.T) shm.Doorbell {
	t.Helper()
	r := shmtest.TempRegion(t, shmtest.SmallOptions())
	b, err := r.Doorbell(3)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestWaiterWithNoLimitSleepsUntilRung: Max < 0 sleeps past what the old
// 100 ms default allowed, and a Ring after publishing wakes it at once.
func TestWaiterWithNoLimitSleepsUntilRung(t *testing.T) {
	b := testBell(t)
	var work atomic.Bool
	w := shm.Waiter{Bell: b, Spins: 1, Max: -1}
	const after = 500 * time.Millisecond
	go func() {
		time.Sleep(after)
		work.Store(true) // publish, then ring
		b.Ring()
	}()
	t0 := time.Now()
	wakes := b.Wakeups()
	// A signal may end a futex wait early (Wait then returns false and the
	// caller loops); a 100 ms limit would end it four times.
	early := 0
	for !w.Wait(work.Load) {
		early++
	}
	if early > 1 {
		t.Fatalf("Wait returned without work %d times in %v: the sleep has a limit", early, after)
	}
	if d := time.Since(t0); d < after {
		t.Fatalf("Wait returned after %v, before the ring at %v", d, after)
	}
	if b.Wakeups() == wakes {
		t.Fatalf("the ring found no sleeper: Wakeups still %d", wakes)
	}
	if b.Sleeping() {
		t.Fatal("Sleeping after the waiter woke")
	}
}

// TestWaiterWaitForBoundsTheSleep: WaitFor's limit wins over Max's.
func TestWaiterWaitForBoundsTheSleep(t *testing.T) {
	b := testBell(t)
	w := shm.Waiter{Bell: b, Spins: 1, Max: -1}
	t0 := time.Now()
	if w.WaitFor(func() bool { return false }, 20*time.Millisecond) {
		t.Fatal("WaitFor reported work that never came")
	}
	if d := time.Since(t0); d < 20*time.Millisecond || d > 5*time.Second {
		t.Fatalf("WaitFor(20 ms) slept %v", d)
	}
}

// TestWaiterSpinsByTheClockThenYields: SpinFor polls for at least that long
// and Yields polls once per yield, before the sleep.
func TestWaiterSpinsByTheClockThenYields(t *testing.T) {
	b := testBell(t)
	polls := 0
	ready := func() bool { polls++; return false }
	w := shm.Waiter{Bell: b, SpinFor: 2 * time.Millisecond, Max: time.Millisecond}
	t0 := time.Now()
	w.Wait(ready)
	if d := time.Since(t0); d < 2*time.Millisecond {
		t.Fatalf("spun %v, want at least 2 ms", d)
	}
	if polls < 256 {
		t.Fatalf("%d polls while spinning", polls)
	}
	polls = 0
	w = shm.Waiter{Bell: b, Spins: 5, Yields: 3, Max: time.Millisecond}
	w.Wait(ready)
	// 5 spins, 3 after yields, and Sleep's check before and after sleeping.
	if polls != 5+3+2 {
		t.Fatalf("%d polls, want 10", polls)
	}
}

// TestDoorbellLineIsTheWord: Line is the futex word Wakeups counts on.
func TestDoorbellLineIsTheWord(t *testing.T) {
	b := testBell(t)
	b.Line().Store(41)
	if b.Wakeups() != 41 {
		t.Fatalf("Wakeups %d after storing 41 to Line", b.Wakeups())
	}
	var zero shm.Doorbell
	if zero.Line() != nil || zero.Wakeups() != 0 || zero.Sleeping() {
		t.Fatal("an invalid doorbell has a word")
	}
}
