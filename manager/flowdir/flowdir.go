// Package flowdir is the manager's flow director: it maps a packet's 5-tuple to the index of
// the service chain the packet enters (ONVM: the manager's sdn_ft lookup, ONVM-COMPAT.md
// §1.10 and §3.6). It holds exact entries, one 5-tuple each, in fixed-capacity hash tables,
// and wildcard rules (prefixes, port ranges, protocol, priority); an exact entry wins over
// every rule.
//
// Lookup, stage by stage (the caller's goroutine; no locks, no allocation):
//
//	5-tuple → key (addresses as 64-bit halves, family)
//	→ exact table of the family: hash, linear probe, inside the generation seqlock
//	→ on a miss, the rule snapshot: first match in priority order
//	→ chain, or not found (the caller uses its default chain)
//
// Concurrency protocol. Writers (Insert, Delete, AddRule, DeleteRule, SetRules) are
// serialised by Table.mu; readers (Lookup, LookupBurst) take no lock and write nothing, so any
// number of them run concurrently with a writer.
//
//   - Exact tables: every slot word is read and written with sync/atomic, so a reader never
//     reads a torn word, and a reader's loads are ordered with the writer's stores (the Go
//     memory model makes sync/atomic operations sequentially consistent).
//     Insert into an empty slot stores the addresses, then the meta word with the used flag;
//     a reader loads meta, then the addresses, so a used slot it sees has its addresses.
//     Changing an entry's chain is one store of its meta word. Neither needs more.
//     Delete empties a slot and may move later entries back (backward shift, exact.go): a
//     reader could then pair one entry's meta with another's addresses, or miss an entry
//     that moved behind it. So Delete runs inside a seqlock: it makes Table.gen odd, rewrites
//     slots, and makes gen even again; a reader loads gen before probing (spinning while it
//     is odd, yielding after spinsBeforeYield tries in case the writer was descheduled) and
//     after, and probes again if it changed. Inserts do not touch gen, so a writer adding
//     flows never delays a reader; each Delete that overlaps a probe costs it one retry.
//     (TestDeleteRewritesSlotsOnlyWithOddGeneration and TestLookupWaitsOutDelete check the
//     two halves deterministically; TestConcurrentWriterReaders races them.)
//   - Rules: the writer compiles a new immutable snapshot and swaps it in with one atomic
//     pointer store (read-copy-update); a reader uses whichever snapshot it loaded.
//
// A Lookup is linearisable with the writes: it returns the state after some prefix of them.
package flowdir

import (
	"errors"
	"fmt"
	"math/bits"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/reinforce-nfv/reinforce/pkt"
)

// ErrFull is returned by Insert when the table already holds its capacity of exact entries.
var ErrFull = errors.New("flowdir: exact table full")

// Table is a flow director: exact 5-tuple entries and wildcard rules, each mapping to a
// chain index. Lookup is safe for any number of goroutines concurrently with the writers;
// the writing methods are safe for concurrent use too, and serialise among themselves (the
// manager has one writer, its control plane).
//
// Memory: an address family's exact table is allocated at its first Insert, with Slots()
// slots of 16 bytes (IPv4) or 64 bytes (IPv6, and flows mixing the families); a Table with
// rules only allocates none.
type Table struct {
	// Read by Lookup; written rarely.

	// gen is the exact tables' generation: odd while a Delete rewrites slots. See the package
	// comment.
	gen atomic.Uint64
	// v4 and v6 are the exact tables; nil until the first Insert of the family, then fixed.
	v4 atomic.Pointer[table4]
	v6 atomic.Pointer[table6]
	// rules is the current rule snapshot; never nil.
	rules atomic.Pointer[ruleSet]
	// seeds key the exact tables' hash; immutable.
	seeds seeds
	// slots is the slot count of each exact table, a power of two; immutable.
	slots int
	// max is the exact-entry capacity; immutable.
	max int

	_ [64]byte // keeps the writers' fields below off the cache line Lookup reads

	// mu serialises writers.
	mu sync.Mutex
	// n is the number of exact entries; written under mu, read by Len from anywhere.
	n atomic.Int64
	// added is the rules in the order added; guarded by mu.
	added []Rule
}

