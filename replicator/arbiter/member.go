package arbiter

// The member's state machine: a manager's side of the protocol, per chain.
//
//	standby  (epoch 0 at start: nothing assigned yet) releases nothing
//	primary  asks for a lease every D/4 while primary; releases while the
//	         lease it was granted lasts, counted from when it SENT the request
//	fenced   saw a higher epoch than its own (or yielded): releases nothing
//	         until the arbiter says Promote or Demote at that epoch or later
//
// A chain with no role from the arbiter (none yet in this incarnation, or
// fenced) says Hello every D/4; an assigned standby says StandbyStatus every
// D/4 and at once when it changes: ready when the manager reported
// (SetStandbyReady) that it joined the primary's replication stream at the
// standby's epoch. Messages for another incarnation of this process are
// ignored. CanRelease is the fencing check of the manager's output path.

import (
	"errors"
	"fmt"
	"time"

	"github.com/reinforce-nfv/reinforce/replicator"
)

// Role is a member's role for a chain: the replicator's roles
// (RoleStandby, RolePrimary, RoleFenced), so the manager can pass it on.
type Role = replicator.Role

// Errors from Member.Step and Member.Yielded.
var (
	ErrConflict  = errors.New("conflicts with the role at this epoch")
	ErrNotAsked  = errors.New("not yielding")
	ErrUnknownSq = errors.New("grant for a lease request not outstanding")
	// ErrStaleIncarnation: a message for (or from) an earlier incarnation
	// of a member process.
	ErrStaleIncarnation = errors.New("earlier incarnation")
)

// ActionKind says what the manager must do.
type ActionKind uint8

// Actions (docs/arbiter.md, "What the manager does").
const (
	// ActPromote: become the chain's primary at Epoch (the replicator's
	// MsgEpoch with RolePrimary); release only while CanRelease.
	ActPromote ActionKind = iota + 1
	// ActDemote: become the chain's standby at Epoch: discard the chain's
	// state and rejoin the new primary (Primary) with a snapshot.
	ActDemote
	// ActYield: stop admitting the chain's traffic, let the held output be
	// released, then call Yielded.
	ActYield
	// ActFence: a higher epoch exists (Epoch); CanRelease is already false.
	// Stop acting as the chain's primary; the arbiter will say more.
	ActFence
)

func (k ActionKind) String() string {
	return [...]string{"?", "promote", "demote", "yield", "fence"}[min(int(k), 4)]
}

// Action is something the manager must do for a chain.
type Action struct {
	Kind    ActionKind
	Chain   ChainID
	Epoch   Epoch
	Primary MemberID // ActDemote: the new primary
}

// MemberReady is what the member's caller must do. Fields are valid until
// Advance.
type MemberReady struct {
	// Messages to send to the arbiter, in order. A LeaseRequest MUST NOT be
	// sent before the now of the call that produced it (the lease counts
	// from then; sending later is safe).
	Messages []Msg
	// Actions for the manager, in order.
	Actions []Action
}

// MemberConfig configures a Member.
type MemberConfig struct {
	ID     MemberID
	Chains []ChainID
	// Lease caps every grant (the arbiter's D should be the same), and sets
	// the renewal interval Lease/4. Default DefaultLease.
	Lease time.Duration
	// FirstSeq is this process's incarnation (Msg.Inc) and its first lease
	// request number: above any an earlier incarnation used (the drivers
	// use the wall clock in ns).
	FirstSeq uint64
}

// MemberCounters count what a Member did and refused.
type MemberCounters struct {
	Requests, Grants, LateGrants uint64 // lease requests sent; grants taken; grants for forgotten requests
	Statuses                     uint64 // StandbyStatus messages sent
	Promotions, Demotions        uint64
	Yields, Fences               uint64
	Stale, Refused               uint64 // Step errors: stale epoch; conflicting or unexpected
}

type request struct {
	seq uint64
	at  time.Duration
}

type mchain struct {
	id       ChainID
	epoch    Epoch
	role     Role
	yielding bool // ActYield given, Yielded not called yet
	yielded  bool // gave the chain up at epoch (role fenced)
	assigned bool // the arbiter gave this incarnation a role (else it says Hello)
	until    time.Duration
	nextReq  time.Duration
	// The manager's last SetStandbyReady: ready at readyEpoch. Kept across
	// role changes: the manager may join a new primary at epoch e (and say
	// so) before this member hears its Demote at e.
	readyEpoch Epoch
	ready      bool
	// sentReady, sentEpoch: the last StandbyStatus sent.
	sentReady bool
	sentEpoch Epoch
	reqs      [requestMemory]request
	nreq      int // requests sent at this epoch (index into reqs mod requestMemory)
}

