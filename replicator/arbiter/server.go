package arbiter

// Server runs the Arbiter state machine for the arbiter process (the
// ingress manager in the three-role testbed): one UDP socket, one BFD
// session per member, a timerfd ticker. Its run goroutine, per event:
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
	"net"
	"net/netip"
	"sync"
	"time"

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
	Seed         uint64
	// OnRedirect and OnEvent report the arbiter's decisions; OnBFD each BFD
	// state change of a member's session. All run on the run goroutine:
	// they must not block for long, and MUST NOT call Switchover (it waits
	// for the run goroutine); Stats is fine.
	OnRedirect func(Redirect)
	OnEvent    func(Event)
	OnBFD      func(MemberID, bfd.Change)
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
	cfg  ServerMember
	addr netip.AddrPort
	s    *bfd.Session
}

// Server is a running arbiter. Its methods are safe for concurrent use.
type Server struct {
	ep      *endpoint
	cfg     ServerConfig
	arb     *Arbiter
	codec   *Codec
	members map[MemberID]*serverMember
	order   []*serverMember
	sw      chan switchReq

	wire WireCounters // run goroutine only

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
	s := &Server{cfg: cfg, codec: codec, members: map[MemberID]*serverMember{}, sw: make(chan switchReq)}
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
	ep, err := openEndpoint(cfg.Listen, cfg.Tick)
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
	ep.start(s.routineRun)
	return s, nil
}

// Addr returns the address the socket is bound to.
func (s *Server) Addr() netip.AddrPort { return s.ep.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

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
// returns its error. It may be called from the callbacks.
func (s *Server) Switchover(chain ChainID) error {
	r := switchReq{chain: chain, err: make(chan error, 1)}
	select {
	case s.sw <- r:
	case <-s.ep.stop:
		return errors.New("arbiter server stopped")
	}
	return <-r.err
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

// routineRun owns the state machines until close closes stop.
func (s *Server) routineRun() {
	ticks := 0
	for {
		select {
		case <-s.ep.stop:
			return
		case d := <-s.ep.recv:
			s.wire.Datagrams++
			s.datagram(d)
		case <-s.ep.tick:
			// What arrived while this goroutine was not running came in
			// time: it is taken before the missed ticks are run.
			for s.ep.drain(func(d datagram) { s.wire.Datagrams++; s.datagram(d) }) {
			}
			now := s.ep.now()
			for k := s.ep.takeTicks(); k > 0; k-- {
				for _, m := range s.order {
					m.s.Tick()
				}
			}
			s.arb.Tick(now)
			ticks++
		case r := <-s.sw:
			r.err <- s.arb.Switchover(s.ep.now(), r.chain)
		}
		// Stats are refreshed when something happened, and every 10 ticks
		// for the BFD counters.
		if s.process() || ticks%10 == 0 {
			s.publish()
		}
	}
}

func (s *Server) known(id MemberID) bool { return s.members[id] != nil }

func (s *Server) datagram(d datagram) {
	if len(d.b) == 0 {
		s.wire.Malformed++
		return
	}
	switch d.b[0] {
	case KindMsg:
		from, m, err := s.codec.Open(d.b, s.known)
		if err != nil {
			s.wire.classify(err)
			return
		}
		sm := s.members[from]
		sm.addr = d.from
		sm.s.Heard()
		if err := s.arb.Step(s.ep.now(), from, m); err != nil {
			s.wire.StepErrors++
		}
	case KindBFD:
		if len(d.b) < bfdHeaderLen {
			s.wire.Malformed++
			return
		}
		sm := s.members[MemberID(binary.BigEndian.Uint32(d.b[1:]))]
		if sm == nil {
			s.wire.Unknown++
			return
		}
		raw := d.b[bfdHeaderLen:]
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
		sm.addr = d.from // authenticated by BFD
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
				if !m.addr.IsValid() {
					continue
				}
				s.ep.buf = append(bfdHeader(s.ep.buf[:0], ArbiterID), p...)
				if s.ep.send(s.ep.buf, m.addr) != nil {
					s.wire.SendErrors++
				}
			}
			for _, c := range rd.Changes {
				if s.cfg.OnBFD != nil {
					s.cfg.OnBFD(m.cfg.ID, c)
				}
				switch {
				case c.To == bfd.Up:
					s.arb.SetLive(now, m.cfg.ID, true)
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
			if m == nil || !m.addr.IsValid() {
				s.wire.SendErrors++
				continue
			}
			// Sent now, no earlier than the now the grant's bound counts from.
			s.ep.buf = s.codec.Seal(s.ep.buf[:0], e.To, e.Msg)
			if s.ep.send(s.ep.buf, m.addr) != nil {
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
	st.Wire.RecvDropped = s.ep.dropped.Load()
	for _, m := range s.order {
		st.Members = append(st.Members, MemberLink{ID: m.cfg.ID, Name: m.cfg.Name, Addr: m.addr, BFDState: m.s.State(), BFD: m.s.Counters()})
	}
	s.mu.Lock()
	s.stats = st
	s.mu.Unlock()
}
