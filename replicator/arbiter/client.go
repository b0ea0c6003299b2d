package arbiter

// Client runs the Member state machine inside a member manager: one UDP
// socket to the arbiter, one BFD session with it, a timerfd ticker, all
// served by the driver's loop on its own thread (driver.go). Per event:
//
//	datagram → message from the arbiter: Codec.Open, BFD Heard, Member.Step
//	         → BFD: the session's Step
//	tick     → BFD Tick, Member.Tick
//	wake     → the manager's Yielded, ObserveEpoch and SetStandbyReady
//	           calls, in order
//	then: Member's Ready: each chain's Gate published FIRST (a fence or
//	demotion takes effect before anything else happens), messages sealed
//	and sent, the actions' callbacks (OnPromote, OnDemote, OnYield, OnFence);
//	then BFD's Ready.
//
// Gate is the lock-free side: the manager's output path calls
// Gate.Allowed (or Client.CanRelease) from any goroutine.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reinforce-nfv/reinforce/replicator/bfd"
)

// Gate is the fencing check of one chain's output path: Allowed reports
// whether this member may release the chain's output now. It is safe for
// any number of goroutines, does not allocate, and costs a few atomic loads
// and a monotonic clock read.
type Gate struct {
	base   time.Time     // the Client's clock origin
	epoch  atomic.Uint64 // the member's epoch for the chain
	seen   atomic.Uint64 // the highest epoch the manager reported (ObserveEpoch)
	until  atomic.Int64  // ns since base; 0: may not release
	closed atomic.Bool   // the Client stopped: never again
}

// Allowed reports whether the chain's output may be released now: this
// member is its primary at the current epoch, has not yielded, and holds
// an unexpired lease; and the manager has seen no higher epoch.
func (g *Gate) Allowed() bool {
	u := g.until.Load()
	if u == 0 || g.seen.Load() > g.epoch.Load() || g.closed.Load() {
		return false
	}
	return int64(time.Since(g.base)) < u
}

// Expiry returns when the last lease granted for the chain ends (zero Time
// if none is held), for stats and tests.
func (g *Gate) Expiry() time.Time {
	u := g.until.Load()
	if u == 0 {
		return time.Time{}
	}
	return g.base.Add(time.Duration(u))
}

// set publishes the member's verdict. A fence (until 0) is stored first, so
// a reader never sees a new epoch with an old lease.
func (g *Gate) set(e Epoch, until time.Duration) {
	if until <= 0 {
		g.until.Store(0)
		g.epoch.Store(uint64(e))
		return
	}
	if g.epoch.Load() != uint64(e) {
		g.until.Store(0)
		g.epoch.Store(uint64(e))
	}
	g.until.Store(int64(until))
}

func (g *Gate) observe(e Epoch) {
	for {
		old := g.seen.Load()
		if uint64(e) <= old || g.seen.CompareAndSwap(old, uint64(e)) {
			return
		}
	}
}

// ClientConfig configures a Client.
type ClientConfig struct {
	// Local is the UDP address to bind (zero: any address, any port).
	Local netip.AddrPort
	// Arbiter is the arbiter's UDP address.
	Arbiter netip.AddrPort
	// ID is this member's ID (NameID of its name).
	ID MemberID
	// Chains are the chains this member serves.
	Chains []ChainID
	PSK    []byte
	// Profile is the BFD timing (ProfileDefault when zero); its Lease caps
	// grants and sets the renewal interval unless Lease is set.
	Profile Profile
	Lease   time.Duration
	// Tick is the timer period (DefaultTick); SlowTx BFD's interval while
	// not Up (DefaultSlowTx).
	Tick, SlowTx time.Duration
	// RTPriority, when above 0, runs the driver's thread under SCHED_FIFO
	// at this priority (1..99) if the process may; Scheduling says whether
	// it does.
	RTPriority int
	Seed       uint64
	// The manager's actions (Member's ActionKind). They run on the driver's
	// thread, AFTER the chain's Gate reflects the change: they must not
	// block for long; they may call Yielded, ObserveEpoch, CanRelease and
	// Stats.
	OnPromote func(chain ChainID, epoch Epoch)
	OnDemote  func(chain ChainID, epoch Epoch, primary MemberID)
	OnYield   func(chain ChainID)
	OnFence   func(chain ChainID, epoch Epoch)
	OnBFD     func(bfd.Change)
	// OnPause reports that the driver's own thread was held off the CPU
	// for d (at least half a detection time): the arbiter may have
	// declared this member down meanwhile (WireCounters.Pauses).
	OnPause func(d time.Duration)
}

