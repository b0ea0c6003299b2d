// Package lpm is the IPv4 longest-prefix-match table of ONVM's l3fwd and
// firewall examples (DPDK's rte_lpm, which ONVM's manager creates for them
// through onvm_nflib_request_lpm): rules of an address, a depth of 0..32
// bits and a next hop; a lookup returns the next hop of the longest rule
// that covers the address.
//
// The table is one hash map per depth in use, probed from the longest
// depth down: at most 33 probes, no allocation, and rule order does not
// matter. The NFs fill it once at start from their configuration (it is
// configuration, not state: a restarted NF rebuilds it the same way).
package lpm

import (
	"fmt"
	"math/bits"
)

// Table is an LPM table. Lookups are safe for concurrent use once Add calls
// have stopped.
type Table struct {
	maxRules int
	n        int
	used     uint64 // bit d: some rule has depth d
	byDepth  [33]map[uint32]uint32
}

// New returns an empty table that takes up to maxRules rules (rte_lpm's
// max_rules; 0 means no limit).
func New(maxRules int) *Table { return &Table{maxRules: maxRules} }

// Add adds (or, for the same prefix and depth, replaces) a rule. The
// address's bits past depth are ignored, as rte_lpm_add masks them.
func (t *Table) Add(ip uint32, depth int, nextHop uint32) error {
	if depth < 0 || depth > 32 {
		return fmt.Errorf("depth %d is not 0..32", depth)
	}
	key := ip & mask(depth)
	m := t.byDepth[depth]
	if m == nil {
		m = map[uint32]uint32{}
		t.byDepth[depth] = m
	}
	if _, ok := m[key]; !ok {
		if t.maxRules > 0 && t.n >= t.maxRules {
			return fmt.Errorf("table full: %d rules", t.maxRules)
		}
		t.n++
	}
	m[key] = nextHop
	t.used |= 1 << depth
	return nil
}

// Lookup returns the next hop of the longest rule covering ip, or false.
func (t *Table) Lookup(ip uint32) (uint32, bool) {
	for u := t.used; u != 0; {
		d := 63 - bits.LeadingZeros64(u)
		u &^= 1 << d
		if nh, ok := t.byDepth[d][ip&mask(d)]; ok {
			return nh, true
		}
	}
	return 0, false
}

// Len is the number of rules.
func (t *Table) Len() int { return t.n }

func mask(depth int) uint32 {
	if depth == 0 {
		return 0
	}
	return ^uint32(0) << (32 - depth)
}

// IPv4 is a.b.c.d as a host-order word (DPDK's RTE_IPV4).
func IPv4(a, b, c, d byte) uint32 { return uint32(a)<<24 | uint32(b)<<16 | uint32(c)<<8 | uint32(d) }
