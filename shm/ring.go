package shm

import (
	"fmt"
	"sync/atomic"
	"unsafe"
)

// Ring is one process's handle on a single-producer/single-consumer ring of
// slot references in the region. Exactly one process produces into a ring
// and exactly one consumes from it; a handle is used from one goroutine.
//
// Both sides are two-phase, so a process killed between the phases leaves
// the ring exactly as it was:
//   - produce: Stage writes entries beyond the shared producer index through
//     a private cursor; Publish makes them visible with one store.
//   - consume: Peek reads entries through a private cursor; Release moves
//     the shared consumer index with one store.
//
// Indices are free-running uint32 counters; entries are addressed modulo
// the power-of-two capacity, and unsigned subtraction handles wrap-around.
// The capacity and mask come from the validated layout, never from the
// ring's own header, so a scribbled header cannot steer accesses.
type Ring struct {
	id      uint32
	mask    uint32
	cap     uint32
	prod    *atomic.Uint32 // written only by the producer process
	cons    *atomic.Uint32 // written only by the consumer process
	entries []Slot
	bell    Doorbell // rung for the consumer after each Publish

	// Producer-private state.
	pcur       uint32 // next entry to stage
	ppub       uint32 // last value stored to prod
	pconsCache uint32 // last value loaded from cons

	// Consumer-private state.
	ccur       uint32 // next entry to peek
	crel       uint32 // last value stored to cons
	cprodCache uint32 // last value loaded from prod
}

func newRing(base unsafe.Pointer, id, capacity uint32, bell Doorbell) *Ring {
	r := &Ring{
		id:   id,
		mask: capacity - 1,
		cap:  capacity,
		prod: (*atomic.Uint32)(unsafe.Add(base, CacheLineBytes)),
		cons: (*atomic.Uint32)(unsafe.Add(base, 2*CacheLineBytes)),
		bell: bell,
	}
	r.entries = unsafe.Slice((*Slot)(unsafe.Add(base, ringHeaderBytes)), capacity)
	r.Sync()
	return r
}

// ID is the ring's index in the region's ring table.
func (r *Ring) ID() uint32 { return r.id }

// Cap is the ring's capacity in entries.
func (r *Ring) Cap() uint32 { return r.cap }

// Sync reloads both private cursors from the shared indices, dropping any
// staged-but-unpublished entries and peeked-but-unreleased ones. Call it when
// taking over a ring (a new or standby process).
func (r *Ring) Sync() {
	p, c := r.prod.Load(), r.cons.Load()
	r.pcur, r.ppub, r.pconsCache = p, p, c
	r.ccur, r.crel, r.cprodCache = c, c, p
}

// Count is the number of published, unreleased entries, read from the
// shared indices (any process may call it; the value may be stale at once).
func (r *Ring) Count() uint32 {
	n := r.prod.Load() - r.cons.Load()
	if n > r.cap {
		return r.cap
	}
	return n
}

func (r *Ring) corrupt(what string, v uint32) error {
	return &CorruptError{What: fmt.Sprintf("ring %d %s", r.id, what), Value: uint64(v),
		Why: fmt.Sprintf("indices more than capacity %d apart", r.cap)}
}

// Free is the room left for staging, as the producer sees it.
func (r *Ring) Free() (uint32, error) {
	r.pconsCache = r.cons.Load() // pairs with the Store of cons in Release
	used := r.pcur - r.pconsCache
	if used > r.cap {
		return 0, r.corrupt("consumer index", r.pconsCache)
	}
	return r.cap - used, nil
}

// Stage writes up to len(s) entries beyond the producer index (as many as
// fit) and returns how many. They stay invisible until Publish. Producer only.
func (r *Ring) Stage(s []Slot) (int, error) {
	free := r.cap - (r.pcur - r.pconsCache)
	if free > r.cap || uint32(len(s)) > free {
		var err error
		if free, err = r.Free(); err != nil {
			return 0, err
		}
	}
	n := uint32(len(s))
	if n > free {
		n = free
	}
	cur := r.pcur
	for i := uint32(0); i < n; i++ {
		r.entries[(cur+i)&r.mask] = s[i]
	}
	r.pcur = cur + n
	return int(n), nil
}