// New returns an empty Table for up to maxFlows exact entries, 1..MaxFlows. Each family's
// exact table gets the smallest power of two of slots that is at least slotsPerFlow ×
// maxFlows, so it is never more than half full (New(1<<20) has 2^21 slots per family).
func New(maxFlows int) (*Table, error) {
	if maxFlows < 1 || maxFlows > MaxFlows {
		return nil, fmt.Errorf("flowdir: capacity %d out of range 1..%d", maxFlows, MaxFlows)
	}
	t := &Table{seeds: newSeeds(), slots: 1 << bits.Len(uint(slotsPerFlow*maxFlows-1)), max: maxFlows}
	t.rules.Store(emptyRules)
	return t, nil
}

// Lookup returns the chain for the flow ft: the chain of its exact entry if there is one,
// else of the first matching rule in priority order, and ok false if neither matches. ft is
// read, not retained. It takes no lock, allocates nothing, and is safe for any number of
// goroutines concurrently with the writers; it may spin briefly while a Delete moves entries.
// For a burst of packets, LookupBurst is faster: it overlaps the cache misses of a big table.
func (t *Table) Lookup(ft *pkt.FiveTuple) (chain uint16, ok bool) {
	var k key
	k.set(ft)
	if k.v4 {
		if t4 := t.v4.Load(); t4 != nil {
			if chain, ok = t.lookupExact(&k, t.seeds.hash4(k.addrs4(), k.meta), t4, nil); ok {
				return chain, true
			}
		}
	} else if t6 := t.v6.Load(); t6 != nil {
		if chain, ok = t.lookupExact(&k, t.seeds.hash6(&k), nil, t6); ok {
			return chain, true
		}
	}
	return t.rules.Load().match(&k)
}

// Exact returns the chain of ft's exact entry, ok false if it has none (rules are not
// consulted). Like Lookup, it takes no lock and is safe concurrently with the writers.
func (t *Table) Exact(ft *pkt.FiveTuple) (chain uint16, ok bool) {
	var k key
	k.set(ft)
	if k.v4 {
		if t4 := t.v4.Load(); t4 != nil {
			return t.lookupExact(&k, t.seeds.hash4(k.addrs4(), k.meta), t4, nil)
		}
	} else if t6 := t.v6.Load(); t6 != nil {
		return t.lookupExact(&k, t.seeds.hash6(&k), nil, t6)
	}
	return 0, false
}

// LookupBurst does Lookup for each of fts, writing the results to chains[i] and found[i];
// chains and found MUST be at least len(fts) long. Each result is as Lookup's at some moment
// during the call. It takes no lock, allocates nothing, and is safe for any number of
// goroutines concurrently with the writers.
//
// It is Lookup for a burst of packets, made for tables larger than the cache: a lone Lookup
// waits for its slot's cache miss (about 130 ns to DRAM), while LookupBurst keeps the misses
// of a whole group in flight under the work on the previous group. Stages, software-pipelined
// over groups of burstGroup flows (the prefetch of DPDK's rte_hash_lookup_bulk):
//
//	prepare g+1: keys, hashes, and one load of each home slot (a prefetch; value discarded)
//	→ probe g: exact lookups inside one generation check for the whole group
//	→ rules g: the rule snapshot for the misses
func (t *Table) LookupBurst(fts []pkt.FiveTuple, chains []uint16, found []bool) {
	chains, found = chains[:len(fts)], found[:len(fts)]
	if len(fts) == 0 {
		return
	}
	t4, t6, rs := t.v4.Load(), t.v6.Load(), t.rules.Load()
	var (
		keys   [2][burstGroup]key // double-buffered: group g and group g+1
		hashes [2][burstGroup]uint64
	)
	cur := 0
	n := t.prepare(fts, &keys[cur], &hashes[cur], t4, t6)
	for {
		next := fts[n:]
		nextN := 0
		if len(next) > 0 {
			nextN = t.prepare(next, &keys[cur^1], &hashes[cur^1], t4, t6)
		}
		t.probeGroup(keys[cur][:n], hashes[cur][:n], chains[:n], found[:n], t4, t6)
		for i := range n {
			if !found[i] {
				chains[i], found[i] = rs.match(&keys[cur][i])
			}
		}
		if nextN == 0 {
			return
		}
		fts, chains, found = next, chains[n:], found[n:]
		n, cur = nextN, cur^1
	}
}

