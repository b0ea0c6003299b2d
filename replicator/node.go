package replicator

// Node runs a Replicator, a BFD session and the transport handshake over
// one UDP socket (docs/replication.md, "Node"). Its goroutines:
//
//	routineRecv: socket → recv channel (bounded; a full channel drops and counts,
//	             as a full NIC queue would: the protocol retransmits)
//	routineTick: timerfd Ticker → tick channel (coalescing: one pending tick)
//	routineRun:  the only goroutine that touches the state machines: one select
//	             over recv, tick, proposals and stop; Step/Tick, then Ready,
//	             the I/O, the callbacks, Advance.
//
// Stop closes the stop channel, the socket (ending routineRecv) and the
// ticker (ending routineTick), then waits for all three.

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

	"github.com/reinforce-nfv/reinforce/replicator/bfd"
)

// NodeConfig configures a Node.
type NodeConfig struct {
	Replicator Config
	// BFD: LocalDisc 0 picks a random one; TickMicros is set from Tick.
	BFD         bfd.Config
	Local, Peer netip.AddrPort
	// PSK is the pre-shared key of the handshake (at least 16 bytes).
	PSK []byte
	// Initiator: this side sends the hello (the standby, by convention).
	Initiator bool
	// Tick is the timer period for both state machines (default 100 µs).
	Tick time.Duration
	// HandshakeTicks is how often an unconfirmed handshake is repeated.
	HandshakeTicks int
	// RecvQueue bounds the datagrams waiting for routineRun.
	RecvQueue int
	// Seed seeds the BFD jitter.
	Seed uint64

	// Apply (standby) applies one transaction atomically; Node acknowledges
	// it only after Apply returns nil. An error stops the node.
	Apply func(Apply) error
	// Snapshot (primary) returns the containers at a round boundary: every
	// transaction proposed so far and nothing after.
	Snapshot func() []byte
	// Release (primary) lets the output held for every latch up to l leave.
	Release func(l LatchID)
	// OnBFD and OnRole report changes; optional. All callbacks run on
	// routineRun and must not call back into the Node.
	OnBFD  func(bfd.Change)
	OnRole func(Role, Epoch)
	// OnApplyError (standby) reports an Apply that failed: the Node then
	// joins again for a snapshot (Replicator.Rejoin). Optional.
	OnApplyError func(error)
}

// NodeStats is a snapshot of a Node's counters.
type NodeStats struct {
	Replicator                   Counters
	BFD                          bfd.Counters
	BFDState                     bfd.State
	Role                         Role
	Epoch                        Epoch
	Joined                       bool
	Sessions                     uint64 // handshakes completed
	RecvDropped, Unauthenticated uint64
	HandshakeErrors, SendErrors  uint64
	StepErrors                   uint64
	Datagrams                    uint64
	ApplyErrors                  uint64 // Apply failed: rejoined for a snapshot
}

type proposal struct {
	latch   LatchID
	payload []byte
	err     chan error
}

// Node is a running replication endpoint. Its methods are safe for
// concurrent use.
type Node struct {
	cfg  NodeConfig
	conn *net.UDPConn
	tk   *Ticker
	r    *Replicator
	bfd  *bfd.Session
	hs   *Handshaker

	recv  chan []byte
	tick  chan struct{}
	props chan proposal
	epoch chan epochReq
	stop  chan struct{}
	wg    sync.WaitGroup
	err   error // why routineRun ended; guarded by mu

	mu    sync.Mutex
	stats NodeStats // guarded by mu

	sendBuf []byte // routineRun only
	ticks   int    // routineRun only
	st      NodeStats
	// confirmed is the session (st.Sessions) in which the peer last showed
	// it is joined (a join, an ack or a repeated ack): a primary reports
	// Joined only for the current session, so a standby that died and a
	// new one that has not joined yet are not mistaken for each other.
	confirmed uint64 // routineRun only
	// missed counts timer expirations routineRun has not run yet: under
	// load it falls behind, and detection and retransmission count ticks.
	missed atomic.Uint64
}

