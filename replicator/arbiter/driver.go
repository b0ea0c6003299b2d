package arbiter

// What Server and Client share: one UDP socket, a timerfd and an eventfd,
// served by ONE goroutine locked to its own OS thread, which blocks in
// ppoll(2) on the three and runs the state machines itself:
//
//	eventfd  → stop, or the owner's requests (Server.Switchover, the
//	           Client's Yielded / ObserveEpoch / SetStandbyReady)
//	socket   → every waiting datagram, read without blocking, BEFORE the
//	           ticks: what arrived while the thread was not running came in
//	           time
//	timerfd  → the expirations since the last read, each run as a tick
//	then the driver's after (process the state machines, publish stats).
//
// Why not goroutines on the netpoller: BFD at 1 ms × 3 needs its thread on
// a CPU within a millisecond or so of a packet or tick, and a goroutine
// woken by the netpoller first waits for a P, then, if it was locked, for
// a hand-off to its thread, both at normal priority behind whatever spins
// (NFs, the manager's loops, other managers on a shared machine: on the
// 2-vCPU development VM such a driver declared live members down about
// once a second). A thread blocked in ppoll is woken by the kernel, and
// with RTPriority it runs under SCHED_FIFO, ahead of every normal task
// (docs/arbiter.md, "Drivers"). The loop reads the socket only when it is
// readable; per datagram Recvfrom allocates the source address, and BFD's
// packet building allocates too (a few hundred bytes per datagram in all:
// not yet removed).
//
// close sets stopping, rings the eventfd, waits for the loop to return and
// only then closes the descriptors (no descriptor is reused under it).

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reinforce-nfv/reinforce/replicator/bfd"
)

// DefaultSlowTx is BFD's transmit interval while a session is not Up
// (RFC 5880 §6.8.3: at least one second). State changes are sent at once
// regardless, so bring-up takes round trips, not seconds.
const DefaultSlowTx = time.Second

// maxCatchUpTicks bounds the ticks run at once after the loop fell behind
// (a stall that long has tripped detection anyway).
const maxCatchUpTicks = 1000

// maxRecvBurst bounds the datagrams taken per wake-up, so ticks still run
// under a flood.
const maxRecvBurst = 256

// handler is what a driver does on its loop's events; all run on the
// loop's thread.
type handler interface {
	datagram(b []byte, from netip.AddrPort)
	ticks(k int)
	wake()
	after()
}

type endpoint struct {
	fd, tfd, efd int
	family       int // AF_INET or AF_INET6
	base         time.Time
	stopping     atomic.Bool
	started      bool // start ran: close waits for the loop
	done         chan struct{}
	once         sync.Once
	// fdMu guards the descriptors against close: wake may come from any
	// goroutine at any time (a manager's replication reports after its
	// arbiter client closed), and a closed number may be reused at once.
	fdMu   sync.RWMutex
	closed bool   // guarded by fdMu
	buf    []byte // the loop's send buffer
	rbuf   []byte // the loop's receive buffer
	rtPrio int
	sched  string // the loop thread's policy, set before start returns
	tick   time.Duration
	// pauseTicks: a wake-up with at least this many expirations means the
	// loop's thread was held off the CPU (pause).
	pauseTicks int
}

// pauseAfter returns pauseTicks for a profile: half its detection time (a
// pause that long would make a live peer look silent for half of it), and
// at least 4 ticks (a busy machine wakes a thread a tick or two late).
func pauseAfter(p Profile, tick time.Duration) int {
	return max(4, int(p.Detect()/2/tick))
}

// pausedFor reports whether a wake-up with k expirations is a pause of
// the loop's thread; if so it counts it in w and tells onPause. The caller
// then gives its sessions Paused and runs one tick instead of k.
func (e *endpoint) pausedFor(k int, w *WireCounters, onPause func(time.Duration)) bool {
	if k < e.pauseTicks {
		return false
	}
	w.pause(k, e.tick)
	if onPause != nil {
		onPause(time.Duration(k) * e.tick)
	}
	return true
}

// pause counts one pause of k ticks.
func (w *WireCounters) pause(k int, tick time.Duration) {
	w.Pauses++
	w.MaxPause = max(w.MaxPause, time.Duration(k)*tick)
}

// Scheduling returns the loop thread's scheduling: "SCHED_FIFO N", or
// "normal" with the reason RTPriority was not applied.
func (e *endpoint) Scheduling() string { return e.sched }

// driverDefaults fills a Server's or Client's zero timing settings: the
// default profile, its lease, DefaultTick and DefaultSlowTx.
func driverDefaults(p *Profile, lease, tick, slowTx *time.Duration) {
	if p.DetectMult == 0 {
		*p = ProfileDefault
	}
	if *lease == 0 {
		*lease = p.Lease
	}
	if *tick == 0 {
		*tick = DefaultTick
	}
	if *slowTx == 0 {
		*slowTx = DefaultSlowTx
	}
}

