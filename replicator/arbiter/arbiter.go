package arbiter

// The arbiter's state machine. Per chain:
//
//	phase normal     grant leases to the primary of the current epoch
//	phase yielding   (Switchover) Yield sent; still granting, so the primary can
//	                 release what it holds; Yielded → promote at once; timeout or
//	                 primary down → failover
//	phase failover   (primary declared down) no more grants at this epoch; once
//	                 now ≥ lease bound: epoch+1, promote the standby if it is
//	                 live and READY (joined the primary's replication stream at
//	                 this epoch); else, if the primary is live again, re-promote
//	                 it; else wait for either
//
// The lease bound is the last grant's send time + D + margin: the member counts
// its lease from before it sent the request the grant answers, so on any clock
// that runs at most margin/D slower than ours its lease has ended by then
// (docs/arbiter.md, "Why the lease bound is safe").

import (
	"cmp"
	"errors"
	"fmt"
	"time"
)

// Errors from Step and Switchover. Step counts each in Counters.
var (
	ErrUnknownChain  = errors.New("unknown chain")
	ErrUnknownMember = errors.New("not a member of the chain")
	ErrStaleEpoch    = errors.New("stale epoch")
	ErrNotPrimary    = errors.New("not the chain's primary")
	ErrNotGranting   = errors.New("lease not granted now")
	ErrUnexpected    = errors.New("unexpected message")
	ErrBusy          = errors.New("chain is failing over or switching over")
	ErrNoStandby     = errors.New("standby is not live")
	// ErrStandbyNotReady: the standby has not reported that it joined the
	// primary's replication stream at the current epoch.
	ErrStandbyNotReady = errors.New("standby has not caught up (not ready)")
)

// ChainConfig is one chain the arbiter decides for.
type ChainConfig struct {
	ID   ChainID
	Name string
	// Members are the chain's two member managers.
	Members [2]MemberID
	// Primary is the initial primary, one of Members.
	Primary MemberID
	// Epoch is the initial epoch (>= 1): the arbiter promotes Primary and
	// demotes the other member at this epoch when each is first live.
	Epoch Epoch
}

// Config configures an Arbiter. Zero durations take the defaults.
type Config struct {
	Chains []ChainConfig
	// Lease is D, the duration of each grant.
	Lease time.Duration
	// Margin is added to the lease bound (clock drift, release path).
	Margin time.Duration
	// Retry is the resend interval of unacknowledged Promote, Demote, Yield.
	Retry time.Duration
	// YieldTimeout bounds a switchover's wait for Yielded.
	YieldTimeout time.Duration
	// EpochBase is the least epoch a promotion raises to: the epoch after e
	// is max(e+1, EpochBase). An arbiter keeps no state across restarts,
	// so a new incarnation MUST pass a base above every epoch an earlier one
	// can have raised to, or two incarnations may give the same epoch to
	// different primaries (the Server uses the wall clock's seconds << 20).
	EpochBase Epoch
}

// Phase is where a chain is in the failover protocol.
type Phase uint8

// Phases.
const (
	PhaseNormal Phase = iota + 1
	PhaseYielding
	PhaseFailover
)

func (p Phase) String() string {
	switch p {
	case PhaseNormal:
		return "normal"
	case PhaseYielding:
		return "yielding"
	case PhaseFailover:
		return "failover"
	}
	return fmt.Sprintf("Phase(%d)", uint8(p))
}

// Redirect tells the embedding process to send the chain's traffic to To
// from now on.
type Redirect struct {
	Chain ChainID
	To    MemberID
	Epoch Epoch
}

// EventKind says what an Event reports.
type EventKind uint8