// Member is a manager's side of the arbiter protocol. It is not safe for
// concurrent use: the driver's loop calls every method (the driver
// publishes CanRelease for other goroutines through Gate).
type Member struct {
	cfg     MemberConfig
	inc     uint64 // this incarnation: FirstSeq
	renew   time.Duration
	chains  []*mchain
	byID    map[ChainID]*mchain
	seq     uint64
	msgs    []Msg
	actions []Action
	ctr     MemberCounters
}

// NewMember returns a member in which every chain is a standby at epoch 0:
// it releases nothing until the arbiter promotes it and grants a lease.
func NewMember(cfg MemberConfig) (*Member, error) {
	if cfg.Lease == 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.Lease < 0 || cfg.Lease > MaxLease {
		return nil, fmt.Errorf("arbiter member config: lease %v out of range", cfg.Lease)
	}
	if cfg.ID == ArbiterID {
		return nil, errors.New("arbiter member config: member ID 0 is the arbiter's")
	}
	inc := max(cfg.FirstSeq, 1)
	m := &Member{cfg: cfg, inc: inc, renew: cfg.Lease / renewDivisor, byID: map[ChainID]*mchain{}, seq: inc - 1}
	for _, id := range cfg.Chains {
		if m.byID[id] != nil {
			return nil, fmt.Errorf("arbiter member config: chain %d twice", id)
		}
		c := &mchain{id: id, role: replicator.RoleStandby}
		m.chains = append(m.chains, c)
		m.byID[id] = c
	}
	return m, nil
}

func (m *Member) chain(id ChainID) (*mchain, error) {
	c := m.byID[id]
	if c == nil {
		return nil, fmt.Errorf("chain %d: %w", id, ErrUnknownChain)
	}
	return c, nil
}

func (m *Member) act(k ActionKind, c *mchain, primary MemberID) {
	m.actions = append(m.actions, Action{Kind: k, Chain: c.id, Epoch: c.epoch, Primary: primary})
}

// enter puts c in role at epoch e, with no lease.
func (c *mchain) enter(e Epoch, role Role) {
	c.epoch, c.role = e, role
	c.yielding, c.yielded = false, false
	c.until = 0
	c.nreq = 0
}

// fence makes c release nothing from now on: a higher epoch e exists.
func (m *Member) fence(c *mchain, e Epoch) {
	c.enter(e, replicator.RoleFenced)
	m.ctr.Fences++
	m.act(ActFence, c, 0)
}

// standbyReady reports whether c is a ready standby: the arbiter made it
// the standby at its epoch and the manager joined the primary's
// replication stream at that epoch.
func (c *mchain) standbyReady() bool {
	return c.assigned && c.role == replicator.RoleStandby && c.ready && c.readyEpoch == c.epoch
}

// status queues c's StandbyStatus.
func (m *Member) status(c *mchain) {
	c.sentReady, c.sentEpoch = c.standbyReady(), c.epoch
	m.ctr.Statuses++
	m.msgs = append(m.msgs, Msg{Type: MsgStandbyStatus, Chain: c.id, Epoch: c.epoch, Ready: c.sentReady, Inc: m.inc})
}

// SetStandbyReady records the manager's replication status for a chain: ready
// means it installed a snapshot from the primary at epoch e and follows its
// stream; not ready, that it has not or no longer does. It counts only while
// this member is the chain's standby at e: a report for a later epoch (the
// manager joined the new primary before this member heard its Demote) counts
// once the Demote at e arrives. The latest report replaces the earlier ones.
// A change is sent to the arbiter at once; repeating a report sends nothing.
func (m *Member) SetStandbyReady(id ChainID, e Epoch, ready bool) error {
	c, err := m.chain(id)
	if err != nil {
		return err
	}
	c.readyEpoch, c.ready = e, ready
	if c.assigned && c.role == replicator.RoleStandby && (c.standbyReady() != c.sentReady || c.epoch != c.sentEpoch) {
		m.status(c)
	}
	return nil
}

// StandbyReady reports whether the member tells the arbiter it is a ready
// standby for the chain.
func (m *Member) StandbyReady(id ChainID) bool {
	c := m.byID[id]
	return c != nil && c.standbyReady()
}

// ObserveEpoch reports that the manager saw epoch e for chain (in a
// replication frame, say). Above the member's own epoch it fences the chain
// at once.
func (m *Member) ObserveEpoch(id ChainID, e Epoch) error {
	c, err := m.chain(id)
	if err != nil {
		return err
	}
	if e > c.epoch {
		m.fence(c, e)
	}
	return nil
}