// prepare fills keys and hashes for the first burstGroup flows of fts (or all, if fewer),
// loads each one's home slot to start its cache miss, and returns how many it took.
func (t *Table) prepare(fts []pkt.FiveTuple, keys *[burstGroup]key, hashes *[burstGroup]uint64, t4 *table4, t6 *table6) int {
	n := min(len(fts), burstGroup)
	for i := range n {
		k := &keys[i]
		k.set(&fts[i])
		if k.v4 {
			hashes[i] = t.seeds.hash4(k.addrs4(), k.meta)
		} else {
			hashes[i] = t.seeds.hash6(k)
		}
	}
	// A separate loop, so the loads of the whole group issue back to back.
	for i := range n {
		if keys[i].v4 {
			if t4 != nil {
				t4.touch(hashes[i])
			}
		} else if t6 != nil {
			t6.touch(hashes[i])
		}
	}
	return n
}

// probeGroup looks each of keys up in the exact tables, writing chains and found, inside one
// generation check for the group (as lookupExact does for one key).
func (t *Table) probeGroup(keys []key, hashes []uint64, chains []uint16, found []bool, t4 *table4, t6 *table6) {
	hashes, chains, found = hashes[:len(keys)], chains[:len(keys)], found[:len(keys)]
	for spins := 0; ; spins++ {
		gen := t.gen.Load() // pairs with the first gen.Add in Delete, as in lookupExact
		if gen&1 == 0 {
			for i := range keys {
				k := &keys[i]
				switch {
				case k.v4 && t4 != nil:
					chains[i], found[i] = t4.lookup(k.addrs4(), k.meta, hashes[i])
				case !k.v4 && t6 != nil:
					chains[i], found[i] = t6.lookup(k, hashes[i])
				default:
					chains[i], found[i] = 0, false
				}
			}
			if t.gen.Load() == gen { // pairs with the second gen.Add in Delete
				return
			}
		}
		if spins >= spinsBeforeYield {
			runtime.Gosched()
		}
	}
}

// lookupExact looks k, whose hash is h, up in its family's exact table (t4 for an IPv4 key,
// t6 otherwise; the one needed MUST NOT be nil), inside the generation seqlock.
func (t *Table) lookupExact(k *key, h uint64, t4 *table4, t6 *table6) (uint16, bool) {
	for spins := 0; ; spins++ {
		// Pairs with the first gen.Add in Delete: an even value means no Delete had begun
		// rewriting slots when the probe below started.
		gen := t.gen.Load()
		if gen&1 == 0 {
			var (
				chain uint16
				ok    bool
			)
			if k.v4 {
				chain, ok = t4.lookup(k.addrs4(), k.meta, h)
			} else {
				chain, ok = t6.lookup(k, h)
			}
			// Pairs with the second gen.Add in Delete: unchanged means no Delete touched a slot
			// while the probe read them, so chain and ok describe one consistent table.
			if t.gen.Load() == gen {
				return chain, ok
			}
		}
		if spins >= spinsBeforeYield {
			runtime.Gosched()
		}
	}
}

