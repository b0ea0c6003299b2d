// Package replicator ships NF state from a primary manager to a standby
// manager on another server with output commit (RESILIENCY.md, "Remote
// standby", guarantees 1, 4 and 5; docs/replication.md).
//
// Replicator is the protocol as a pure value, in the shape of etcd raft's
// RawNode (STYLE.md §7): no sockets, goroutines, clocks or randomness. The
// caller feeds it with Step (a proposal, a peer frame, a snapshot, an epoch
// change) and Tick, then collects Ready (frames to send, latches to release,
// transactions to apply), does the I/O, and calls Advance. Node (node.go) is
// that caller over a Transport.
package replicator

import (
	"errors"
	"fmt"
	"hash/crc32"
)

// Epoch numbers primaryships: raised by the arbiter at each promotion
// (RESILIENCY.md guarantee 5).
type Epoch uint64

// TxID numbers transactions; it only grows within an epoch and across
// promotions (a promoted standby continues after its last applied ID).
type TxID uint64

// LatchID names a latch buffer: the output a round held back. Proposals
// carry strictly increasing latch IDs; Ready.Release returns them.
type LatchID uint64

// Digest identifies the container layout (names, kinds, sizes, capacities,
// hash seeds); primary and standby must agree on it.
type Digest [32]byte

// Role is what a Replicator does.
type Role uint8

// Roles.
const (
	RoleStandby Role = iota + 1 // receives, applies, acknowledges
	RolePrimary                 // proposes, sends, releases on acknowledgement
	RoleFenced                  // a primary that saw a higher epoch: does nothing until told
)

