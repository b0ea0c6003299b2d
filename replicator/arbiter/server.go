package arbiter

// Server runs the Arbiter state machine for the arbiter process (the
// ingress manager in the three-role testbed): one UDP socket, one BFD
// session per member, a timerfd ticker, all served by the driver's loop on
// its own thread (driver.go). Per event:
//
//	datagram → message: Codec.Open, BFD Heard, Arbiter.Step
//	         → BFD: the member's session Step (its authentication)
//	tick     → every BFD session's Tick, Arbiter.Tick
//	request  → Arbiter.Switchover
//	then: BFD Ready (packets sent; Up/Down → Arbiter.SetLive), then the
//	Arbiter's Ready (messages sealed and sent, OnRedirect, OnEvent), Advance.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reinforce-nfv/reinforce/replicator/bfd"
)

// ServerMember is one member manager the Server talks to.
type ServerMember struct {
	ID   MemberID
	Name string
	// Addr is where to reach it until it is heard from (optional: the
	// Server answers a member at the address its authenticated datagrams
	// come from).
	Addr netip.AddrPort
}

// ServerConfig configures a Server.
type ServerConfig struct {
	// Listen is the UDP address of the arbiter.
	Listen  netip.AddrPort
	Members []ServerMember
	Chains  []ChainConfig
	// PSK is the pre-shared key (at least MinPSKBytes), the same on every
	// member.
	PSK []byte
	// Profile is the BFD timing (ProfileDefault when zero); its Lease is D
	// unless Lease is set.
	Profile                            Profile
	Lease, Margin, Retry, YieldTimeout time.Duration
	// EpochBase: see Config.EpochBase; 0 takes the wall clock's seconds << 20.
	EpochBase Epoch
	// Tick is the timer period (DefaultTick); SlowTx BFD's interval while
	// not Up (DefaultSlowTx).
	Tick, SlowTx time.Duration
	// RTPriority, when above 0, runs the driver's thread under SCHED_FIFO
	// at this priority (1..99) if the process may; Scheduling says whether
	// it does.
	RTPriority int
	Seed       uint64
	// OnRedirect and OnEvent report the arbiter's decisions; OnBFD each BFD
	// state change of a member's session. All run on the driver's thread:
	// they must not block for long, and MUST NOT call Switchover (it waits
	// for the run goroutine); Stats is fine.
	OnRedirect func(Redirect)
	OnEvent    func(Event)
	OnBFD      func(MemberID, bfd.Change)
	// OnPause reports that the driver's own thread was held off the CPU
	// for d (at least half a detection time): the BFD time it missed was
	// not counted against the members (WireCounters.Pauses).
	OnPause func(d time.Duration)
}

// ServerStats is a snapshot of a Server's state and counters.
type ServerStats struct {
	Arbiter Counters
	Chains  []ChainStatus
	Members []MemberLink
	Wire    WireCounters
}

// MemberLink is the Server's view of one member.
type MemberLink struct {
	ID       MemberID
	Name     string
	Addr     netip.AddrPort
	BFDState bfd.State
	BFD      bfd.Counters
}

type switchReq struct {
	chain ChainID
	err   chan error
}

type serverMember struct {
	cfg    ServerMember
	addr   netip.AddrPort
	sa     unix.Sockaddr // addr for the socket, converted when addr changes
	saAddr netip.AddrPort
	s      *bfd.Session
	// graceUntil, when not 0, is when a member whose session went down by
	// its own signal (it stopped hearing us) is declared down unless the
	// session is Up again.
	graceUntil time.Duration
}

// dest returns the member's socket address (nil while it has none).
func (m *serverMember) dest(e *endpoint) unix.Sockaddr {
	if !m.addr.IsValid() {
		return nil
	}
	if m.sa == nil || m.saAddr != m.addr {
		m.sa, m.saAddr = e.sockaddr(m.addr), m.addr
	}
	return m.sa
}

// Server is a running arbiter. Its methods are safe for concurrent use.
type Server struct {
	ep      *endpoint
	cfg     ServerConfig
	arb     *Arbiter
	codec   *Codec
	members map[MemberID]*serverMember
	order   []*serverMember

	reqMu sync.Mutex
	reqs  []switchReq // guarded by reqMu; the loop takes them on wake

	wire     WireCounters // the loop only
	nTicks   int          // the loop only
	pubTicks int          // nTicks at the last publish (stats every 10 ticks)

	mu    sync.Mutex
	stats ServerStats // guarded by mu
}