// Event kinds.
const (
	EventPrimaryDown     EventKind = iota + 1 // the primary was declared down: failover starts
	EventStandbyDown                          // the standby was declared down: the chain is unprotected
	EventMemberUp                             // a member was declared up
	EventPromoting                            // epoch raised, Member promoted (Detail: why)
	EventNoStandby                            // failover due but the standby is not live: nothing promoted
	EventPromoteAcked                         // Member acknowledged Promote
	EventDemoteAcked                          // Member acknowledged Demote
	EventYieldStarted                         // Switchover sent Yield
	EventYielded                              // the primary yielded
	EventYieldTimeout                         // no Yielded in time: falling back to the lease wait
	EventAdopted                              // a member reported a higher epoch (arbiter restart): adopted
	EventNoReadyStandby                       // failover due but the standby is not ready at the epoch: nothing promoted
	EventStandbyReady                         // the standby reported it joined the primary at Epoch
	EventStandbyNotReady                      // the standby reported it is not (or no longer) ready at Epoch
	EventStateLost                            // a restarted primary re-promoted with its rebuilt state, no ready standby: state lost
)

func (k EventKind) String() string {
	return [...]string{"?", "primary-down", "standby-down", "member-up", "promoting", "no-standby",
		"promote-acked", "demote-acked", "yield-started", "yielded", "yield-timeout", "adopted",
		"no-ready-standby", "standby-ready", "standby-not-ready", "state-lost"}[min(int(k), 15)]
}

// Event reports a protocol event for logs and stats.
type Event struct {
	Kind   EventKind
	Chain  ChainID
	Epoch  Epoch
	Member MemberID
	// At is the arbiter's now when it happened.
	At     time.Duration
	Detail string
}

// Ready is what the arbiter's caller must do. Fields are valid until Advance.
type Ready struct {
	// Messages to send, in order. Loss, duplication and reordering are
	// tolerated.
	Messages []Envelope
	// Redirects to apply, in order (a later one for a chain wins).
	Redirects []Redirect
	// Events for logs and stats.
	Events []Event
}

// Counters count what an Arbiter did and refused.
type Counters struct {
	Grants, Refused                  uint64 // lease requests granted / refused
	Promotions, Failovers            uint64 // epochs raised; of which after a primary failure
	Returns, StateLost               uint64 // failovers (counted above) that re-promoted the returning primary; of which it had restarted
	Switchovers, YieldTimeouts       uint64 // completed by Yielded; fell back to the lease wait
	PromotesSent, DemotesSent        uint64
	YieldsSent                       uint64
	Stale, Unknown, Unexpected, Dups uint64 // Step errors and duplicate acknowledgements
}

// ChainStatus is a chain's state for stats.
type ChainStatus struct {
	Chain      ChainID
	Epoch      Epoch
	Primary    MemberID
	Phase      Phase
	LeaseBound time.Duration // the primary may hold a lease until then (arbiter clock)
	// Acked: the primary acknowledged its promotion / the standby its
	// demotion at Epoch.
	PrimaryAcked, StandbyAcked bool
	PrimaryLive, StandbyLive   bool
	// StandbyReady: the standby reported that it joined the primary's
	// replication stream at Epoch (and has not been down or restarted since).
	StandbyReady bool
}

type chain struct {
	cfg     ChainConfig
	epoch   Epoch
	primary int // index in cfg.Members
	phase   Phase
	bound   time.Duration // lease bound: last grant + D + margin
	// grantFrom: no grant before it; set when an adopted primary replaces
	// the one we granted to, whose leases run until the bound.
	grantFrom time.Duration
	acked     [2]Epoch         // the epoch each member acknowledged its role at
	inc       [2]uint64        // the newest incarnation of each member heard from
	ackedInc  [2]uint64        // the incarnation whose acknowledgement acked records
	nextSend  [2]time.Duration // when to resend Promote/Demote (0: now)
	// Yielding.
	yieldDeadline time.Duration
	nextYield     time.Duration
	// ready[i]: the epoch member i last reported itself a ready standby at
	// (0: not ready). Ready only while it equals epoch.
	ready [2]Epoch
	// holder is the incarnation of the primary that holds the chain's state
	// at epoch (the ready standby promoted, or the first to acknowledge);
	// 0: unknown. A returning primary of another incarnation rebuilt its
	// state from nothing.
	holder  uint64
	waiting EventKind // the reason reported for not promoting in this failover (0: none yet)
}

func (c *chain) standbyReady(i int) bool { return c.ready[i] != 0 && c.ready[i] == c.epoch }

