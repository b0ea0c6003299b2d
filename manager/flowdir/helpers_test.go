package flowdir

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/reinforce-nfv/reinforce/pkt"
)

// newTable returns New(maxFlows) or fails t.
func newTable(t testing.TB, maxFlows int) *Table {
	t.Helper()
	tab, err := New(maxFlows)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// ft4 builds an IPv4 5-tuple from dotted quads.
func ft4(src, dst string, sp, dp uint16, proto uint8) pkt.FiveTuple {
	return pkt.FiveTuple{
		SrcIP: pkt.V4Mapped(netip.MustParseAddr(src).As4()), DstIP: pkt.V4Mapped(netip.MustParseAddr(dst).As4()),
		SrcPort: sp, DstPort: dp, Proto: proto,
	}
}

// ft6 builds an IPv6 5-tuple (or a mixed one, if one address is v4-mapped).
func ft6(src, dst string, sp, dp uint16, proto uint8) pkt.FiveTuple {
	return pkt.FiveTuple{
		SrcIP: netip.MustParseAddr(src).As16(), DstIP: netip.MustParseAddr(dst).As16(),
		SrcPort: sp, DstPort: dp, Proto: proto,
	}
}

// randFlow4 returns a uniformly random IPv4 TCP or UDP flow.
func randFlow4(r *rand.Rand) pkt.FiveTuple {
	var s, d [4]byte
	u := r.Uint64()
	for i := range 4 {
		s[i], d[i] = byte(u>>(8*i)), byte(u>>(32+8*i))
	}
	proto := pkt.ProtoTCP
	if r.IntN(2) == 0 {
		proto = pkt.ProtoUDP
	}
	return pkt.FiveTuple{SrcIP: pkt.V4Mapped(s), DstIP: pkt.V4Mapped(d), SrcPort: uint16(r.Uint32()), DstPort: uint16(r.Uint32()), Proto: proto}
}

// randFlow6 returns a random IPv6 flow within 2001:db8::/32 (fixed high bits, as real traffic
// of one site has).
func randFlow6(r *rand.Rand) pkt.FiveTuple {
	ft := pkt.FiveTuple{SrcPort: uint16(r.Uint32()), DstPort: uint16(r.Uint32()), Proto: pkt.ProtoUDP}
	for _, a := range []*[16]byte{&ft.SrcIP, &ft.DstIP} {
		a[0], a[1], a[2], a[3] = 0x20, 0x01, 0x0d, 0xb8
		for i := 4; i < 16; i++ {
			a[i] = byte(r.Uint32())
		}
	}
	return ft
}

// checkInvariants checks the exact tables' structure: every entry is reachable from its home
// slot without crossing an empty slot, and the entries add up to Len. Writer-side; call it
// with no writer running.
func checkInvariants(t *testing.T, tab *Table) {
	t.Helper()
	n := 0
	var pts []probeTable
	if t4 := tab.v4.Load(); t4 != nil {
		pts = append(pts, t4)
	}
	if t6 := tab.v6.Load(); t6 != nil {
		pts = append(pts, t6)
	}
	for _, pt := range pts {
		mask := pt.mask()
		for i := uint64(0); i <= mask; i++ {
			if !pt.used(i) {
				continue
			}
			n++
			for j := pt.home(i, &tab.seeds); j != i; j = (j + 1) & mask {
				if !pt.used(j) {
					t.Fatalf("%T slot %d: entry unreachable, empty slot %d between it and its home", pt, i, j)
				}
			}
		}
	}
	if n != tab.Len() {
		t.Fatalf("%d entries in the slots, Len() = %d", n, tab.Len())
	}
}
