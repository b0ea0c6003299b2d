package bfd

import (
	"errors"
	"fmt"
	"math/rand/v2"
)

// Config configures a Session.
type Config struct {
	// LocalDisc is this session's discriminator: non-zero, unique per
	// system (RFC 5880 §6.8.1), chosen by the caller.
	LocalDisc uint32
	// DesiredMinTxMicros and RequiredMinRxMicros are the intervals once Up.
	DesiredMinTxMicros, RequiredMinRxMicros uint32
	DetectMult                              uint8
	// TickMicros is how long a Tick is: the driver's timer period.
	TickMicros uint32
	// SlowTxMicros is the transmit interval while not Up (§6.8.3 asks for
	// at least one second; tests may lower it).
	SlowTxMicros uint32
	// AuthType is AuthNone, AuthKeyedSHA1 or AuthMeticulousSHA1; Key is the
	// shared secret (1-20 bytes), KeyID its identifier.
	AuthType AuthType
	Key      []byte
	KeyID    uint8
	// Rand supplies the transmit jitter (§6.8.7), seeded by the caller so
	// runs replay.
	Rand *rand.Rand
}

// Change is a session state change.
type Change struct {
	From, To State
	Diag     Diag
}

// Ready is what the caller must do; valid until Advance.
type Ready struct {
	// Packets are encoded control packets to send (UDP payloads), in order.
	Packets [][]byte
	// Changes are the state changes since the last Ready, in order. A
	// change from Up to Down is a failure to act on.
	Changes []Change
}

// Counters count a session's traffic.
type Counters struct {
	Sent, Received, Discarded, AuthFailures, DetectExpired, DataHeard uint64
	// Pauses counts Paused calls: times this system itself was held off the
	// CPU long enough that the ticks it missed were not counted.
	Pauses uint64
}

// Session is one BFD session. It is not safe for concurrent use.
type Session struct {
	cfg Config

	state, remoteState State
	remoteDisc         uint32
	diag               Diag
	remoteMinRx        uint32 // µs; 1 until the peer says (§6.8.1)
	remoteDesiredMinTx uint32 // µs
	remoteDetectMult   uint8
	desiredMinTx       uint32 // µs, what we advertise
	txInterval         uint32 // µs, in effect
	pollActive         bool   // we are sending Poll
	sendFinal          bool   // the next packet answers a Poll
	authSeqKnown       bool
	rcvAuthSeq         uint32
	xmitAuthSeq        uint32

	txTicks     int // ticks until the next periodic packet
	detectTicks int // ticks until detection expires; 0: not armed
	// heard: a valid packet (or data) came since the last Paused, which
	// alone earns the peer a fresh detection time after a pause.
	heard bool

	out     [][]byte
	changes []Change
	ctr     Counters
}

// ErrDiscarded wraps the reasons a received packet is discarded for
// session reasons (RFC 5880 §6.8.6).
var ErrDiscarded = errors.New("bfd packet discarded")

// New returns a session in state Down.
func New(cfg Config) (*Session, error) {
	d := DefaultConfig()
	if cfg.LocalDisc == 0 {
		return nil, errors.New("bfd config: local discriminator 0")
	}
	if cfg.DesiredMinTxMicros == 0 {
		cfg.DesiredMinTxMicros = d.DesiredMinTxMicros
	}
	if cfg.RequiredMinRxMicros == 0 {
		cfg.RequiredMinRxMicros = d.RequiredMinRxMicros
	}
	if cfg.DetectMult == 0 {
		cfg.DetectMult = d.DetectMult
	}
	if cfg.TickMicros == 0 {
		cfg.TickMicros = d.TickMicros
	}
	if cfg.SlowTxMicros == 0 {
		cfg.SlowTxMicros = d.SlowTxMicros
	}
	switch cfg.AuthType {
	case AuthNone:
	case AuthKeyedSHA1, AuthMeticulousSHA1:
		if len(cfg.Key) == 0 || len(cfg.Key) > 20 {
			return nil, fmt.Errorf("bfd config: SHA1 key of %d bytes (1-20)", len(cfg.Key))
		}
	default:
		return nil, fmt.Errorf("bfd config: auth type %d not supported (none, keyed or meticulous keyed SHA1)", cfg.AuthType)
	}
	if cfg.Rand == nil {
		return nil, errors.New("bfd config: no Rand (seed one from the configuration)")
	}
	s := &Session{cfg: cfg, state: Down, remoteMinRx: 1, xmitAuthSeq: cfg.Rand.Uint32()}
	s.desiredMinTx = max(cfg.DesiredMinTxMicros, cfg.SlowTxMicros)
	s.txInterval = s.desiredMinTx
	s.txTicks = 1
	return s, nil
}

// State returns the session state.
func (s *Session) State() State { return s.state }