// Arbiter decides primaries and grants leases. It is not safe for
// concurrent use: the driver's loop calls every method.
type Arbiter struct {
	cfg     Config
	chains  []*chain
	byID    map[ChainID]*chain
	live    map[MemberID]bool
	grantOK time.Duration // no grant before: a previous incarnation's leases may run until then

	msgs      []Envelope
	redirects []Redirect
	events    []Event
	ctr       Counters

	// noLeaseWait breaks the protocol on purpose (promote without waiting
	// out the lease); only the property test's mutation check sets it.
	noLeaseWait bool
	// noReadyCheck breaks it another way (fail over to a standby that is
	// not ready); only the property test's mutation check sets it.
	noReadyCheck bool
	// onPromote, if set, sees every promotion: the epoch and primary it
	// leaves, the member promoted and its incarnation as last heard. For
	// the property test's readiness invariant.
	onPromote func(c ChainID, from Epoch, fromPrimary, to MemberID, toInc uint64)
}

// NewArbiter returns an arbiter starting at now. Until now + Lease + Margin
// it grants nothing: a previous incarnation may have granted leases that run
// until then. Each chain starts at its configured epoch with its configured
// primary, reported as a first Redirect.
func NewArbiter(cfg Config, now time.Duration) (*Arbiter, error) {
	if cfg.Lease == 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.Margin == 0 {
		cfg.Margin = DefaultMargin
	}
	if cfg.Retry == 0 {
		cfg.Retry = DefaultRetry
	}
	if cfg.YieldTimeout == 0 {
		cfg.YieldTimeout = DefaultYieldTimeout
	}
	if cfg.Lease < 0 || cfg.Lease > MaxLease || cfg.Margin < 0 || cfg.Retry < 0 || cfg.YieldTimeout < 0 {
		return nil, fmt.Errorf("arbiter config: lease %v, margin %v, retry %v, yield timeout %v out of range", cfg.Lease, cfg.Margin, cfg.Retry, cfg.YieldTimeout)
	}
	if len(cfg.Chains) == 0 {
		return nil, errors.New("arbiter config: no chains")
	}
	a := &Arbiter{cfg: cfg, byID: map[ChainID]*chain{}, live: map[MemberID]bool{}, grantOK: now + cfg.Lease + cfg.Margin}
	for _, cc := range cfg.Chains {
		if _, dup := a.byID[cc.ID]; dup {
			return nil, fmt.Errorf("arbiter config: chain %d (%s) twice", cc.ID, cc.Name)
		}
		m := cc.Members
		if m[0] == m[1] || m[0] == ArbiterID || m[1] == ArbiterID {
			return nil, fmt.Errorf("arbiter config: chain %s: members %d and %d (distinct, non-zero)", cc.Name, m[0], m[1])
		}
		p := -1
		for i := range m {
			if m[i] == cc.Primary {
				p = i
			}
		}
		if p < 0 {
			return nil, fmt.Errorf("arbiter config: chain %s: primary %d is not a member", cc.Name, cc.Primary)
		}
		if cc.Epoch == 0 {
			return nil, fmt.Errorf("arbiter config: chain %s: epoch 0", cc.Name)
		}
		c := &chain{cfg: cc, epoch: cc.Epoch, primary: p, phase: PhaseNormal, bound: a.grantOK}
		a.chains = append(a.chains, c)
		a.byID[cc.ID] = c
		a.redirects = append(a.redirects, Redirect{Chain: cc.ID, To: cc.Primary, Epoch: c.epoch})
	}
	return a, nil
}

func (a *Arbiter) event(c *chain, k EventKind, m MemberID, now time.Duration, detail string) {
	a.events = append(a.events, Event{Kind: k, Chain: c.cfg.ID, Epoch: c.epoch, Member: m, At: now, Detail: detail})
}

// send queues m for member i of c, addressed to its incarnation as last
// heard.
func (a *Arbiter) send(c *chain, i int, m Msg) {
	m.Inc = c.inc[i]
	a.msgs = append(a.msgs, Envelope{To: c.cfg.Members[i], Msg: m})
}

