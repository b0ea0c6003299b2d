package pkt

import (
	"encoding/binary"
	"errors"
	"testing"
)

func TestDecode(t *testing.T) {
	tcpOpts := func() []byte {
		// A TCP header with 12 bytes of options (data offset 8), fixed up.
		f := tcp4(t, 4)
		opt := []byte{2, 4, 5, 0xB4, 1, 1, 4, 2, 1, 1, 1, 0}
		f = append(f[:OffL4+20], append(opt, f[OffL4+20:]...)...)
		f[OffL4+12] = 8 << 4
		binary.BigEndian.PutUint16(f[OffIPv4+2:], uint16(len(f)-OffIPv4))
		var h Headers
		if err := h.Decode(f); err != nil {
			t.Fatal(err)
		}
		h.SetIPv4Checksum(f)
		h.SetL4Checksum(f)
		return f
	}
	ipOpts := func() []byte {
		// IPv4 with IHL 6 (one 4-byte option: NOP NOP NOP EOL).
		f := udp4(t, 10)
		f = append(f[:OffL4], append([]byte{1, 1, 1, 0}, f[OffL4:]...)...)
		f[OffIPv4] = 0x46
		binary.BigEndian.PutUint16(f[OffIPv4+2:], uint16(len(f)-OffIPv4))
		var h Headers
		if err := h.Decode(f); err != nil {
			t.Fatal(err)
		}
		h.SetIPv4Checksum(f)
		h.SetL4Checksum(f)
		return f
	}
	padded := func() []byte { // 42+4 bytes of IP/UDP, padded to 60 like a real minimum frame
		f := udp4(t, 4)
		return append(f, make([]byte, 60-len(f))...)
	}
	frag := func(word uint16) []byte {
		f := udp4(t, 20)
		binary.BigEndian.PutUint16(f[OffIPv4+6:], word)
		return f
	}
	set := func(f []byte, off int, v ...byte) []byte { copy(f[off:], v); return f }
	hbh := []byte{ProtoUDP, 0, 1, 4, 0, 0, 0, 0}   // hop-by-hop, 8 bytes, PadN
	fragHdr := func(off uint16, nh uint8) []byte { // IPv6 fragment header
		b := []byte{nh, 0, 0, 0, 0, 0, 0, 42}
		binary.BigEndian.PutUint16(b[2:], off<<3|1)
		return b
	}
	arp := func() []byte {
		f := make([]byte, 42)
		binary.BigEndian.PutUint16(f[12:], EtherTypeARP)
		return f
	}

	type want struct {
		et            uint16
		vlans         uint8
		ver, proto    uint8
		l3, l3end, l4 uint16
		pay           uint16
		flags         Flags
	}
	tests := []struct {
		name  string
		frame []byte
		err   error // sentinel, nil for success
		want  want
	}{
		{"udp4", udp4(t, 18), nil, want{EtherTypeIPv4, 0, 4, ProtoUDP, 14, 60, 34, 42, FlagL4}},
		{"udp4 padded frame", padded(), nil, want{EtherTypeIPv4, 0, 4, ProtoUDP, 14, 46, 34, 42, FlagL4}},
		{"tcp4", tcp4(t, 6), nil, want{EtherTypeIPv4, 0, 4, ProtoTCP, 14, 60, 34, 54, FlagL4}},
		{"tcp4 options", tcpOpts(), nil, want{EtherTypeIPv4, 0, 4, ProtoTCP, 14, 70, 34, 66, FlagL4}},
		{"ipv4 options", ipOpts(), nil, want{EtherTypeIPv4, 0, 4, ProtoUDP, 14, 56, 38, 46, FlagL4 | FlagIPOptions}},
		{"icmp4", icmp4(t, 18), nil, want{EtherTypeIPv4, 0, 4, ProtoICMP, 14, 60, 34, 42, FlagL4}},
		{"vlan", withTags(udp4(t, 18), EtherTypeVLAN, 0x2064), nil, want{EtherTypeIPv4, 1, 4, ProtoUDP, 18, 64, 38, 46, FlagL4}},
		{"qinq", withTags(udp4(t, 18), EtherTypeQinQ, 10, EtherTypeVLAN, 20), nil, want{EtherTypeIPv4, 2, 4, ProtoUDP, 22, 68, 42, 50, FlagL4}},
		{"qinq 0x9100", withTags(udp4(t, 18), EtherTypeQinQOld, 10, EtherTypeVLAN, 20), nil, want{EtherTypeIPv4, 2, 4, ProtoUDP, 22, 68, 42, 50, FlagL4}},
		{"arp is layer 2 only", arp(), nil, want{EtherTypeARP, 0, 0, 0, 14, 42, 0, 0, 0}},
		{"vlan arp", withTags(arp(), EtherTypeVLAN, 5), nil, want{EtherTypeARP, 1, 0, 0, 18, 46, 0, 0, 0}},
		{"802.3 length field", set(arp(), 12, 0x00, 0x2E), nil, want{0x002E, 0, 0, 0, 14, 42, 0, 0, 0}},
		{"first fragment", frag(ipv4MF), nil, want{EtherTypeIPv4, 0, 4, ProtoUDP, 14, 62, 34, 42, FlagL4 | FlagFragment}},
		{"later fragment", frag(ipv4MF | 3), nil, want{EtherTypeIPv4, 0, 4, ProtoUDP, 14, 62, 0, 0, FlagFragment}},
		{"last fragment", frag(3), nil, want{EtherTypeIPv4, 0, 4, ProtoUDP, 14, 62, 0, 0, FlagFragment}},
		{"ipv4 other proto", set(udp4(t, 18), OffIPv4+9, 47), nil, want{EtherTypeIPv4, 0, 4, 47, 14, 60, 34, 34, FlagL4}},
		{"udp6", ipv6Frame(t, 0, nil, ProtoUDP, udpSeg(5, 53, 10)), nil, want{EtherTypeIPv6, 0, 6, ProtoUDP, 14, 72, 54, 62, FlagL4}},
		{"udp6 hop-by-hop", ipv6Frame(t, protoHopByHop, hbh, ProtoUDP, udpSeg(5, 53, 10)), nil, want{EtherTypeIPv6, 0, 6, ProtoUDP, 14, 80, 62, 70, FlagL4 | FlagIPOptions}},
		{"udp6 first fragment", ipv6Frame(t, protoFragment, fragHdr(0, ProtoUDP), ProtoUDP, udpSeg(5, 53, 10)), nil, want{EtherTypeIPv6, 0, 6, ProtoUDP, 14, 80, 62, 70, FlagL4 | FlagFragment | FlagIPOptions}},
		{"udp6 later fragment", ipv6Frame(t, protoFragment, fragHdr(2, ProtoUDP), ProtoUDP, udpSeg(5, 53, 10)), nil, want{EtherTypeIPv6, 0, 6, ProtoUDP, 14, 80, 0, 0, FlagFragment | FlagIPOptions}},
		{"icmp6", ipv6Frame(t, 0, nil, ProtoICMPv6, []byte{128, 0, 0, 0, 0, 1, 0, 1}), nil, want{EtherTypeIPv6, 0, 6, ProtoICMPv6, 14, 62, 54, 62, FlagL4}},
		{"ipv6 no next header", ipv6Frame(t, 0, nil, 59, nil), nil, want{EtherTypeIPv6, 0, 6, 59, 14, 54, 54, 54, FlagL4}},

		{"empty", nil, ErrTruncated, want{}},
		{"13 bytes", make([]byte, 13), ErrTruncated, want{}},
		{"too long", make([]byte, MaxFrameBytes+1), ErrUnsupported, want{}},
		{"vlan cut", withTags(udp4(t, 18), EtherTypeVLAN, 1)[:15], ErrTruncated, want{}},
		{"three tags", withTags(udp4(t, 18), EtherTypeQinQ, 1, EtherTypeVLAN, 2, EtherTypeVLAN, 3), ErrUnsupported, want{}},
		{"ipv4 cut", udp4(t, 18)[:30], ErrTruncated, want{}},
		{"ipv4 version 6", set(udp4(t, 18), OffIPv4, 0x65), ErrMalformed, want{}},
		{"ipv4 ihl 4", set(udp4(t, 18), OffIPv4, 0x44), ErrMalformed, want{}},
		{"ipv4 ihl 15 past frame", set(udp4(t, 0), OffIPv4, 0x4F), ErrTruncated, want{}},
		{"ipv4 total length below ihl", set(udp4(t, 18), OffIPv4+2, 0, 19), ErrMalformed, want{}},
		{"ipv4 total length past frame", set(udp4(t, 18), OffIPv4+2, 0, 47), ErrTruncated, want{}},
		{"tcp cut by total length", set(tcp4(t, 0), OffIPv4+2, 0, 39), ErrTruncated, want{}},
		{"tcp data offset 4", set(tcp4(t, 6), OffL4+12, 0x40), ErrMalformed, want{}},
		{"tcp data offset 15 past packet", set(tcp4(t, 6), OffL4+12, 0xF0), ErrTruncated, want{}},
		{"udp length 7", set(udp4(t, 18), OffL4+4, 0, 7), ErrMalformed, want{}},
		{"udp length past packet", set(udp4(t, 18), OffL4+4, 0, 27), ErrTruncated, want{}},
		{"icmp cut", set(icmp4(t, 0), OffIPv4+2, 0, 27), ErrTruncated, want{}},
		{"ipv6 cut", ipv6Frame(t, 0, nil, ProtoUDP, udpSeg(1, 2, 0))[:50], ErrTruncated, want{}},
		{"ipv6 version 4", set(ipv6Frame(t, 0, nil, ProtoUDP, udpSeg(1, 2, 0)), 14, 0x40), ErrMalformed, want{}},
		{"ipv6 payload past frame", set(ipv6Frame(t, 0, nil, ProtoUDP, udpSeg(1, 2, 0)), 18, 0, 9), ErrTruncated, want{}},
		{"ipv6 ext past packet", set(ipv6Frame(t, protoHopByHop, hbh, ProtoUDP, udpSeg(1, 2, 0)), 55, 9), ErrTruncated, want{}},
		{"ipv6 eight ext headers", ipv6Frame(t, protoDestOpts, loopExt(8), 59, nil), nil, want{EtherTypeIPv6, 0, 6, 59, 14, 118, 118, 118, FlagL4 | FlagIPOptions}},
		{"ipv6 ext loop", ipv6Frame(t, protoDestOpts, loopExt(9), 59, nil), ErrUnsupported, want{}},
		{"ipv6 udp cut", ipv6Frame(t, 0, nil, ProtoUDP, udpSeg(1, 2, 0))[:60], ErrTruncated, want{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Headers
			err := h.Decode(tt.frame)
			if tt.err != nil {
				var fe *FrameError
				if !errors.Is(err, tt.err) || !errors.As(err, &fe) {
					t.Fatalf("Decode = %v, want a *FrameError matching %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			got := want{h.EtherType, h.VLANs, h.IPVersion, h.Proto, h.L3, h.L3End, h.L4, h.Payload, h.Flags}
			if got != tt.want {
				t.Fatalf("Decode = %+v\nwant        %+v", got, tt.want)
			}
		})
	}
}

// loopExt returns n destination-options headers chained to each other, the
// last pointing at next header 59.
func loopExt(n int) []byte {
	var b []byte
	for i := range n {
		nh := protoDestOpts
		if i == n-1 {
			nh = 59
		}
		b = append(b, nh, 0, 1, 4, 0, 0, 0, 0)
	}
	return b
}

func TestDecodeVLANIDs(t *testing.T) {
	f := withTags(udp4(t, 18), EtherTypeQinQ, 0xE00A, EtherTypeVLAN, 0x0FFF)
	var h Headers
	if err := h.Decode(f); err != nil {
		t.Fatal(err)
	}
	if h.VLANID(0) != 10 || h.VLANID(1) != 0xFFF || h.VLANID(2) != 0 || h.VLANID(-1) != 0 || h.VLAN[0]>>13 != 7 {
		t.Fatalf("VLAN IDs %d %d, TCI %#x", h.VLANID(0), h.VLANID(1), h.VLAN)
	}
}

func TestDecodeResetsPreviousResult(t *testing.T) {
	var h Headers
	if err := h.Decode(withTags(tcp4(t, 6), EtherTypeVLAN, 3)); err != nil {
		t.Fatal(err)
	}
	f := make([]byte, 42)
	binary.BigEndian.PutUint16(f[12:], EtherTypeARP)
	if err := h.Decode(f); err != nil {
		t.Fatal(err)
	}
	if h.VLANs != 0 || h.IPVersion != 0 || h.Flags != 0 || h.L4 != 0 {
		t.Fatalf("stale fields after re-decode: %+v", h)
	}
}

func TestDecodeAllocs(t *testing.T) {
	frames := [][]byte{udp4(t, 18), tcp4(t, 6), withTags(udp4(t, 18), EtherTypeQinQ, 1, EtherTypeVLAN, 2),
		ipv6Frame(t, protoHopByHop, []byte{ProtoUDP, 0, 1, 4, 0, 0, 0, 0}, ProtoUDP, udpSeg(1, 2, 10)),
		udp4(t, 18)[:30]} // the last one fails: errors must not allocate either
	var h Headers
	var sink uint32
	allocs := testing.AllocsPerRun(1000, func() {
		for _, f := range frames {
			if h.Decode(f) == nil {
				ft, _ := h.FiveTuple(f)
				sink += SymmetricHash(ft)
				if h.VerifyL4Checksum(f) && h.VerifyIPv4Checksum(f) {
					sink++
				}
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("Decode+FiveTuple+SymmetricHash+Verify: %v allocs per run, want 0", allocs)
	}
	_ = sink
}

func TestFrameErrorMessage(t *testing.T) {
	var h Headers
	err := h.Decode(make([]byte, 3))
	if got := err.Error(); got != "ethernet: shorter than 14 bytes (truncated)" {
		t.Fatalf("message %q", got)
	}
	if errors.Is(err, ErrMalformed) {
		t.Fatal("truncation error matches ErrMalformed")
	}
}

func BenchmarkDecode(b *testing.B) {
	cases := []struct {
		name  string
		frame []byte
	}{
		{"udp4", udp4(b, 18)},
		{"tcp4-vlan", withTags(tcp4(b, 6), EtherTypeVLAN, 1)},
		{"udp6-ext", ipv6Frame(b, protoHopByHop, []byte{ProtoUDP, 0, 1, 4, 0, 0, 0, 0}, ProtoUDP, udpSeg(1, 2, 10))},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			var h Headers
			for b.Loop() {
				if err := h.Decode(c.frame); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkClassify is what the manager's RX does per packet: decode, take
// the 5-tuple, hash it.
func BenchmarkClassify(b *testing.B) {
	f := udp4(b, 18)
	b.ReportAllocs()
	var h Headers
	var sink uint32
	for b.Loop() {
		if h.Decode(f) == nil {
			if ft, ok := h.FiveTuple(f); ok {
				sink += SymmetricHash(ft)
			}
		}
	}
	_ = sink
}
