package arbiter

// What Server and Client share: one UDP socket and a timerfd ticker feeding
// one run goroutine (the replicator's Node pattern, docs/replication.md
// "Node"):
//
//	routineRecv: socket → recv channel (bounded; a full channel drops and
//	             counts, as a full NIC queue would: the protocol resends)
//	routineTick: timerfd Ticker → tick channel (one pending tick; ticks
//	             coalesce while the run goroutine is behind)
//	routineRun:  (in server.go, client.go) the only goroutine touching the
//	             state machines
//
// close closes stop, the socket (ending routineRecv) and the ticker (ending
// routineTick), then waits for all three.

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reinforce-nfv/reinforce/replicator"
	"github.com/reinforce-nfv/reinforce/replicator/bfd"
)

// DefaultSlowTx is BFD's transmit interval while a session is not Up
// (RFC 5880 §6.8.3: at least one second). State changes are sent at once
// regardless, so bring-up takes round trips, not seconds.
const DefaultSlowTx = time.Second

type datagram struct {
	b    []byte
	from netip.AddrPort
}

type endpoint struct {
	conn    *net.UDPConn
	tk      *replicator.Ticker
	recv    chan datagram
	tick    chan struct{}
	stop    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
	base    time.Time // the origin of now; its monotonic reading is what counts
	buf     []byte    // routineRun's send buffer
	dropped atomic.Uint64
	// missed counts timer expirations the run goroutine has not taken:
	// under load it falls behind, and BFD counts time in ticks (a late
	// tick would send heartbeats late and make the other side declare us
	// down).
	missed atomic.Uint64
}

// maxCatchUpTicks bounds the ticks run at once after the run goroutine fell
// behind (a stall that long has tripped detection anyway).
const maxCatchUpTicks = 1000

// drain hands one waiting datagram to fn and reports whether there was one.
func (e *endpoint) drain(fn func(datagram)) bool {
	select {
	case d := <-e.recv:
		fn(d)
		return true
	default:
		return false
	}
}

// takeTicks returns the expirations since the last call (at least 1: the
// caller got a tick signal).
func (e *endpoint) takeTicks() int {
	return int(max(1, min(e.missed.Swap(0), maxCatchUpTicks)))
}

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

func openEndpoint(local netip.AddrPort, tick time.Duration) (*endpoint, error) {
	var la *net.UDPAddr
	if local.IsValid() {
		la = net.UDPAddrFromAddrPort(local)
	}
	conn, err := net.ListenUDP("udp", la)
	if err != nil {
		return nil, fmt.Errorf("arbiter: listen %v: %w", local, err)
	}
	tk, err := replicator.NewTicker(tick)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &endpoint{
		conn: conn, tk: tk, recv: make(chan datagram, 1024), tick: make(chan struct{}, 1),
		stop: make(chan struct{}), base: time.Now(), buf: make([]byte, 0, 128),
	}, nil
}

func (e *endpoint) now() time.Duration { return time.Since(e.base) }

// start starts routineRecv, routineTick and run.
func (e *endpoint) start(run func()) {
	e.wg.Add(1)
	go e.routineRecv()
	e.wg.Add(1)
	go e.routineTick()
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		run()
	}()
}

func (e *endpoint) close() error {
	var err error
	e.once.Do(func() {
		close(e.stop)
		err = errors.Join(e.conn.Close(), e.tk.Close())
		e.wg.Wait()
	})
	return err
}

// routineRecv reads datagrams until close closes the socket.
func (e *endpoint) routineRecv() {
	defer e.wg.Done()
	buf := make([]byte, 2048)
	for {
		k, from, err := e.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		d := datagram{b: append([]byte(nil), buf[:k]...), from: from}
		select {
		case e.recv <- d:
		default:
			e.dropped.Add(1)
		}
	}
}

// routineTick forwards ticks until close closes the ticker.
func (e *endpoint) routineTick() {
	defer e.wg.Done()
	for {
		k, err := e.tk.Wait()
		if err != nil {
			return
		}
		e.missed.Add(k)
		select {
		case e.tick <- struct{}{}:
		default:
		}
	}
}

func (e *endpoint) send(b []byte, to netip.AddrPort) error {
	_, err := e.conn.WriteToUDPAddrPort(b, to)
	return err
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
	Datagrams   uint64 // received
	RecvDropped uint64 // the run goroutine was behind
	Malformed   uint64 // not a message or BFD packet, or a malformed one
	AuthFailed  uint64 // message MAC wrong, or BFD authentication failed
	Replayed    uint64 // message sequence number seen or too old
	Unknown     uint64 // from a sender we do not know
	StepErrors  uint64 // refused by a state machine (stale, not primary, ...)
	SendErrors  uint64
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
