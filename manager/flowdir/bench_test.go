package flowdir

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/reinforce-nfv/reinforce/pkt"
)

// benchFlowCounts are the table sizes of BenchmarkLookup: TARGETS.md T9 compares the cost at
// 1 M random flows with the cost at 64.
var benchFlowCounts = []int{64, 1_000_000}

// benchKeys is how many lookup keys a benchmark cycles through, the same for every table size,
// so that every size reads the same key stream (38 MB at the default, sequentially, from
// DRAM) and the sizes differ only in their table. A stream as long as the table instead (-flowdir.keys=4096)
// lets 64 flows read keys from L2 while 1 M flows stream them from DRAM, which charges about
// 7 ns per lookup of key traffic to the large table alone.
var benchKeys = flag.Int("flowdir.keys", 1_000_000, "lookup keys per benchmark stream (at least the flow count)")

// BenchmarkLookup measures exact hits: flows random IPv4 TCP/UDP 5-tuples, inserted into a
// table of that capacity (so at most half full, as the manager sizes it), looked up in random
// order from a stream of benchKeys keys, each Lookup independent of the last (as a burst of
// packets is). With 1 M flows the
// table (2^21 slots, 32 MiB) is as large as the last-level cache, so most lookups miss to
// DRAM; with 64 it sits in L1. When both sub-benchmarks run, it logs their ratio (T9: ≤ 2);
// the log of a benchmark with sub-benchmarks prints with -v only:
//
//	go test -run '^$' -bench 'BenchmarkLookup(Burst)?$' -count 6 -v ./manager/flowdir/ | grep -E "^Bench|T9"
func BenchmarkLookup(b *testing.B) {
	benchLookupSizes(b, randFlow4)
}

// BenchmarkLookupIPv6 is BenchmarkLookup with IPv6 flows (64-byte slots: 128 MiB at 1 M).
func BenchmarkLookupIPv6(b *testing.B) {
	benchLookupSizes(b, randFlow6)
}

// BenchmarkLookupBurst is BenchmarkLookup through LookupBurst, in bursts of 32 packets as the
// manager's RX loop passes them (config DefaultBurst); ns/pkt is the cost per flow.
func BenchmarkLookupBurst(b *testing.B) {
	nsPerPkt := make([][]float64, len(benchFlowCounts))
	for i, n := range benchFlowCounts {
		b.Run(fmt.Sprintf("flows=%d", n), func(b *testing.B) {
			tab, order := benchTable(b, n, randFlow4)
			const burst = 32
			order = order[:len(order)/burst*burst]
			var (
				chains [burst]uint16
				found  [burst]bool
			)
			b.ReportAllocs()
			pos := 0
			for b.Loop() {
				tab.LookupBurst(order[pos:pos+burst], chains[:], found[:])
				if !found[0] || !found[burst-1] {
					b.Fatal("a present flow was not found")
				}
				if pos += burst; pos == len(order) {
					pos = 0
				}
			}
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N*burst)
			b.ReportMetric(ns, "ns/pkt")
			nsPerPkt[i] = append(nsPerPkt[i], ns)
		})
	}
	logRatio(b, "LookupBurst", "ns/pkt", nsPerPkt)
}

func benchLookupSizes(b *testing.B, flow func(*rand.Rand) pkt.FiveTuple) {
	nsPerOp := make([][]float64, len(benchFlowCounts))
	for i, n := range benchFlowCounts {
		b.Run(fmt.Sprintf("flows=%d", n), func(b *testing.B) {
			nsPerOp[i] = append(nsPerOp[i], benchLookup(b, n, flow))
		})
	}
	logRatio(b, "Lookup", "ns/op", nsPerOp)
}

// logRatio logs the T9 ratio of the largest table's cost to the smallest's, when both ran
// (a -bench pattern may select one). ns holds every run of each size: with -count=N each
// sub-benchmark runs N times within one parent call. It logs the ratio of the fastest runs
// (the least disturbed by other load) and of the medians. A parent benchmark's log prints
// with -v only.
func logRatio(b *testing.B, what, unit string, ns [][]float64) {
	small, large := ns[0], ns[len(ns)-1]
	if len(small) == 0 || len(large) == 0 {
		return
	}
	minS, minL, medS, medL := slices.Min(small), slices.Min(large), median(small), median(large)
	b.Logf("T9 flow director, %s: flows=%d %.1f %s, flows=%d %.1f %s: ratio %.2f (best of %d); medians %.1f, %.1f: ratio %.2f (target ≤ 2)",
		what, benchFlowCounts[len(benchFlowCounts)-1], minL, unit, benchFlowCounts[0], minS, unit, minL/minS, min(len(small), len(large)),
		medL, medS, medL/medS)
}