// openEndpoint binds a UDP socket to local (zero: any address and port, of
// peer's family) and arms a timerfd firing every tick.
func openEndpoint(local, peer netip.AddrPort, p Profile, tick time.Duration, rtPrio int) (*endpoint, error) {
	family := unix.AF_INET6
	switch {
	case local.IsValid() && local.Addr().Unmap().Is4():
		family = unix.AF_INET
	case !local.IsValid() && peer.IsValid() && peer.Addr().Unmap().Is4():
		family = unix.AF_INET
	}
	e := &endpoint{fd: -1, tfd: -1, efd: -1, family: family, done: make(chan struct{}), base: time.Now(),
		buf: make([]byte, 0, 128), rbuf: make([]byte, 2048), rtPrio: rtPrio, tick: tick, pauseTicks: pauseAfter(p, tick)}
	fail := func(what string, err error) (*endpoint, error) {
		e.closeFDs()
		return nil, fmt.Errorf("arbiter: %s %v: %w", what, local, err)
	}
	var err error
	if e.fd, err = unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0); err != nil {
		return fail("socket", err)
	}
	if family == unix.AF_INET6 {
		_ = unix.SetsockoptInt(e.fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0)
	}
	// Room for a few milliseconds of every member's traffic if the loop is
	// held up (the kernel drops beyond it; the protocol resends).
	_ = unix.SetsockoptInt(e.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	bindTo := local
	if !bindTo.IsValid() {
		bindTo = netip.AddrPortFrom(netip.IPv6Unspecified(), 0)
		if family == unix.AF_INET {
			bindTo = netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
		}
	}
	if err = unix.Bind(e.fd, e.sockaddr(bindTo)); err != nil {
		return fail("listen", err)
	}
	if e.tfd, err = unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC); err != nil {
		return fail("timerfd_create", err)
	}
	ts := unix.NsecToTimespec(tick.Nanoseconds())
	if err = unix.TimerfdSettime(e.tfd, 0, &unix.ItimerSpec{Interval: ts, Value: ts}, nil); err != nil {
		return fail("timerfd_settime", err)
	}
	if e.efd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		return fail("eventfd", err)
	}
	return e, nil
}

func (e *endpoint) closeFDs() {
	for _, fd := range []*int{&e.fd, &e.tfd, &e.efd} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
}

func (e *endpoint) now() time.Duration { return time.Since(e.base) }

// sockaddr converts ap for this socket's family.
func (e *endpoint) sockaddr(ap netip.AddrPort) unix.Sockaddr {
	a := ap.Addr().Unmap()
	if e.family == unix.AF_INET && a.Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
}

func addrPortOf(sa unix.Sockaddr) netip.AddrPort {
	switch v := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(v.Addr), uint16(v.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(v.Addr).Unmap(), uint16(v.Port))
	}
	return netip.AddrPort{}
}

// localAddr returns the address the socket is bound to.
func (e *endpoint) localAddr() netip.AddrPort {
	sa, err := unix.Getsockname(e.fd)
	if err != nil {
		return netip.AddrPort{}
	}
	return addrPortOf(sa)
}

// start runs the loop on its own locked thread and returns once the
// thread's scheduling is set.
func (e *endpoint) start(h handler) {
	e.started = true
	ready := make(chan struct{})
	go e.loop(h, ready)
	<-ready
}

// wake rings the eventfd: the loop runs h.wake (or stops).
func (e *endpoint) wake() {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	e.fdMu.RLock()
	if !e.closed {
		_, _ = unix.Write(e.efd, one[:])
	}
	e.fdMu.RUnlock()
}

// close stops the loop (if it started) and closes the descriptors. It must
// not be called from the loop's callbacks: it waits for the loop.
func (e *endpoint) close() error {
	e.once.Do(func() {
		e.stopping.Store(true)
		e.wake()
		if e.started {
			<-e.done
		}
		e.fdMu.Lock()
		e.closed = true
		e.closeFDs()
		e.fdMu.Unlock()
	})
	return nil
}

// setScheduling puts the calling thread under SCHED_FIFO at e.rtPrio
// (reset on fork: threads and processes it starts run normally) and
// records the outcome.
func (e *endpoint) setScheduling() {
	e.sched = "normal"
	if e.rtPrio <= 0 {
		return
	}
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: uint32(min(e.rtPrio, 99)),
		Flags: unix.SCHED_FLAG_RESET_ON_FORK}
	if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
		e.sched = fmt.Sprintf("normal (SCHED_FIFO %d refused: %v)", e.rtPrio, err)
		return
	}
	e.sched = fmt.Sprintf("SCHED_FIFO %d", min(e.rtPrio, 99))
}

