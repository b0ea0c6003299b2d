package flowdir

import "sync/atomic"

// The exact tables: open addressing with linear probing over a flat array of slots, one array
// per address family, sized once and never grown (New). A slot holds only integers, every
// word accessed atomically, so the garbage collector never scans the array and a reader
// racing a writer reads words, never a torn word.
//
// Deletion is backward-shift (Knuth, TAOCP vol. 3 §6.4, Algorithm R), not tombstones: after
// removing an entry, later entries of its probe run move back into the hole, so the table
// never fills with tombstones that lengthen every miss, and needs no rehash. Moving entries
// under a reader could make the reader miss an entry it had not reached yet, so Delete runs
// inside the Table's generation seqlock (see flowdir.go).

// slot4 is one slot of the IPv4 table: 16 bytes, four to a 64-byte cache line (slots4PerLine),
// so 2^21 slots (1 M flows) take 32 MiB.
type slot4 struct {
	// addrs is the source address in bits 63..32 and the destination in bits 31..0; valid iff
	// meta&metaUsed. Written before meta when a slot is filled.
	addrs atomic.Uint64
	// meta holds ports, protocol, chain and the used flag (constants.go); 0 is empty.
	meta atomic.Uint64
}

// slots4PerLine is how many slot4s share a 64-byte cache line; the slice starts on a line
// (a power-of-two allocation of at least 64 bytes is aligned to its size class or page).
const slots4PerLine = 4

// slot6 is one slot of the IPv6 table (and of flows whose two addresses differ in family):
// 64 bytes, one cache line, so a probe touches one line.
type slot6 struct {
	// addrs is source high, source low, destination high, destination low, big-endian halves;
	// valid iff meta&metaUsed. Written before meta when a slot is filled.
	addrs [4]atomic.Uint64
	// meta is as in slot4.
	meta atomic.Uint64
	_    [3]uint64 // pads the slot to one cache line
}

// table4 is the IPv4 exact table. The slice is set once by the writer that creates the table
// and never changes; its length is a power of two.
type table4 struct {
	slots []slot4
}

// table6 is the IPv6 exact table, as table4.
type table6 struct {
	slots []slot6
}

// lookup returns the chain of the IPv4 key (addrs, meta) whose hash is h. It is safe for any
// number of readers concurrently with the writer, but its answer is valid only if the Table's
// generation did not change around it (Table.lookupExact checks). It allocates nothing.
func (t *table4) lookup(addrs, meta, h uint64) (uint16, bool) {
	slots := t.slots
	if len(slots) == 0 { // never; lets the compiler prove i&mask < len(slots), no bounds check
		return 0, false
	}
	mask, i := uint(len(slots)-1), uint(h)
	for range slots { // bounded: a reader racing a Delete may see no empty slot (then it retries)
		s := &slots[i&mask]
		// Load meta, then addrs: pairs with the writer's addrs Store then meta Store in
		// Table.Insert, so a used meta comes with its address.
		m := s.meta.Load()
		if m&metaUsed == 0 {
			return 0, false
		}
		if m&metaKeyMask == meta && s.addrs.Load() == addrs {
			return uint16(m >> metaChainShift), true
		}
		i++
	}
	return 0, false
}

// lookup returns the chain of the IPv6 key k whose hash is h, as table4.lookup.
func (t *table6) lookup(k *key, h uint64) (uint16, bool) {
	slots := t.slots
	if len(slots) == 0 { // as in table4.lookup
		return 0, false
	}
	mask, i := uint(len(slots)-1), uint(h)
	for range slots {
		s := &slots[i&mask]
		m := s.meta.Load() // as in table4.lookup
		if m&metaUsed == 0 {
			return 0, false
		}
		// Low halves first: they differ more often between flows of one site.
		if m&metaKeyMask == k.meta && s.addrs[1].Load() == k.sLo && s.addrs[3].Load() == k.dLo &&
			s.addrs[0].Load() == k.sHi && s.addrs[2].Load() == k.dHi {
			return uint16(m >> metaChainShift), true
		}
		i++
	}
	return 0, false
}

// touch prefetches the cache line of the home slot of hash h (LookupBurst). When the home
// slot is the last of its line, it prefetches the next line too: a probe run that does not
// end at its first slot continues there, and that second miss would otherwise cost a whole
// DRAM latency for about one lookup in ten.
func (t *table4) touch(h uint64) {
	if len(t.slots) == 0 {
		return
	}
	mask := uint(len(t.slots) - 1)
	i := uint(h) & mask
	prefetch(&t.slots[i].addrs)
	if i%slots4PerLine == slots4PerLine-1 {
		prefetch(&t.slots[(i+1)&mask].addrs)
	}
}

// touch is table4.touch for the IPv6 table, whose every slot is a line of its own: it
// prefetches the home slot and the next, which about one lookup in three reaches.
func (t *table6) touch(h uint64) {
	if len(t.slots) == 0 {
		return
	}
	mask := uint(len(t.slots) - 1)
	i := uint(h) & mask
	prefetch(&t.slots[i].addrs[0])
	prefetch(&t.slots[(i+1)&mask].addrs[0])
}

