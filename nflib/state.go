package nflib

// Every burst, and every Setup, Idle and Msg callback run, is a transaction
// (docs/state.md): the loop opens a scope, everything the NF does in it —
// state writes, packet writes, allocations, packets sent, frees — is logged
// (undo + redo) or staged, and takes effect at commit:
//
//	begin → inputs logged, taken → handler (writes logged, sends staged,
//	frees deferred) → commit record → publish outputs → release inputs →
//	apply frees → done
//
// A crash anywhere before the commit record is rolled back by whoever takes
// over (state.Recover); a crash after it is rolled forward. With transactions
// off (REINFORCE_TX=off, for measuring their cost) the same scope only
// defers publication to its end.

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/reinforce-nfv/reinforce/internal/crashpoint"
	"github.com/reinforce-nfv/reinforce/shm"
	"github.com/reinforce-nfv/reinforce/shm/state"
)

// Environment knobs for the NF's state file.
const (
	// TxEnv set to "off" turns transactions off (containers still work,
	// nothing is logged or recoverable).
	TxEnv = "REINFORCE_TX"
	// StateDirEnv overrides the directory of the NF's state file.
	StateDirEnv = state.DirEnv
	// StateLogEnv sets the state log's size in bytes (default 4 MiB).
	StateLogEnv = "REINFORCE_STATE_LOG"
	// StateBytesEnv sets the room for containers in bytes (default 64 MiB, sparse).
	StateBytesEnv = "REINFORCE_STATE_BYTES"
)

// Keep is the verdict for a packet the handler kept (pushed onto a Queue):
// it is neither sent nor freed. A packet returned with Keep that is not in
// a queue is dropped and counted.
const Keep Action = Action(actionKeep) << 16

const actionKeep = 0xFE

// scope is the open transaction's bookkeeping (loop goroutine only).
type scope struct {
	open  bool
	outs  []*outQ     // rings with staged entries
	ins   []*shm.Ring // rings with peeked entries
	frees []shm.Slot  // deferred
	kept  []shm.Slot  // pushed onto queues in this scope
	err   error       // a failure inside the scope: rolled back at its end
	ri    []state.RingIndex
}

// openState opens (or creates) the NF's state file and recovers what a dead
// predecessor with the same instance ID left half done.
func (nf *NF) openState() error {
	o := state.Options{RegionID: nf.region.Epoch()}
	if v, err := envBytes(StateLogEnv); err != nil {
		return err
	} else if v > 0 {
		o.LogBytes = v
	}
	if v, err := envBytes(StateBytesEnv); err != nil {
		return err
	} else if v > 0 {
		o.DataBytes = v
	}
	path := state.PathFor(nf.region.Path(), nf.region.Huge(), nf.instance)
	var f *state.File
	var err error
	if nf.prepared != nil {
		f = nf.prepared
		if err = f.Acquire(); err != nil {
			return err // still prepared: the caller may retry
		}
		nf.prepared = nil
	} else if f, err = state.Open(path, o); err != nil {
		return err
	}
	if (o.LogBytes != 0 || o.DataBytes != 0) && !f.Fresh() && f.Stats().LogBytes != o.LogBytes {
		// A replicated instance's file is made by the manager, with its
		// [replication] sizes; any other existing file keeps its own.
		fmt.Fprintf(os.Stderr, "%s: state file %s exists (log %d bytes): %s/%s apply to new files only; replicated instances are sized by the manager's [replication] state_bytes/state_log_bytes\n",
			nf.tag, path, f.Stats().LogBytes, StateBytesEnv, StateLogEnv)
	}
	if err := nf.useState(f, strings.EqualFold(os.Getenv(TxEnv), "off")); err != nil {
		f.Close()
		return fmt.Errorf("recover state %s: %w", path, err)
	}
	if nf.recovery.Seq != 0 {
		fmt.Fprintf(os.Stderr, "%s: %s\n", nf.tag, nf.recovery)
	}
	return nil
}