// median returns the median of xs, which is not empty.
func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// benchTable returns a table filled with n random flows, and the order to look them up in:
// max(n, benchKeys, 4096) keys, every flow about equally often, shuffled (4096 at least, so
// that the branch predictor cannot learn a short cycle).
func benchTable(b *testing.B, n int, flow func(*rand.Rand) pkt.FiveTuple) (*Table, []pkt.FiveTuple) {
	r := rand.New(rand.NewPCG(1, 2)) // fixed: every run measures the same flows
	tab := newTable(b, n)
	flows := make([]pkt.FiveTuple, n)
	for i := range flows {
		flows[i] = flow(r)
		if err := tab.Insert(&flows[i], uint16(i)); err != nil {
			b.Fatal(err)
		}
	}
	if tab.Len() != n {
		b.Fatalf("%d distinct flows of %d", tab.Len(), n)
	}
	order := make([]pkt.FiveTuple, max(n, *benchKeys, 4096))
	for i := range order {
		order[i] = flows[i%n]
	}
	r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	return tab, order
}

// benchLookup fills a table with n random flows and looks them up one Lookup at a time in
// random order; it returns the nanoseconds per Lookup.
func benchLookup(b *testing.B, n int, flow func(*rand.Rand) pkt.FiveTuple) float64 {
	tab, order := benchTable(b, n, flow)
	b.ReportAllocs()
	var sink uint16
	i := 0
	for b.Loop() {
		c, ok := tab.Lookup(&order[i])
		if !ok {
			b.Fatal("a present flow was not found")
		}
		sink += c
		if i++; i == len(order) {
			i = 0
		}
	}
	_ = sink
	return float64(b.Elapsed().Nanoseconds()) / float64(b.N)
}

// BenchmarkRules measures the rule scan, the flow director's slow path: no exact entries, and
// every packet matches only the last rule, a catch-all, so each Lookup tests all of them (the
// worst case). The other rules are a mix of prefix, port and protocol rules that fail on
// different fields. ns/op divided by rules is the cost per rule.
func BenchmarkRules(b *testing.B) {
	for _, n := range []int{1, 4, 16, 64} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			tab := newTable(b, 1)
			rules := make([]Rule, 0, n)
			for i := range n - 1 {
				var rule Rule
				switch i % 4 {
				case 0:
					rule.DstPrefix = netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 16, byte(i), 0}), 24)
				case 1:
					rule.SrcPrefix = netip.MustParsePrefix("2001:db8::/32")
				case 2:
					rule.DstPorts = PortRange{uint16(i), uint16(i + 10)}
					rule.Proto = pkt.ProtoTCP
				case 3:
					rule.Proto = 47 // GRE
				}
				rule.Priority, rule.Chain = n-i, uint16(i)
				rules = append(rules, rule)
			}
			rules = append(rules, Rule{Chain: 0xFFFF})
			if err := tab.SetRules(rules); err != nil {
				b.Fatal(err)
			}
			r := rand.New(rand.NewPCG(1, 2))
			order := make([]pkt.FiveTuple, 4096)
			for i := range order {
				order[i] = randFlow4(r)
				order[i].DstIP[12] = 10 // outside 172.16.0.0/16
				order[i].DstPort = 40000
			}
			b.ReportAllocs()
			var sink uint16
			i := 0
			for b.Loop() {
				c, _ := tab.Lookup(&order[i])
				sink += c
				i = (i + 1) & (len(order) - 1)
			}
			if sink != uint16(b.N*0xFFFF) {
				b.Fatal("a packet matched a rule other than the catch-all")
			}
		})
	}
}

// BenchmarkInsertDelete measures the writer: one Insert and one Delete of a new flow in a
// half-full table of 1 M capacity (the control plane's cost per flow set-up and tear-down).
func BenchmarkInsertDelete(b *testing.B) {
	const n = 1 << 20
	r := rand.New(rand.NewPCG(1, 2))
	tab := newTable(b, n)
	for range n / 2 {
		ft := randFlow4(r)
		if err := tab.Insert(&ft, 1); err != nil {
			b.Fatal(err)
		}
	}
	fresh := make([]pkt.FiveTuple, 4096)
	for i := range fresh {
		fresh[i] = randFlow4(r)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := tab.Insert(&fresh[i], 2); err != nil {
			b.Fatal(err)
		}
		tab.Delete(&fresh[i])
		i = (i + 1) & (len(fresh) - 1)
	}
}
