package flowdir

import (
	"errors"
	"reflect"
	"testing"

	"github.com/reinforce-nfv/reinforce/internal/testenv"
	"github.com/reinforce-nfv/reinforce/pkt"
)

func TestNewCapacityRoundsSlotsToPowerOfTwo(t *testing.T) {
	tests := []struct{ maxFlows, slots int }{
		{1, 2}, {2, 4}, {3, 8}, {64, 128}, {1000, 2048}, {1 << 20, 1 << 21}, {1_000_000, 1 << 21},
	}
	for _, tt := range tests {
		tab := newTable(t, tt.maxFlows)
		if tab.Slots() != tt.slots || tab.Cap() != tt.maxFlows {
			t.Errorf("New(%d): Slots %d, Cap %d; want %d, %d", tt.maxFlows, tab.Slots(), tab.Cap(), tt.slots, tt.maxFlows)
		}
	}
	for _, bad := range []int{0, -1, MaxFlows + 1} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%d) succeeded", bad)
		}
	}
}

func TestSlotLayoutIsFlat(t *testing.T) {
	// One IPv6 slot per cache line, four IPv4 slots per line, and nothing the GC must scan.
	for _, tt := range []struct {
		typ  reflect.Type
		size uintptr
	}{{reflect.TypeFor[slot4](), 16}, {reflect.TypeFor[slot6](), 64}, {reflect.TypeFor[rule](), 80}} {
		if tt.typ.Size() != tt.size {
			t.Errorf("%v is %d bytes, want %d", tt.typ, tt.typ.Size(), tt.size)
		}
		if hasPointers(tt.typ) {
			t.Errorf("%v holds pointers", tt.typ)
		}
	}
	// Slices of 64-byte slots come from 64-byte-aligned size classes or page-aligned spans.
	tab := newTable(t, 4)
	ft := ft6("2001:db8::1", "2001:db8::2", 1, 2, pkt.ProtoUDP)
	if err := tab.Insert(&ft, 1); err != nil {
		t.Fatal(err)
	}
	if p := reflect.ValueOf(&tab.v6.Load().slots[0]).Pointer(); p%64 != 0 {
		t.Errorf("IPv6 slots start at %#x, not on a cache line", p)
	}
}

func hasPointers(typ reflect.Type) bool {
	switch typ.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.String, reflect.Interface, reflect.Chan, reflect.Func, reflect.UnsafePointer:
		return true
	case reflect.Array:
		return hasPointers(typ.Elem())
	case reflect.Struct:
		for i := range typ.NumField() {
			if hasPointers(typ.Field(i).Type) {
				return true
			}
		}
	}
	return false
}

func TestInsertLookupUpdateDelete(t *testing.T) {
	flows := []pkt.FiveTuple{
		ft4("10.0.0.1", "10.0.0.2", 1000, 80, pkt.ProtoTCP),
		ft4("10.0.0.2", "10.0.0.1", 80, 1000, pkt.ProtoTCP), // the reverse direction is another flow
		ft4("10.0.0.1", "10.0.0.2", 1000, 80, pkt.ProtoUDP), // so is another protocol
		ft4("10.0.0.1", "10.0.0.2", 0, 0, pkt.ProtoICMP),
		ft6("2001:db8::1", "2001:db8::2", 1000, 80, pkt.ProtoTCP),
		ft6("2001:db8::2", "2001:db8::1", 80, 1000, pkt.ProtoTCP),
		ft6("::ffff:10.0.0.1", "2001:db8::2", 1000, 80, pkt.ProtoTCP), // mixed families: the IPv6 table
		ft6("::", "::", 0, 0, 0),
	}
	tab := newTable(t, len(flows))
	for i := range flows {
		if _, ok := tab.Lookup(&flows[i]); ok {
			t.Fatalf("flow %d found in an empty table", i)
		}
		if err := tab.Insert(&flows[i], uint16(i+1)); err != nil {
			t.Fatalf("Insert flow %d: %v", i, err)
		}
	}
	if tab.v4.Load() == nil || tab.v6.Load() == nil {
		t.Fatal("both family tables should exist")
	}
	for i := range flows {
		if c, ok := tab.Lookup(&flows[i]); !ok || c != uint16(i+1) {
			t.Errorf("flow %d: Lookup = %d, %v; want %d", i, c, ok, i+1)
		}
	}
	// Re-inserting changes the chain and does not count as a new entry, even when full.
	if err := tab.Insert(&flows[0], 0xBEEF); err != nil {
		t.Fatal(err)
	}
	if c, _ := tab.Lookup(&flows[0]); c != 0xBEEF || tab.Len() != len(flows) {
		t.Errorf("after update: chain %#x, Len %d", c, tab.Len())
	}
	extra := ft4("10.9.9.9", "10.0.0.2", 1, 2, pkt.ProtoUDP)
	if err := tab.Insert(&extra, 1); !errors.Is(err, ErrFull) {
		t.Fatalf("Insert into a full table = %v, want ErrFull", err)
	}
	checkInvariants(t, tab)
	for i := range flows {
		if !tab.Delete(&flows[i]) {
			t.Fatalf("Delete flow %d: not found", i)
		}
		if tab.Delete(&flows[i]) {
			t.Fatalf("Delete flow %d twice: found", i)
		}
		if _, ok := tab.Lookup(&flows[i]); ok {
			t.Fatalf("flow %d found after Delete", i)
		}
		for j := i + 1; j < len(flows); j++ {
			if _, ok := tab.Lookup(&flows[j]); !ok {
				t.Fatalf("flow %d lost after deleting flow %d", j, i)
			}
		}
		checkInvariants(t, tab)
	}
	if err := tab.Insert(&extra, 1); err != nil {
		t.Fatalf("Insert after emptying: %v", err)
	}
}