func (e *endpoint) loop(h handler, ready chan<- struct{}) {
	defer close(e.done)
	// Never unlocked: the thread ends with the goroutine, so its real-time
	// policy never passes to other goroutines. The main thread cannot end
	// (the runtime parks it for good when a goroutine locked to it exits),
	// so the policy is also put back before the goroutine ends.
	runtime.LockOSThread()
	e.setScheduling()
	if e.rtPrio > 0 {
		defer func() {
			attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_NORMAL}
			_ = unix.SchedSetAttr(0, &attr, 0)
		}()
	}
	close(ready)
	fds := [3]unix.PollFd{{Fd: int32(e.efd), Events: unix.POLLIN}, {Fd: int32(e.fd), Events: unix.POLLIN}, {Fd: int32(e.tfd), Events: unix.POLLIN}}
	var b8 [8]byte
	for {
		for i := range fds {
			fds[i].Revents = 0
		}
		if _, err := unix.Ppoll(fds[:], nil, nil); err != nil {
			if err == unix.EINTR {
				continue
			}
			// The descriptors are closed only after the loop ends: this
			// is not expected; stopping the driver is all that is safe.
			return
		}
		if fds[0].Revents != 0 {
			_, _ = unix.Read(e.efd, b8[:])
			if e.stopping.Load() {
				return
			}
			h.wake()
		}
		// Only when the socket is readable: Recvfrom allocates its source
		// address, even for the EAGAIN that ends a burst, and most wake-ups
		// are ticks.
		for i := 0; i < maxRecvBurst && fds[1].Revents&unix.POLLIN != 0; i++ {
			n, from, err := unix.Recvfrom(e.fd, e.rbuf, unix.MSG_DONTWAIT)
			if err != nil {
				break
			}
			h.datagram(e.rbuf[:n], addrPortOf(from))
		}
		if fds[2].Revents != 0 {
			if n, err := unix.Read(e.tfd, b8[:]); err == nil && n == 8 {
				h.ticks(int(max(1, min(binary.NativeEndian.Uint64(b8[:]), maxCatchUpTicks))))
			}
		}
		h.after()
	}
}

// send sends b to sa (a cached sockaddr of the destination).
func (e *endpoint) send(b []byte, sa unix.Sockaddr) error {
	return unix.Sendto(e.fd, b, unix.MSG_DONTWAIT, sa)
}

// bfdHeader prefixes a BFD control packet with its kind and the sender.
func bfdHeader(dst []byte, from MemberID) []byte {
	dst = append(dst, KindBFD)
	return binary.BigEndian.AppendUint32(dst, uint32(from))
}

// newSession returns a BFD session for the link of member with p's timing,
// Meticulous Keyed SHA1 under BFDKey.
func newSession(p Profile, psk []byte, member MemberID, tick, slowTx time.Duration, seed uint64) (*bfd.Session, error) {
	var b [4]byte
	disc := uint32(0)
	for disc == 0 {
		_, _ = rand.Read(b[:])
		disc = binary.BigEndian.Uint32(b[:])
	}
	return bfd.New(bfd.Config{
		LocalDisc:          disc,
		DesiredMinTxMicros: uint32(p.TxInterval.Microseconds()), RequiredMinRxMicros: uint32(p.RxInterval.Microseconds()),
		DetectMult: p.DetectMult, TickMicros: uint32(tick.Microseconds()), SlowTxMicros: uint32(slowTx.Microseconds()),
		AuthType: bfd.AuthMeticulousSHA1, Key: BFDKey(psk, member), KeyID: 1,
		Rand: mrand.New(mrand.NewPCG(seed, uint64(disc))),
	})
}

// WireCounters count what a driver's socket received and refused.
type WireCounters struct {
	Datagrams  uint64 // received
	Malformed  uint64 // not a message or BFD packet, or a malformed one
	AuthFailed uint64 // message MAC wrong, or BFD authentication failed
	Replayed   uint64 // message sequence number seen or too old
	Unknown    uint64 // from a sender we do not know
	StepErrors uint64 // refused by a state machine (stale, not primary, ...)
	SendErrors uint64
	// Pauses counts the times the driver's own thread was held off the CPU
	// for half a detection time or more, MaxPause the longest: BFD did not
	// count that time against its peers (bfd.Session.Paused).
	Pauses   uint64
	MaxPause time.Duration
	// NeighborDowns counts members' sessions that went down by the
	// member's signal (it stopped hearing the arbiter) rather than by the
	// arbiter's detection (the Server's grace; server only).
	NeighborDowns uint64
}

// classify counts an Open error.
func (w *WireCounters) classify(err error) {
	switch {
	case errors.Is(err, ErrAuth):
		w.AuthFailed++
	case errors.Is(err, ErrReplay):
		w.Replayed++
	case errors.Is(err, ErrUnknownSender):
		w.Unknown++
	default:
		w.Malformed++
	}
}

func wallSeq() uint64 { return uint64(time.Now().UnixNano()) }