// Counters returns a copy of the counters.
func (s *Session) Counters() Counters { return s.ctr }

// RemoteDisc returns the peer's discriminator (0 until known).
func (s *Session) RemoteDisc() uint32 { return s.remoteDisc }

// TxIntervalMicros returns the transmit interval in effect.
func (s *Session) TxIntervalMicros() uint32 { return s.txInterval }

// DetectMicros returns the detection time in effect (§6.8.4), 0 before the
// peer was heard.
func (s *Session) DetectMicros() uint32 {
	if s.remoteDetectMult == 0 {
		return 0
	}
	return uint32(s.remoteDetectMult) * max(s.cfg.RequiredMinRxMicros, s.remoteDesiredMinTx)
}

func (s *Session) ticks(us uint32) int {
	return int((us + s.cfg.TickMicros - 1) / s.cfg.TickMicros)
}

// Step processes a received control packet: p as Decode returned it and
// raw, the bytes it was decoded from (authentication covers them). An
// error means the packet was discarded (and counted).
func (s *Session) Step(p *ControlPacket, raw []byte) error {
	if err := s.accept(p, raw); err != nil {
		s.ctr.Discarded++
		return err
	}
	s.ctr.Received++
	s.remoteDisc = p.MyDisc
	s.remoteState = p.State
	s.remoteDesiredMinTx = p.DesiredMinTx
	s.remoteDetectMult = p.DetectMult
	oldMinRx := s.remoteMinRx
	s.remoteMinRx = p.RequiredMinRx
	if p.Final && s.pollActive {
		s.pollActive = false
	}
	s.updateTx()
	if s.remoteMinRx != 0 && oldMinRx == 0 {
		s.txTicks = 1
	}
	if s.state == AdminDown {
		return nil
	}
	s.detectTicks = s.ticks(s.DetectMicros())
	s.heard = true
	switch {
	case p.State == AdminDown:
		if s.state != Down {
			s.transition(Down, DiagNeighborDown)
		}
	case s.state == Down && p.State == Down:
		s.transition(Init, DiagNone)
	case s.state == Down && p.State == Init, s.state == Init && (p.State == Init || p.State == Up):
		s.transition(Up, DiagNone)
	case s.state == Up && p.State == Down:
		s.transition(Down, DiagNeighborDown)
	}
	if p.Poll {
		// §6.8.6: answer with Final "without respect to the transmission
		// timer".
		s.sendFinal = true
		s.send()
	}
	return nil
}

func (s *Session) accept(p *ControlPacket, raw []byte) error {
	if p.Auth != (s.cfg.AuthType != AuthNone) {
		return fmt.Errorf("authentication present=%v, configured %d: %w", p.Auth, s.cfg.AuthType, ErrDiscarded)
	}
	if p.YourDisc != 0 && p.YourDisc != s.cfg.LocalDisc {
		return fmt.Errorf("your discriminator %d, ours %d: %w", p.YourDisc, s.cfg.LocalDisc, ErrDiscarded)
	}
	if s.remoteDisc != 0 && p.MyDisc != s.remoteDisc && s.state != Down {
		return fmt.Errorf("my discriminator %d, peer's %d: %w", p.MyDisc, s.remoteDisc, ErrDiscarded)
	}
	if !p.Auth {
		return nil
	}
	if p.AuthType != s.cfg.AuthType || p.KeyID != s.cfg.KeyID || !Verify(raw, p, s.cfg.Key) {
		s.ctr.AuthFailures++
		return fmt.Errorf("auth type %d key %d: %w", p.AuthType, p.KeyID, ErrAuth)
	}
	// §6.7.4: the sequence number must lie in a window of 3×DetectMult
	// after the last one; meticulous keying excludes the last one itself.
	if s.authSeqKnown {
		lo := s.rcvAuthSeq
		if s.cfg.AuthType == AuthMeticulousSHA1 {
			lo++
		}
		if p.Seq-lo > 3*uint32(s.cfg.DetectMult) {
			s.ctr.AuthFailures++
			return fmt.Errorf("sequence %d, last %d: %w", p.Seq, s.rcvAuthSeq, ErrAuth)
		}
	}
	s.authSeqKnown = true
	s.rcvAuthSeq = p.Seq
	return nil
}

// Heard records data traffic from the peer (an authenticated replication
// frame): while Up it restarts the detection timer, as a control packet
// would (RESILIENCY.md: "data traffic counts as liveness"), so a busy
// replication stream does not depend on heartbeats winning the queue.
func (s *Session) Heard() {
	if s.state == Up {
		s.ctr.DataHeard++
		s.detectTicks = s.ticks(s.DetectMicros())
		s.heard = true
	}
}