func (c *chain) member(id MemberID) int {
	for i, m := range c.cfg.Members {
		if m == id {
			return i
		}
	}
	return -1
}

// SetLive records BFD's verdict on a member: up or down. A primary going
// down starts a failover of each chain it is primary of.
func (a *Arbiter) SetLive(now time.Duration, m MemberID, up bool) {
	if a.live[m] == up {
		return
	}
	a.live[m] = up
	for _, c := range a.chains {
		i := c.member(m)
		if i < 0 {
			continue
		}
		if up {
			a.event(c, EventMemberUp, m, now, "")
			c.nextSend[i] = now // tell it its role at once
			continue
		}
		// A member that comes back may be a new incarnation that knows
		// nothing: it is told its role again once it is up, and is a ready
		// standby again only once it says so.
		c.acked[i] = 0
		c.ready[i] = 0
		switch {
		case i == c.primary && c.phase != PhaseFailover:
			a.event(c, EventPrimaryDown, m, now, fmt.Sprintf("lease bound in %v", max(0, c.bound-now)))
			a.startFailover(c)
		case i != c.primary:
			a.event(c, EventStandbyDown, m, now, "")
		}
	}
	a.Tick(now)
}

func (a *Arbiter) startFailover(c *chain) {
	c.phase = PhaseFailover
	c.waiting = 0
}

// Tick lets time pass: promotions due, resends, yield timeouts.
func (a *Arbiter) Tick(now time.Duration) {
	for _, c := range a.chains {
		if c.phase == PhaseYielding && now >= c.yieldDeadline {
			a.ctr.YieldTimeouts++
			a.event(c, EventYieldTimeout, c.cfg.Members[c.primary], now, fmt.Sprintf("lease bound in %v", max(0, c.bound-now)))
			a.startFailover(c)
		}
		if c.phase == PhaseFailover && (now >= c.bound || a.noLeaseWait) {
			a.failover(c, now)
		}
		if c.phase == PhaseYielding && now >= c.nextYield {
			c.nextYield = now + a.cfg.Retry
			a.ctr.YieldsSent++
			a.send(c, c.primary, Msg{Type: MsgYield, Chain: c.cfg.ID, Epoch: c.epoch})
		}
		for i, m := range c.cfg.Members {
			if c.acked[i] < c.epoch && a.live[m] && now >= c.nextSend[i] {
				a.sendRole(c, i, now)
			}
		}
	}
}

// failover decides a chain in failover whose lease bound has passed
// (docs/arbiter.md, "Failover"). Only a live standby that reported it joined
// the primary's replication stream at this epoch holds the state whose
// output was released: promoting any other would release output from a
// state that lacks it. Without one, the primary's own state is the only
// copy: when it is live again it is re-promoted at a new epoch; if it is a
// new incarnation, that state was rebuilt from nothing (both copies are
// gone; EventStateLost), which loses state but releases nothing from a
// state that contradicts output already released by another member.
func (a *Arbiter) failover(c *chain, now time.Duration) {
	p, sb := c.primary, 1-c.primary
	pm, sm := c.cfg.Members[p], c.cfg.Members[sb]
	switch {
	case a.live[sm] && (c.standbyReady(sb) || a.noReadyCheck):
		a.promote(c, sb, now, "failover")
		a.ctr.Failovers++
	case a.live[pm]:
		lost := c.holder != 0 && c.inc[p] != c.holder
		why := "standby is not live"
		if a.live[sm] {
			why = "standby is not ready"
		}
		from, held := c.epoch, c.holder
		a.promote(c, p, now, "primary returned, "+why)
		a.ctr.Failovers++
		a.ctr.Returns++
		if lost {
			a.ctr.StateLost++
			a.event(c, EventStateLost, pm, now, fmt.Sprintf(
				"restarted (incarnation %d; incarnation %d held the state at epoch %d) and the %s: re-promoted with the state its manager rebuilt; the state committed up to epoch %d is lost",
				c.inc[p], held, from, why, from))
		}
	case !a.live[sm]:
		a.wait(c, EventNoStandby, sm, now, "standby not live: nothing promoted")
	default:
		a.wait(c, EventNoReadyStandby, sm, now, fmt.Sprintf(
			"standby not ready at epoch %d, it has not joined the primary's replication stream: nothing promoted until it is or the primary returns", c.epoch))
	}
}

