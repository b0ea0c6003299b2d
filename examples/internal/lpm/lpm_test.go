package lpm

import "testing"

func TestLongestPrefixWins(t *testing.T) {
	tb := New(10)
	for _, r := range []struct {
		ip    uint32
		depth int
		nh    uint32
	}{
		{IPv4(10, 0, 0, 0), 8, 1},
		{IPv4(10, 1, 0, 0), 16, 2},
		{IPv4(10, 1, 2, 3), 32, 3},
		{IPv4(10, 1, 9, 9), 24, 4}, // masked to 10.1.9.0/24
		{0, 0, 9},                  // default route
	} {
		if err := tb.Add(r.ip, r.depth, r.nh); err != nil {
			t.Fatal(err)
		}
	}
	for ip, want := range map[uint32]uint32{
		IPv4(10, 9, 9, 9): 1, IPv4(10, 1, 7, 7): 2, IPv4(10, 1, 2, 3): 3, IPv4(10, 1, 2, 4): 2,
		IPv4(10, 1, 9, 200): 4, IPv4(11, 0, 0, 1): 9,
	} {
		if got, ok := tb.Lookup(ip); !ok || got != want {
			t.Errorf("Lookup(%08x) = %d, %v; want %d", ip, got, ok, want)
		}
	}
	if tb.Len() != 5 {
		t.Errorf("Len = %d, want 5", tb.Len())
	}
}

func TestMissLimitsAndReplace(t *testing.T) {
	tb := New(2)
	if _, ok := tb.Lookup(1); ok {
		t.Fatal("empty table hit")
	}
	if err := tb.Add(IPv4(1, 1, 1, 0), 24, 0); err != nil {
		t.Fatal(err)
	}
	if err := tb.Add(IPv4(1, 1, 1, 0), 24, 5); err != nil { // replace: no new rule
		t.Fatal(err)
	}
	if nh, _ := tb.Lookup(IPv4(1, 1, 1, 7)); nh != 5 {
		t.Fatalf("replaced rule gives %d, want 5", nh)
	}
	if _, ok := tb.Lookup(IPv4(1, 1, 2, 7)); ok {
		t.Fatal("miss reported a hit")
	}
	if err := tb.Add(IPv4(2, 0, 0, 0), 8, 1); err != nil {
		t.Fatal(err)
	}
	if err := tb.Add(IPv4(3, 0, 0, 0), 8, 1); err == nil {
		t.Fatal("third rule in a 2-rule table accepted")
	}
	if err := tb.Add(0, 33, 1); err == nil {
		t.Fatal("depth 33 accepted")
	}
	if n := testing.AllocsPerRun(100, func() { tb.Lookup(IPv4(2, 3, 4, 5)) }); n != 0 {
		t.Fatalf("Lookup allocates %v", n)
	}
}