// StartServer opens the socket and starts the arbiter.
func StartServer(cfg ServerConfig) (*Server, error) {
	driverDefaults(&cfg.Profile, &cfg.Lease, &cfg.Tick, &cfg.SlowTx)
	if cfg.EpochBase == 0 {
		cfg.EpochBase = Epoch(uint64(time.Now().Unix()) << 20)
	}
	codec, err := NewCodec(ArbiterID, cfg.PSK, wallSeq())
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, codec: codec, members: map[MemberID]*serverMember{}}
	for i, m := range cfg.Members {
		if m.ID == ArbiterID || s.members[m.ID] != nil {
			return nil, fmt.Errorf("arbiter server: member %q: ID %d is 0 or taken", m.Name, m.ID)
		}
		sess, err := newSession(cfg.Profile, cfg.PSK, m.ID, cfg.Tick, cfg.SlowTx, cfg.Seed+uint64(i))
		if err != nil {
			return nil, fmt.Errorf("arbiter server: member %q: %w", m.Name, err)
		}
		sm := &serverMember{cfg: m, addr: m.Addr, s: sess}
		s.members[m.ID] = sm
		s.order = append(s.order, sm)
	}
	for _, c := range cfg.Chains {
		for _, m := range c.Members {
			if s.members[m] == nil {
				return nil, fmt.Errorf("arbiter server: chain %q: member %d not configured", c.Name, m)
			}
		}
	}
	ep, err := openEndpoint(cfg.Listen, netip.AddrPort{}, cfg.Profile, cfg.Tick, cfg.RTPriority)
	if err != nil {
		return nil, err
	}
	s.ep = ep
	s.arb, err = NewArbiter(Config{Chains: cfg.Chains, Lease: cfg.Lease, Margin: cfg.Margin,
		Retry: cfg.Retry, YieldTimeout: cfg.YieldTimeout, EpochBase: cfg.EpochBase}, ep.now())
	if err != nil {
		ep.close()
		return nil, err
	}
	s.publish()
	ep.start(s)
	return s, nil
}

// Addr returns the address the socket is bound to.
func (s *Server) Addr() netip.AddrPort { return s.ep.localAddr() }

// Scheduling reports the driver thread's scheduling ("SCHED_FIFO N", or
// "normal" and why RTPriority was not applied).
func (s *Server) Scheduling() string { return s.ep.Scheduling() }

// MemberName returns the configured name of member id ("" if unknown).
func (s *Server) MemberName(id MemberID) string {
	if m := s.members[id]; m != nil {
		return m.cfg.Name
	}
	return ""
}

// Close stops the server. It is idempotent.
func (s *Server) Close() error { return s.ep.close() }

// Switchover starts a planned switchover of chain (Arbiter.Switchover) and
// returns its error. It waits for the driver's loop: never call it from
// the callbacks, which run on that loop.
func (s *Server) Switchover(chain ChainID) error {
	r := switchReq{chain: chain, err: make(chan error, 1)}
	s.reqMu.Lock()
	s.reqs = append(s.reqs, r)
	s.reqMu.Unlock()
	s.ep.wake()
	select {
	case err := <-r.err:
		return err
	case <-s.ep.done:
		return errors.New("arbiter server stopped")
	}
}

// Stats returns the state and counters as of the last event.
func (s *Server) Stats() ServerStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Chains = append([]ChainStatus(nil), st.Chains...)
	st.Members = append([]MemberLink(nil), st.Members...)
	return st
}

// The loop's handler (driver.go): the only code touching the state
// machines.

func (s *Server) wake() {
	s.reqMu.Lock()
	reqs := s.reqs
	s.reqs = nil
	s.reqMu.Unlock()
	for _, r := range reqs {
		r.err <- s.arb.Switchover(s.ep.now(), r.chain)
	}
}

func (s *Server) ticks(k int) {
	now := s.ep.now()
	if s.ep.pausedFor(k, &s.wire, s.cfg.OnPause) {
		for _, m := range s.order {
			m.s.Paused()
		}
		k = 1
	}
	for ; k > 0; k-- {
		for _, m := range s.order {
			m.s.Tick()
		}
	}
	for _, m := range s.order {
		if m.graceUntil != 0 && now >= m.graceUntil {
			m.graceUntil = 0
			s.arb.SetLive(now, m.cfg.ID, false)
		}
	}
	s.arb.Tick(now)
	s.nTicks++
}

// after processes what the events asked for. Stats are refreshed when the
// arbiter did something, and every 10 ticks for the BFD counters.
func (s *Server) after() {
	if s.process() || s.nTicks-s.pubTicks >= 10 {
		s.pubTicks = s.nTicks
		s.publish()
	}
}