// Insert adds an exact entry sending the flow ft (one direction; see hash.go) to chain, or
// changes the chain of an existing entry. It returns ErrFull if ft is new and the table holds
// Cap() entries. ft is read, not retained. Safe for concurrent use; writers serialise.
func (t *Table) Insert(ft *pkt.FiveTuple, chain uint16) error {
	k := keyOf(ft)
	meta := k.meta | uint64(chain)<<metaChainShift | metaUsed
	t.mu.Lock()
	defer t.mu.Unlock()
	full := t.n.Load() >= int64(t.max)
	if k.v4 {
		tab := t.v4.Load()
		if tab == nil {
			if full {
				return ErrFull
			}
			tab = &table4{slots: make([]slot4, t.slots)}
			t.v4.Store(tab) // publishes the zeroed table; pairs with the Load in lookupExact
		}
		addrs := k.addrs4()
		i, found := tab.find(addrs, k.meta, t.seeds.hash4(addrs, k.meta))
		if found {
			tab.slots[i].meta.Store(meta) // one word: a reader sees the old chain or the new
			return nil
		}
		if full {
			return ErrFull
		}
		tab.fill(i, addrs, meta)
	} else {
		tab := t.v6.Load()
		if tab == nil {
			if full {
				return ErrFull
			}
			tab = &table6{slots: make([]slot6, t.slots)}
			t.v6.Store(tab) // as for v4
		}
		i, found := tab.find(&k, t.seeds.hash6(&k))
		if found {
			tab.slots[i].meta.Store(meta)
			return nil
		}
		if full {
			return ErrFull
		}
		tab.fill(i, &k, meta)
	}
	t.n.Add(1)
	return nil
}

// Delete removes the exact entry of ft and reports whether there was one. ft is read, not
// retained. Safe for concurrent use; writers serialise. Concurrent Lookups of any flow may
// retry once.
func (t *Table) Delete(ft *pkt.FiveTuple) bool {
	k := keyOf(ft)
	t.mu.Lock()
	defer t.mu.Unlock()
	var (
		tab   probeTable
		i     uint64
		found bool
	)
	if k.v4 {
		t4 := t.v4.Load()
		if t4 == nil {
			return false
		}
		addrs := k.addrs4()
		i, found = t4.find(addrs, k.meta, t.seeds.hash4(addrs, k.meta))
		tab = t4
	} else {
		t6 := t.v6.Load()
		if t6 == nil {
			return false
		}
		i, found = t6.find(&k, t.seeds.hash6(&k))
		tab = t6
	}
	if !found {
		return false
	}
	t.gen.Add(1) // odd: slots change from here; pairs with the first gen Load in lookupExact
	backwardShift(tab, &t.seeds, i)
	t.gen.Add(1) // even: consistent again; pairs with the second gen Load in lookupExact
	t.n.Add(-1)
	return true
}

// Len returns the number of exact entries. Safe for concurrent use.
func (t *Table) Len() int { return int(t.n.Load()) }

// Cap returns the exact-entry capacity given to New.
func (t *Table) Cap() int { return t.max }

// Slots returns the number of slots of each family's exact table, a power of two.
func (t *Table) Slots() int { return t.slots }

// AddRule adds r after the rules already present: among rules of equal priority, it is tried
// last. It returns an error wrapping ErrBadRule, and changes nothing, if r can never match
// (a backwards port range, an invalid prefix, prefixes of two families). Safe for concurrent
// use; writers serialise. Lookups switch to the new rules at once, without waiting.
func (t *Table) AddRule(r Rule) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.setRules(append(slices.Clip(t.added), r))
}

// DeleteRule removes the earliest added rule equal to r and reports whether there was one.
// Safe for concurrent use; writers serialise.
func (t *Table) DeleteRule(r Rule) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	i := slices.Index(t.added, r)
	if i < 0 {
		return false
	}
	if err := t.setRules(slices.Delete(slices.Clone(t.added), i, i+1)); err != nil {
		panic(fmt.Sprintf("flowdir: rules that compiled once fail without one of them: %v", err))
	}
	return true
}

// SetRules replaces all rules with rules, in that order (the order ties are broken in). On
// error (wrapping ErrBadRule, naming the rule's index) the rules stay as they were. rules is
// copied, not retained. Safe for concurrent use; writers serialise.
func (t *Table) SetRules(rules []Rule) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.setRules(slices.Clone(rules))
}

// setRules compiles rules and publishes them; it takes ownership of rules. Called with mu held.
func (t *Table) setRules(rules []Rule) error {
	rs, err := buildRules(rules)
	if err != nil {
		return err
	}
	t.added = rules
	t.rules.Store(rs) // publishes the immutable snapshot; pairs with the Load in Lookup
	return nil
}

// Rules returns a caller-owned copy of the rules in the order added. Safe for concurrent use.
func (t *Table) Rules() []Rule {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.added)
}
