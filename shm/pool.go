package shm

// The packet pool, in the order slots move through it:
//
//	creator free list ──Service──▶ owner's fill ring ──Alloc──▶ held by owner
//	held ──Send──▶ edge ring ──Recv──▶ held by the ring's consumer
//	held ──Free──▶ owner's drain ring ──Service──▶ free list (or a fill ring)
//
// Ownership rule: only the creator touches the free list (so no
// multi-producer structure is shared between processes, and a process killed
// at any instruction cannot corrupt it). Every other hand-off goes through a
// single-producer/single-consumer ring, and every slot carries a state word
// (generation, kind, owner, ring) that the receiving side checks, so a stale,
// forged or double-freed reference is detected and counted, never shared.
// When an owner dies the creator reclaims everything it held (Reclaim).

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Pool is the creator's side of the packet pool: the free list, the owner
// table and the trusted record of which owner produces and consumes each
// edge ring. Safe for concurrent use by the creator's goroutines.
type Pool struct {
	r    *Region
	bell Doorbell // owners ring it when their fill runs low or drain fills up

	mu     sync.Mutex // guards everything below
	free   []uint32   // slot indices; the creator's private free list
	owners []ownerRec // indexed by OwnerID
	rings  []ringRec  // indexed by ring ID
	buf    []Slot     // scratch for Service
	closed bool

	stopping atomic.Bool
	wg       sync.WaitGroup
}

type ownerRec struct {
	active      bool
	fill, drain *Ring  // creator's handles: producer of fill, consumer of drain
	lastAllocs  uint64 // the owner's alloc counter at the previous top-up
}

// Fill levels: an owner starts with one burst of slots and is topped up to
// fillTarget (or half its cache, if larger) only while it allocates, so the many NFs that only forward do
// not sit on slots the pool needs elsewhere (127 NFs × a full cache would
// exceed the pool).
const (
	fillInitial = BurstSize
	fillTarget  = 256
)

type ringRec struct {
	assigned   bool
	prod, cons OwnerID
	h          *Ring
}

// PoolBell is the doorbell index reserved for the pool's service loop.
const PoolBell = 0

func newPool(r *Region) *Pool {
	p := &Pool{
		r:      r,
		free:   make([]uint32, 0, r.l.slots.count),
		owners: make([]ownerRec, r.l.caches.count),
		rings:  make([]ringRec, r.l.rings.count),
		buf:    make([]Slot, r.l.cacheCap),
	}
	p.bell, _ = r.Doorbell(PoolBell)
	// Push in reverse so the first allocations get low indices (readable dumps).
	for i := uint32(r.l.slots.count); i > 0; i-- {
		r.slotState(i - 1).Store(stateWord(0, kindFree, 0, 0))
		p.free = append(p.free, i-1)
	}
	return p
}

func (p *Pool) close() {
	p.StopService()
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
}

// StartService starts the creator's service loop (routineService). Call it
// once; StopService or the region's Close stops it.
func (p *Pool) StartService() {
	p.wg.Add(1)
	go p.routineService()
}

// StopService stops the service loop and waits for it. Idempotent.
func (p *Pool) StopService() {
	p.stopping.Store(true)
	p.bell.seq.Add(1) // wake it even between its sleepers check and its sleep
	futexWakeWord(p.bell.seq, 1<<30)
	p.wg.Wait()
}

// routineService services the caches whenever an owner rings the pool's
// doorbell, and at least every 100 ms (owners ring it whenever they need
// it; the bound is a safety net, cheap for an idle manager). It
// stops when StopService sets stopping and rings the doorbell.
func (p *Pool) routineService() {
	defer p.wg.Done()
	stop := func() bool { return p.stopping.Load() }
	w := Waiter{Bell: p.bell, Spins: 64, Max: 100 * time.Millisecond}
	for !p.stopping.Load() {
		p.Service()
		w.Wait(stop)
	}
}

// Bell is the doorbell the pool's service loop sleeps on.
func (p *Pool) Bell() Doorbell { return p.bell }

// FreeCount is the number of slots in the creator's free list.
func (p *Pool) FreeCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.free)
}

// Capacity is the number of slots in the pool.
func (p *Pool) Capacity() int { return int(p.r.l.slots.count) }