// Paused accounts for ticks during which this system itself did not run
// (its thread was held off the CPU: a stalled kernel, a preempted virtual
// CPU). It could receive nothing then, so that time proves nothing about
// the peer: detection restarts a full detection time from now instead of
// counting it (the caller has handed over whatever did arrive, and each
// valid packet restarted detection already), and the next packet goes out
// at the next Tick. Corosync does the same on a "process pause". A peer
// that died during the pause is detected one detection time after it.
// Only a peer heard from since the last pause gets the fresh detection
// time: on a system paused more often than its detection time, a dead peer
// is still declared down (the time of each pause is not counted; the time
// between them is).
func (s *Session) Paused() {
	s.ctr.Pauses++
	if s.detectTicks > 0 && s.heard {
		s.detectTicks = s.ticks(s.DetectMicros())
	}
	s.heard = false
	s.txTicks = min(s.txTicks, 1)
}

// SetAdminDown takes the session administratively down, or brings it back
// to Down (§6.8.16).
func (s *Session) SetAdminDown(down bool) {
	switch {
	case down && s.state != AdminDown:
		s.transition(AdminDown, DiagAdminDown)
		s.detectTicks = 0
		s.send()
	case !down && s.state == AdminDown:
		s.transition(Down, DiagNone)
	}
}

// Tick advances time by one tick: detection, then transmission.
func (s *Session) Tick() {
	if s.detectTicks > 0 {
		if s.detectTicks--; s.detectTicks == 0 {
			s.ctr.DetectExpired++
			if s.state == Init || s.state == Up {
				s.transition(Down, DiagDetectExpired)
			}
			// §6.8.1: bfd.RemoteDiscr and bfd.AuthSeqKnown reset when a
			// detection time passes without a valid packet.
			s.remoteDisc = 0
			s.authSeqKnown = false
		}
	}
	if s.remoteMinRx == 0 && s.state == Up {
		return // §6.8.7: the peer asked us not to send
	}
	if s.txTicks--; s.txTicks <= 0 {
		s.send()
	}
}

func (s *Session) transition(to State, d Diag) {
	s.changes = append(s.changes, Change{From: s.state, To: to, Diag: d})
	s.state = to
	s.diag = d
	want := s.cfg.DesiredMinTxMicros
	if to != Up {
		want = max(want, s.cfg.SlowTxMicros)
	}
	if want != s.desiredMinTx {
		// §6.8.3: a change of our intervals starts a Poll sequence; a
		// faster rate may take effect at once, a slower one after the
		// Final (we apply both at once: the peer's detection time uses
		// the larger of the two until it sees the Poll).
		s.desiredMinTx = want
		s.pollActive = true
		s.updateTx()
	}
	// Tell the peer at the next tick rather than after a whole interval:
	// its failover waits on this packet.
	s.txTicks = 1
}

func (s *Session) updateTx() {
	s.txInterval = max(s.desiredMinTx, s.remoteMinRx)
}

// send builds a control packet now and restarts the periodic timer with
// jitter (§6.8.7: 75-100 % of the interval, at most 90 % with a multiplier
// of 1).
func (s *Session) send() {
	p := ControlPacket{
		Version: version, Diag: s.diag, State: s.state, DetectMult: s.cfg.DetectMult,
		MyDisc: s.cfg.LocalDisc, YourDisc: s.remoteDisc,
		DesiredMinTx: s.desiredMinTx, RequiredMinRx: s.cfg.RequiredMinRxMicros,
		Poll: s.pollActive && !s.sendFinal, Final: s.sendFinal,
	}
	s.sendFinal = false
	if s.cfg.AuthType != AuthNone {
		p.Auth, p.AuthType, p.KeyID = true, s.cfg.AuthType, s.cfg.KeyID
		if s.cfg.AuthType == AuthMeticulousSHA1 || s.state != Up || s.xmitAuthSeq == 0 {
			// §6.7.4: meticulous increments every packet; keyed may, and
			// we do whenever the state is not Up.
			s.xmitAuthSeq++
		}
		p.Seq = s.xmitAuthSeq
	}
	b := Append(make([]byte, 0, p.Size()), &p)
	if p.Auth {
		Sign(b, p.AuthType, s.cfg.Key)
	}
	s.out = append(s.out, b)
	s.ctr.Sent++
	top := 100
	if s.cfg.DetectMult == 1 {
		top = 90
	}
	pct := 75 + s.cfg.Rand.IntN(top-75+1)
	s.txTicks = max(1, s.ticks(uint32(uint64(s.txInterval)*uint64(pct)/100)))
}

// Ready returns what to do now.
func (s *Session) Ready() Ready { return Ready{Packets: s.out, Changes: s.changes} }

// Advance confirms rd was done.
func (s *Session) Advance(rd Ready) {
	s.out = s.out[len(rd.Packets):]
	s.changes = s.changes[len(rd.Changes):]
	if len(s.out) == 0 {
		s.out = nil
	}
	if len(s.changes) == 0 {
		s.changes = nil
	}
}