func TestFullTableRejectsOnlyNewFlows(t *testing.T) {
	r := testenv.Rand(t)
	tab := newTable(t, 100)
	var flows []pkt.FiveTuple
	for len(flows) < 100 {
		ft := randFlow4(r)
		if len(flows)%3 == 0 {
			ft = randFlow6(r)
		}
		if err := tab.Insert(&ft, 7); err != nil {
			t.Fatalf("Insert %d: %v", len(flows), err)
		}
		flows = append(flows, ft)
	}
	for _, ft := range []pkt.FiveTuple{randFlow4(r), randFlow6(r)} {
		if err := tab.Insert(&ft, 1); !errors.Is(err, ErrFull) {
			t.Errorf("Insert into a full table = %v, want ErrFull", err)
		}
	}
	if err := tab.Insert(&flows[50], 9); err != nil {
		t.Errorf("updating a present flow in a full table: %v", err)
	}
	// The first IPv6 insert into a full table must not allocate the IPv6 table either.
	tab = newTable(t, 1)
	ft := randFlow4(r)
	if err := tab.Insert(&ft, 1); err != nil {
		t.Fatal(err)
	}
	ft = randFlow6(r)
	if err := tab.Insert(&ft, 1); !errors.Is(err, ErrFull) || tab.v6.Load() != nil {
		t.Errorf("Insert = %v, IPv6 table allocated %v; want ErrFull, none", err, tab.v6.Load() != nil)
	}
}

// TestExactMatchesModel runs random inserts, updates and deletes against a map, on small
// tables so probe runs wrap around the end and deletions shift long runs, and checks Lookup
// and LookupBurst against the map after each.
func TestExactMatchesModel(t *testing.T) {
	r := testenv.Rand(t)
	for _, maxFlows := range []int{1, 7, 64, 500} {
		tab := newTable(t, maxFlows)
		model := make(map[pkt.FiveTuple]uint16)
		// A pool a little larger than the capacity, so the table fills and ErrFull happens.
		pool := make([]pkt.FiveTuple, maxFlows+maxFlows/4+2)
		for i := range pool {
			switch i % 3 {
			case 0, 1:
				pool[i] = randFlow4(r)
			default:
				pool[i] = randFlow6(r)
			}
		}
		// LookupBurst over the whole pool: groups of burstGroup and a shorter last group.
		chains, found := make([]uint16, len(pool)), make([]bool, len(pool))
		ops := 20000
		if raceEnabled {
			ops = 4000
		}
		for op := range ops {
			ft := &pool[r.IntN(len(pool))]
			switch r.IntN(3) {
			case 0, 1:
				chain := uint16(r.Uint32())
				err := tab.Insert(ft, chain)
				_, present := model[*ft]
				switch {
				case present || len(model) < maxFlows:
					if err != nil {
						t.Fatalf("op %d: Insert = %v with %d of %d entries", op, err, len(model), maxFlows)
					}
					model[*ft] = chain
				case !errors.Is(err, ErrFull):
					t.Fatalf("op %d: Insert into a full table = %v, want ErrFull", op, err)
				}
			default:
				_, present := model[*ft]
				if got := tab.Delete(ft); got != present {
					t.Fatalf("op %d: Delete = %v, want %v", op, got, present)
				}
				delete(model, *ft)
			}
			if op%97 == 0 {
				checkInvariants(t, tab)
			}
			tab.LookupBurst(pool, chains, found)
			for i := range pool {
				want, present := model[pool[i]]
				if c, ok := tab.Lookup(&pool[i]); ok != present || c != want {
					t.Fatalf("maxFlows %d op %d: Lookup(pool[%d]) = %d, %v; want %d, %v", maxFlows, op, i, c, ok, want, present)
				}
				if found[i] != present || chains[i] != want {
					t.Fatalf("maxFlows %d op %d: LookupBurst(pool)[%d] = %d, %v; want %d, %v", maxFlows, op, i, chains[i], found[i], want, present)
				}
			}
		}
		if tab.Len() != len(model) {
			t.Fatalf("Len %d, model %d", tab.Len(), len(model))
		}
	}
}