// AddOwner activates owner o's cache for process pid and pre-fills it. An
// owner must be added before it allocates, sends or receives.
func (p *Pool) AddOwner(o OwnerID, pid int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if o == 0 || uint64(o) >= p.r.l.caches.count {
		return fmt.Errorf("add owner %d: out of range 1..%d", o, p.r.l.caches.count-1)
	}
	if p.owners[o].active {
		return fmt.Errorf("add owner %d: already active", o)
	}
	h := (*cacheHeader)(p.r.cacheBase(o))
	*h = cacheHeader{owner: uint16(o), pid: int32(pid)}
	*(*[CacheLineBytes]byte)(unsafe.Add(p.r.cacheBase(o), CacheLineBytes)) = [CacheLineBytes]byte{} // zero its Counters
	fill, drain := p.r.cacheRings(o, Doorbell{}, Doorbell{})
	fill.resetIndices(0)
	drain.resetIndices(0)
	p.owners[o] = ownerRec{active: true, fill: fill, drain: drain}
	p.topUp(o)
	(*atomic.Uint32)(unsafe.Pointer(&h.state)).Store(1) // the record is complete before the owner may open it
	return nil
}

// Adopt gives active owner o's cache, as a dead process left it, to the
// process pid that takes over (a restarted NF that recovers its
// transactions): nothing is reclaimed or reset.
func (p *Pool) Adopt(o OwnerID, pid int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if o == 0 || uint64(o) >= p.r.l.caches.count || !p.owners[o].active {
		return fmt.Errorf("adopt owner %d: not active", o)
	}
	p.cacheHdr(o).pid = int32(pid)
	return nil
}

// AssignRing records that owner prod produces into edge ring id and owner
// cons consumes from it, rings doorbell bell for the consumer, and resets
// the ring to empty. The ring must not be in use.
func (p *Pool) AssignRing(id uint32, prod, cons OwnerID, bell uint32) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if uint64(id) >= p.r.l.rings.count {
		return fmt.Errorf("assign ring %d: out of range", id)
	}
	if uint64(bell) >= p.r.l.doorbells.count {
		return fmt.Errorf("assign ring %d: doorbell %d out of range", id, bell)
	}
	if p.rings[id].assigned {
		return fmt.Errorf("assign ring %d: already assigned", id)
	}
	h := (*ringHeader)(p.r.ringBase(id))
	*h = ringHeader{id: id, capacity: p.r.l.ringCap, prodOwner: uint16(prod), consOwner: uint16(cons), bell: bell, state: 1}
	rh, _ := p.r.OpenRing(id)
	rh.resetIndices(0)
	p.rings[id] = ringRec{assigned: true, prod: prod, cons: cons, h: rh}
	return nil
}

// ReleaseRing frees every slot still in ring id and unassigns it. Neither
// end may use the ring any more.
func (p *Pool) ReleaseRing(id uint32) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if uint64(id) >= p.r.l.rings.count || !p.rings[id].assigned {
		return fmt.Errorf("release ring %d: not assigned", id)
	}
	rec := p.rings[id]
	mark := newBitmap(p.r.l.slots.count)
	p.markWindow(rec.h, mark)
	p.freeMarked(mark)
	(*ringHeader)(p.r.ringBase(id)).state = 0
	p.rings[id] = ringRec{}
	return nil
}

// Service moves freed slots from every owner's drain ring back to the free
// list and tops every fill ring up. Call it from one creator goroutine
// whenever the pool doorbell rings, and periodically.
func (p *Pool) Service() (moved int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0
	}
	for o := range p.owners {
		rec := &p.owners[o]
		if !rec.active {
			continue
		}
		for {
			n, err := rec.drain.Dequeue(p.buf)
			if err != nil {
				// The owner scribbled its drain indices: resync and count.
				rec.drain.Sync()
				p.cacheHdr(OwnerID(o)).bad++
				break
			}
			for _, s := range p.buf[:n] {
				if p.takeBack(s, kindDrain, OwnerID(o)) {
					moved++
				} else {
					p.cacheHdr(OwnerID(o)).bad++
				}
			}
			if n < len(p.buf) {
				break
			}
		}
		p.topUp(OwnerID(o))
	}
	return moved
}

// takeBack returns s to the free list if its state is (kind, owner);
// otherwise it is not this owner's to return and is left alone.
func (p *Pool) takeBack(s Slot, kind uint64, o OwnerID) bool {
	i := s.Index()
	if uint64(i) >= p.r.l.slots.count {
		return false
	}
	st := p.r.slotState(i)
	w := st.Load()
	if stKind(w) != kind || stOwner(w) != o || !stTagOK(w, s) {
		return false
	}
	if !st.CompareAndSwap(w, stateWord(stGen(w), kindFree, 0, 0)) {
		return false
	}
	p.free = append(p.free, i)
	return true
}

