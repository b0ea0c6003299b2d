package shm

import (
	"sync/atomic"
	"unsafe"
)

// What burst transactions (shm/state, nflib) need from the data plane: the
// raw state words to log before a hand-over changes them, the hand-over split
// from the ring read, index stores that recovery can repeat, and the ways a
// recovering process puts a dead holder's slots back where they were.

// MetaFieldBytes is the part of a slot's metadata line that the holder
// writes (everything before the shared state word). Transactions save and
// restore exactly these bytes.
const MetaFieldBytes = 48

// MetaFields returns slot s's metadata fields as bytes (MetaFieldBytes of
// them, never the state word), for saving and restoring them whole.
func (r *Region) MetaFields(s Slot) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(r.Meta(s))), MetaFieldBytes)
}

// SlotWord is slot s's current state word (0 for an out-of-range index).
// Transactions log it before changing it, so recovery can restore it.
func (r *Region) SlotWord(s Slot) uint64 {
	if uint64(s.Index()) >= r.l.slots.count {
		return 0
	}
	return r.slotState(s.Index()).Load()
}

// TakeFrom takes ownership of the entries in s that r's consumer (this
// owner) read with r.Peek, compacting those that pass the hand-over check to
// the front of s and returning their count. Cache.Peek is r.Peek + TakeFrom;
// transactions log the raw entries in between.
func (c *Cache) TakeFrom(r *Ring, s []Slot) int {
	k := 0
	for _, sl := range s {
		if !c.take(sl, kindRing, uint16(r.id)) {
			continue
		}
		s[k] = sl
		k++
	}
	return k
}

// AllocPeek reads up to len(out) entries of the fill ring without taking
// them; AllocTake then takes them. Transactions log the entries in between,
// so a crash after a take leaves a record of the slot.
func (c *Cache) AllocPeek(out []Slot) int {
	n, err := c.fill.Peek(out)
	if err != nil {
		c.fill.Sync()
		c.bad(1)
		return 0
	}
	return n
}

// AllocTake takes the slots AllocPeek returned (compacting those that pass
// the check) and releases them from the fill ring; see Alloc.
func (c *Cache) AllocTake(s []Slot) int {
	k := 0
	for _, sl := range s {
		if !c.take(sl, kindFill, uint16(c.owner)) {
			continue
		}
		c.r.Meta(sl).Reset(0)
		s[k] = sl
		k++
	}
	c.fill.Release()
	if c.fill.Count() < c.low {
		c.poolBell.Ring()
	}
	c.Allocs += uint64(k)
	atomic.StoreUint64(&c.hdr.allocs, c.Allocs)
	return k
}

// RestoreWord puts slot s back into the state orig that a transaction logged
// before taking it, if s is still this owner's (held, or staged into a ring
// by it) with orig's generation. It reports whether s is now in state orig.
// Used by recovery to return a rolled-back burst's inputs to their rings.
func (c *Cache) RestoreWord(s Slot, orig uint64) bool {
	i := s.Index()
	if uint64(i) >= c.r.l.slots.count {
		return false
	}
	st := c.r.slotState(i)
	w := st.Load()
	if w == orig {
		return true
	}
	if stOwner(w) != c.owner || stGen(w) != stGen(orig) || (stKind(w) != kindHeld && stKind(w) != kindRing) {
		return false
	}
	return st.CompareAndSwap(w, orig)
}

// Reown makes slot s held by this owner again if it is this owner's and was
// staged into a ring (a rolled-back output). It reports whether s is now
// held by this owner.
func (c *Cache) Reown(s Slot) bool {
	i := s.Index()
	if uint64(i) >= c.r.l.slots.count {
		return false
	}
	st := c.r.slotState(i)
	w := st.Load()
	if stOwner(w) != c.owner || !stTagOK(w, s) {
		return false
	}
	switch stKind(w) {
	case kindHeld:
		return true
	case kindRing:
		return st.CompareAndSwap(w, stateWord(stGen(w), kindHeld, c.owner, 0))
	}
	return false
}

// Refree finishes the free of slot s (a reference as it was before the
// free) if a crash interrupted it: s still held is freed; s marked as
// draining but absent from the drain ring's published window is staged
// again. Anything else (already in the pool, reallocated) is left alone.
func (c *Cache) Refree(s Slot) {
	i := s.Index()
	if uint64(i) >= c.r.l.slots.count {
		return
	}
	w := c.r.slotState(i).Load()
	if stOwner(w) != c.owner {
		return
	}
	switch {
	case stKind(w) == kindHeld && stTagOK(w, s):
		one := [1]Slot{s}
		c.Free(one[:])
	case stKind(w) == kindDrain && genTag(stGen(w)-1) == s.Gen():
		d := makeSlot(i, stGen(w))
		cons, prod := c.drain.window()
		if prod-cons > c.drain.cap {
			return
		}
		for k := cons; k != prod; k++ {
			if c.drain.entries[k&c.drain.mask] == d {
				return
			}
		}
		one := [1]Slot{d}
		c.drain.Sync()
		c.drain.Enqueue(one[:])
		c.poolBell.Ring()
	}
}

// Resync drops whatever a dead predecessor with this owner ID staged or
// peeked in the cache's fill and drain rings without publishing.
func (c *Cache) Resync() {
	c.fill.Sync()
	c.drain.Sync()
}

// SetLoop publishes the owner's loop iteration count and whether it is
// about to sleep, so the creator can tell a hung process (no progress while
// awake, or while work waits) from an idle one.
func (c *Cache) SetLoop(iter uint64, sleeping bool) {
	w := iter << 1
	if sleeping {
		w |= 1
	}
	atomic.StoreUint64(&c.hdr.loop, w)
}

// OwnerLoop reads what owner o last published with SetLoop.
func (p *Pool) OwnerLoop(o OwnerID) (iter uint64, sleeping bool) {
	if o == 0 || uint64(o) >= p.r.l.caches.count {
		return 0, false
	}
	w := atomic.LoadUint64(&p.cacheHdr(o).loop)
	return w >> 1, w&1 != 0
}

// ProducerCursor is the producer's private cursor: the producer index that
// Publish will store. A commit record lists it.
func (r *Ring) ProducerCursor() uint32 { return r.pcur }

// ConsumerCursor is the consumer's private cursor: the consumer index that
// Release will store.
func (r *Ring) ConsumerCursor() uint32 { return r.ccur }

// PublishTo stores idx as the producer index if it lies ahead of the
// current one by at most the capacity (a committed-but-unpublished burst),
// and does nothing if it is already published. Recovery repeats it safely.
// The handle is resynced from the shared indices afterwards.
func (r *Ring) PublishTo(idx uint32) error {
	p := r.prod.Load()
	if d := idx - p; d != 0 && d <= r.cap {
		if idx-r.cons.Load() > r.cap {
			return r.corrupt("commit producer index", idx)
		}
		r.prod.Store(idx) // publishes entries the dead producer staged before its commit
		r.bell.Ring()
	}
	r.Sync()
	return nil
}

// ReleaseTo stores idx as the consumer index if it lies ahead of the
// current one and not beyond the producer index; see PublishTo.
func (r *Ring) ReleaseTo(idx uint32) error {
	c, p := r.cons.Load(), r.prod.Load()
	if d := idx - c; d != 0 && d <= r.cap {
		if p-idx > r.cap {
			return r.corrupt("commit consumer index", idx)
		}
		r.cons.Store(idx) // frees entries the dead consumer committed; pairs with the Load of cons in Free
	}
	r.Sync()
	return nil
}