// TestStructuredFlowsSpreadEvenly inserts flows that differ in few bits (consecutive hosts
// and ports, as a load generator sends) and checks the probe runs stay near the uniform
// hashing average: a weak hash would pile them into long runs.
func TestStructuredFlowsSpreadEvenly(t *testing.T) {
	const n = 1 << 14
	tab4, tab6 := newTable(t, n), newTable(t, n)
	for i := range n {
		ft := ft4("10.0.0.0", "192.168.1.1", uint16(1024+i%256), 80, pkt.ProtoTCP)
		ft.SrcIP[14], ft.SrcIP[15] = byte(i>>8), byte(i>>8)
		if err := tab4.Insert(&ft, 1); err != nil {
			t.Fatal(err)
		}
		ft6 := ft6("2001:db8::", "2001:db8::1", uint16(i), 443, pkt.ProtoUDP)
		ft6.SrcIP[15] = byte(i >> 8)
		if err := tab6.Insert(&ft6, 1); err != nil {
			t.Fatal(err)
		}
	}
	for _, tab := range []*Table{tab4, tab6} {
		checkInvariants(t, tab)
		var pt probeTable = tab.v4.Load()
		if tab == tab6 {
			pt = tab.v6.Load()
		}
		mask := pt.mask()
		total, count, longest := uint64(0), uint64(0), uint64(0)
		for i := uint64(0); i <= mask; i++ {
			if pt.used(i) {
				d := (i-pt.home(i, &tab.seeds))&mask + 1
				total += d
				count++
				longest = max(longest, d)
			}
		}
		// Uniform hashing at load 1/2 finds a key in (1 + 1/(1-1/2))/2 = 1.5 probes on average.
		mean := float64(total) / float64(count)
		t.Logf("%T: %d entries, mean probes %.2f, longest %d", pt, count, mean, longest)
		if count != n || mean > 1.7 || longest > 64 {
			t.Errorf("%T: %d entries, mean probes %.2f, longest %d: flows cluster", pt, count, mean, longest)
		}
	}
}

func TestLookupAndBurstAllocateNothing(t *testing.T) {
	tab := newTable(t, 16)
	hit4 := ft4("10.0.0.1", "10.0.0.2", 1, 2, pkt.ProtoUDP)
	hit6 := ft6("2001:db8::1", "2001:db8::2", 1, 2, pkt.ProtoUDP)
	miss := ft4("10.0.0.3", "10.0.0.4", 1, 2, pkt.ProtoUDP)
	for _, ft := range []*pkt.FiveTuple{&hit4, &hit6} {
		if err := tab.Insert(ft, 5); err != nil {
			t.Fatal(err)
		}
	}
	if err := tab.AddRule(Rule{DstPrefix: mustPrefix("10.0.0.0/8"), Proto: pkt.ProtoUDP, Chain: 9}); err != nil {
		t.Fatal(err)
	}
	for name, ft := range map[string]*pkt.FiveTuple{"exact IPv4": &hit4, "exact IPv6": &hit6, "rule": &miss} {
		var sink uint16
		if n := testing.AllocsPerRun(100, func() {
			c, _ := tab.Lookup(ft)
			sink += c
		}); n != 0 {
			t.Errorf("%s: Lookup allocates %v times", name, n)
		}
		_ = sink
	}
	var (
		burst  [40]pkt.FiveTuple // two full groups and a partial one
		chains [40]uint16
		found  [40]bool
	)
	for i := range burst {
		burst[i] = [3]pkt.FiveTuple{hit4, hit6, miss}[i%3]
	}
	if n := testing.AllocsPerRun(100, func() { tab.LookupBurst(burst[:], chains[:], found[:]) }); n != 0 {
		t.Errorf("LookupBurst allocates %v times", n)
	}
	for i := range burst {
		if want := [3]uint16{5, 5, 9}[i%3]; !found[i] || chains[i] != want {
			t.Errorf("LookupBurst[%d] = %d, %v; want %d", i, chains[i], found[i], want)
		}
	}
	tab.LookupBurst(nil, nil, nil) // an empty burst is fine
}