// topUp refills owner o's fill ring from the free list: to fillInitial for
// an owner that does not allocate, to fillTarget (in batches, once it is
// half empty) for one that does. mu held.
func (p *Pool) topUp(o OwnerID) {
	rec := &p.owners[o]
	room, err := rec.fill.Free()
	if err != nil {
		rec.fill.Sync()
		return
	}
	target := min(uint32(fillInitial), p.r.l.cacheCap)
	if allocs := atomic.LoadUint64(&p.cacheHdr(o).allocs); allocs != rec.lastAllocs {
		rec.lastAllocs = allocs
		target = max(min(uint32(fillTarget), p.r.l.cacheCap), p.r.l.cacheCap/2)
	}
	have := p.r.l.cacheCap - room
	if have >= target/2 && have > 0 {
		return // refill in batches, not a few slots per service round
	}
	room = target - have
	for room > 0 && len(p.free) > 0 {
		n := min(room, uint32(len(p.free)), uint32(len(p.buf)))
		for k := uint32(0); k < n; k++ {
			i := p.free[len(p.free)-1]
			p.free = p.free[:len(p.free)-1]
			st := p.r.slotState(i)
			gen := stGen(st.Load())
			st.Store(stateWord(gen, kindFill, o, 0))
			p.buf[k] = makeSlot(i, gen)
		}
		rec.fill.Stage(p.buf[:n])
		room -= n
	}
	rec.fill.Publish()
}

func (p *Pool) cacheHdr(o OwnerID) *cacheHeader { return (*cacheHeader)(p.r.cacheBase(o)) }

// OwnerStats returns owner o's counters as it published them.
func (p *Pool) OwnerStats(o OwnerID) (allocs, frees, bad uint64) {
	if o == 0 || uint64(o) >= p.r.l.caches.count {
		return 0, 0, 0
	}
	h := p.cacheHdr(o)
	return atomic.LoadUint64(&h.allocs), atomic.LoadUint64(&h.frees), atomic.LoadUint64(&h.bad)
}

// OwnerConfigVersion is the configuration version owner o last published
// (Cache.SetConfigVersion).
func (p *Pool) OwnerConfigVersion(o OwnerID) uint64 {
	if o == 0 || uint64(o) >= p.r.l.caches.count {
		return 0
	}
	return atomic.LoadUint64(&p.cacheHdr(o).config)
}

// OwnerCounters returns owner o's packet counters (nil if o is out of range).
func (p *Pool) OwnerCounters(o OwnerID) *Counters {
	if o == 0 || uint64(o) >= p.r.l.caches.count {
		return nil
	}
	return (*Counters)(unsafe.Add(p.r.cacheBase(o), CacheLineBytes))
}

// ReclaimOptions chooses what Reclaim does with the dead owner's input rings.
type ReclaimOptions struct {
	// KeepInputs keeps the packets waiting in (and peeked from) the rings the
	// dead owner consumed, for a restarted or standby process to continue
	// from; otherwise they are freed and the rings emptied.
	KeepInputs bool
}

