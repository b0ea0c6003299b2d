package shm

import (
	"fmt"
	"sync/atomic"
	"unsafe"
)

// Cache is one owner's allocation cache and its identity for hand-overs:
// it allocates from the owner's fill ring, frees into its drain ring, and
// sends and receives slots through edge rings with the ownership checks.
// A Cache is used from one goroutine; it lives in the region, tagged with
// its owner, so the creator reclaims everything it held if the owner dies.
type Cache struct {
	r           *Region
	owner       OwnerID
	hdr         *cacheHeader
	fill, drain *Ring
	poolBell    Doorbell
	low         uint32 // ring the pool when fill drops below this

	// Counters, also published in the cache record for the creator.
	Allocs, Frees, Bad uint64
}

// OpenCache opens owner o's cache, which the creator must have added
// (Pool.AddOwner). Both ends' private cursors start from the shared indices.
func (r *Region) OpenCache(o OwnerID) (*Cache, error) {
	if o == 0 || uint64(o) >= r.l.caches.count {
		return nil, fmt.Errorf("open cache %d: out of range 1..%d", o, r.l.caches.count-1)
	}
	hdr := (*cacheHeader)(r.cacheBase(o))
	if (*atomic.Uint32)(unsafe.Pointer(&hdr.state)).Load() != 1 || OwnerID(hdr.owner) != o {
		return nil, fmt.Errorf("open cache %d: not activated by the creator", o)
	}
	bell, _ := r.Doorbell(PoolBell)
	fill, drain := r.cacheRings(o, Doorbell{}, bell)
	return &Cache{r: r, owner: o, hdr: hdr, fill: fill, drain: drain, poolBell: bell, low: min(2*BurstSize, r.l.cacheCap/2)}, nil
}

// Counters are an owner's packet counters, in the second line of its cache
// record: written by the owner (one goroutine), read by the creator for
// stats (ONVM's per-NF stats in onvm_nf.stats).
type Counters struct {
	RX, TX, RXDrop, TXDrop            atomic.Uint64
	ActOut, ActToNF, ActDrop, ActNext atomic.Uint64
}

// Counters returns the owner's counters in the region.
func (c *Cache) Counters() *Counters {
	return (*Counters)(unsafe.Add(c.r.cacheBase(c.owner), CacheLineBytes))
}

// SetConfigVersion publishes the version of the control plane's
// configuration (routes, tables) that the owner now runs, so the creator can
// tell when a change has reached every process.
func (c *Cache) SetConfigVersion(v uint64) { atomic.StoreUint64(&c.hdr.config, v) }

// Owner is the cache's owner ID.
func (c *Cache) Owner() OwnerID { return c.owner }

// Region is the region the cache belongs to.
func (c *Cache) Region() *Region { return c.r }

// Alloc fills out with fresh slots, as many as the cache has (possibly 0:
// the pool's service loop refills it shortly), and returns how many. Each
// slot's metadata is reset for an empty packet. The caller owns them.
func (c *Cache) Alloc(out []Slot) int {
	n, err := c.fill.Peek(out)
	if err != nil {
		c.fill.Sync()
		c.bad(1)
	}
	k := 0
	for _, s := range out[:n] {
		if !c.take(s, kindFill, uint16(c.owner)) {
			continue
		}
		c.r.Meta(s).Reset(0)
		out[k] = s
		k++
	}
	c.fill.Release() // after the states say held: a crash before leaves them in the ring
	if c.fill.Count() < c.low {
		c.poolBell.Ring()
	}
	c.Allocs += uint64(k)
	atomic.StoreUint64(&c.hdr.allocs, c.Allocs)
	return k
}

// AllocBulk allocates exactly len(out) slots or none.
func (c *Cache) AllocBulk(out []Slot) bool {
	if c.fill.Count() < uint32(len(out)) {
		c.poolBell.Ring()
		return false
	}
	if n := c.Alloc(out); n < len(out) {
		c.Free(out[:n])
		return false
	}
	return true
}

// Free returns slots the owner holds to the pool and returns how many it
// consumed from s (the rest stay the caller's: the drain ring is full until
// the pool's service loop runs). A slot the owner does not hold — a double
// free, a stale or forged reference — is refused, counted in Bad, consumed
// and left alone.
func (c *Cache) Free(s []Slot) int {
	room, err := c.drain.Free()
	if err != nil {
		c.drain.Sync()
		c.bad(1)
		return 0
	}
	n := min(uint32(len(s)), room)
	var batch [MaxBurst]Slot
	k := 0
	for _, sl := range s[:n] {
		if !c.transition(sl, kindHeld, kindDrain, 0, true) {
			continue
		}
		batch[k] = makeSlot(sl.Index(), uint32(sl.Gen())+1)
		k++
		if k == len(batch) {
			c.drain.Stage(batch[:k])
			k = 0
		}
	}
	c.drain.Stage(batch[:k])
	c.drain.Publish()
	c.Frees += uint64(n)
	atomic.StoreUint64(&c.hdr.frees, c.Frees)
	if c.drain.Count() > c.low {
		c.poolBell.Ring()
	}
	return int(n)
}

