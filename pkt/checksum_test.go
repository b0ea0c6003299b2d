package pkt

import (
	"encoding/binary"
	"testing"

	"github.com/reinforce-nfv/reinforce/internal/testenv"
)

func TestChecksumKnownVectors(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		want uint16
	}{
		{"RFC 1071 §3 example", []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}, ^uint16(0xddf2)},
		{"empty", nil, 0xFFFF},
		{"odd length pads low byte", []byte{0x01}, ^uint16(0x0100)},
		{"all ones", []byte{0xFF, 0xFF, 0xFF, 0xFF}, 0x0000},
		// An IPv4 header with its checksum field zeroed (0xb861 is the well-known answer).
		{"ipv4 header", []byte{0x45, 0, 0, 0x73, 0, 0, 0x40, 0, 0x40, 0x11, 0, 0, 0xc0, 0xa8, 0, 1, 0xc0, 0xa8, 0, 0xc7}, 0xb861},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Checksum(tt.b); got != tt.want {
				t.Fatalf("Checksum = %#04x, want %#04x", got, tt.want)
			}
		})
	}
}

func TestChecksumMatchesNaive(t *testing.T) {
	r := testenv.Rand(t)
	buf := make([]byte, 9700)
	for i := 0; i < 3000; i++ {
		n := r.IntN(len(buf))
		if i < 100 {
			n = i
		}
		b := buf[:n]
		for j := range b {
			b[j] = byte(r.Uint32())
			if i%3 == 0 {
				b[j] = 0xFF // long runs of ones exercise the end-around carries
			}
		}
		if got, want := Checksum(b), naiveChecksum(b); got != want {
			t.Fatalf("len %d: Checksum = %#04x, naive %#04x", n, got, want)
		}
	}
}

func TestIPv4HeaderChecksumIgnoresStoredField(t *testing.T) {
	hdr := []byte{0x45, 0, 0, 0x73, 0, 0, 0x40, 0, 0x40, 0x11, 0x12, 0x34, 0xc0, 0xa8, 0, 1, 0xc0, 0xa8, 0, 0xc7}
	if got := IPv4HeaderChecksum(hdr); got != 0xb861 {
		t.Fatalf("IPv4HeaderChecksum = %#04x, want 0xb861", got)
	}
	if IPv4HeaderChecksum(hdr[:19]) != 0 {
		t.Fatal("short header did not yield 0")
	}
}

// TestChecksumUpdateMatchesRecompute checks RFC 1624's incremental update
// against recomputing, for random headers and random 16/32-bit changes. The
// results must be equal bit for bit, not just equal as ones' complement
// numbers (eqn. 3 cannot yield -0 where recomputing gives +0, §3), except
// when the new data is all zeros, which no real header is: there eqn. 3
// gives 0x0000 and recomputing 0xFFFF.
// allZero reports whether b is all zero bytes: the one case where eqn. 3
// and recomputing legitimately differ (documented above).
func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

func TestChecksumUpdateMatchesRecompute(t *testing.T) {
	r := testenv.Rand(t)
	b := make([]byte, 40)
	for i := 0; i < 100000; i++ {
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		if i%5 == 0 {
			clear(b) // zero data: the checksum is 0xFFFF, the edge case RFC 1624 §3 is about
		}
		c := Checksum(b)
		off := 2 * r.IntN(len(b)/2-1)
		if i%2 == 0 {
			old := binary.BigEndian.Uint16(b[off:])
			nw := uint16(r.Uint32())
			if i%7 == 0 && i%5 != 0 {
				nw = 0
			}
			binary.BigEndian.PutUint16(b[off:], nw)
			if got, want := ChecksumUpdate16(c, old, nw), Checksum(b); got != want && !(allZero(b) && got == 0 && want == 0xFFFF) {
				t.Fatalf("iter %d: Update16 = %#04x, recomputed %#04x", i, got, want)
			}
		} else {
			old := binary.BigEndian.Uint32(b[off:])
			nw := r.Uint32() | 1
			binary.BigEndian.PutUint32(b[off:], nw)
			if got, want := ChecksumUpdate32(c, old, nw), Checksum(b); got != want {
				t.Fatalf("iter %d: Update32 = %#04x, recomputed %#04x", i, got, want)
			}
		}
	}
}

func TestL4Checksum(t *testing.T) {
	tests := []struct {
		name  string
		frame []byte
		ok    bool
	}{
		{"udp4", udp4(t, 33), true},
		{"tcp4 odd payload", tcp4(t, 7), true},
		{"icmp4", icmp4(t, 56), true},
		{"udp4 over vlan", withTags(udp4(t, 5), EtherTypeVLAN, 9), true},
		{"udp6", ipv6Frame(t, 0, nil, ProtoUDP, udpSeg(1000, 2000, 17)), true},
		{"udp6 hop-by-hop", ipv6Frame(t, protoHopByHop, []byte{ProtoUDP, 0, 1, 4, 0, 0, 0, 0}, ProtoUDP, udpSeg(1, 2, 3)), true},
		{"icmp6", ipv6Frame(t, 0, nil, ProtoICMPv6, []byte{128, 0, 0, 0, 0, 1, 0, 1, 9, 9, 9}), true},
		{"ipv4 other proto", func() []byte { f := udp4(t, 18); f[OffIPv4+9] = 47; return f }(), false},
		{"first fragment", func() []byte { f := udp4(t, 18); f[OffIPv4+6] = 0x20; return f }(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Headers
			if err := h.Decode(tt.frame); err != nil {
				t.Fatal(err)
			}
			c, ok := h.L4Checksum(tt.frame)
			if ok != tt.ok || h.VerifyL4Checksum(tt.frame) != tt.ok {
				t.Fatalf("L4Checksum ok = %v, Verify = %v, want %v", ok, h.VerifyL4Checksum(tt.frame), tt.ok)
			}
			if !ok {
				return
			}
			if want := naiveL4Checksum(tt.frame, &h); c != want {
				t.Fatalf("L4Checksum = %#04x, naive %#04x", c, want)
			}
			// Corrupt one payload bit: verification fails; Set repairs it.
			tt.frame[len(tt.frame)-1] ^= 0x10
			if h.VerifyL4Checksum(tt.frame) {
				t.Fatal("corrupted segment verified")
			}
			if !h.SetL4Checksum(tt.frame) || !h.VerifyL4Checksum(tt.frame) {
				t.Fatal("SetL4Checksum did not repair the checksum")
			}
		})
	}
}

