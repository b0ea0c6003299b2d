// Package proc holds the process facts and handles the manager and NFs
// share: start times from /proc and pidfds (a handle on a process that a
// reused PID cannot fool), so their syscalls live in one place.
package proc

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"os"
	"strconv"
	"strings"
)

// StartTime is a process's start time in clock ticks since boot (field 22
// of /proc/PID/stat), 0 if it cannot be read. With the PID it names a
// process for good: a reused PID has another start time.
func StartTime(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command may hold spaces and parentheses
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0
	}
	v, _ := strconv.ParseUint(f[19], 10, 64)
	return v
}

// State is a process's state letter (field 3 of /proc/PID/stat: R running
// or runnable, S sleeping, D disk wait, T stopped, Z zombie), 0 if it
// cannot be read.
func State(pid int) byte {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return 0
	}
	return s[i+2]
}

// Pidfd is a handle on one process (pidfd_open(2)).
type Pidfd struct{ fd int }

// OpenPidfd opens a pidfd for pid, and fails if pid's start time is not
// start (when start is not 0): the PID was reused by another process.
func OpenPidfd(pid int, start uint64) (*Pidfd, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	if start != 0 && StartTime(pid) != start {
		unix.Close(fd)
		return nil, fmt.Errorf("process %d: %w", pid, ErrGone)
	}
	return &Pidfd{fd: fd}, nil
}

// ErrGone reports a process that has exited (its PID may name another).
var ErrGone = errors.New("process gone")

// WaitExit blocks until the process exits (true) or d passes (false). The
// pidfd turns readable the instant the process ends.
func (p *Pidfd) WaitExit(d time.Duration) bool {
	fds := []unix.PollFd{{Fd: int32(p.fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, int(d/time.Millisecond))
		if err == unix.EINTR {
			continue
		}
		return n > 0 || err != nil
	}
}

// Close releases the handle.
func (p *Pidfd) Close() error { return unix.Close(p.fd) }