// wait reports once per failover and reason why nothing is promoted.
func (a *Arbiter) wait(c *chain, k EventKind, m MemberID, now time.Duration, detail string) {
	if c.waiting != k {
		c.waiting = k
		a.event(c, k, m, now, detail)
	}
}

func (a *Arbiter) sendRole(c *chain, i int, now time.Duration) {
	c.nextSend[i] = now + a.cfg.Retry
	if i == c.primary {
		if c.phase == PhaseFailover {
			return // it is being replaced: do not confirm it
		}
		a.ctr.PromotesSent++
		a.send(c, i, Msg{Type: MsgPromote, Chain: c.cfg.ID, Epoch: c.epoch})
		return
	}
	a.ctr.DemotesSent++
	a.send(c, i, Msg{Type: MsgDemote, Chain: c.cfg.ID, Epoch: c.epoch, Primary: c.cfg.Members[c.primary]})
}

// promote raises c's epoch and makes member i its primary. Readiness was
// for the epoch left: the new standby (the old primary, or the same one)
// must join the primary at the new epoch and say so again.
func (a *Arbiter) promote(c *chain, i int, now time.Duration, why string) {
	if a.onPromote != nil {
		a.onPromote(c.cfg.ID, c.epoch, c.cfg.Members[c.primary], c.cfg.Members[i], c.inc[i])
	}
	c.epoch = max(c.epoch+1, a.cfg.EpochBase)
	c.primary = i
	c.phase = PhaseNormal
	c.waiting = 0
	c.holder = c.inc[i]
	c.ready = [2]Epoch{}
	c.nextSend = [2]time.Duration{}
	a.ctr.Promotions++
	m := c.cfg.Members[i]
	a.event(c, EventPromoting, m, now, why)
	a.redirects = append(a.redirects, Redirect{Chain: c.cfg.ID, To: m, Epoch: c.epoch})
	// Promote and Demote go out in this Ready (sendRole runs in Tick).
}

// Switchover starts a planned switchover of chain: Yield to the primary;
// on Yielded the standby is promoted without waiting out the lease. It fails
// with ErrBusy while a failover or switchover runs and ErrNoStandby when the
// standby is not live or has not acknowledged its role, and
// ErrStandbyNotReady when it has not reported that it joined the primary's
// replication stream at the current epoch.
func (a *Arbiter) Switchover(now time.Duration, id ChainID) error {
	c := a.byID[id]
	if c == nil {
		return fmt.Errorf("switchover chain %d: %w", id, ErrUnknownChain)
	}
	if c.phase != PhaseNormal {
		return fmt.Errorf("switchover chain %d (%v): %w", id, c.phase, ErrBusy)
	}
	sb := 1 - c.primary
	if !a.live[c.cfg.Members[sb]] || c.acked[sb] < c.epoch {
		return fmt.Errorf("switchover chain %d: member %d: %w", id, c.cfg.Members[sb], ErrNoStandby)
	}
	if !c.standbyReady(sb) {
		return fmt.Errorf("switchover chain %d: member %d at epoch %d: %w", id, c.cfg.Members[sb], c.epoch, ErrStandbyNotReady)
	}
	c.phase = PhaseYielding
	c.yieldDeadline = now + a.cfg.YieldTimeout
	c.nextYield = now
	a.event(c, EventYieldStarted, c.cfg.Members[c.primary], now, "")
	a.Tick(now)
	return nil
}

// Step processes a message from member from. An error means it was
// refused or ignored (and counted); some refusals still produce messages
// (a stale member is told to demote).
func (a *Arbiter) Step(now time.Duration, from MemberID, m Msg) error {
	err := a.step(now, from, m)
	a.Tick(now)
	return err
}