// Step processes a message from the arbiter (the driver has authenticated
// it). An error means it was ignored (and counted); duplicates of Promote,
// Demote and Yield are answered again, as their acknowledgement may have
// been lost.
func (m *Member) Step(now time.Duration, msg Msg) error {
	c, err := m.chain(msg.Chain)
	if err != nil {
		m.ctr.Refused++
		return err
	}
	if msg.Inc != 0 && msg.Inc != m.inc {
		// Sent to an earlier incarnation of this member (still in flight
		// when it restarted): its Promote, grant or Yield is not ours.
		m.ctr.Stale++
		return fmt.Errorf("%v for incarnation %d, we are %d: %w", msg.Type, msg.Inc, m.inc, ErrStaleIncarnation)
	}
	if msg.Epoch < c.epoch {
		m.ctr.Stale++
		// An arbiter behind us (restarted) learns our epoch and role from
		// the answer, and adopts them.
		switch {
		case msg.Type != MsgPromote && msg.Type != MsgDemote:
		case c.role == replicator.RolePrimary:
			m.msgs = append(m.msgs, Msg{Type: MsgPromoted, Chain: c.id, Epoch: c.epoch, Inc: m.inc})
		case c.role == replicator.RoleStandby:
			m.msgs = append(m.msgs, Msg{Type: MsgDemoted, Chain: c.id, Epoch: c.epoch, Inc: m.inc})
		default:
			m.msgs = append(m.msgs, Msg{Type: MsgHello, Chain: c.id, Epoch: c.epoch, Inc: m.inc})
		}
		return fmt.Errorf("%v at epoch %d, chain %d is at %d: %w", msg.Type, msg.Epoch, c.id, c.epoch, ErrStaleEpoch)
	}
	switch msg.Type {
	case MsgPromote:
		switch {
		case msg.Epoch > c.epoch || c.role == replicator.RoleFenced && !c.yielded:
			c.enter(msg.Epoch, replicator.RolePrimary)
			c.assigned = true
			m.ctr.Promotions++
			m.act(ActPromote, c, 0)
			c.nextReq = now // ask for a lease in this Ready
			m.Tick(now)
		case c.role == replicator.RoleStandby:
			m.ctr.Refused++
			return fmt.Errorf("promote chain %d at epoch %d, a standby at it: %w", c.id, msg.Epoch, ErrConflict)
		}
		if c.yielded {
			// It gave the chain up at this epoch (an arbiter that restarted
			// since may not know): say so again rather than acknowledge.
			m.msgs = append(m.msgs, Msg{Type: MsgYielded, Chain: c.id, Epoch: c.epoch, Inc: m.inc})
			break
		}
		// Primary at this epoch: acknowledge (again).
		m.msgs = append(m.msgs, Msg{Type: MsgPromoted, Chain: c.id, Epoch: c.epoch, Inc: m.inc})
	case MsgDemote:
		if msg.Epoch > c.epoch || c.role != replicator.RoleStandby {
			c.enter(msg.Epoch, replicator.RoleStandby)
			c.assigned = true
			m.ctr.Demotions++
			m.act(ActDemote, c, msg.Primary)
			c.nextReq = now // StandbyStatus at the next Tick
		}
		m.msgs = append(m.msgs, Msg{Type: MsgDemoted, Chain: c.id, Epoch: c.epoch, Inc: m.inc})
	case MsgLeaseGrant:
		if msg.Epoch > c.epoch {
			m.fence(c, msg.Epoch)
			m.ctr.Refused++
			return fmt.Errorf("grant for chain %d at epoch %d above ours: %w", c.id, msg.Epoch, ErrConflict)
		}
		if c.role != replicator.RolePrimary {
			m.ctr.Refused++
			return fmt.Errorf("grant for chain %d as %v: %w", c.id, c.role, ErrNotPrimary)
		}
		for k := range min(c.nreq, requestMemory) {
			r := c.reqs[k]
			if r.seq == msg.Seq {
				// The lease counts from when the request was sent: the
				// arbiter's bound counts from after it was received.
				c.until = max(c.until, r.at+min(msg.Lease, m.cfg.Lease))
				m.ctr.Grants++
				return nil
			}
		}
		m.ctr.LateGrants++
		return fmt.Errorf("grant %d for chain %d: %w", msg.Seq, c.id, ErrUnknownSq)
	case MsgYield:
		switch {
		case msg.Epoch > c.epoch:
			m.fence(c, msg.Epoch)
		case c.yielded:
			m.msgs = append(m.msgs, Msg{Type: MsgYielded, Chain: c.id, Epoch: c.epoch, Inc: m.inc})
		case c.role == replicator.RolePrimary && !c.yielding:
			c.yielding = true
			m.ctr.Yields++
			m.act(ActYield, c, 0)
		case c.role != replicator.RolePrimary:
			m.ctr.Refused++
			return fmt.Errorf("yield chain %d as %v: %w", c.id, c.role, ErrNotPrimary)
		}
	default:
		m.ctr.Refused++
		return fmt.Errorf("%v from the arbiter: %w", msg.Type, ErrUnexpected)
	}
	return nil
}

