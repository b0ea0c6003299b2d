package replicator

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Ticker delivers ticks from a timerfd (CLOCK_MONOTONIC). Go's runtime
// timers wake through the netpoller's millisecond timeout, so a 100 µs
// time.Ticker fires every ~1 ms here; a timerfd is a file descriptor, and
// the netpoller wakes the moment it becomes readable, so ticks keep their
// period without spinning a CPU (docs/replication.md, "Timer", measured by
// BenchmarkTickerJitter).
type Ticker struct {
	f *os.File
}

// NewTicker returns a Ticker firing every period.
func NewTicker(period time.Duration) (*Ticker, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("timerfd_create: %w", err)
	}
	ts := unix.NsecToTimespec(period.Nanoseconds())
	if err := unix.TimerfdSettime(fd, 0, &unix.ItimerSpec{Interval: ts, Value: ts}, nil); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("timerfd_settime: %w", err)
	}
	// os.NewFile on a non-blocking descriptor registers it with the
	// netpoller: Read parks the goroutine, not the thread.
	return &Ticker{f: os.NewFile(uintptr(fd), "timerfd")}, nil
}

// Wait blocks until the next tick and returns how many periods elapsed
// since the last Wait (more than one when the reader fell behind). It
// returns an error once Close was called.
func (t *Ticker) Wait() (uint64, error) {
	var b [8]byte
	if _, err := t.f.Read(b[:]); err != nil {
		return 0, err
	}
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56, nil
}

// Close stops the ticker and wakes a blocked Wait.
func (t *Ticker) Close() error { return t.f.Close() }
