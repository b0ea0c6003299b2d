package pkt

import (
	"encoding/binary"
	"testing"
)

var (
	macA = MAC{0x02, 0, 0, 0, 0, 1}
	macB = MAC{0x02, 0, 0, 0, 0, 2}
	ipA  = [4]byte{10, 0, 0, 1}
	ipB  = [4]byte{192, 168, 1, 2}
	ip6A = [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}
	ip6B = [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 2}
)

func udp4(t testing.TB, payload int) []byte {
	t.Helper()
	b := make([]byte, 2048)
	n, err := BuildUDP4(b, macA, macB, ipA, ipB, 1234, 80, payload)
	if err != nil {
		t.Fatal(err)
	}
	return b[:n]
}

func tcp4(t testing.TB, payload int) []byte {
	t.Helper()
	b := make([]byte, 2048)
	n, err := BuildTCP4(b, macA, macB, ipA, ipB, 40000, 443, payload)
	if err != nil {
		t.Fatal(err)
	}
	return b[:n]
}

func icmp4(t testing.TB, payload int) []byte {
	t.Helper()
	b := make([]byte, 2048)
	n, err := BuildICMP4Echo(b, macA, macB, ipA, ipB, 7, 9, payload)
	if err != nil {
		t.Fatal(err)
	}
	return b[:n]
}

// withTags inserts VLAN tags (TPID, TCI pairs, outermost first) after the MACs.
func withTags(f []byte, tags ...uint16) []byte {
	out := append([]byte{}, f[:12]...)
	for i := 0; i+1 < len(tags); i += 2 {
		out = binary.BigEndian.AppendUint16(out, tags[i])
		out = binary.BigEndian.AppendUint16(out, tags[i+1])
	}
	return append(out, f[12:]...)
}

// ipv6Frame builds Ethernet + IPv6 + ext (already-encoded extension headers,
// whose first next-header value is first) + an upper-layer segment l4 of
// protocol proto, with the transport checksum set.
func ipv6Frame(t testing.TB, first uint8, ext []byte, proto uint8, l4 []byte) []byte {
	t.Helper()
	f := append([]byte{}, macB[:]...)
	f = append(f, macA[:]...)
	f = binary.BigEndian.AppendUint16(f, EtherTypeIPv6)
	f = append(f, 0x60, 0, 0, 0)
	f = binary.BigEndian.AppendUint16(f, uint16(len(ext)+len(l4)))
	nh := proto
	if len(ext) > 0 {
		nh = first
	}
	f = append(f, nh, 64)
	f = append(f, ip6A[:]...)
	f = append(f, ip6B[:]...)
	f = append(f, ext...)
	f = append(f, l4...)
	var h Headers
	if h.Decode(f) == nil { // some tests build frames that must not decode
		h.SetL4Checksum(f)
	}
	return f
}

func udpSeg(sp, dp uint16, payload int) []byte {
	u := make([]byte, 8+payload)
	binary.BigEndian.PutUint16(u, sp)
	binary.BigEndian.PutUint16(u[2:], dp)
	binary.BigEndian.PutUint16(u[4:], uint16(8+payload))
	for i := range payload {
		u[8+i] = byte(i)
	}
	return u
}

// naiveChecksum is RFC 1071's reference loop, the model sum/fold are checked against.
func naiveChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s>>16 + s&0xFFFF
	}
	return ^uint16(s)
}

// naiveL4Checksum recomputes a transport checksum from scratch with the
// field zeroed, on a copy, for cross-checking L4Checksum.
func naiveL4Checksum(frame []byte, h *Headers) uint16 {
	seg := append([]byte{}, frame[h.L4:h.L3End]...)
	var field int
	switch h.Proto {
	case ProtoTCP:
		field = 16
	case ProtoUDP:
		field = 6
		seg = seg[:binary.BigEndian.Uint16(seg[4:])]
	default:
		field = 2
	}
	seg[field], seg[field+1] = 0, 0
	var ph []byte
	ip := frame[h.L3:]
	switch {
	case h.Proto == ProtoICMP:
	case h.IPVersion == 4:
		ph = append(ph, ip[12:20]...)
		ph = append(ph, 0, h.Proto)
		ph = binary.BigEndian.AppendUint16(ph, uint16(len(seg)))
	default:
		ph = append(ph, ip[8:40]...)
		ph = binary.BigEndian.AppendUint32(ph, uint32(len(seg)))
		ph = append(ph, 0, 0, 0, h.Proto)
	}
	c := naiveChecksum(append(ph, seg...))
	if c == 0 && h.Proto == ProtoUDP {
		c = 0xFFFF
	}
	return c
}