func (a *Arbiter) step(now time.Duration, from MemberID, m Msg) error {
	c := a.byID[m.Chain]
	if c == nil {
		a.ctr.Unknown++
		return fmt.Errorf("%v from %d: chain %d: %w", m.Type, from, m.Chain, ErrUnknownChain)
	}
	i := c.member(from)
	if i < 0 {
		a.ctr.Unknown++
		return fmt.Errorf("%v from %d: chain %d: %w", m.Type, from, m.Chain, ErrUnknownMember)
	}
	if err := a.incarnation(c, i, m, now); err != nil {
		return err
	}
	if m.Type == MsgHello {
		// A member with no role is nobody's ready standby.
		c.ready[i] = 0
		if m.Epoch > c.epoch {
			a.learnEpoch(c, m.Epoch, now)
		}
		// It has no role and evidently hears us: tell it now.
		c.nextSend[i] = now
		if c.acked[i] < c.epoch {
			a.sendRole(c, i, now)
		}
		return nil
	}
	if m.Epoch > c.epoch {
		if err := a.adopt(c, i, m, now); err != nil {
			return err
		}
	}
	if m.Epoch < c.epoch {
		// An old primary (or anyone behind): tell it its role now, live or
		// not, since it evidently hears us; at most once per Retry (a
		// standby's statuses in flight at a promotion are several).
		a.ctr.Stale++
		if c.acked[i] < c.epoch && (i != c.primary || c.phase != PhaseFailover) && now >= c.nextSend[i] {
			a.sendRole(c, i, now)
		}
		return fmt.Errorf("%v from %d: epoch %d, chain %d is at %d: %w", m.Type, from, m.Epoch, m.Chain, c.epoch, ErrStaleEpoch)
	}
	switch m.Type {
	case MsgLeaseRequest:
		return a.grant(c, i, m, now)
	case MsgPromoted:
		if i != c.primary {
			a.ctr.Unexpected++
			return fmt.Errorf("promoted from %d at epoch %d: %w", from, m.Epoch, ErrNotPrimary)
		}
		if c.acked[i] == c.epoch {
			a.ctr.Dups++
			return nil
		}
		c.acked[i], c.ackedInc[i] = c.epoch, m.Inc
		c.holder = cmp.Or(c.holder, m.Inc)
		a.event(c, EventPromoteAcked, from, now, "")
	case MsgDemoted:
		if i == c.primary {
			a.ctr.Unexpected++
			return fmt.Errorf("demoted from the primary %d at epoch %d: %w", from, m.Epoch, ErrUnexpected)
		}
		if c.acked[i] == c.epoch {
			a.ctr.Dups++
			return nil
		}
		c.acked[i], c.ackedInc[i] = c.epoch, m.Inc
		a.event(c, EventDemoteAcked, from, now, "")
	case MsgStandbyStatus:
		if i == c.primary {
			a.ctr.Unexpected++
			return fmt.Errorf("standby status from the primary %d at epoch %d: %w", from, m.Epoch, ErrUnexpected)
		}
		// Only the standby at this epoch says it: it took its Demote.
		if c.acked[i] < c.epoch {
			c.acked[i], c.ackedInc[i] = c.epoch, m.Inc
			a.event(c, EventDemoteAcked, from, now, "by standby status")
		}
		a.setReady(c, i, m.Ready, now)
	case MsgYielded:
		if i != c.primary {
			a.ctr.Unexpected++
			return fmt.Errorf("yielded from %d at epoch %d: %w", from, m.Epoch, ErrNotPrimary)
		}
		// The primary stopped releasing before it sent this, and the
		// member refuses grants from now on: nothing to wait out. A late
		// Yielded after a yield timeout shortens the failover the same way,
		// and one that an earlier incarnation of the arbiter asked for (in
		// phase normal here) still hands the chain over: the member will
		// not release at this epoch again.
		a.ctr.Switchovers++
		a.event(c, EventYielded, from, now, "")
		c.bound = now
		sb := 1 - c.primary
		if a.live[c.cfg.Members[sb]] && c.standbyReady(sb) {
			a.promote(c, sb, now, "switchover")
		} else {
			// The failover rule decides at once (the bound is now): the
			// yielded primary is re-promoted if the standby is not ready.
			a.startFailover(c)
		}
	default:
		a.ctr.Unexpected++
		return fmt.Errorf("%v from member %d: %w", m.Type, from, ErrUnexpected)
	}
	return nil
}

