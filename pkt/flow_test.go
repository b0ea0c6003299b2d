package pkt

import (
	"encoding/binary"
	"math/bits"
	"testing"

	"github.com/reinforce-nfv/reinforce/internal/testenv"
)

func TestFiveTuple(t *testing.T) {
	v4 := func(a [4]byte) [16]byte { return V4Mapped(a) }
	later := udp4(t, 20)
	binary.BigEndian.PutUint16(later[OffIPv4+6:], 5)
	first := udp4(t, 20)
	binary.BigEndian.PutUint16(first[OffIPv4+6:], ipv4MF)
	arp := make([]byte, 42)
	binary.BigEndian.PutUint16(arp[12:], EtherTypeARP)
	tests := []struct {
		name  string
		frame []byte
		ok    bool
		want  FiveTuple
	}{
		{"udp4", udp4(t, 18), true, FiveTuple{v4(ipA), v4(ipB), 1234, 80, ProtoUDP}},
		{"tcp4 qinq", withTags(tcp4(t, 6), EtherTypeQinQ, 1, EtherTypeVLAN, 2), true, FiveTuple{v4(ipA), v4(ipB), 40000, 443, ProtoTCP}},
		{"icmp4 has no ports", icmp4(t, 18), true, FiveTuple{v4(ipA), v4(ipB), 0, 0, ProtoICMP}},
		{"first fragment has no ports", first, true, FiveTuple{v4(ipA), v4(ipB), 0, 0, ProtoUDP}},
		{"later fragment has no ports", later, true, FiveTuple{v4(ipA), v4(ipB), 0, 0, ProtoUDP}},
		{"udp6", ipv6Frame(t, 0, nil, ProtoUDP, udpSeg(5, 53, 1)), true, FiveTuple{ip6A, ip6B, 5, 53, ProtoUDP}},
		{"arp", arp, false, FiveTuple{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Headers
			if err := h.Decode(tt.frame); err != nil {
				t.Fatal(err)
			}
			got, ok := h.FiveTuple(tt.frame)
			if ok != tt.ok || got != tt.want {
				t.Fatalf("FiveTuple = %+v, %v\nwant        %+v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
	var zero Headers
	if _, ok := zero.FiveTuple(nil); ok {
		t.Fatal("zero Headers yielded a tuple")
	}
}

func TestSymmetricHashIsSymmetric(t *testing.T) {
	r := testenv.Rand(t)
	for i := 0; i < 100000; i++ {
		var ft FiveTuple
		for j := range ft.SrcIP {
			ft.SrcIP[j], ft.DstIP[j] = byte(r.Uint32()), byte(r.Uint32())
		}
		if i%2 == 0 { // v4-mapped, the common case
			ft.SrcIP, ft.DstIP = V4Mapped([4]byte(ft.SrcIP[:4])), V4Mapped([4]byte(ft.DstIP[:4]))
		}
		if i%3 == 0 { // same host both ends: the ports decide the order
			ft.DstIP = ft.SrcIP
		}
		ft.SrcPort, ft.DstPort, ft.Proto = uint16(r.Uint32()), uint16(r.Uint32()), uint8(r.Uint32())
		if SymmetricHash(ft) != SymmetricHash(ft.Reverse()) {
			t.Fatalf("%+v: hash %#x, reverse %#x", ft, SymmetricHash(ft), SymmetricHash(ft.Reverse()))
		}
	}
}

// TestSymmetricHashSpreadsBuckets feeds the regular flow sets a generator
// produces (consecutive ports, consecutive addresses, swapped-port pairs)
// and checks the 256 buckets fill evenly, both by the low byte and by the
// four-byte XOR fold the manager uses (ctlmsg.BucketIndex). Chi-square with
// 255 degrees of freedom has mean 255 and standard deviation ≈ 22.6; the
// bound is 8 deviations out, so only a broken mixer fails.
func TestSymmetricHashSpreadsBuckets(t *testing.T) {
	const n = 1 << 16
	sets := map[string]func(i int) FiveTuple{
		"src ports": func(i int) FiveTuple {
			return FiveTuple{V4Mapped(ipA), V4Mapped(ipB), uint16(i), 80, ProtoUDP}
		},
		"src addresses": func(i int) FiveTuple {
			return FiveTuple{V4Mapped([4]byte{10, 0, byte(i >> 8), byte(i)}), V4Mapped(ipB), 1234, 80, ProtoUDP}
		},
		"both ports": func(i int) FiveTuple {
			return FiveTuple{V4Mapped(ipA), V4Mapped(ipB), uint16(i), uint16(i >> 8), ProtoTCP}
		},
		"ipv6 low bits": func(i int) FiveTuple {
			a := ip6A
			binary.BigEndian.PutUint16(a[14:], uint16(i))
			return FiveTuple{a, ip6B, 1, 2, ProtoUDP}
		},
	}
	for name, gen := range sets {
		t.Run(name, func(t *testing.T) {
			var low, folded [256]int
			for i := range n {
				h := SymmetricHash(gen(i))
				low[uint8(h)]++
				folded[uint8(h^h>>8^h>>16^h>>24)]++
			}
			for what, c := range map[string]*[256]int{"low byte": &low, "xor fold": &folded} {
				x := chiSquare(c[:], n)
				t.Logf("%s: chi-square %.0f", what, x)
				if x > 255+8*22.6 {
					t.Errorf("%s: chi-square %.0f over 256 buckets", what, x)
				}
			}
		})
	}
}

func chiSquare(counts []int, n int) float64 {
	e := float64(n) / float64(len(counts))
	var x float64
	for _, c := range counts {
		d := float64(c) - e
		x += d * d / e
	}
	return x
}

// TestSymmetricHashAvalanche flips each input bit and checks that about half
// the output bits change on average (a weak mixer leaves whole bytes fixed).
func TestSymmetricHashAvalanche(t *testing.T) {
	r := testenv.Rand(t)
	const trials = 20000
	var total, flips int
	for range trials {
		var ft FiveTuple
		ft.SrcIP = V4Mapped([4]byte{10, byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
		ft.DstIP = V4Mapped([4]byte{192, 168, byte(r.Uint32()), byte(r.Uint32())})
		ft.SrcPort, ft.DstPort, ft.Proto = uint16(r.Uint32()), uint16(r.Uint32()), ProtoUDP
		h := SymmetricHash(ft)
		g := ft
		switch b := r.IntN(104); { // any bit of the addresses' v4 part, the ports and the protocol
		case b < 32:
			g.SrcIP[12+b/8] ^= 1 << (b % 8)
		case b < 64:
			g.DstIP[12+(b-32)/8] ^= 1 << (b % 8)
		case b < 80:
			g.SrcPort ^= 1 << (b - 64)
		case b < 96:
			g.DstPort ^= 1 << (b - 80)
		default:
			g.Proto ^= 1 << (b - 96)
		}
		flips += bits.OnesCount32(h ^ SymmetricHash(g))
		total += 32
	}
	if f := float64(flips) / float64(total); f < 0.45 || f > 0.55 {
		t.Fatalf("one input bit flips %.3f of the output bits, want ≈ 0.5", f)
	}
}

func BenchmarkSymmetricHash(b *testing.B) {
	ft := FiveTuple{V4Mapped(ipA), V4Mapped(ipB), 1234, 80, ProtoUDP}
	b.ReportAllocs()
	var sink uint32
	for b.Loop() {
		sink += SymmetricHash(ft)
		ft.SrcPort++
	}
	_ = sink
}