// Reclaim returns to the free list every slot that dead owner o held: its
// fill and drain rings, slots it allocated or received, slots it staged but
// never published, and (unless KeepInputs) the contents of its input rings.
// Packets it published to a live consumer stay in flight. The caller MUST
// know o's process is dead (pidfd): a live owner would be corrupted. Returns
// the number of slots reclaimed.
func (p *Pool) Reclaim(o OwnerID, opt ReclaimOptions) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if o == 0 || uint64(o) >= p.r.l.caches.count || !p.owners[o].active {
		return 0, fmt.Errorf("reclaim owner %d: not active", o)
	}
	n := uint64(p.r.l.slots.count)
	mark := newBitmap(n)
	keep := newBitmap(n)
	rec := &p.owners[o]

	// 1. Its cache rings: the creator is the other end of both.
	p.markWindow(rec.fill, mark)
	p.markWindow(rec.drain, mark)

	// 2. Rings it consumed: the producer may still be publishing, so take
	// the window once and act only on it.
	for id := range p.rings {
		rr := &p.rings[id]
		if !rr.assigned || rr.cons != o {
			continue
		}
		if !opt.KeepInputs {
			cons, prod := p.markWindowIdx(rr.h, mark)
			if prod-cons <= rr.h.cap {
				rr.h.cons.Store(prod) // the creator stands in for the dead consumer
			}
			continue
		}
		// Put back what it had peeked, so the next consumer's checks accept it.
		cons, prod := rr.h.window()
		if prod-cons > rr.h.cap {
			continue
		}
		for k := cons; k != prod; k++ {
			s := rr.h.entries[k&rr.h.mask]
			i := s.Index()
			if uint64(i) >= n {
				continue
			}
			keep.set(uint64(i))
			st := p.r.slotState(i)
			w := st.Load()
			switch {
			case stOwner(w) == o && stKind(w) == kindHeld && stTagOK(w, s):
				st.CompareAndSwap(w, stateWord(stGen(w), kindRing, rr.prod, uint16(id)))
			case stOwner(w) == o && stKind(w) == kindDrain && genTag(stGen(w)-1) == s.Gen():
				// Freed before its release (a consumer bug): the drain ring is
				// reset below, so the packet is still intact; deliver it again.
				st.CompareAndSwap(w, stateWord(stGen(w)-1, kindRing, rr.prod, uint16(id)))
			}
		}
	}

	// 3. Slots it published to live consumers stay in flight: note them
	// before reading slot states (a consumer changes the owner before it
	// releases, so a slot missing here already shows its new owner below).
	inflight := newBitmap(n)
	for id := range p.rings {
		rr := &p.rings[id]
		if rr.assigned && rr.prod == o && rr.cons != o {
			cons, prod := rr.h.window()
			if prod-cons > rr.h.cap {
				continue
			}
			for k := cons; k != prod; k++ {
				if i := uint64(rr.h.entries[k&rr.h.mask].Index()); i < n {
					inflight.set(i)
				}
			}
		}
	}

	// 4. Every slot whose state names it.
	for i := uint64(0); i < n; i++ {
		w := p.r.slotState(uint32(i)).Load()
		if stOwner(w) != o || stKind(w) == kindFree || keep.has(i) {
			continue
		}
		if stKind(w) == kindRing && inflight.has(i) {
			continue
		}
		mark.set(i)
	}
	freed := p.freeMarked(mark, keep)

	// 5. Reset its cache record for the next owner with this ID.
	rec.fill.resetIndices(0)
	rec.drain.resetIndices(0)
	(*atomic.Uint32)(unsafe.Pointer(&p.cacheHdr(o).state)).Store(0)
	rec.active = false
	return freed, nil
}

// DrainInputs frees what waits in every ring that inactive owner o consumes
// (a dead NF retained for a restart that did not come), standing in as the
// rings' consumer. It returns the number of slots freed.
func (p *Pool) DrainInputs(o OwnerID) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if o == 0 || uint64(o) >= p.r.l.caches.count {
		return 0, fmt.Errorf("drain inputs of owner %d: out of range", o)
	}
	if p.owners[o].active {
		return 0, fmt.Errorf("drain inputs of owner %d: owner is active", o)
	}
	mark := newBitmap(p.r.l.slots.count)
	for id := range p.rings {
		rr := &p.rings[id]
		if !rr.assigned || rr.cons != o {
			continue
		}
		if cons, prod := p.markWindowIdx(rr.h, mark); prod-cons <= rr.h.cap {
			rr.h.cons.Store(prod)
		}
	}
	return p.freeMarked(mark), nil
}

// markWindow marks every slot in ring h's published window.
func (p *Pool) markWindow(h *Ring, mark bitmap) { p.markWindowIdx(h, mark) }

func (p *Pool) markWindowIdx(h *Ring, mark bitmap) (cons, prod uint32) {
	cons, prod = h.window()
	if prod-cons > h.cap {
		return cons, prod // corrupt indices: the state scan still finds held slots
	}
	for k := cons; k != prod; k++ {
		if i := uint64(h.entries[k&h.mask].Index()); i < mark.n {
			mark.set(i)
		}
	}
	return cons, prod
}

// freeMarked returns every marked slot that is not already free and not kept.
func (p *Pool) freeMarked(mark bitmap, keep ...bitmap) int {
	freed := 0
	for i := uint64(0); i < mark.n; i++ {
		if !mark.has(i) || (len(keep) > 0 && keep[0].has(i)) {
			continue
		}
		st := p.r.slotState(uint32(i))
		w := st.Load()
		if stKind(w) == kindFree {
			continue
		}
		st.Store(stateWord(stGen(w)+1, kindFree, 0, 0))
		p.free = append(p.free, uint32(i))
		freed++
	}
	return freed
}

type bitmap struct {
	w []uint64
	n uint64
}

func newBitmap(n uint64) bitmap    { return bitmap{w: make([]uint64, (n+63)/64), n: n} }
func (b bitmap) set(i uint64)      { b.w[i/64] |= 1 << (i % 64) }
func (b bitmap) has(i uint64) bool { return b.w[i/64]&(1<<(i%64)) != 0 }