// find returns the slot holding the IPv4 key (addrs, meta) and true, or the empty slot that
// ends the key's probe run and false. Writer only: the table always has an empty slot (at
// most half the slots are used), so the loop ends.
func (t *table4) find(addrs, meta, h uint64) (uint64, bool) {
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		m := t.slots[i].meta.Load()
		if m&metaUsed == 0 {
			return i, false
		}
		if m&metaKeyMask == meta && t.slots[i].addrs.Load() == addrs {
			return i, true
		}
	}
}

// find is table4.find for an IPv6 key.
func (t *table6) find(k *key, h uint64) (uint64, bool) {
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		m := s.meta.Load()
		if m&metaUsed == 0 {
			return i, false
		}
		if m&metaKeyMask == k.meta && s.addrs[0].Load() == k.sHi && s.addrs[1].Load() == k.sLo &&
			s.addrs[2].Load() == k.dHi && s.addrs[3].Load() == k.dLo {
			return i, true
		}
	}
}

// fill stores a key into the empty slot i. Writer only.
func (t *table4) fill(i, addrs, meta uint64) {
	s := &t.slots[i]
	s.addrs.Store(addrs)
	s.meta.Store(meta) // publishes addrs stored above; pairs with the meta Load in lookup
}

// fill stores a key into the empty slot i. Writer only.
func (t *table6) fill(i uint64, k *key, meta uint64) {
	s := &t.slots[i]
	s.addrs[0].Store(k.sHi)
	s.addrs[1].Store(k.sLo)
	s.addrs[2].Store(k.dHi)
	s.addrs[3].Store(k.dLo)
	s.meta.Store(meta) // publishes addrs stored above; pairs with the meta Load in lookup
}

// probeTable is what backwardShift needs of a table. Writer only; not on the packet path.
type probeTable interface {
	// mask is the number of slots minus one.
	mask() uint64
	// used reports whether slot i holds an entry.
	used(i uint64) bool
	// home is the slot where the entry in slot i starts its probe run.
	home(i uint64, s *seeds) uint64
	// move copies slot src into slot dst.
	move(dst, src uint64)
	// clear empties slot i.
	clear(i uint64)
}

// backwardShift empties slot hole, moving later entries of its probe run back so that every
// remaining entry stays reachable from its home slot without crossing an empty slot. The
// caller MUST hold the Table's generation odd: entries move under concurrent readers.
func backwardShift(t probeTable, s *seeds, hole uint64) {
	mask := t.mask()
	for j := (hole + 1) & mask; t.used(j); j = (j + 1) & mask {
		// The entry at j may fill the hole iff its home is not cyclically in (hole, j]: its
		// distance from home is at least the hole's distance.
		if (j-t.home(j, s))&mask >= (j-hole)&mask {
			if testHookShift != nil {
				testHookShift()
			}
			t.move(hole, j)
			hole = j
		}
	}
	if testHookShift != nil {
		testHookShift()
	}
	t.clear(hole)
}

// testHookShift, when set by a test, runs before each slot store of backwardShift, with the
// writer lock held. Nil outside tests.
var testHookShift func()

func (t *table4) mask() uint64       { return uint64(len(t.slots) - 1) }
func (t *table4) used(i uint64) bool { return t.slots[i].meta.Load()&metaUsed != 0 }

func (t *table4) home(i uint64, s *seeds) uint64 {
	sl := &t.slots[i]
	return s.hash4(sl.addrs.Load(), sl.meta.Load()&metaKeyMask) & t.mask()
}

func (t *table4) move(dst, src uint64) {
	d, s := &t.slots[dst], &t.slots[src]
	d.addrs.Store(s.addrs.Load())
	d.meta.Store(s.meta.Load())
}

func (t *table4) clear(i uint64) {
	t.slots[i].meta.Store(0)
	t.slots[i].addrs.Store(0)
}

func (t *table6) mask() uint64       { return uint64(len(t.slots) - 1) }
func (t *table6) used(i uint64) bool { return t.slots[i].meta.Load()&metaUsed != 0 }

func (t *table6) home(i uint64, s *seeds) uint64 {
	k := t.key(i)
	return s.hash6(&k) & t.mask()
}

func (t *table6) move(dst, src uint64) {
	d, s := &t.slots[dst], &t.slots[src]
	for w := range d.addrs {
		d.addrs[w].Store(s.addrs[w].Load())
	}
	d.meta.Store(s.meta.Load())
}

func (t *table6) clear(i uint64) {
	s := &t.slots[i]
	s.meta.Store(0)
	for w := range s.addrs {
		s.addrs[w].Store(0)
	}
}

// key returns the key stored in slot i, with v4 false.
func (t *table6) key(i uint64) key {
	s := &t.slots[i]
	m := s.meta.Load()
	return key{
		sHi: s.addrs[0].Load(), sLo: s.addrs[1].Load(), dHi: s.addrs[2].Load(), dLo: s.addrs[3].Load(),
		meta: m & metaKeyMask,
		sp:   uint16(m >> metaSrcPortShift), dp: uint16(m >> metaDstPortShift), proto: uint8(m >> metaProtoShift),
	}
}