func (r Role) String() string {
	switch r {
	case RoleStandby:
		return "standby"
	case RolePrimary:
		return "primary"
	case RoleFenced:
		return "fenced"
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// Config configures a Replicator. Zero fields take DefaultConfig's values.
type Config struct {
	Role   Role
	Epoch  Epoch
	Digest Digest
	// JoinID distinguishes a standby's join attempts from those of an
	// earlier incarnation (a restarted process): a random value per start.
	JoinID uint64
	// Window is the number of transactions in flight (RESILIENCY.md: 3).
	// The standby stages at most this many ahead of its last applied one.
	Window int
	// MaxTxBytes bounds one transaction; coalescing stops there.
	MaxTxBytes int
	// MaxQueueBytes bounds the primary's unacknowledged transactions: a
	// proposal beyond it fails with ErrBackpressure (the round waits and
	// the chain's latch quota drops input, never the replicator).
	MaxQueueBytes int
	// MaxSnapshotBytes bounds a snapshot (both sides).
	MaxSnapshotBytes int
	// RetransmitTicks: the primary sends every unacknowledged transaction
	// again after this many ticks without progress.
	RetransmitTicks int
	// JoinTicks: a joining standby repeats its join request this often.
	JoinTicks int
	// Coalesce merges a proposal into a queued transaction that has not been
	// sent yet (the window was full). It must return dst extended with src
	// such that applying the result equals applying dst then src. Nil
	// concatenates, which is right for self-delimiting redo records applied
	// in order (last write wins).
	Coalesce func(dst, src []byte) []byte
}

// MsgType says what a Msg is.
type MsgType uint8

// Message types.
const (
	// MsgPropose (primary): a round's transaction. Payload is copied; Latch
	// names the output held back for it.
	MsgPropose MsgType = iota + 1
	// MsgFrame: a frame from the peer, as received (Payload, not kept).
	MsgFrame
	// MsgSnapshot (primary, after Ready.NeedSnapshot): the containers at a
	// round boundary: everything proposed so far and nothing after.
	MsgSnapshot
	// MsgEpoch: the arbiter's decision: Epoch (higher than the current one)
	// and Role (RolePrimary to promote, RoleStandby to rejoin).
	MsgEpoch
)

// Msg is an input to Step.
type Msg struct {
	Type    MsgType
	Latch   LatchID
	Payload []byte
	Epoch   Epoch
	Role    Role
}

// Apply is a transaction for the standby to apply.
type Apply struct {
	TxID TxID
	// Snapshot: Payload replaces the whole state (discard, then install).
	Snapshot bool
	// Payload is valid until Advance.
	Payload []byte
}

// Ready is what the caller must do. Fields are valid until Advance.
type Ready struct {
	// Frames are encoded frames for the peer, in the order they were made.
	// The protocol tolerates their loss, duplication and reordering.
	Frames [][]byte
	// Release (primary): every latch up to and including Release may leave
	// now, in latch order; 0 when there is nothing new. The standby has
	// applied every transaction that carried them.
	Release LatchID
	// Apply (standby): transactions to apply, each atomically, in this
	// order. Advance MUST be called only AFTER all of them are applied:
	// Advance is what acknowledges them to the primary.
	Apply []Apply
	// NeedSnapshot (primary): a standby joined; Step a MsgSnapshot taken at
	// the next round boundary.
	NeedSnapshot bool
	// Role is set when the role changed since the last Ready (a fenced
	// primary MUST stop releasing at once).
	Role Role
}

// Empty reports whether rd holds nothing to do.
func (rd *Ready) Empty() bool {
	return len(rd.Frames) == 0 && rd.Release == 0 && len(rd.Apply) == 0 && !rd.NeedSnapshot && rd.Role == 0
}

// Counters count what a Replicator did and dropped.
type Counters struct {
	Proposed, Coalesced, Backpressure          uint64 // primary proposals
	TxSent, ChunksSent, Retransmits            uint64 // primary transmissions (Retransmits: transactions sent again)
	Acks, DupAcks                              uint64 // primary: acks that advanced / did not
	Released                                   LatchID
	Applied                                    uint64 // standby: transactions applied (snapshots included)
	Snapshots, Joins, Rejects                  uint64
	Malformed, Corrupt, Stale, Duplicate, Drop uint64 // Step errors (Drop: out of window, not joined, wrong role)
	Rejoins                                    uint64 // standby: Rejoin after a failed apply
}

type txn struct {
	id       TxID
	latch    LatchID // highest latch it carries; 0 for none
	snapshot bool
	sent     bool
	payload  []byte
}

type stage struct {
	id       TxID
	snapshot bool
	chunks   uint32
	txLen    uint32
	txCRC    uint32
	have     []bool
	missing  uint32
	buf      []byte
}

// Replicator is one side of a replication stream. It is not safe for
// concurrent use: one goroutine (Node's) calls all its methods.
type Replicator struct {
	cfg   Config
	role  Role
	epoch Epoch
	step  func(*Replicator, *Frame) error
	step0 Role // the role before the last change
	// fencedFrom is the role a fenced replicator had before the fence.
	fencedFrom Role

	out         [][]byte
	ackAt       int // index in out of the pending ack, -1 for none
	handed      int // frames of out given to the caller by the last Ready
	roleChanged bool
	ctr         Counters

	// Primary.
	nextTx      TxID
	queue       []*txn // unacknowledged, by ID
	queueBytes  int
	acked       TxID
	releasable  LatchID
	released    LatchID
	lastLatch   LatchID
	idle        int // ticks without progress while something is in flight
	backoff     int // retransmissions since the last progress
	peerJoinID  uint64
	peerJoined  bool // a snapshot was made for the current join; sending allowed
	needSnap    bool
	joinPending bool // NeedSnapshot reported, MsgSnapshot not yet stepped

	// Standby.
	applied   TxID
	joined    bool
	joinID    uint64
	cut       TxID // the snapshot announced by JoinAccept
	stages    []*stage
	applyQ    []Apply // complete, in order, not yet advanced
	joinTimer int
	rejected  bool
}

// New returns a Replicator for cfg.
func New(cfg Config) (*Replicator, error) {
	d := DefaultConfig()
	if cfg.Role == 0 {
		cfg.Role = d.Role
	}
	if cfg.Epoch == 0 {
		cfg.Epoch = d.Epoch
	}
	for _, f := range []struct {
		v *int
		d int
	}{
		{&cfg.Window, d.Window}, {&cfg.MaxTxBytes, d.MaxTxBytes}, {&cfg.MaxQueueBytes, d.MaxQueueBytes},
		{&cfg.MaxSnapshotBytes, d.MaxSnapshotBytes}, {&cfg.RetransmitTicks, d.RetransmitTicks}, {&cfg.JoinTicks, d.JoinTicks},
	} {
		if *f.v == 0 {
			*f.v = f.d
		}
		if *f.v < 0 {
			return nil, fmt.Errorf("replicator config: negative limit %d", *f.v)
		}
	}
	if cfg.Role != RolePrimary && cfg.Role != RoleStandby {
		return nil, fmt.Errorf("replicator config: role %v", cfg.Role)
	}
	if cfg.MaxTxBytes > cfg.MaxQueueBytes {
		return nil, fmt.Errorf("replicator config: MaxTxBytes %d above MaxQueueBytes %d", cfg.MaxTxBytes, cfg.MaxQueueBytes)
	}
	if cfg.Coalesce == nil {
		cfg.Coalesce = func(dst, src []byte) []byte { return append(dst, src...) }
	}
	r := &Replicator{cfg: cfg, epoch: cfg.Epoch, nextTx: 1, joinID: cfg.JoinID, ackAt: -1}
	r.become(cfg.Role)
	r.roleChanged = false
	return r, nil
}

// Role returns the current role.
func (r *Replicator) Role() Role { return r.role }

// Epoch returns the current epoch.
func (r *Replicator) Epoch() Epoch { return r.epoch }

// Counters returns a copy of the counters.
func (r *Replicator) Counters() Counters { return r.ctr }

// Applied returns the last transaction in this side's state: for a standby
// the last applied (acknowledged, or about to be), for a primary the last
// proposed.
func (r *Replicator) Applied() TxID {
	if r.role == RolePrimary {
		return r.nextTx - 1
	}
	return r.applied
}

// Joined reports, for a standby, whether it holds a snapshot and follows
// the stream (the chain is protected); for a primary, whether its standby
// has acknowledged a snapshot.
func (r *Replicator) Joined() bool {
	if r.role == RolePrimary {
		return r.peerJoined && (len(r.queue) == 0 || !r.queue[0].snapshot)
	}
	return r.joined
}

func (r *Replicator) become(role Role) {
	r.step0 = r.role
	r.role = role
	r.roleChanged = true
	switch role {
	case RolePrimary:
		r.step = (*Replicator).stepPrimary
		if r.step0 == RoleFenced {
			r.step0 = r.fencedFrom // a fenced primary confirmed: keeps its queue
		}
		if r.step0 != RolePrimary {
			// A promoted standby continues after the last transaction it
			// applied; its latches start afresh.
			r.nextTx = r.applied + 1
			r.acked = r.applied
			r.queue, r.queueBytes = nil, 0
			r.releasable, r.released, r.lastLatch = 0, 0, 0
			r.stages, r.applyQ = nil, nil
		}
		// A primary confirmed under a new epoch keeps its queue: those
		// transactions are committed state whose output is still held. The
		// standby must join again, and the snapshot it gets takes their
		// place and their latches.
		for _, t := range r.queue {
			t.sent = false
		}
		r.peerJoined, r.needSnap, r.joinPending, r.peerJoinID = false, false, false, 0
	case RoleStandby:
		r.step = (*Replicator).stepStandby
		r.applied, r.joined, r.cut, r.rejected = 0, false, 0, false
		r.stages, r.applyQ = nil, nil
		r.joinID++
		r.joinTimer = r.cfg.JoinTicks // ask at the first tick
		r.queue = nil
	case RoleFenced:
		r.step = (*Replicator).stepFenced
		if r.step0 != RoleFenced {
			r.fencedFrom = r.step0
		}
	}
}

// Step feeds one input. An error means the input was counted and dropped
// (errors.Is ErrMalformed, ErrCorrupt, ErrStaleEpoch, ErrDuplicate, ...).
func (r *Replicator) Step(m Msg) error {
	switch m.Type {
	case MsgPropose:
		return r.propose(m.Latch, m.Payload)
	case MsgSnapshot:
		return r.snapshot(m.Payload)
	case MsgEpoch:
		// A fenced replicator may be given the very epoch that fenced it:
		// the arbiter re-promoted this primary at a new epoch and its
		// standby, demoted to that epoch first, reached us before the
		// arbiter's word did. Only one member is primary at an epoch, so
		// taking it is safe; refusing it left the chain fenced for good.
		if m.Epoch < r.epoch || (m.Epoch == r.epoch && r.role != RoleFenced) {
			r.ctr.Stale++
			return fmt.Errorf("epoch %d, at %d: %w", m.Epoch, r.epoch, ErrStaleEpoch)
		}
		if m.Role != RolePrimary && m.Role != RoleStandby {
			return fmt.Errorf("epoch change to role %v: %w", m.Role, ErrWrongRole)
		}
		r.epoch = m.Epoch
		r.become(m.Role)
		return nil
	case MsgFrame:
		var f Frame
		if err := DecodeFrame(m.Payload, &f); err != nil {
			if errors.Is(err, ErrCorrupt) {
				r.ctr.Corrupt++
			} else {
				r.ctr.Malformed++
			}
			return err
		}
		// Epoch checks happen here, once, before the role's step function
		// (STYLE.md §7; RESILIENCY.md guarantee 5).
		switch {
		case f.Epoch < r.epoch && f.Type == FrameJoin && r.role == RolePrimary:
			// A join carries no state: a standby that rejoins (the old
			// primary, restarted) asks in the epoch it knew and learns the
			// current one from the answer.
		case f.Epoch < r.epoch:
			r.ctr.Stale++
			return fmt.Errorf("%v frame of epoch %d, at %d: %w", f.Type, f.Epoch, r.epoch, ErrStaleEpoch)
		case f.Epoch > r.epoch:
			r.epoch = f.Epoch
			if r.role == RoleStandby {
				// A new primary: whatever we hold may be ahead of its cut.
				// A standby still joining holds nothing and goes on with
				// its request (this frame may be the answer to it).
				if r.joined || r.cut != 0 || r.applied != 0 {
					r.become(RoleStandby)
				}
			} else {
				r.become(RoleFenced)
				return fmt.Errorf("%v frame of epoch %d: %w", f.Type, f.Epoch, ErrFenced)
			}
		}
		return r.step(r, &f)
	}
	return fmt.Errorf("message type %d: %w", m.Type, ErrWrongRole)
}

func (r *Replicator) stepFenced(f *Frame) error {
	r.ctr.Drop++
	return fmt.Errorf("%v frame while fenced: %w", f.Type, ErrFenced)
}

// Tick advances time by one tick: retransmission on the primary, join
// requests on a joining standby.
func (r *Replicator) Tick() {
	switch r.role {
	case RolePrimary:
		if r.inFlight() == 0 {
			r.idle, r.backoff = 0, 0
			return
		}
		r.idle++
		// Exponential backoff while nothing is acknowledged (a partition,
		// a dead peer): the resends of a window of large transactions
		// must not flood the link that is failing. Progress resets it.
		if r.idle >= r.cfg.RetransmitTicks<<min(r.backoff, maxBackoffShift) {
			r.idle = 0
			r.backoff++
			for _, t := range r.queue {
				if !t.sent {
					break
				}
				r.ctr.Retransmits++
				r.sendTxn(t)
			}
		}
	case RoleStandby:
		if r.joined || r.rejected || r.cut != 0 {
			return
		}
		r.joinTimer++
		if r.joinTimer >= r.cfg.JoinTicks {
			r.joinTimer = 0
			r.ctr.Joins++
			r.emit(&Frame{Type: FrameJoin, Epoch: r.epoch, TxID: TxID(r.joinID), Digest: r.cfg.Digest})
		}
	}
}

// HasReady reports whether Ready would return something.
func (r *Replicator) HasReady() bool {
	rd := r.Ready()
	return !rd.Empty()
}

// Ready returns what is to be done now. The caller does it and calls
// Advance(rd) before the next Ready.
func (r *Replicator) Ready() Ready {
	// Frames handed out must not change under the caller: a later ack is
	// appended, not written over one of these.
	r.handed = len(r.out)
	rd := Ready{Frames: r.out, Apply: r.applyQ}
	if r.releasable > r.released {
		rd.Release = r.releasable
	}
	rd.NeedSnapshot = r.needSnap
	if r.roleChanged {
		rd.Role = r.role
	}
	return rd
}

// Advance acknowledges that rd (from the last Ready) was done: frames sent,
// latches released, transactions applied.
func (r *Replicator) Advance(rd Ready) {
	r.out = r.out[len(rd.Frames):]
	if len(r.out) == 0 {
		r.out = nil
	}
	if r.ackAt -= len(rd.Frames); r.ackAt < 0 {
		r.ackAt = -1
	}
	r.handed = 0
	if rd.Release != 0 {
		if rd.Release > r.releasable || rd.Release <= r.released {
			// Releasing beyond what the standby applied breaks output
			// commit: our bug, never the peer's (STYLE.md §7).
			panic(fmt.Sprintf("replicator: release of latch %d with %d releasable and %d released", rd.Release, r.releasable, r.released))
		}
		r.released = rd.Release
		r.ctr.Released = rd.Release
	}
	if rd.NeedSnapshot {
		r.needSnap = false
		r.joinPending = true
	}
	if rd.Role != 0 {
		r.roleChanged = false
	}
	if n := len(rd.Apply); n > 0 {
		if n > len(r.applyQ) || r.applyQ[n-1].TxID != rd.Apply[n-1].TxID {
			panic(fmt.Sprintf("replicator: advance of %d applies, %d queued", n, len(r.applyQ)))
		}
		last := rd.Apply[n-1]
		r.applyQ = r.applyQ[n:]
		r.ctr.Applied += uint64(n)
		r.applied = last.TxID
		for _, a := range rd.Apply {
			if a.Snapshot {
				r.joined = true
				r.cut = 0
			}
		}
		r.emitAck()
		r.promote()
	}
}

// Rejoin is for a standby whose Apply failed: its state can no longer be
// trusted to follow the primary's, so it forgets what it applied and joins
// again, which brings a whole snapshot (the embedding process discards its
// state when that snapshot is applied). Before this, a failed Apply ended
// the Node for good and left the chain unprotected until a restart.
func (r *Replicator) Rejoin() {
	if r.role != RoleStandby {
		return
	}
	r.applied, r.joined, r.cut, r.rejected = 0, false, 0, false
	r.stages, r.applyQ = nil, nil
	r.joinID++
	r.joinTimer = r.cfg.JoinTicks
	r.ctr.Rejoins++
}

// Reannounce is for a standby whose transport session was established
// again (the primary cannot tell a new session of the same standby from a
// restarted one): a joined standby repeats its cumulative acknowledgement,
// a joining one asks at once. The primary counts either as the peer
// confirming itself in the new session.
func (r *Replicator) Reannounce() {
	if r.role != RoleStandby {
		return
	}
	if r.joined {
		r.emitAck()
		return
	}
	if !r.rejected && r.cut == 0 {
		r.joinTimer = r.cfg.JoinTicks
	}
}

// emitAck queues an ack of r.applied, replacing one not yet sent: acks
// are cumulative, so one per Ready is enough however many duplicates drew it.
func (r *Replicator) emitAck() {
	f := Frame{Type: FrameAck, Epoch: r.epoch, TxID: r.applied}
	if r.ackAt >= r.handed {
		r.out[r.ackAt] = AppendFrame(r.out[r.ackAt][:0], &f)
		return
	}
	r.ackAt = len(r.out)
	r.emit(&f)
}

func (r *Replicator) emit(f *Frame) {
	r.out = append(r.out, AppendFrame(make([]byte, 0, f.Size()), f))
}

// ---- Primary ----

func (r *Replicator) propose(latch LatchID, p []byte) error {
	if r.role != RolePrimary {
		r.ctr.Drop++
		return fmt.Errorf("proposal to a %v: %w", r.role, ErrWrongRole)
	}
	if latch != 0 && latch <= r.lastLatch {
		return fmt.Errorf("latch %d after latch %d: latches must grow", latch, r.lastLatch)
	}
	if len(p) > r.cfg.MaxTxBytes {
		return fmt.Errorf("proposal of %d bytes, limit %d: %w", len(p), r.cfg.MaxTxBytes, ErrTooLarge)
	}
	if r.queueBytes+len(p) > r.cfg.MaxQueueBytes {
		r.ctr.Backpressure++
		return fmt.Errorf("%d bytes queued, limit %d: %w", r.queueBytes, r.cfg.MaxQueueBytes, ErrBackpressure)
	}
	r.ctr.Proposed++
	if latch != 0 {
		r.lastLatch = latch
	}
	r.queueBytes += len(p)
	// Coalesce into the last transaction if it has not left yet (the window
	// is full): under load, rounds grow instead of queueing.
	if n := len(r.queue); n > 0 {
		if t := r.queue[n-1]; !t.sent && !t.snapshot && len(t.payload)+len(p) <= r.cfg.MaxTxBytes {
			t.payload = r.cfg.Coalesce(t.payload, p)
			if latch != 0 {
				t.latch = latch
			}
			r.ctr.Coalesced++
			return nil
		}
	}
	t := &txn{id: r.nextTx, latch: latch, payload: append([]byte(nil), p...)}
	r.nextTx++
	r.queue = append(r.queue, t)
	r.flush()
	return nil
}

func (r *Replicator) snapshot(p []byte) error {
	if r.role != RolePrimary || !r.joinPending {
		r.ctr.Drop++
		return fmt.Errorf("snapshot without a join: %w", ErrWrongRole)
	}
	if len(p) > r.cfg.MaxSnapshotBytes {
		return fmt.Errorf("snapshot of %d bytes, limit %d: %w", len(p), r.cfg.MaxSnapshotBytes, ErrTooLarge)
	}
	// The snapshot holds every proposal so far: it takes their place, and
	// their latches, in the queue (acknowledging it releases them).
	s := &txn{id: r.nextTx, snapshot: true, payload: append([]byte(nil), p...)}
	r.nextTx++
	for _, t := range r.queue {
		s.latch = max(s.latch, t.latch)
	}
	r.queue = []*txn{s}
	r.queueBytes = 0
	r.joinPending = false
	r.peerJoined = true
	r.ctr.Snapshots++
	r.emit(&Frame{Type: FrameJoinAccept, Epoch: r.epoch, TxID: s.id, JoinID: r.peerJoinID})
	r.flush()
	return nil
}

func (r *Replicator) inFlight() int {
	n := 0
	for _, t := range r.queue {
		if !t.sent {
			break
		}
		n++
	}
	return n
}

// flush sends queued transactions while the window has room.
func (r *Replicator) flush() {
	if !r.peerJoined {
		return
	}
	n := r.inFlight()
	for _, t := range r.queue[n:] {
		if n >= r.cfg.Window {
			return
		}
		t.sent = true
		r.ctr.TxSent++
		r.sendTxn(t)
		n++
	}
}

func (r *Replicator) sendTxn(t *txn) {
	f := Frame{Type: FrameData, Epoch: r.epoch, TxID: t.id, TxLen: uint32(len(t.payload)),
		TxCRC: crc32.Checksum(t.payload, castagnoli), Chunks: chunkCount(len(t.payload))}
	if t.snapshot {
		f.Flags = FlagSnapshot
	}
	for i := range f.Chunks {
		lo, hi := chunkRange(i, f.TxLen)
		f.Chunk, f.Payload = i, t.payload[lo:hi]
		r.ctr.ChunksSent++
		r.emit(&f)
	}
}

func (r *Replicator) stepPrimary(f *Frame) error {
	switch f.Type {
	case FrameAck:
		return r.ack(f.TxID)
	case FrameJoin:
		if f.Digest != r.cfg.Digest {
			r.ctr.Rejects++
			r.emit(&Frame{Type: FrameJoinReject, Epoch: r.epoch, Reason: RejectLayout})
			return fmt.Errorf("join %d: %w", f.TxID, ErrLayout)
		}
		if uint64(f.TxID) == r.peerJoinID {
			// A repeated request: the accept (or the snapshot) was lost or
			// is on its way.
			r.ctr.Duplicate++
			if r.peerJoined && len(r.queue) > 0 && r.queue[0].snapshot {
				r.emit(&Frame{Type: FrameJoinAccept, Epoch: r.epoch, TxID: r.queue[0].id, JoinID: r.peerJoinID})
			}
			return fmt.Errorf("join %d: %w", f.TxID, ErrDuplicate)
		}
		r.ctr.Joins++
		r.peerJoinID = uint64(f.TxID)
		r.peerJoined = false
		r.needSnap, r.joinPending = true, false
		for _, t := range r.queue {
			t.sent = false
		}
		return nil
	}
	r.ctr.Drop++
	return fmt.Errorf("%v frame to a primary: %w", f.Type, ErrWrongRole)
}

func (r *Replicator) ack(id TxID) error {
	if id <= r.acked {
		r.ctr.DupAcks++
		return fmt.Errorf("ack %d, acked %d: %w", id, r.acked, ErrDuplicate)
	}
	var sent TxID
	for _, t := range r.queue {
		if !t.sent {
			break
		}
		sent = t.id
	}
	if id > sent || !r.peerJoined {
		// Nothing we sent in this join has that ID: a forged or confused
		// peer. It must not release anything.
		r.ctr.Malformed++
		return fmt.Errorf("ack %d beyond the last sent transaction %d: %w", id, sent, ErrMalformed)
	}
	r.ctr.Acks++
	r.acked = id
	r.idle, r.backoff = 0, 0
	i := 0
	for ; i < len(r.queue) && r.queue[i].id <= id; i++ {
		t := r.queue[i]
		if t.latch != 0 {
			r.releasable = t.latch
		}
		if !t.snapshot {
			r.queueBytes -= len(t.payload)
		}
		r.queue[i] = nil
	}
	r.queue = r.queue[i:]
	r.flush()
	return nil
}

// ---- Standby ----

func (r *Replicator) stepStandby(f *Frame) error {
	switch f.Type {
	case FrameData:
		return r.data(f)
	case FrameJoinAccept:
		if f.JoinID != r.joinID {
			// It answers an earlier incarnation's request: its snapshot
			// is not ours to take.
			r.ctr.Drop++
			return fmt.Errorf("join accept for join %d, ours is %d: %w", f.JoinID, r.joinID, ErrOutOfWindow)
		}
		if r.joined || r.cut != 0 || f.TxID == 0 {
			r.ctr.Duplicate++
			return fmt.Errorf("join accept for %d: %w", f.TxID, ErrDuplicate)
		}
		r.cut = f.TxID
		return nil
	case FrameJoinReject:
		r.ctr.Rejects++
		r.rejected = true
		return fmt.Errorf("join rejected (reason %d): %w", f.Reason, ErrLayout)
	}
	r.ctr.Drop++
	return fmt.Errorf("%v frame to a standby: %w", f.Type, ErrWrongRole)
}

func (r *Replicator) data(f *Frame) error {
	snap := f.Flags&FlagSnapshot != 0
	last := r.applied
	if n := len(r.applyQ); n > 0 {
		last = r.applyQ[n-1].TxID
	}
	switch {
	case f.TxID <= last:
		// Already applied (or about to be): the ack was lost; repeat it.
		r.ctr.Duplicate++
		if r.joined && len(r.applyQ) == 0 {
			r.emitAck()
		}
		return fmt.Errorf("transaction %d, applied %d: %w", f.TxID, last, ErrDuplicate)
	case !r.joined && !snap && (r.cut == 0 || f.TxID <= r.cut):
		// Transactions after the announced cut may be staged while the
		// snapshot arrives; anything else predates our join.
		r.ctr.Drop++
		return fmt.Errorf("transaction %d: %w", f.TxID, ErrNotJoined)
	case snap && r.joined:
		r.ctr.Drop++
		return fmt.Errorf("snapshot %d while joined: %w", f.TxID, ErrOutOfWindow)
	case snap && f.TxID != r.cut:
		// Only the snapshot announced for our own join request.
		r.ctr.Drop++
		return fmt.Errorf("snapshot %d, expecting %d: %w", f.TxID, r.cut, ErrOutOfWindow)
	case !snap && f.TxID > max(last, r.cut)+TxID(r.cfg.Window):
		r.ctr.Drop++
		return fmt.Errorf("transaction %d, applied %d, window %d: %w", f.TxID, max(last, r.cut), r.cfg.Window, ErrOutOfWindow)
	}
	limit := r.cfg.MaxTxBytes
	if snap {
		limit = r.cfg.MaxSnapshotBytes
	}
	if int(f.TxLen) > limit || f.Chunks != chunkCount(int(f.TxLen)) {
		r.ctr.Malformed++
		return fmt.Errorf("transaction %d: %d bytes in %d chunks, limit %d: %w", f.TxID, f.TxLen, f.Chunks, limit, ErrMalformed)
	}
	if lo, hi := chunkRange(f.Chunk, f.TxLen); uint32(len(f.Payload)) != hi-lo {
		r.ctr.Malformed++
		return fmt.Errorf("transaction %d chunk %d: %d bytes, want %d: %w", f.TxID, f.Chunk, len(f.Payload), hi-lo, ErrMalformed)
	}
	s := r.stageFor(f, snap)
	if s.chunks != f.Chunks || s.txLen != f.TxLen || s.txCRC != f.TxCRC {
		r.ctr.Malformed++
		return fmt.Errorf("transaction %d chunk %d disagrees with its other chunks: %w", f.TxID, f.Chunk, ErrMalformed)
	}
	if s.have[f.Chunk] {
		r.ctr.Duplicate++
		return fmt.Errorf("transaction %d chunk %d: %w", f.TxID, f.Chunk, ErrDuplicate)
	}
	lo, _ := chunkRange(f.Chunk, f.TxLen)
	copy(s.buf[lo:], f.Payload)
	s.have[f.Chunk] = true
	s.missing--
	if s.missing == 0 {
		if got := crc32.Checksum(s.buf, castagnoli); got != s.txCRC {
			// Every chunk passed its own CRC, so the parts came from
			// different transactions with one ID: never apply it.
			r.dropStage(s)
			r.ctr.Corrupt++
			return fmt.Errorf("transaction %d: %w", f.TxID, &CorruptError{What: "transaction", Got: got, Want: s.txCRC})
		}
	}
	r.promote()
	return nil
}

func (r *Replicator) stageFor(f *Frame, snap bool) *stage {
	for _, s := range r.stages {
		if s.id == f.TxID {
			return s
		}
	}
	if snap {
		// One snapshot at a time: a newer one replaces an older, and
		// everything staged before it is superseded.
		r.stages = r.stages[:0]
	}
	s := &stage{id: f.TxID, snapshot: snap, chunks: f.Chunks, txLen: f.TxLen, txCRC: f.TxCRC,
		have: make([]bool, f.Chunks), missing: f.Chunks, buf: make([]byte, f.TxLen)}
	r.stages = append(r.stages, s)
	return s
}

func (r *Replicator) dropStage(s *stage) {
	for i, x := range r.stages {
		if x == s {
			r.stages = append(r.stages[:i], r.stages[i+1:]...)
			return
		}
	}
}

// promote moves complete transactions, in ID order with no gap, to the
// apply queue. A snapshot follows no predecessor: it is the new base.
func (r *Replicator) promote() {
	for {
		last := r.applied
		if n := len(r.applyQ); n > 0 {
			last = r.applyQ[n-1].TxID
		}
		var next *stage
		for _, s := range r.stages {
			if s.missing != 0 {
				continue
			}
			if s.snapshot && !r.joined && s.id == r.cut && len(r.applyQ) == 0 {
				next = s
				break
			}
			if !s.snapshot && r.joined && s.id == last+1 {
				next = s
				break
			}
		}
		if next == nil {
			return
		}
		r.dropStage(next)
		r.applyQ = append(r.applyQ, Apply{TxID: next.id, Snapshot: next.snapshot, Payload: next.buf})
		if next.snapshot {
			// Apply nothing after a snapshot until it is installed.
			return
		}
	}
}
