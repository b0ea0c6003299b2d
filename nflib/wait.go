package nflib

import (
	"time"

	"github.com/reinforce-nfv/reinforce/shm"
)

// How the burst loop idles (docs/manager.md, "Idle and shared-core mode").
//
// Poll mode (the default) spins pollSpin on its inputs, so a chain under
// load never enters the kernel, then sleeps on the NF's doorbell.
// Shared-core mode (-s) lets several NFs share a CPU: spinning there steals
// the CPU from the NF that has the work, so the loop polls a few times,
// yields the CPU a few times (another NF on this CPU runs at once), then
// sleeps. Either way the sleep has no time limit: every producer into the
// NF rings its doorbell after publishing, and so do new routes, Stop and the
// manager's death (routineControl); only -t needs a clock.
const (
	// pollSpin is about one wake-up's cost here (TARGETS.md: futex wake-up
	// p50 50–80 µs): spinning longer wastes more than a sleep would cost,
	// spinning less sleeps through gaps a wake-up cannot bridge.
	pollSpin     = 50 * time.Microsecond
	sharedSpins  = 32 // polls before yielding: well under a microsecond
	sharedYields = 2  // sched_yield rounds before sleeping
	// ttlPoll bounds a sleep when -t is set, so an idle NF still notices
	// its TTL (whole seconds) on time.
	ttlPoll = 100 * time.Millisecond
	// sleepNet bounds every sleep (see waiter).
	sleepNet = 100 * time.Millisecond
)

// waiter is how the burst loop sleeps when it has no work.
func (nf *NF) waiter() shm.Waiter {
	// Max bounds a sleep as a safety net: a replay at a low rate once saw an
	// NF sleep through work for 300 ms (a lost wake-up not yet found; see
	// the session note), which the hang detector then killed. 10 wake-ups
	// a second cost nothing measurable.
	w := shm.Waiter{Bell: nf.bell, SpinFor: pollSpin, Max: sleepNet}
	if nf.Args.ShareCore || nf.sharedCPU {
		w.SpinFor, w.Spins, w.Yields = 0, sharedSpins, sharedYields
	}
	if nf.Args.TTL > 0 {
		w.Max = ttlPoll
	}
	return w
}