// StartNode opens the socket and starts the node.
func StartNode(cfg NodeConfig) (*Node, error) {
	if len(cfg.PSK) < 16 {
		return nil, errors.New("replication node: pre-shared key shorter than 16 bytes")
	}
	if cfg.Tick == 0 {
		cfg.Tick = 100 * time.Microsecond
	}
	if cfg.HandshakeTicks == 0 {
		cfg.HandshakeTicks = 100
	}
	if cfg.RecvQueue == 0 {
		cfg.RecvQueue = 1024
	}
	r, err := New(cfg.Replicator)
	if err != nil {
		return nil, err
	}
	bc := cfg.BFD
	bc.TickMicros = uint32(cfg.Tick.Microseconds())
	for bc.LocalDisc == 0 {
		var b [4]byte
		_, _ = rand.Read(b[:])
		bc.LocalDisc = binary.BigEndian.Uint32(b[:])
	}
	if bc.Rand == nil {
		bc.Rand = mrand.New(mrand.NewPCG(cfg.Seed, cfg.Seed^uint64(bc.LocalDisc)))
	}
	if bc.AuthType != bfd.AuthNone && len(bc.Key) == 0 {
		// The BFD key defaults to one derived from the PSK.
		k := derive(cfg.PSK, 'B', &Nonce{}, &Nonce{})
		bc.Key = k[:20]
	}
	s, err := bfd.New(bc)
	if err != nil {
		return nil, err
	}
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(cfg.Local))
	if err != nil {
		return nil, fmt.Errorf("replication node: %w", err)
	}
	tk, err := NewTicker(cfg.Tick)
	if err != nil {
		conn.Close()
		return nil, err
	}
	n := &Node{
		cfg: cfg, conn: conn, tk: tk, r: r, bfd: s,
		hs:    NewHandshaker(cfg.PSK, cfg.Initiator, randomNonce),
		recv:  make(chan []byte, cfg.RecvQueue),
		tick:  make(chan struct{}, 1),
		props: make(chan proposal),
		epoch: make(chan epochReq),
		stop:  make(chan struct{}),
	}
	if cfg.Initiator {
		n.hs.Hello()
	}
	n.wg.Add(1)
	go n.routineRecv()
	n.wg.Add(1)
	go n.routineTick()
	n.wg.Add(1)
	go n.routineRun()
	return n, nil
}

func randomNonce() Nonce {
	var n Nonce
	_, _ = rand.Read(n[:])
	return n
}

// Stop stops the node and returns why it had stopped by itself, if it had.
func (n *Node) Stop() error {
	select {
	case <-n.stop:
	default:
		close(n.stop)
	}
	n.conn.Close()
	n.tk.Close()
	n.wg.Wait()
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.err
}

// Stats returns the counters as of the last event.
func (n *Node) Stats() NodeStats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stats
}

// Propose hands a round's transaction to the replicator. It returns
// ErrBackpressure when the queue is full (the caller holds the round).
func (n *Node) Propose(latch LatchID, payload []byte) error {
	p := proposal{latch: latch, payload: payload, err: make(chan error, 1)}
	select {
	case n.props <- p:
	case <-n.stop:
		return errors.New("replication node stopped")
	}
	return <-p.err
}

type epochReq struct {
	epoch Epoch
	role  Role
	err   chan error
}

// SetEpoch moves the node to a higher epoch in role (the arbiter's
// decision: MsgEpoch). A primary confirmed in a new epoch keeps its queue
// (committed state whose output is still held) and its standby joins again.
func (n *Node) SetEpoch(e Epoch, role Role) error {
	r := epochReq{epoch: e, role: role, err: make(chan error, 1)}
	select {
	case n.epoch <- r:
	case <-n.stop:
		return errors.New("replication node stopped")
	}
	return <-r.err
}

// routineRecv reads datagrams until Stop closes the socket.
func (n *Node) routineRecv() {
	defer n.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		k, _, err := n.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		d := make([]byte, k)
		copy(d, buf[:k])
		select {
		case n.recv <- d:
		default:
			n.mu.Lock()
			n.stats.RecvDropped++
			n.mu.Unlock()
		}
	}
}

// maxCatchUpTicks bounds the ticks run at once after routineRun fell behind.
const maxCatchUpTicks = 1000

// routineTick forwards ticks until Stop closes the ticker.
func (n *Node) routineTick() {
	defer n.wg.Done()
	for {
		k, err := n.tk.Wait()
		if err != nil {
			return
		}
		n.missed.Add(k)
		select {
		case n.tick <- struct{}{}:
		default: // routineRun is behind; ticks coalesce
		}
	}
}

// routineRun owns the state machines until Stop closes stop.
func (n *Node) routineRun() {
	defer n.wg.Done()
	var err error
	for err == nil {
		select {
		case <-n.stop:
			return
		case d := <-n.recv:
			n.st.Datagrams++
			n.datagram(d)
		case <-n.tick:
			// Every expiration counts (bounded: a stall of a second is not
			// replayed tick by tick; detection has fired by then anyway).
			for k := min(n.missed.Swap(0), maxCatchUpTicks); k > 0; k-- {
				n.onTick()
			}
		case r := <-n.epoch:
			r.err <- n.r.Step(Msg{Type: MsgEpoch, Epoch: r.epoch, Role: r.role})
		case p := <-n.props:
			e := n.r.Step(Msg{Type: MsgPropose, Latch: p.latch, Payload: p.payload})
			p.err <- e
		}
		err = n.process()
		n.publish()
	}
	n.mu.Lock()
	n.err = err
	n.mu.Unlock()
	<-n.stop
}