func TestUDPZeroChecksum(t *testing.T) {
	f := udp4(t, 10)
	binary.BigEndian.PutUint16(f[OffUDPChecksum:], 0)
	var h Headers
	if err := h.Decode(f); err != nil {
		t.Fatal(err)
	}
	if !h.VerifyL4Checksum(f) {
		t.Fatal("UDP/IPv4 checksum 0 (not computed, RFC 768) rejected")
	}
	f6 := ipv6Frame(t, 0, nil, ProtoUDP, udpSeg(1, 2, 3))
	binary.BigEndian.PutUint16(f6[14+40+6:], 0)
	if err := h.Decode(f6); err != nil {
		t.Fatal(err)
	}
	if h.VerifyL4Checksum(f6) {
		t.Fatal("UDP/IPv6 checksum 0 accepted (RFC 8200 §8.1 forbids it)")
	}
}

func TestIPv4ChecksumVerifySet(t *testing.T) {
	f := udp4(t, 18)
	var h Headers
	if err := h.Decode(f); err != nil {
		t.Fatal(err)
	}
	if !h.VerifyIPv4Checksum(f) {
		t.Fatal("built header does not verify")
	}
	f[OffIPv4+8]-- // TTL decrement, as a router does
	if h.VerifyIPv4Checksum(f) {
		t.Fatal("changed header verified")
	}
	h.SetIPv4Checksum(f)
	if !h.VerifyIPv4Checksum(f) {
		t.Fatal("SetIPv4Checksum did not repair")
	}
	var h6 Headers
	f6 := ipv6Frame(t, 0, nil, ProtoUDP, udpSeg(1, 2, 3))
	if h6.Decode(f6) != nil || h6.VerifyIPv4Checksum(f6) || h6.SetIPv4Checksum(f6) {
		t.Fatal("IPv4 checksum helpers accepted an IPv6 frame")
	}
}

// TestPcapChecksumsMatchNaive recomputes the transport checksum of every
// frame in the captures both ways. The captures' own checksums may be wrong
// (offloads, deliberately bad packets), so only the two computations are
// compared; how many stored ones verify is logged.
func TestPcapChecksumsMatchNaive(t *testing.T) {
	frames := pcapFrames(t)
	if frames == nil {
		t.Skip("no captures")
	}
	var h Headers
	var decoded, checked, verified int
	for i, f := range frames {
		if h.Decode(f) != nil {
			continue
		}
		decoded++
		c, ok := h.L4Checksum(f)
		if !ok {
			continue
		}
		checked++
		if want := naiveL4Checksum(f, &h); c != want {
			t.Fatalf("frame %d: L4Checksum %#04x, naive %#04x", i, c, want)
		}
		if h.VerifyL4Checksum(f) {
			verified++
		}
	}
	t.Logf("%d frames, %d decoded, %d with a transport checksum, %d of those verify", len(frames), decoded, checked, verified)
	if checked == 0 {
		t.Fatal("no frame had a transport checksum")
	}
}

func TestChecksumAllocs(t *testing.T) {
	f := tcp4(t, 100)
	var h Headers
	if err := h.Decode(f); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		h.SetIPv4Checksum(f)
		h.SetL4Checksum(f)
		_ = ChecksumUpdate32(ChecksumUpdate16(Checksum(f), 1, 2), 3, 4)
		_ = IPv4HeaderChecksum(f[OffIPv4:OffL4])
	})
	if allocs != 0 {
		t.Fatalf("%v allocs per run, want 0", allocs)
	}
}

func BenchmarkChecksum(b *testing.B) {
	for _, n := range []int{20, 64, 1500, 9000} {
		buf := make([]byte, n)
		for i := range buf {
			buf[i] = byte(i * 7)
		}
		b.Run("len="+itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(n))
			for b.Loop() {
				_ = Checksum(buf)
			}
		})
	}
}

func BenchmarkL4ChecksumTCP4(b *testing.B) {
	f := tcp4(b, 1446)
	var h Headers
	if err := h.Decode(f); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(f)))
	for b.Loop() {
		if !h.VerifyL4Checksum(f) {
			b.Fatal("bad checksum")
		}
	}
}

func BenchmarkChecksumUpdate32(b *testing.B) {
	b.ReportAllocs()
	c := uint16(0x1234)
	for i := uint32(0); b.Loop(); i++ {
		c = ChecksumUpdate32(c, i, i+1)
	}
	_ = c
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for ; n > 0; n /= 10 {
		i--
		b[i] = byte('0' + n%10)
	}
	return string(b[i:])
}