// incarnation checks m's sender incarnation. One older than the newest
// heard is refused. A newer one means the member process restarted and lost
// the chain's state: the role an earlier incarnation acknowledged is void,
// its readiness too, and if it was the primary (or is the promoted member
// that holds the state but had not acknowledged yet) the chain fails over
// (BFD may not have noticed a quick restart).
func (a *Arbiter) incarnation(c *chain, i int, m Msg, now time.Duration) error {
	switch {
	case m.Inc < c.inc[i]:
		a.ctr.Stale++
		return fmt.Errorf("%v from member %d incarnation %d, newest %d: %w", m.Type, c.cfg.Members[i], m.Inc, c.inc[i], ErrStaleIncarnation)
	case m.Inc == c.inc[i]:
		return nil
	}
	c.inc[i] = m.Inc
	c.ready[i] = 0
	lostHolder := i == c.primary && c.holder != 0
	if c.acked[i] != 0 && c.ackedInc[i] != m.Inc || lostHolder {
		c.acked[i] = 0
		c.nextSend[i] = now
		if i == c.primary && c.phase != PhaseFailover {
			a.event(c, EventPrimaryDown, c.cfg.Members[i], now, fmt.Sprintf("restarted; lease bound in %v", max(0, c.bound-now)))
			a.startFailover(c)
		}
	}
	return nil
}

// learnEpoch moves c above epoch e, which a member saw (an earlier
// incarnation of the arbiter issued it) but which tells nothing about who
// holds which role at it: every role is given again above e. The primary
// stays (its leases need no wait), re-promoted at a new epoch; a failover
// in progress promotes above e; a switchover in progress is abandoned.
func (a *Arbiter) learnEpoch(c *chain, e Epoch, now time.Duration) {
	a.event(c, EventAdopted, 0, now, fmt.Sprintf("epoch %d learnt from a fenced member", e))
	c.epoch = e
	c.acked = [2]Epoch{}
	c.ready = [2]Epoch{}
	c.nextSend = [2]time.Duration{}
	if c.phase == PhaseYielding {
		c.phase = PhaseNormal
	}
	if c.phase == PhaseNormal {
		a.promote(c, c.primary, now, "above a learnt epoch")
	}
}

// adoptPrimary makes member i the primary of an adopted epoch. If that
// replaces the member we granted leases to, nobody gets one until those
// have run out.
func (a *Arbiter) adoptPrimary(c *chain, i int) {
	if i != c.primary {
		c.grantFrom = max(c.grantFrom, c.bound)
	}
	c.primary = i
}

// adopt takes a member's higher epoch: only a previous incarnation of the
// arbiter can have issued it (epochs are ours), so the member's claim stands:
// a LeaseRequest or Promoted comes from that epoch's primary, a Demoted or
// Yielded from a member that is not (or no longer) releasing.
func (a *Arbiter) adopt(c *chain, i int, m Msg, now time.Duration) error {
	c.ready = [2]Epoch{}
	switch m.Type {
	case MsgLeaseRequest, MsgPromoted:
		a.adoptPrimary(c, i)
		c.acked[i], c.ackedInc[i] = m.Epoch, m.Inc
		c.holder = m.Inc
	case MsgDemoted, MsgStandbyStatus:
		a.adoptPrimary(c, 1-i)
		c.acked[i], c.ackedInc[i] = m.Epoch, m.Inc
		c.holder = 0
		if m.Type == MsgStandbyStatus && m.Ready {
			c.ready[i] = m.Epoch
		}
	default:
		a.ctr.Unexpected++
		return fmt.Errorf("%v at epoch %d above ours %d: %w", m.Type, m.Epoch, c.epoch, ErrUnexpected)
	}
	c.epoch = m.Epoch
	c.phase = PhaseNormal
	c.waiting = 0
	c.bound = max(c.bound, a.grantOK)
	c.nextSend = [2]time.Duration{}
	a.event(c, EventAdopted, c.cfg.Members[i], now, m.Type.String())
	if !a.live[c.cfg.Members[c.primary]] {
		a.event(c, EventPrimaryDown, c.cfg.Members[c.primary], now, "adopted primary not live")
		a.startFailover(c)
	}
	a.redirects = append(a.redirects, Redirect{Chain: c.cfg.ID, To: c.cfg.Members[c.primary], Epoch: c.epoch})
	return nil
}