// ClientStats is a snapshot of a Client's state and counters.
type ClientStats struct {
	Member   MemberCounters
	BFDState bfd.State
	BFD      bfd.Counters
	Wire     WireCounters
	Chains   []ClientChain
}

// ClientChain is one chain's state at the member.
type ClientChain struct {
	Chain ChainID
	Role  Role
	Epoch Epoch
	// LeaseLeft is how long the lease still runs (0: none).
	LeaseLeft time.Duration
	// StandbyReady: this member tells the arbiter it is a ready standby at
	// Epoch (the manager's SetStandbyReady for Epoch, while standby).
	StandbyReady bool
}

type clientReqKind uint8

const (
	reqObserve clientReqKind = iota
	reqYielded
	reqReady
)

type clientReq struct {
	kind  clientReqKind
	chain ChainID
	epoch Epoch
	ready bool
}

// Client is a running member. Its methods are safe for concurrent use.
type Client struct {
	ep    *endpoint
	cfg   ClientConfig
	m     *Member
	s     *bfd.Session
	codec *Codec
	gates map[ChainID]*Gate // read-only after start
	arbSA unix.Sockaddr     // the arbiter's address for the socket

	reqMu sync.Mutex
	reqs  []clientReq // guarded by reqMu
	taken []clientReq // the loop's: reqs swapped out

	wire      WireCounters // the loop only
	nTicks    int          // the loop only
	pubTicks  int          // nTicks at the last publish (stats every 10 ticks)
	requested bool         // the last wake handled the manager's requests

	mu    sync.Mutex
	stats ClientStats // guarded by mu
}

// StartClient opens the socket and starts the member. Every chain starts as
// a standby at epoch 0: nothing is released until the arbiter promotes this
// member and grants it a lease.
func StartClient(cfg ClientConfig) (*Client, error) {
	driverDefaults(&cfg.Profile, &cfg.Lease, &cfg.Tick, &cfg.SlowTx)
	if !cfg.Arbiter.IsValid() {
		return nil, errors.New("arbiter client: no arbiter address")
	}
	codec, err := NewCodec(cfg.ID, cfg.PSK, wallSeq())
	if err != nil {
		return nil, err
	}
	m, err := NewMember(MemberConfig{ID: cfg.ID, Chains: cfg.Chains, Lease: cfg.Lease, FirstSeq: wallSeq()})
	if err != nil {
		return nil, err
	}
	sess, err := newSession(cfg.Profile, cfg.PSK, cfg.ID, cfg.Tick, cfg.SlowTx, cfg.Seed)
	if err != nil {
		return nil, fmt.Errorf("arbiter client: %w", err)
	}
	ep, err := openEndpoint(cfg.Local, cfg.Arbiter, cfg.Profile, cfg.Tick, cfg.RTPriority)
	if err != nil {
		return nil, err
	}
	c := &Client{ep: ep, cfg: cfg, m: m, s: sess, codec: codec, gates: map[ChainID]*Gate{}, arbSA: ep.sockaddr(cfg.Arbiter)}
	for _, id := range cfg.Chains {
		c.gates[id] = &Gate{base: ep.base}
	}
	c.publish()
	ep.start(c)
	return c, nil
}

// Addr returns the address the socket is bound to.
func (c *Client) Addr() netip.AddrPort { return c.ep.localAddr() }

