package flowdir

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/reinforce-nfv/reinforce/internal/testenv"
	"github.com/reinforce-nfv/reinforce/pkt"
)

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestRuleMatching(t *testing.T) {
	web := ft4("192.0.2.10", "10.1.2.3", 40000, 80, pkt.ProtoTCP)
	dns := ft4("192.0.2.10", "10.1.2.3", 40000, 53, pkt.ProtoUDP)
	ping := ft4("192.0.2.10", "10.1.2.3", 0, 0, pkt.ProtoICMP)
	web6 := ft6("2001:db8::10", "2001:db8:1::3", 40000, 80, pkt.ProtoTCP)
	mixed := ft6("::ffff:192.0.2.10", "2001:db8:1::3", 40000, 80, pkt.ProtoTCP)
	tests := []struct {
		name  string
		rule  Rule
		match []pkt.FiveTuple
		miss  []pkt.FiveTuple
	}{
		{"zero rule matches everything", Rule{}, []pkt.FiveTuple{web, dns, ping, web6, mixed}, nil},
		{"IPv4 destination prefix", Rule{DstPrefix: mustPrefix("10.0.0.0/8")}, []pkt.FiveTuple{web, dns, ping}, []pkt.FiveTuple{web6, mixed}},
		{"IPv4 /32 source", Rule{SrcPrefix: mustPrefix("192.0.2.10/32")}, []pkt.FiveTuple{web, dns, ping}, []pkt.FiveTuple{web6, mixed}},
		{"host bits ignored", Rule{SrcPrefix: mustPrefix("192.0.2.99/24")}, []pkt.FiveTuple{web}, []pkt.FiveTuple{web6}},
		{"IPv4 /0 is any IPv4 flow", Rule{SrcPrefix: mustPrefix("0.0.0.0/0")}, []pkt.FiveTuple{web, ping}, []pkt.FiveTuple{web6, mixed}},
		{"IPv6 /0 is any IPv6 flow", Rule{SrcPrefix: mustPrefix("::/0")}, []pkt.FiveTuple{web6, mixed}, []pkt.FiveTuple{web, ping}},
		{"v4-mapped prefix is IPv4", Rule{DstPrefix: mustPrefix("::ffff:10.0.0.0/104")}, []pkt.FiveTuple{web}, []pkt.FiveTuple{web6}},
		{"IPv6 prefix", Rule{DstPrefix: mustPrefix("2001:db8:1::/48")}, []pkt.FiveTuple{web6, mixed}, []pkt.FiveTuple{web}},
		{"IPv6 prefix over 64 bits", Rule{SrcPrefix: mustPrefix("2001:db8::10/127")}, []pkt.FiveTuple{web6}, []pkt.FiveTuple{mixed}},
		{"destination port", Rule{DstPorts: PortRange{80, 80}}, []pkt.FiveTuple{web, web6}, []pkt.FiveTuple{dns, ping}},
		{"port range", Rule{DstPorts: PortRange{50, 80}}, []pkt.FiveTuple{web, dns}, []pkt.FiveTuple{ping}},
		{"full port range includes port 0", Rule{DstPorts: PortRange{0, 65535}}, []pkt.FiveTuple{web, ping}, nil},
		{"source port range", Rule{SrcPorts: PortRange{39999, 40000}}, []pkt.FiveTuple{web, dns}, []pkt.FiveTuple{ping}},
		{"protocol", Rule{Proto: pkt.ProtoUDP}, []pkt.FiveTuple{dns}, []pkt.FiveTuple{web, ping, web6}},
		{"all fields", Rule{SrcPrefix: mustPrefix("192.0.2.0/24"), DstPrefix: mustPrefix("10.1.0.0/16"), SrcPorts: PortRange{1024, 65535}, DstPorts: PortRange{80, 80}, Proto: pkt.ProtoTCP},
			[]pkt.FiveTuple{web}, []pkt.FiveTuple{dns, ping, web6, mixed}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := newTable(t, 1)
			tt.rule.Chain = 42
			if err := tab.AddRule(tt.rule); err != nil {
				t.Fatal(err)
			}
			for i, ft := range tt.match {
				if c, ok := tab.Lookup(&ft); !ok || c != 42 {
					t.Errorf("match[%d]: Lookup = %d, %v; want 42", i, c, ok)
				}
			}
			for i, ft := range tt.miss {
				if c, ok := tab.Lookup(&ft); ok {
					t.Errorf("miss[%d]: Lookup = %d, want no match", i, c)
				}
			}
		})
	}
}