func (a *Arbiter) grant(c *chain, i int, m Msg, now time.Duration) error {
	from := c.cfg.Members[i]
	switch {
	case i != c.primary:
		a.ctr.Refused++
		return fmt.Errorf("lease request from %d at epoch %d: %w", from, m.Epoch, ErrNotPrimary)
	case c.phase == PhaseFailover || now < a.grantOK || now < c.grantFrom:
		a.ctr.Refused++
		return fmt.Errorf("lease request from %d at epoch %d (%v): %w", from, m.Epoch, c.phase, ErrNotGranting)
	}
	// Only a member that took its promotion asks for a lease.
	if c.acked[i] < c.epoch {
		c.acked[i], c.ackedInc[i] = c.epoch, m.Inc
		c.holder = cmp.Or(c.holder, m.Inc)
		a.event(c, EventPromoteAcked, from, now, "by lease request")
	}
	// The bound is raised BEFORE the grant leaves (both happen in this
	// Ready, and the bound is in our memory first).
	c.bound = max(c.bound, now+a.cfg.Lease+a.cfg.Margin)
	a.ctr.Grants++
	a.send(c, i, Msg{Type: MsgLeaseGrant, Chain: c.cfg.ID, Epoch: c.epoch, Seq: m.Seq, Lease: a.cfg.Lease})
	return nil
}

// setReady records member i's report that it is (or is not) a ready
// standby at the chain's epoch.
func (a *Arbiter) setReady(c *chain, i int, ready bool, now time.Duration) {
	switch {
	case ready && c.ready[i] != c.epoch:
		c.ready[i] = c.epoch
		a.event(c, EventStandbyReady, c.cfg.Members[i], now, "")
	case !ready && c.ready[i] != 0:
		c.ready[i] = 0
		a.event(c, EventStandbyNotReady, c.cfg.Members[i], now, "")
	}
}

// HasReady reports whether Ready has anything.
func (a *Arbiter) HasReady() bool {
	return len(a.msgs) > 0 || len(a.redirects) > 0 || len(a.events) > 0
}

// Ready returns what to do now. Safety does not depend on when (or
// whether) the messages are sent: a member's lease counts from before its
// request reached us, and the bound from when it did.
func (a *Arbiter) Ready() Ready {
	return Ready{Messages: a.msgs, Redirects: a.redirects, Events: a.events}
}

// Advance confirms rd was done.
func (a *Arbiter) Advance(rd Ready) {
	a.msgs = a.msgs[len(rd.Messages):]
	a.redirects = a.redirects[len(rd.Redirects):]
	a.events = a.events[len(rd.Events):]
	if len(a.msgs) == 0 {
		a.msgs = a.msgs[:0]
	}
	if len(a.redirects) == 0 {
		a.redirects = nil
	}
	if len(a.events) == 0 {
		a.events = nil
	}
}

// Counters returns a copy of the counters.
func (a *Arbiter) Counters() Counters { return a.ctr }

// Status returns each chain's state, in configuration order.
func (a *Arbiter) Status() []ChainStatus {
	out := make([]ChainStatus, len(a.chains))
	for k, c := range a.chains {
		p, s := c.cfg.Members[c.primary], c.cfg.Members[1-c.primary]
		out[k] = ChainStatus{
			Chain: c.cfg.ID, Epoch: c.epoch, Primary: p, Phase: c.phase, LeaseBound: c.bound,
			PrimaryAcked: c.acked[c.primary] == c.epoch, StandbyAcked: c.acked[1-c.primary] == c.epoch,
			PrimaryLive: a.live[p], StandbyLive: a.live[s], StandbyReady: c.standbyReady(1 - c.primary),
		}
	}
	return out
}
