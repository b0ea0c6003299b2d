package flowdir

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/internal/testenv"
	"github.com/reinforce-nfv/reinforce/pkt"
)

// Chains the concurrent test uses, so a reader can tell a right answer from a torn one.
const (
	ruleChainA = 0xFFF0 // the catch-all rule's chain in one rule snapshot
	ruleChainB = 0xFFF1 // and in the other
	updateBit  = 0x8000 // a churn flow's chain, updated in place, toggles this bit
)

// TestConcurrentWriterReaders runs one writer that inserts, updates and deletes flows and
// swaps the rules, against two readers that look flows up without a lock (one with Lookup,
// one with LookupBurst). On a small, half-full
// table most deletions shift entries, so a reader racing them would miss flows if the
// generation seqlock were broken. The readers check:
//   - a stable flow (inserted first, never changed) is always found with its own chain: no
//     false miss while neighbours move, no other flow's chain from a torn slot;
//   - a churn flow is found with one of the two chains it is ever given, or falls to a rule;
//   - the rule chain seen is one of the two snapshots', never anything else.
func TestConcurrentWriterReaders(t *testing.T) {
	testenv.CheckLeaks(t)
	for _, family := range []string{"IPv4", "IPv6"} {
		t.Run(family, func(t *testing.T) {
			r := testenv.Rand(t)
			const maxFlows = 32 // 64 slots
			tab := newTable(t, maxFlows)
			flow := randFlow4
			if family == "IPv6" {
				flow = randFlow6
			}
			// All flows share one home slot, so they form one probe run of up to 32 slots: a
			// Delete near its start moves every later entry, and a reader walks the whole run.
			churn := collidingFlows(tab, r, 20, flow)
			stable := collidingFlows(tab, r, maxFlows-len(churn), flow)
			// Churn flows first, so the stable ones sit behind them in the run and move back
			// whenever a churn flow is deleted.
			for i := range churn {
				if err := tab.Insert(&churn[i], churnChain(i)); err != nil {
					t.Fatal(err)
				}
			}
			for i := range stable {
				if err := tab.Insert(&stable[i], stableChain(i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := tab.SetRules([]Rule{{Chain: ruleChainA}}); err != nil {
				t.Fatal(err)
			}
			ops := 300_000
			if raceEnabled {
				ops = 20_000
			}

			var (
				done    atomic.Bool
				wg      sync.WaitGroup
				errc    = make(chan error, 3)
				lookups [2]atomic.Int64
			)
			for reader := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errc <- readLoop(tab, stable, churn, reader == 1, &done, &lookups[reader])
				}()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer done.Store(true)
				errc <- writeLoop(tab, churn, r.Uint64(), ops)
			}()
			wg.Wait()
			close(errc)
			for err := range errc {
				if err != nil {
					t.Error(err)
				}
			}
			t.Logf("%d writer ops, %d and %d lookups", ops, lookups[0].Load(), lookups[1].Load())
			checkInvariants(t, tab)
		})
	}
}

// stableChain is the chain of stable flow i.
func stableChain(i int) uint16 { return uint16(0x100 + i) }

// churnChain is the chain churn flow i is inserted with; updates toggle updateBit.
func churnChain(i int) uint16 { return uint16(0x200 + i) }

// writeLoop inserts, updates and deletes churn flows and swaps the rule snapshot.
func writeLoop(tab *Table, churn []pkt.FiveTuple, seed uint64, ops int) error {
	r := rand.New(rand.NewPCG(seed, 1))
	present := make([]bool, len(churn)) // all present at the start
	chains := make([]uint16, len(churn))
	for i := range churn {
		present[i], chains[i] = true, churnChain(i)
	}
	rules := [2][]Rule{{{Chain: ruleChainA}}, {{Chain: ruleChainB}, {Proto: pkt.ProtoTCP, Priority: -1, Chain: ruleChainA}}}
	for op := range ops {
		i := r.IntN(len(churn))
		switch {
		case op%1000 == 0:
			if err := tab.SetRules(rules[op/1000%2]); err != nil {
				return err
			}
		case !present[i]:
			chains[i] = churnChain(i)
			if err := tab.Insert(&churn[i], chains[i]); err != nil {
				return fmt.Errorf("op %d: Insert: %w", op, err)
			}
			present[i] = true
		case r.IntN(4) == 0:
			chains[i] ^= updateBit
			if err := tab.Insert(&churn[i], chains[i]); err != nil {
				return fmt.Errorf("op %d: update: %w", op, err)
			}
		default:
			if !tab.Delete(&churn[i]) {
				return fmt.Errorf("op %d: Delete of a present flow found nothing", op)
			}
			present[i] = false
		}
	}
	return nil
}

// readLoop looks flows up until done, with Lookup or, if burst, LookupBurst, and checks every
// answer (see the test's comment).
func readLoop(tab *Table, stable, churn []pkt.FiveTuple, burst bool, done *atomic.Bool, count *atomic.Int64) error {
	all := append(slices.Clone(stable), churn...)
	chains, found := make([]uint16, len(all)), make([]bool, len(all))
	n := int64(0)
	defer func() { count.Store(n) }()
	for !done.Load() {
		if burst {
			tab.LookupBurst(all, chains, found)
		} else {
			for i := range all {
				chains[i], found[i] = tab.Lookup(&all[i])
			}
		}
		n += int64(len(all))
		for i := range stable {
			if c, ok := chains[i], found[i]; !ok || c != stableChain(i) {
				return fmt.Errorf("stable flow %d: Lookup = %#x, %v; want %#x", i, c, ok, stableChain(i))
			}
		}
		for i := range churn {
			c, ok := chains[len(stable)+i], found[len(stable)+i]
			switch {
			case !ok:
				return errors.New("a churn flow matched nothing, but a catch-all rule is always present")
			case c == churnChain(i) || c == churnChain(i)^updateBit || c == ruleChainA || c == ruleChainB:
			default:
				return fmt.Errorf("churn flow %d: Lookup = %#x, not its chain %#x, its update, or a rule's", i, c, churnChain(i))
			}
		}
	}
	return nil
}

// collidingFlows returns n flows that all start their probe at slot 0 of tab, so they form
// one run in insertion order.
func collidingFlows(tab *Table, r *rand.Rand, n int, flow func(*rand.Rand) pkt.FiveTuple) []pkt.FiveTuple {
	out := make([]pkt.FiveTuple, 0, n)
	for len(out) < n {
		ft := flow(r)
		k := keyOf(&ft)
		h := tab.seeds.hash6(&k)
		if k.v4 {
			h = tab.seeds.hash4(k.addrs4(), k.meta)
		}
		if h&uint64(tab.Slots()-1) == 0 {
			out = append(out, ft)
		}
	}
	return out
}

// TestDeleteRewritesSlotsOnlyWithOddGeneration checks the writer's half of the seqlock: every
// slot that Delete rewrites (each move of backward shift and the final clear) is rewritten
// while the generation is odd, and the generation is even again, and larger, afterwards.
func TestDeleteRewritesSlotsOnlyWithOddGeneration(t *testing.T) {
	r := testenv.Rand(t)
	for _, flow := range []func(*rand.Rand) pkt.FiveTuple{randFlow4, randFlow6} {
		tab := newTable(t, 16)
		flows := collidingFlows(tab, r, 16, flow)
		for i := range flows {
			if err := tab.Insert(&flows[i], uint16(i)); err != nil {
				t.Fatal(err)
			}
		}
		stores := 0
		testHookShift = func() {
			stores++
			if g := tab.gen.Load(); g&1 == 0 {
				t.Errorf("slot rewritten with even generation %d", g)
			}
		}
		for i := range flows {
			before := tab.gen.Load()
			if !tab.Delete(&flows[i]) {
				t.Fatalf("Delete flow %d: not found", i)
			}
			if after := tab.gen.Load(); after&1 != 0 || after <= before {
				t.Errorf("generation %d before Delete, %d after", before, after)
			}
			checkInvariants(t, tab)
		}
		testHookShift = nil
		// Deleting the head of a 16-entry run moves 15 entries, then clears the last slot.
		if stores < 16 {
			t.Errorf("%d slot rewrites for 16 deletions: the run did not shift", stores)
		}
	}
}

// TestLookupWaitsOutDelete checks the reader's half: a Lookup or LookupBurst that starts
// while a Delete is moving entries (generation odd) does not answer until the Delete is done,
// and then answers right. The Delete is held in the middle of its shift by the test hook.
func TestLookupWaitsOutDelete(t *testing.T) {
	testenv.CheckLeaks(t)
	r := testenv.Rand(t)
	type answer struct {
		chain uint16
		ok    bool
	}
	lookups := map[string]func(tab *Table, ft *pkt.FiveTuple) answer{
		"Lookup": func(tab *Table, ft *pkt.FiveTuple) answer {
			c, ok := tab.Lookup(ft)
			return answer{c, ok}
		},
		"LookupBurst": func(tab *Table, ft *pkt.FiveTuple) answer {
			var (
				chains [1]uint16
				found  [1]bool
			)
			tab.LookupBurst([]pkt.FiveTuple{*ft}, chains[:], found[:])
			return answer{chains[0], found[0]}
		},
	}
	for name, lookup := range lookups {
		for _, flow := range []func(*rand.Rand) pkt.FiveTuple{randFlow4, randFlow6} {
			tab := newTable(t, 8)
			flows := collidingFlows(tab, r, 8, flow)
			for i := range flows {
				if err := tab.Insert(&flows[i], uint16(100+i)); err != nil {
					t.Fatal(err)
				}
			}
			last := &flows[len(flows)-1] // moves on every shift of the run
			got := make(chan answer, 1)
			testHookShift = func() {
				testHookShift = nil // once: at the first move
				go func() { got <- lookup(tab, last) }()
				// The lookup must not answer while this Delete holds the generation odd. Give it
				// ample time to (wrongly) do so: a correct one never does, so this cannot flake.
				deadline := time.Now().Add(20 * time.Millisecond)
				for time.Now().Before(deadline) {
					select {
					case a := <-got:
						t.Errorf("%s answered %+v in the middle of a Delete", name, a)
						got <- a
						return
					default:
						runtime.Gosched()
					}
				}
			}
			if !tab.Delete(&flows[0]) {
				t.Fatal("Delete: not found")
			}
			testHookShift = nil
			if a := <-got; !a.ok || a.chain != uint16(100+len(flows)-1) {
				t.Errorf("%s after the Delete = %+v, want chain %d", name, a, 100+len(flows)-1)
			}
		}
	}
}
