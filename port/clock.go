package port

import (
	"time"

	"golang.org/x/sys/unix"
)

// The clock RX stamps Meta.Timestamp with. shm.Meta defines the stamp as
// CLOCK_MONOTONIC nanoseconds so that any process attached to the region
// (an NF measuring latency) can compare it with its own reading. Go's
// monotonic clock is CLOCK_MONOTONIC read through the vDSO (≈ 20 ns), but
// counted from process start; x/sys/unix.ClockGettime is an absolute
// reading but a real syscall. So the offset between them is measured once,
// here, and Nanotime adds it to time.Since, which reads only the monotonic
// clock.
var (
	clockBase  = time.Now()
	clockDelta = monoOffset()
)

// monoOffset returns CLOCK_MONOTONIC at clockBase, bracketing the syscall
// between two Go readings so the error is at most half their gap (< 1 µs).
func monoOffset() int64 {
	var ts unix.Timespec
	t0 := time.Since(clockBase)
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0 // cannot happen on Linux; stamps are then process-relative
	}
	t1 := time.Since(clockBase)
	return ts.Nano() - int64(t0+(t1-t0)/2)
}

// Nanotime returns CLOCK_MONOTONIC in nanoseconds, the clock of
// shm.Meta.Timestamp, without a syscall. Safe from any goroutine.
func Nanotime() int64 { return clockDelta + int64(time.Since(clockBase)) }