func TestRulePriorityAndTies(t *testing.T) {
	tab := newTable(t, 4)
	web := ft4("192.0.2.10", "10.1.2.3", 40000, 80, pkt.ProtoTCP)
	rules := []Rule{
		{DstPrefix: mustPrefix("10.0.0.0/8"), Chain: 1},
		{DstPrefix: mustPrefix("10.1.0.0/16"), Chain: 2},                   // same priority, added later: loses
		{DstPorts: PortRange{80, 80}, Priority: 5, Chain: 3},               // higher: wins
		{Proto: pkt.ProtoTCP, Priority: 5, Chain: 4},                       // tie with 3, later: loses
		{SrcPrefix: mustPrefix("198.51.100.0/24"), Priority: 9, Chain: 5},  // highest, does not match
		{DstPorts: PortRange{80, 80}, Priority: -1, Chain: 6},              // lowest
		{DstPrefix: mustPrefix("10.1.2.3/32"), Priority: 5, Chain: 7},      // tie with 3, later: loses
		{SrcPorts: PortRange{40000, 40000}, Priority: 5, Chain: 8},         // tie with 3, later: loses
		{DstPrefix: mustPrefix("2001:db8::/32"), Priority: 100, Chain: 9},  // wrong family
		{SrcPrefix: mustPrefix("192.0.2.10/32"), Priority: 100, Proto: 17}, // wrong protocol
	}
	for _, r := range rules {
		if err := tab.AddRule(r); err != nil {
			t.Fatal(err)
		}
	}
	if c, ok := tab.Lookup(&web); !ok || c != 3 {
		t.Fatalf("Lookup = %d, %v; want 3", c, ok)
	}
	if !tab.DeleteRule(rules[2]) || tab.DeleteRule(rules[2]) {
		t.Fatal("DeleteRule should find the rule once")
	}
	if c, _ := tab.Lookup(&web); c != 4 {
		t.Fatalf("after deleting chain 3's rule: Lookup = %d, want 4", c)
	}
	// An exact entry wins over every rule.
	if err := tab.Insert(&web, 77); err != nil {
		t.Fatal(err)
	}
	if c, _ := tab.Lookup(&web); c != 77 {
		t.Fatalf("with an exact entry: Lookup = %d, want 77", c)
	}
	tab.Delete(&web)
	if got := tab.Rules(); len(got) != len(rules)-1 || got[2] != rules[3] {
		t.Fatalf("Rules() = %v", got)
	}
	if err := tab.SetRules(nil); err != nil {
		t.Fatal(err)
	}
	if c, ok := tab.Lookup(&web); ok {
		t.Fatalf("no rules: Lookup = %d, want no match", c)
	}
}