// useState makes f the NF's state file: transactions bound to the NF's
// region and cache (unless off), a dead predecessor's last transaction
// recovered, ring handles resynced.
func (nf *NF) useState(f *state.File, txOff bool) error {
	tx := f.Tx()
	tx.Bind(nf.region, nf.cache)
	f.SetUnlogged(txOff)
	rep, err := state.Recover(f, nf.region, nf.cache)
	if err != nil {
		return err
	}
	nf.st, nf.tx, nf.txOff, nf.recovery = f, tx, txOff, rep
	// Recovery moved shared ring indices behind the handles this process
	// opened at registration: start them from where recovery left them.
	for _, r := range nf.ins {
		r.Sync()
	}
	for _, q := range nf.outs {
		q.ring.Sync()
	}
	nf.sc.outs = make([]*outQ, 0, 16)
	nf.sc.ins = make([]*shm.Ring, 0, 16)
	nf.sc.frees = make([]shm.Slot, 0, 4*shm.MaxBurst)
	nf.sc.kept = make([]shm.Slot, 0, shm.MaxBurst)
	nf.sc.ri = make([]state.RingIndex, 0, 32)
	return nil
}

func envBytes(name string) (uint64, error) {
	v := os.Getenv(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 0, 64)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: not a byte count", name, v)
	}
	return n, nil
}

// Recovery is what the NF found and did about its predecessor's
// interrupted transaction when it started.
func (nf *NF) Recovery() state.Report { return nf.recovery }

// State is the NF's state file (containers, transaction counters).
func (nf *NF) State() *state.File { return nf.st }

// Transactional reports whether bursts are transactions (not REINFORCE_TX=off).
func (nf *NF) Transactional() bool { return !nf.txOff }

// NewMap opens (or, the first time, creates) the NF's state map name with
// room for capacity entries. K and V must be plain, pointer-free types; K
// without padding.
func NewMap[K comparable, V any](nf *NF, name string, capacity int) (*state.Map[K, V], error) {
	return state.NewMap[K, V](nf.st, name, capacity)
}

// NewArray opens (or creates) the NF's state array name of n values.
func NewArray[V any](nf *NF, name string, n int) (*state.Array[V], error) {
	return state.NewArray[V](nf.st, name, n)
}

// NewValue opens (or creates) the NF's single state value name.
func NewValue[V any](nf *NF, name string) (*state.Value[V], error) {
	return state.NewValue[V](nf.st, name)
}

// Queue is a packet queue in the NF's state: packets pushed stay the NF's
// across bursts and fail over with its state.
type Queue struct {
	nf *NF
	q  *state.Queue
}

// NewQueue opens (or creates) the NF's packet queue name.
func (nf *NF) NewQueue(name string, capacity int) (*Queue, error) {
	q, err := state.NewQueue(nf.st, name, capacity)
	if err != nil {
		return nil, err
	}
	return &Queue{nf: nf, q: q}, nil
}

// Push queues p; the handler then returns Keep for it.
func (q *Queue) Push(p Packet) error {
	if err := q.q.Push(p.slot); err != nil {
		return err
	}
	q.nf.sc.kept = append(q.nf.sc.kept, p.slot)
	return nil
}

// Pop takes the oldest queued packet (to Inject or free in this burst).
func (q *Queue) Pop() (Packet, bool) {
	s, ok, err := q.q.Pop()
	if err != nil {
		q.nf.fail(err)
		return Packet{}, false
	}
	if !ok {
		return Packet{}, false
	}
	return Packet{r: q.nf.region, slot: s, nf: q.nf}, true
}

// Len is the number of queued packets.
func (q *Queue) Len() int { return q.q.Len() }

// Fail aborts the burst or callback in progress: everything it did is
// rolled back at its end (its input packets are delivered again) and Run
// returns err. For a handler that cannot do its work (a full state map, say)
// and must not commit half of it. A failed state write does this by itself.
func (nf *NF) Fail(err error) { nf.fail(err) }

// fail records an error inside the open scope: the scope rolls back at its
// end and the NF stops with the error.
func (nf *NF) fail(err error) {
	if nf.sc.err == nil {
		nf.sc.err = err
	}
}

// begin opens a scope (a transaction unless they are off).
func (nf *NF) begin() error {
	sc := &nf.sc
	sc.open = true
	sc.err = nil
	if nf.tx != nil && !nf.txOff {
		return nf.tx.Begin()
	}
	return nil
}