// transition moves slot s from (from, c.owner) to (to, c.owner, ring),
// bumping the generation if bump. False (counted) if s is not in that state.
func (c *Cache) transition(s Slot, from, to uint64, ring uint16, bump bool) bool {
	i := s.Index()
	if uint64(i) >= c.r.l.slots.count {
		c.bad(1)
		return false
	}
	st := c.r.slotState(i)
	w := st.Load()
	if stKind(w) != from || stOwner(w) != c.owner || !stTagOK(w, s) {
		c.bad(1)
		return false
	}
	gen := stGen(w)
	if bump {
		gen++
	}
	if !st.CompareAndSwap(w, stateWord(gen, to, c.owner, ring)) {
		c.bad(1)
		return false
	}
	return true
}

// take makes c the holder of slot s if s's state is kind with the given
// owner (fill slots) or ring (ring slots) and s's generation tag; otherwise
// it counts a refused hand-over and returns false.
func (c *Cache) take(s Slot, kind uint64, match uint16) bool {
	i := s.Index()
	if uint64(i) >= c.r.l.slots.count {
		c.bad(1)
		return false
	}
	st := c.r.slotState(i)
	w := st.Load()
	field := stRing(w)
	if kind == kindFill {
		field = uint16(stOwner(w))
	}
	if stKind(w) != kind || field != match || !stTagOK(w, s) ||
		!st.CompareAndSwap(w, stateWord(stGen(w), kindHeld, c.owner, 0)) {
		c.bad(1)
		return false
	}
	return true
}

func (c *Cache) bad(n uint64) {
	c.Bad += n
	atomic.StoreUint64(&c.hdr.bad, c.Bad)
}

// Stage hands as many of s as fit over to edge ring r (this owner must be its
// producer) and stages them; Publish on r makes them visible. It returns how
// many of s it consumed. A slot this owner does not hold is refused, counted
// and consumed without being staged.
func (c *Cache) Stage(r *Ring, s []Slot) (int, error) {
	free, err := r.Free()
	if err != nil {
		return 0, err
	}
	n := min(uint32(len(s)), free)
	var batch [MaxBurst]Slot
	k := 0
	for _, sl := range s[:n] {
		// The state says "in ring r" before the entry exists, so a crash
		// in between leaves a slot the creator can attribute (Reclaim).
		if !c.transition(sl, kindHeld, kindRing, uint16(r.id), false) {
			continue
		}
		batch[k] = sl
		k++
		if k == len(batch) {
			r.Stage(batch[:k])
			k = 0
		}
	}
	r.Stage(batch[:k])
	return int(n), nil
}

// Send stages s into r and publishes: Stage followed by r.Publish.
func (c *Cache) Send(r *Ring, s []Slot) (int, error) {
	n, err := c.Stage(r, s)
	r.Publish()
	return n, err
}

// Peek reads up to len(out) slots from edge ring r (this owner must be its
// consumer), takes ownership of those that pass the hand-over check and
// returns them compacted at the front of out; r.Release publishes the
// consumption. Entries that fail the check (not in ring r, wrong generation,
// out of range) are counted in Bad and dropped without being freed: they
// are not this owner's to free.
func (c *Cache) Peek(r *Ring, out []Slot) (int, error) {
	n, err := r.Peek(out)
	if err != nil {
		return 0, err
	}
	k := 0
	for _, s := range out[:n] {
		if !c.take(s, kindRing, uint16(r.id)) {
			continue
		}
		out[k] = s
		k++
	}
	return k, nil
}

// Recv is Peek followed by r.Release.
func (c *Cache) Recv(r *Ring, out []Slot) (int, error) {
	n, err := c.Peek(r, out)
	r.Release()
	return n, err
}

// Holds reports whether this owner holds s (for assertions and tests).
func (c *Cache) Holds(s Slot) bool {
	i := s.Index()
	if uint64(i) >= c.r.l.slots.count {
		return false
	}
	w := c.r.slotState(i).Load()
	return stKind(w) == kindHeld && stOwner(w) == c.owner && stTagOK(w, s)
}