func TestBadRuleRejected(t *testing.T) {
	tests := []struct {
		rule Rule
		msg  string
	}{
		{Rule{SrcPorts: PortRange{2000, 1000}}, "flowdir: bad rule: source port range 2000-1000 is backwards"},
		{Rule{DstPorts: PortRange{1, 0}}, "flowdir: bad rule: destination port range 1-0 is backwards"},
		{Rule{SrcPrefix: mustPrefix("10.0.0.0/8"), DstPrefix: mustPrefix("2001:db8::/32")},
			"flowdir: bad rule: source 10.0.0.0/8 and destination 2001:db8::/32 are of different address families; a flow has one"},
		{Rule{DstPrefix: netip.PrefixFrom(netip.MustParseAddr("10.0.0.1"), 33)}, "flowdir: bad rule: destination prefix invalid Prefix is not valid"},
	}
	for _, tt := range tests {
		tab := newTable(t, 1)
		if err := tab.AddRule(Rule{Chain: 1}); err != nil {
			t.Fatal(err)
		}
		err := tab.AddRule(tt.rule)
		if !errors.Is(err, ErrBadRule) || err.Error() != "rule 1: "+tt.msg {
			t.Errorf("AddRule(%+v) = %v, want %q", tt.rule, err, "rule 1: "+tt.msg)
		}
		if err := tab.SetRules([]Rule{{}, {}, tt.rule}); !errors.Is(err, ErrBadRule) {
			t.Errorf("SetRules with %+v = %v, want ErrBadRule", tt.rule, err)
		}
		if got := tab.Rules(); len(got) != 1 {
			t.Errorf("a failed AddRule or SetRules changed the rules: %v", got)
		}
	}
}

