// Package arbiter decides which of a chain's two member managers is its
// primary, and lets at most one of them release output at any moment
// (RESILIENCY.md, "Failure detection, arbitration and failover between
// servers", guarantee 5; docs/arbiter.md).
//
// Arbiter (the arbiter's side) and Member (a manager's side) are protocol
// state machines as pure values in the shape of etcd raft's RawNode
// (STYLE.md §7): no sockets, goroutines or clocks. Time comes in as a
// monotonic now (time.Duration since an origin of the caller's choosing,
// each process its own). Step takes a message, Tick lets time pass, Ready
// returns what to send and what to do, Advance confirms it. Codec (wire.go)
// authenticates messages; Server and Client (server.go, client.go) are the
// drivers over one UDP socket each, with BFD (replicator/bfd) for liveness.
package arbiter

import (
	"fmt"
	"hash/fnv"
	"time"

	"github.com/reinforce-nfv/reinforce/replicator"
)

// Epoch numbers a chain's primaryships; the arbiter raises it at every
// promotion. It is the replicator's epoch, so the manager can pass it on.
type Epoch = replicator.Epoch

// ChainID names a chain on the wire: NameID of the chain's name.
type ChainID uint32

// MemberID names a member manager on the wire: NameID of its name. The
// arbiter itself is ArbiterID.
type MemberID uint32

// ArbiterID is the sender ID of the arbiter. NameID never returns it.
const ArbiterID MemberID = 0

// NameID maps a configured name to the 32-bit ID used on the wire
// (FNV-1a; 0 becomes 1, so no name collides with ArbiterID). Both ends
// compute IDs from the names in their configuration; the arbiter's
// configuration check refuses two names with the same ID.
func NameID(name string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(name))
	if v := h.Sum32(); v != 0 {
		return v
	}
	return 1
}

// MsgType says what a Msg is.
type MsgType uint8

// Message types (docs/arbiter.md, "Messages"). Member → arbiter: LeaseRequest,
// Promoted, Demoted, Yielded, Hello, StandbyStatus. Arbiter → member: LeaseGrant,
// Promote, Demote, Yield.
const (
	// MsgLeaseRequest asks for a lease (Seq names the request).
	MsgLeaseRequest MsgType = iota + 1
	// MsgLeaseGrant grants the lease asked for by request Seq, for Lease,
	// counted by the member from when it sent that request.
	MsgLeaseGrant
	// MsgPromote makes the receiver the chain's primary at Epoch.
	MsgPromote
	// MsgPromoted acknowledges MsgPromote.
	MsgPromoted
	// MsgDemote makes the receiver the chain's standby at Epoch (Primary is
	// the new primary): it discards the chain's state and rejoins.
	MsgDemote
	// MsgDemoted acknowledges MsgDemote.
	MsgDemoted
	// MsgYield asks the primary to hand the chain over (planned switchover).
	MsgYield
	// MsgYielded says the primary stopped admitting traffic, released all
	// its held output, and will release nothing more at Epoch.
	MsgYielded
	// MsgHello says a member process has no role for the chain: none given
	// to it yet (Epoch 0 at start) or fenced (Epoch is the higher epoch it
	// saw). The arbiter tells it its role, and moves above Epoch if behind.
	MsgHello
	// MsgStandbyStatus says whether the chain's standby at Epoch is ready
	// (Ready): its manager joined the primary's replication stream at Epoch
	// (installed a snapshot). Sent by an assigned standby every Lease/4 and
	// at once when it changes; the arbiter fails over only to a ready
	// standby. It also acknowledges a Demote at Epoch.
	MsgStandbyStatus
	msgTypeEnd
)

func (t MsgType) String() string {
	switch t {
	case MsgLeaseRequest:
		return "LeaseRequest"
	case MsgLeaseGrant:
		return "LeaseGrant"
	case MsgPromote:
		return "Promote"
	case MsgPromoted:
		return "Promoted"
	case MsgDemote:
		return "Demote"
	case MsgDemoted:
		return "Demoted"
	case MsgYield:
		return "Yield"
	case MsgYielded:
		return "Yielded"
	case MsgHello:
		return "Hello"
	case MsgStandbyStatus:
		return "StandbyStatus"
	}
	return fmt.Sprintf("MsgType(%d)", uint8(t))
}

// Msg is one protocol message. Fields beyond Type, Chain and Epoch are
// valid only for the types that say so.
type Msg struct {
	Type  MsgType
	Chain ChainID
	Epoch Epoch
	// Seq is the lease request's number (LeaseRequest, LeaseGrant).
	Seq uint64
	// Inc is a member process's incarnation: a number above every earlier
	// incarnation's (the drivers use the wall clock in ns). A member's
	// messages carry its own; the arbiter's carry the addressee's as last
	// heard (0: none yet), and a member ignores those meant for another
	// incarnation of itself (sent before it restarted).
	Inc uint64
	// Lease is the granted duration (LeaseGrant), carried in µs.
	Lease time.Duration
	// Primary is the chain's new primary (Demote).
	Primary MemberID
	// Ready is the standby's readiness at Epoch (StandbyStatus).
	Ready bool
}

func (m Msg) String() string {
	s := fmt.Sprintf("%v chain=%d epoch=%d", m.Type, m.Chain, m.Epoch)
	switch m.Type {
	case MsgLeaseRequest:
		s += fmt.Sprintf(" seq=%d", m.Seq)
	case MsgLeaseGrant:
		s += fmt.Sprintf(" seq=%d lease=%v", m.Seq, m.Lease)
	case MsgDemote:
		s += fmt.Sprintf(" primary=%d", m.Primary)
	case MsgStandbyStatus:
		s += fmt.Sprintf(" ready=%v", m.Ready)
	}
	if m.Inc != 0 {
		s += fmt.Sprintf(" inc=%d", m.Inc)
	}
	return s
}

// Envelope is a message and its destination.
type Envelope struct {
	To  MemberID
	Msg Msg
}