func (n *Node) publish() {
	n.st.Replicator = n.r.Counters()
	n.st.BFD = n.bfd.Counters()
	n.st.BFDState = n.bfd.State()
	n.st.Role = n.r.Role()
	n.st.Epoch = n.r.Epoch()
	n.st.Joined = n.r.Joined() && (n.cfg.Initiator || n.confirmed == n.st.Sessions)
	n.mu.Lock()
	n.st.RecvDropped = n.stats.RecvDropped
	n.stats = n.st
	n.mu.Unlock()
}

func (n *Node) datagram(d []byte) {
	if len(d) == 0 {
		n.st.StepErrors++
		return
	}
	switch d[0] {
	case kindHello, kindChallenge, kindResponse:
		ok, err := n.hs.Step(d)
		if err != nil {
			n.st.HandshakeErrors++
		}
		if ok {
			n.st.Sessions++
			if n.cfg.Initiator {
				n.r.Reannounce()
			}
		}
		return
	}
	s := n.hs.Session()
	if s == nil {
		n.st.Unauthenticated++
		return
	}
	kind, payload, err := s.Open(d)
	if err != nil {
		n.st.Unauthenticated++
		return
	}
	n.hs.Confirm()
	switch kind {
	case kindFrame:
		n.bfd.Heard()
		before := n.r.Counters()
		if err := n.r.Step(Msg{Type: MsgFrame, Payload: payload}); err != nil {
			n.st.StepErrors++
		}
		if after := n.r.Counters(); after.Joins != before.Joins || after.Acks != before.Acks || after.DupAcks != before.DupAcks {
			n.confirmed = n.st.Sessions
		}
	case kindBFD:
		var p bfd.ControlPacket
		if err := bfd.Decode(payload, &p); err != nil {
			n.st.StepErrors++
			return
		}
		if err := n.bfd.Step(&p, payload); err != nil {
			n.st.StepErrors++
		}
	}
}

func (n *Node) onTick() {
	n.r.Tick()
	n.bfd.Tick()
	if n.ticks++; n.ticks%n.cfg.HandshakeTicks == 0 {
		n.hs.Retry()
	}
}

func (n *Node) send(b []byte) {
	if _, err := n.conn.WriteToUDPAddrPort(b, n.cfg.Peer); err != nil {
		n.st.SendErrors++
	}
}

// process does what the state machines ask: handshake datagrams, then the
// replicator's Ready (frames, applies, release, snapshot), then BFD's.
func (n *Node) process() error {
	for _, d := range n.hs.Out() {
		n.send(d)
	}
	s := n.hs.Session()
	for range 16 {
		if !n.r.HasReady() {
			break
		}
		rd := n.r.Ready()
		if s != nil {
			for _, f := range rd.Frames {
				n.sendBuf = s.Seal(n.sendBuf[:0], kindFrame, f)
				n.send(n.sendBuf)
			}
		}
		failed := false
		for i, a := range rd.Apply {
			// Applied BEFORE Advance: Advance is what acknowledges.
			if err := n.cfg.Apply(a); err != nil {
				// What was applied stands; the rest is dropped and the
				// standby asks again for a snapshot.
				n.st.ApplyErrors++
				if n.cfg.OnApplyError != nil {
					n.cfg.OnApplyError(fmt.Errorf("apply transaction %d: %w", a.TxID, err))
				}
				rd.Apply = rd.Apply[:i]
				failed = true
				break
			}
		}
		if failed {
			if rd.Role != 0 && n.cfg.OnRole != nil {
				n.cfg.OnRole(rd.Role, n.r.Epoch())
			}
			n.r.Advance(rd)
			n.r.Rejoin()
			continue
		}
		if rd.Release != 0 && n.cfg.Release != nil {
			n.cfg.Release(rd.Release)
		}
		if rd.Role != 0 && n.cfg.OnRole != nil {
			n.cfg.OnRole(rd.Role, n.r.Epoch())
		}
		n.r.Advance(rd)
		if rd.NeedSnapshot {
			if err := n.r.Step(Msg{Type: MsgSnapshot, Payload: n.cfg.Snapshot()}); err != nil {
				return fmt.Errorf("snapshot: %w", err)
			}
		}
	}
	brd := n.bfd.Ready()
	if s != nil {
		for _, p := range brd.Packets {
			n.sendBuf = s.Seal(n.sendBuf[:0], kindBFD, p)
			n.send(n.sendBuf)
		}
	}
	for _, c := range brd.Changes {
		if c.From == bfd.Up && n.cfg.Initiator {
			// The responder may have restarted and lost our session.
			n.hs.Hello()
			for _, d := range n.hs.Out() {
				n.send(d)
			}
		}
		if n.cfg.OnBFD != nil {
			n.cfg.OnBFD(c)
		}
	}
	n.bfd.Advance(brd)
	return nil
}