// StageBulk stages all of s or nothing. Producer only.
func (r *Ring) StageBulk(s []Slot) (bool, error) {
	free := r.cap - (r.pcur - r.pconsCache)
	if free > r.cap || uint32(len(s)) > free {
		var err error
		if free, err = r.Free(); err != nil {
			return false, err
		}
		if uint32(len(s)) > free {
			return false, nil
		}
	}
	_, err := r.Stage(s)
	return true, err
}

// Staged is the number of entries staged and not yet published.
func (r *Ring) Staged() uint32 { return r.pcur - r.ppub }

// Publish makes every staged entry visible to the consumer and rings its
// doorbell if it sleeps. Producer only.
func (r *Ring) Publish() {
	if r.pcur == r.ppub {
		return
	}
	r.ppub = r.pcur
	r.prod.Store(r.pcur) // publishes the entries written in Stage; pairs with the Load of prod in Peek
	r.bell.Ring()
}

// Unstage drops every staged, unpublished entry. Producer only.
func (r *Ring) Unstage() { r.pcur = r.ppub }

// Enqueue stages as many of s as fit and publishes them. Producer only.
func (r *Ring) Enqueue(s []Slot) (int, error) {
	n, err := r.Stage(s)
	r.Publish()
	return n, err
}

// Avail is the number of entries the consumer can still peek.
func (r *Ring) Avail() (uint32, error) {
	r.cprodCache = r.prod.Load() // pairs with the Store of prod in Publish
	n := r.cprodCache - r.ccur
	if n > r.cap {
		return 0, r.corrupt("producer index", r.cprodCache)
	}
	return n, nil
}

// Peek reads up to len(out) entries through the private cursor and returns
// how many. The shared consumer index does not move until Release, so the
// entries stay in the ring (and are delivered again after Sync) until then.
// Consumer only.
func (r *Ring) Peek(out []Slot) (int, error) {
	avail := r.cprodCache - r.ccur
	if avail < uint32(len(out)) || avail > r.cap {
		var err error
		if avail, err = r.Avail(); err != nil || avail == 0 {
			return 0, err
		}
	}
	n := uint32(len(out))
	if n > avail {
		n = avail
	}
	cur := r.ccur
	for i := uint32(0); i < n; i++ {
		out[i] = r.entries[(cur+i)&r.mask]
	}
	r.ccur = cur + n
	return int(n), nil
}

// PeekBulk reads exactly len(out) entries or none. Consumer only.
func (r *Ring) PeekBulk(out []Slot) (bool, error) {
	avail := r.cprodCache - r.ccur
	if uint32(len(out)) > avail || avail > r.cap {
		var err error
		if avail, err = r.Avail(); err != nil || uint32(len(out)) > avail {
			return false, err
		}
	}
	_, err := r.Peek(out)
	return true, err
}

// Peeked is the number of entries peeked and not yet released.
func (r *Ring) Peeked() uint32 { return r.ccur - r.crel }

// Release frees the ring space of every peeked entry. Consumer only.
func (r *Ring) Release() {
	if r.ccur == r.crel {
		return
	}
	r.crel = r.ccur
	r.cons.Store(r.ccur) // frees the entries read in Peek; pairs with the Load of cons in Free
}

// Rewind forgets every unreleased peek: the next Peek returns them again.
// Consumer only.
func (r *Ring) Rewind() { r.ccur = r.crel }

// Dequeue peeks up to len(out) entries and releases them. Consumer only.
func (r *Ring) Dequeue(out []Slot) (int, error) {
	n, err := r.Peek(out)
	r.Release()
	return n, err
}

// HasWork reports whether a peek would return something: for sleep conditions.
func (r *Ring) HasWork() bool { return r.prod.Load() != r.ccur }

// Bell is the doorbell the producer rings for this ring's consumer.
func (r *Ring) Bell() Doorbell { return r.bell }

// window returns the shared [cons, prod) indices, for recovery.
func (r *Ring) window() (cons, prod uint32) { return r.cons.Load(), r.prod.Load() }

// resetIndices sets both shared indices (creator-only, when no process
// uses the ring) and resyncs this handle. Tests use it to exercise wrap-around.
func (r *Ring) resetIndices(v uint32) {
	r.prod.Store(v)
	r.cons.Store(v)
	r.Sync()
}

// InjectProducerIndex stores v as the shared producer index, as a process
// scribbling over the region would. It exists for fault-injection tests and
// tools; the data path never calls it.
func (r *Ring) InjectProducerIndex(v uint32) { r.prod.Store(v) }