// Scheduling reports the driver thread's scheduling ("SCHED_FIFO N", or
// "normal" and why RTPriority was not applied).
func (c *Client) Scheduling() string { return c.ep.Scheduling() }

// Close stops the client and closes every gate for good (a stopped client
// renews no lease, and its manager should release nothing). It is
// idempotent.
func (c *Client) Close() error {
	err := c.ep.close()
	for _, g := range c.gates {
		g.closed.Store(true)
	}
	return err
}

// Gate returns the chain's gate (nil for a chain not configured); cache it
// in the output path.
func (c *Client) Gate(chain ChainID) *Gate { return c.gates[chain] }

// CanRelease reports whether this member may release chain's output now
// (Gate.Allowed; false for an unknown chain). Allocation-free, safe for any
// goroutine.
func (c *Client) CanRelease(chain ChainID) bool {
	g := c.gates[chain]
	return g != nil && g.Allowed()
}

// Yielded is the manager's answer to OnYield: it stopped admitting the
// chain's traffic and released all its held output. It does not block, and
// may be called from OnYield itself.
func (c *Client) Yielded(chain ChainID) error {
	if c.gates[chain] == nil {
		return fmt.Errorf("yielded chain %d: %w", chain, ErrUnknownChain)
	}
	c.request(clientReq{kind: reqYielded, chain: chain})
	return nil
}

// ObserveEpoch reports an epoch the manager saw for chain (in a replication
// frame): above this member's, the chain's gate closes before ObserveEpoch
// returns, and the member fences the chain. It does not block.
func (c *Client) ObserveEpoch(chain ChainID, e Epoch) {
	g := c.gates[chain]
	if g == nil {
		return
	}
	g.observe(e)
	c.request(clientReq{kind: reqObserve, chain: chain, epoch: e})
}

// SetStandbyReady reports the manager's replication status for chain: ready
// means it installed a snapshot from the chain's primary at epoch e and
// follows its stream (a ready standby: the arbiter may fail over to it);
// not ready, that it has not, or no longer does. Call it whenever that
// changes (a repeated report is harmless). It counts only while this member
// is the chain's standby at e; a report for an epoch above the member's
// waits for the arbiter's Demote at it. It does not block and is safe from
// any goroutine, the callbacks included; an unknown chain is ignored.
func (c *Client) SetStandbyReady(chain ChainID, e Epoch, ready bool) {
	if c.gates[chain] == nil {
		return
	}
	c.request(clientReq{kind: reqReady, chain: chain, epoch: e, ready: ready})
}

func (c *Client) request(r clientReq) {
	c.reqMu.Lock()
	c.reqs = append(c.reqs, r)
	c.reqMu.Unlock()
	c.ep.wake()
}

// Stats returns the state and counters as of the last event.
func (c *Client) Stats() ClientStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.stats
	st.Chains = append([]ClientChain(nil), st.Chains...)
	return st
}

// The loop's handler (driver.go): the only code touching the state
// machines.

func (c *Client) wake() {
	c.reqMu.Lock()
	c.taken, c.reqs = c.reqs, c.taken[:0]
	c.reqMu.Unlock()
	c.requested = len(c.taken) > 0
	for _, r := range c.taken {
		var err error
		switch r.kind {
		case reqYielded:
			err = c.m.Yielded(r.chain)
		case reqReady:
			err = c.m.SetStandbyReady(r.chain, r.epoch, r.ready)
		default:
			err = c.m.ObserveEpoch(r.chain, r.epoch)
		}
		if err != nil {
			c.wire.StepErrors++
		}
	}
}

func (c *Client) ticks(k int) {
	if c.ep.pausedFor(k, &c.wire, c.cfg.OnPause) {
		c.s.Paused()
		k = 1
	}
	for ; k > 0; k-- {
		c.s.Tick()
	}
	c.m.Tick(c.ep.now())
	c.nTicks++
}