func (s *Server) known(id MemberID) bool { return s.members[id] != nil }

func (s *Server) datagram(b []byte, from netip.AddrPort) {
	s.wire.Datagrams++
	if len(b) == 0 {
		s.wire.Malformed++
		return
	}
	switch b[0] {
	case KindMsg:
		id, m, err := s.codec.Open(b, s.known)
		if err != nil {
			s.wire.classify(err)
			return
		}
		sm := s.members[id]
		sm.addr = from
		sm.s.Heard()
		if err := s.arb.Step(s.ep.now(), id, m); err != nil {
			s.wire.StepErrors++
		}
	case KindBFD:
		if len(b) < bfdHeaderLen {
			s.wire.Malformed++
			return
		}
		sm := s.members[MemberID(binary.BigEndian.Uint32(b[1:]))]
		if sm == nil {
			s.wire.Unknown++
			return
		}
		raw := b[bfdHeaderLen:]
		var p bfd.ControlPacket
		if err := bfd.Decode(raw, &p); err != nil {
			s.wire.Malformed++
			return
		}
		if err := sm.s.Step(&p, raw); err != nil {
			if errors.Is(err, bfd.ErrAuth) {
				s.wire.AuthFailed++
			} else {
				s.wire.StepErrors++
			}
			return
		}
		sm.addr = from // authenticated by BFD
	default:
		s.wire.Malformed++
	}
}

// process does what the state machines ask until they are quiet: BFD first
// (its Up/Down feed the arbiter), then the arbiter's messages and decisions.
// It reports whether the arbiter had anything to do.
func (s *Server) process() (did bool) {
	now := s.ep.now()
	for range 8 {
		for _, m := range s.order {
			rd := m.s.Ready()
			for _, p := range rd.Packets {
				sa := m.dest(s.ep)
				if sa == nil {
					continue
				}
				s.ep.buf = append(bfdHeader(s.ep.buf[:0], ArbiterID), p...)
				if s.ep.send(s.ep.buf, sa) != nil {
					s.wire.SendErrors++
				}
			}
			for _, c := range rd.Changes {
				if s.cfg.OnBFD != nil {
					s.cfg.OnBFD(m.cfg.ID, c)
				}
				switch {
				case c.To == bfd.Up && m.graceUntil != 0:
					m.graceUntil = 0 // back in time: never declared down
				case c.To == bfd.Up:
					s.arb.SetLive(now, m.cfg.ID, true)
				case c.From == bfd.Up && c.Diag == bfd.DiagNeighborDown:
					// The member's own packet says it stopped hearing
					// us: it is alive, and the session comes back in a
					// round trip if the path works. Only if it does not
					// within a detection time (a one-way cut) is the
					// member declared down. Meanwhile its lease, which
					// it cannot renew without hearing us, runs out as
					// usual: this waits, it releases nothing unsafe.
					m.graceUntil = now + s.cfg.Profile.Detect()
					s.wire.NeighborDowns++
				case c.From == bfd.Up:
					s.arb.SetLive(now, m.cfg.ID, false)
				}
			}
			m.s.Advance(rd)
		}
		if !s.arb.HasReady() {
			return did
		}
		did = true
		rd := s.arb.Ready()
		for _, e := range rd.Messages {
			m := s.members[e.To]
			var sa unix.Sockaddr
			if m != nil {
				sa = m.dest(s.ep)
			}
			if sa == nil {
				s.wire.SendErrors++
				continue
			}
			// Sent now, no earlier than the now the grant's bound counts from.
			s.ep.buf = s.codec.Seal(s.ep.buf[:0], e.To, e.Msg)
			if s.ep.send(s.ep.buf, sa) != nil {
				s.wire.SendErrors++
			}
		}
		for _, r := range rd.Redirects {
			if s.cfg.OnRedirect != nil {
				s.cfg.OnRedirect(r)
			}
		}
		for _, ev := range rd.Events {
			if s.cfg.OnEvent != nil {
				s.cfg.OnEvent(ev)
			}
		}
		s.arb.Advance(rd)
	}
	return did
}

func (s *Server) publish() {
	st := ServerStats{Arbiter: s.arb.Counters(), Chains: s.arb.Status(), Wire: s.wire}
	for _, m := range s.order {
		st.Members = append(st.Members, MemberLink{ID: m.cfg.ID, Name: m.cfg.Name, Addr: m.addr, BFDState: m.s.State(), BFD: m.s.Counters()})
	}
	s.mu.Lock()
	s.stats = st
	s.mu.Unlock()
}