// modelMatch is the naive rule lookup: every rule in the order added, the highest priority
// wins, the earliest among equals; matching with netip.
func modelMatch(rules []Rule, ft pkt.FiveTuple) (uint16, bool) {
	src, dst := netip.AddrFrom16(ft.SrcIP), netip.AddrFrom16(ft.DstIP)
	v4 := src.Is4In6() && dst.Is4In6()
	if v4 {
		src, dst = src.Unmap(), dst.Unmap()
	}
	contains := func(p netip.Prefix, a netip.Addr) bool {
		if p == (netip.Prefix{}) {
			return true
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		if p.Addr().Is4() != v4 {
			return false
		}
		return p.Masked().Contains(a)
	}
	inRange := func(pr PortRange, p uint16) bool {
		return pr == PortRange{} || pr.Lo <= p && p <= pr.Hi
	}
	best := -1
	for i, r := range rules {
		if contains(r.SrcPrefix, src) && contains(r.DstPrefix, dst) && inRange(r.SrcPorts, ft.SrcPort) &&
			inRange(r.DstPorts, ft.DstPort) && (r.Proto == 0 || r.Proto == ft.Proto) &&
			(best < 0 || r.Priority > rules[best].Priority) {
			best = i
		}
	}
	if best < 0 {
		return 0, false
	}
	return rules[best].Chain, true
}

// TestRulesMatchModel compares Lookup and LookupBurst with modelMatch on random rules and flows drawn from a
// small space, so that most rules match some flows.
func TestRulesMatchModel(t *testing.T) {
	r := testenv.Rand(t)
	v4s := []string{"10.0.0.1", "10.0.1.1", "10.1.0.1", "192.0.2.1"}
	v6s := []string{"2001:db8::1", "2001:db8:0:1::1", "2001:db8:1::8000:1", "fe80::1", "::ffff:10.0.0.1"}
	ports := []uint16{0, 53, 80, 443, 1024, 40000}
	protos := []uint8{0, pkt.ProtoTCP, pkt.ProtoUDP, pkt.ProtoICMP}
	randPrefix := func(v6 bool) netip.Prefix {
		if r.IntN(3) == 0 {
			return netip.Prefix{}
		}
		if v6 {
			a := netip.MustParseAddr(v6s[r.IntN(len(v6s))])
			return netip.PrefixFrom(a, []int{0, 16, 32, 48, 64, 65, 96, 104, 120, 128}[r.IntN(10)])
		}
		a := netip.MustParseAddr(v4s[r.IntN(len(v4s))])
		return netip.PrefixFrom(a, []int{0, 8, 16, 24, 31, 32}[r.IntN(6)])
	}
	randPorts := func() PortRange {
		switch r.IntN(3) {
		case 0:
			return PortRange{}
		case 1:
			p := ports[r.IntN(len(ports))]
			return PortRange{p, p}
		}
		a, b := ports[r.IntN(len(ports))], ports[r.IntN(len(ports))]
		return PortRange{min(a, b), max(a, b)}
	}
	randFlow := func() pkt.FiveTuple {
		ft := pkt.FiveTuple{SrcPort: ports[r.IntN(len(ports))], DstPort: ports[r.IntN(len(ports))], Proto: protos[r.IntN(len(protos))]}
		if r.IntN(2) == 0 {
			ft.SrcIP = pkt.V4Mapped(netip.MustParseAddr(v4s[r.IntN(len(v4s))]).As4())
			ft.DstIP = pkt.V4Mapped(netip.MustParseAddr(v4s[r.IntN(len(v4s))]).As4())
		} else {
			ft.SrcIP = netip.MustParseAddr(v6s[r.IntN(len(v6s))]).As16()
			ft.DstIP = netip.MustParseAddr(v6s[r.IntN(len(v6s))]).As16()
		}
		return ft
	}
	rounds := 300
	if raceEnabled {
		rounds = 50
	}
	for round := range rounds {
		tab := newTable(t, 1)
		var rules []Rule
		for range r.IntN(24) {
			v6 := r.IntN(2) == 0
			rule := Rule{
				SrcPrefix: randPrefix(v6), DstPrefix: randPrefix(v6),
				SrcPorts: randPorts(), DstPorts: randPorts(),
				Proto: protos[r.IntN(len(protos))], Priority: r.IntN(4) - 1, Chain: uint16(len(rules)),
			}
			if err := tab.AddRule(rule); err != nil {
				// ::ffff:a.b.c.d/96+n is an IPv4 prefix, so two "IPv6" picks can mix families.
				if errors.Is(err, ErrBadRule) && isV4Prefix(rule.SrcPrefix) != isV4Prefix(rule.DstPrefix) {
					continue
				}
				t.Fatalf("round %d: AddRule(%+v): %v", round, rule, err)
			}
			rules = append(rules, rule)
		}
		var (
			flows  [200]pkt.FiveTuple
			chains [200]uint16
			found  [200]bool
		)
		for i := range flows {
			flows[i] = randFlow()
		}
		tab.LookupBurst(flows[:], chains[:], found[:])
		for i, ft := range flows {
			wc, wok := modelMatch(rules, ft)
			if c, ok := tab.Lookup(&ft); c != wc || ok != wok {
				t.Fatalf("round %d: Lookup(%v) = %d, %v; model %d, %v\nrules: %s", round, ft, c, ok, wc, wok, fmtRules(rules))
			}
			if chains[i] != wc || found[i] != wok {
				t.Fatalf("round %d: LookupBurst [%d] = %d, %v; model %d, %v", round, i, chains[i], found[i], wc, wok)
			}
		}
	}
}

// isV4Prefix reports whether p is an IPv4 prefix, v4-mapped ones included; false for the zero
// Prefix and IPv6.
func isV4Prefix(p netip.Prefix) bool {
	return p.Addr().Is4() || p.Addr().Is4In6() && p.Bits() >= 96
}

func fmtRules(rules []Rule) string {
	s := ""
	for i, r := range rules {
		s += fmt.Sprintf("\n  %d: %+v", i, r)
	}
	return s
}

func TestRulesSnapshotIsImmutable(t *testing.T) {
	tab := newTable(t, 1)
	rules := []Rule{{Proto: pkt.ProtoTCP, Chain: 1}}
	if err := tab.SetRules(rules); err != nil {
		t.Fatal(err)
	}
	rules[0].Chain = 2 // SetRules copied its argument
	old := tab.rules.Load()
	if err := tab.AddRule(Rule{Priority: 1, Chain: 3}); err != nil {
		t.Fatal(err)
	}
	got := tab.Rules()
	got[0].Chain = 9 // Rules returned a copy
	if len(old.rules) != 1 || old.rules[0].chain != 1 {
		t.Errorf("AddRule changed the snapshot a reader may hold: %+v", old.rules)
	}
	if want := []Rule{{Proto: pkt.ProtoTCP, Chain: 1}, {Priority: 1, Chain: 3}}; !slices.Equal(tab.Rules(), want) {
		t.Errorf("Rules() = %+v, want %+v", tab.Rules(), want)
	}
}
