package shm

import (
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Futex operations without FUTEX_PRIVATE_FLAG: the waiter and the waker are
// different processes mapping the same file, so the kernel must key the
// wait queue on the page, not on this process's address space.
const (
	futexWait = 0
	futexWake = 1
)

// futexWaitWord sleeps while *addr == val, at most d (d <= 0: no limit). It
// may return early and spuriously (EAGAIN when the word already changed,
// EINTR, a timeout): callers loop and re-check their condition.
func futexWaitWord(addr *atomic.Uint32, val uint32, d time.Duration) {
	var tsp *unix.Timespec
	if d > 0 {
		ts := unix.NsecToTimespec(int64(d))
		tsp = &ts
	}
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWait, uintptr(val),
		uintptr(unsafe.Pointer(tsp)), 0, 0)
}

// futexWakeWord wakes up to n processes sleeping on addr.
func futexWakeWord(addr *atomic.Uint32, n int) {
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWake, uintptr(n), 0, 0, 0)
}