// inScope runs fn inside a scope, opening (and committing) one if none is
// open: for NF calls made outside the loop (before Run).
func (nf *NF) inScope(fn func() error) error {
	if nf.sc.open {
		return fn()
	}
	if err := nf.begin(); err != nil {
		return err
	}
	err := fn()
	if cerr := nf.commit(); err == nil {
		err = cerr
	}
	return err
}

// stage sends slots to q inside the scope (published at commit) and returns
// how many it took.
func (nf *NF) stage(q *outQ, s []shm.Slot) int {
	k, _ := nf.cache.Stage(q.ring, s)
	if k > 0 && !q.pend {
		q.pend = true
		nf.sc.outs = append(nf.sc.outs, q)
	}
	return k
}

// deferFree frees s at commit.
func (nf *NF) deferFree(s ...shm.Slot) { nf.sc.frees = append(nf.sc.frees, s...) }

// commit ends the scope: commit record, then publication in an order a
// crash at any point leaves recoverable — outputs, inputs, frees.
func (nf *NF) commit() error {
	sc := &nf.sc
	if sc.err != nil {
		return nf.abort()
	}
	tx := nf.tx != nil && !nf.txOff
	crashpoint.Hit(crashpoint.BeforeCommit)
	if tx {
		sc.ri = sc.ri[:0]
		for _, r := range sc.ins {
			sc.ri = append(sc.ri, state.RingIndex{Ring: r.ID(), Index: r.ConsumerCursor()})
		}
		nIn := len(sc.ri)
		for _, q := range sc.outs {
			sc.ri = append(sc.ri, state.RingIndex{Ring: q.ring.ID(), Index: q.ring.ProducerCursor()})
		}
		if err := nf.tx.Commit(sc.ri[:nIn], sc.ri[nIn:], sc.frees); err != nil {
			sc.err = err
			return nf.abort()
		}
	}
	if nf.firstCommit {
		nf.firstCommit = false
		nf.st.MarkFirstCommit(state.MonoNs())
	}
	crashpoint.Hit(crashpoint.AfterCommit)
	for i, q := range sc.outs {
		if i == 1 {
			crashpoint.Hit(crashpoint.BetweenPublications)
		}
		q.ring.Publish()
		q.pend = false
	}
	if len(sc.outs) < 2 {
		crashpoint.Hit(crashpoint.BetweenPublications)
	}
	for _, r := range sc.ins {
		r.Release() // before the frees: a freed slot must have left the ring's window
	}
	nf.freeAll(sc.frees)
	crashpoint.Hit(crashpoint.AfterPublication)
	if tx {
		nf.tx.Done()
	}
	nf.endScope()
	return nil
}

// abort rolls the scope back in process and returns its error.
func (nf *NF) abort() error {
	sc := &nf.sc
	err := sc.err
	if nf.tx != nil && !nf.txOff {
		if rerr := nf.tx.Rollback(); rerr != nil {
			err = errors.Join(err, fmt.Errorf("roll back: %w", rerr))
		}
	}
	for _, q := range sc.outs {
		q.ring.Unstage()
		q.pend = false
	}
	for _, r := range sc.ins {
		r.Rewind()
	}
	if nf.txOff {
		nf.freeAll(sc.frees) // nothing to roll back: do what was asked
	}
	nf.endScope()
	return fmt.Errorf("transaction rolled back: %w", err)
}

func (nf *NF) endScope() {
	sc := &nf.sc
	sc.outs, sc.ins, sc.frees, sc.kept = sc.outs[:0], sc.ins[:0], sc.frees[:0], sc.kept[:0]
	sc.open, sc.err = false, nil
}

// outRoom is how many packets every output ring can still take: a burst
// takes no more inputs than that, so nothing is dropped after its commit.
func (nf *NF) outRoom(rt *routeTable) int {
	room := uint32(shm.MaxBurst)
	for _, q := range rt.outs {
		f, err := q.ring.Free()
		if err != nil {
			return 0
		}
		room = min(room, f)
	}
	return int(room)
}

// isKept reports whether s was pushed onto a queue in this scope.
func (nf *NF) isKept(s shm.Slot) bool {
	for _, k := range nf.sc.kept {
		if k == s {
			return true
		}
	}
	return false
}