// Yielded is the manager's answer to ActYield: it stopped admitting the
// chain's traffic and every held packet was released. From this call on the
// member releases nothing for the chain at this epoch; the arbiter promotes
// the other member at once.
func (m *Member) Yielded(id ChainID) error {
	c, err := m.chain(id)
	if err != nil {
		return err
	}
	if c.role != replicator.RolePrimary || !c.yielding {
		return fmt.Errorf("yielded chain %d as %v: %w", id, c.role, ErrNotAsked)
	}
	c.role, c.yielding, c.yielded, c.until = replicator.RoleFenced, false, true, 0
	m.msgs = append(m.msgs, Msg{Type: MsgYielded, Chain: c.id, Epoch: c.epoch, Inc: m.inc})
	return nil
}

// Tick lets time pass: a primary asks for a lease renewal every Lease/4; a
// chain without a role (none given to this incarnation yet, or fenced) says
// Hello as often, with the highest epoch it knows: an arbiter that knew an
// earlier incarnation of this member learns that it restarted (whether or
// not BFD noticed), and a restarted arbiter learns the epochs issued before.
// A standby sends its StandbyStatus as often: the arbiter forgets readiness
// whenever BFD declares the member down, and a status may be lost.
func (m *Member) Tick(now time.Duration) {
	for _, c := range m.chains {
		if (!c.assigned || c.role == replicator.RoleFenced && !c.yielded) && now >= c.nextReq {
			c.nextReq = now + m.renew
			m.msgs = append(m.msgs, Msg{Type: MsgHello, Chain: c.id, Epoch: c.epoch, Inc: m.inc})
			continue
		}
		if c.assigned && c.role == replicator.RoleStandby && now >= c.nextReq {
			c.nextReq = now + m.renew
			m.status(c)
			continue
		}
		if c.role != replicator.RolePrimary || now < c.nextReq {
			continue
		}
		c.nextReq = now + m.renew
		m.seq++
		c.reqs[c.nreq%requestMemory] = request{seq: m.seq, at: now}
		c.nreq++
		m.ctr.Requests++
		m.msgs = append(m.msgs, Msg{Type: MsgLeaseRequest, Chain: c.id, Epoch: c.epoch, Seq: m.seq, Inc: m.inc})
	}
}

// CanRelease reports whether this member may release the chain's output at
// now: it is the chain's primary at its epoch, has not yielded, and holds an
// unexpired lease.
func (m *Member) CanRelease(id ChainID, now time.Duration) bool {
	c := m.byID[id]
	return c != nil && c.role == replicator.RolePrimary && now < c.until
}

// ReleaseUntil returns the chain's epoch and until when it may release (0:
// not at all), for the driver's Gate.
func (m *Member) ReleaseUntil(id ChainID) (Epoch, time.Duration) {
	c := m.byID[id]
	if c == nil {
		return 0, 0
	}
	if c.role != replicator.RolePrimary {
		return c.epoch, 0
	}
	return c.epoch, c.until
}

// Role returns the chain's role and epoch.
func (m *Member) Role(id ChainID) (Role, Epoch) {
	c := m.byID[id]
	if c == nil {
		return 0, 0
	}
	return c.role, c.epoch
}

// HasReady reports whether Ready has anything.
func (m *Member) HasReady() bool { return len(m.msgs) > 0 || len(m.actions) > 0 }

// Ready returns what to do now.
func (m *Member) Ready() MemberReady { return MemberReady{Messages: m.msgs, Actions: m.actions} }

// Advance confirms rd was done.
func (m *Member) Advance(rd MemberReady) {
	m.msgs = m.msgs[len(rd.Messages):]
	m.actions = m.actions[len(rd.Actions):]
	if len(m.msgs) == 0 {
		m.msgs = m.msgs[:0]
	}
	if len(m.actions) == 0 {
		m.actions = nil
	}
}

// Counters returns a copy of the counters.
func (m *Member) Counters() MemberCounters { return m.ctr }