// after processes what the events asked for. Stats are refreshed when the
// member did something, and every 10 ticks for the BFD counters.
func (c *Client) after() {
	// The manager's own reports show in the stats at once.
	if c.process() || c.requested || c.nTicks-c.pubTicks >= 10 {
		c.pubTicks, c.requested = c.nTicks, false
		c.publish()
	}
}

func isArbiter(id MemberID) bool { return id == ArbiterID }

func (c *Client) datagram(b []byte, _ netip.AddrPort) {
	c.wire.Datagrams++
	if len(b) == 0 {
		c.wire.Malformed++
		return
	}
	switch b[0] {
	case KindMsg:
		_, m, err := c.codec.Open(b, isArbiter)
		if err != nil {
			c.wire.classify(err)
			return
		}
		c.s.Heard()
		if err := c.m.Step(c.ep.now(), m); err != nil {
			c.wire.StepErrors++
		}
	case KindBFD:
		if len(b) < bfdHeaderLen {
			c.wire.Malformed++
			return
		}
		if MemberID(binary.BigEndian.Uint32(b[1:])) != ArbiterID {
			c.wire.Unknown++
			return
		}
		raw := b[bfdHeaderLen:]
		var p bfd.ControlPacket
		if err := bfd.Decode(raw, &p); err != nil {
			c.wire.Malformed++
			return
		}
		if err := c.s.Step(&p, raw); err != nil {
			if errors.Is(err, bfd.ErrAuth) {
				c.wire.AuthFailed++
			} else {
				c.wire.StepErrors++
			}
		}
	default:
		c.wire.Malformed++
	}
}

// process does what the state machines ask and reports whether the member
// had anything to do.
func (c *Client) process() (did bool) {
	// Gates first: a fence, demotion or yield closes the gate before the
	// arbiter or the manager is told; a promotion opens it only with a
	// lease; a grant (which makes no Ready) extends it.
	for id, g := range c.gates {
		g.set(c.m.ReleaseUntil(id))
	}
	if c.m.HasReady() {
		did = true
		rd := c.m.Ready()
		for _, msg := range rd.Messages {
			c.ep.buf = c.codec.Seal(c.ep.buf[:0], ArbiterID, msg)
			if c.ep.send(c.ep.buf, c.arbSA) != nil {
				c.wire.SendErrors++
			}
		}
		for _, a := range rd.Actions {
			switch a.Kind {
			case ActPromote:
				if c.cfg.OnPromote != nil {
					c.cfg.OnPromote(a.Chain, a.Epoch)
				}
			case ActDemote:
				if c.cfg.OnDemote != nil {
					c.cfg.OnDemote(a.Chain, a.Epoch, a.Primary)
				}
			case ActYield:
				if c.cfg.OnYield != nil {
					c.cfg.OnYield(a.Chain)
				}
			case ActFence:
				if c.cfg.OnFence != nil {
					c.cfg.OnFence(a.Chain, a.Epoch)
				}
			}
		}
		c.m.Advance(rd)
	}
	brd := c.s.Ready()
	for _, p := range brd.Packets {
		c.ep.buf = append(bfdHeader(c.ep.buf[:0], c.cfg.ID), p...)
		if c.ep.send(c.ep.buf, c.arbSA) != nil {
			c.wire.SendErrors++
		}
	}
	for _, ch := range brd.Changes {
		if c.cfg.OnBFD != nil {
			c.cfg.OnBFD(ch)
		}
	}
	c.s.Advance(brd)
	return did
}

func (c *Client) publish() {
	now := c.ep.now()
	st := ClientStats{Member: c.m.Counters(), BFDState: c.s.State(), BFD: c.s.Counters(), Wire: c.wire}
	for _, id := range c.cfg.Chains {
		r, e := c.m.Role(id)
		_, until := c.m.ReleaseUntil(id)
		st.Chains = append(st.Chains, ClientChain{Chain: id, Role: r, Epoch: e, LeaseLeft: max(0, until-now), StandbyReady: c.m.StandbyReady(id)})
	}
	c.mu.Lock()
	c.stats = st
	c.mu.Unlock()
}
