package pkt

// Builders write complete frames for generated traffic (the null port, test
// fixtures, NFs that answer): Ethernet → IPv4 (IHL 5, DF, TTL 64, ID 0) →
// UDP, TCP or ICMP echo, payload zero-filled, every checksum valid. They
// write only into the caller's buffer and allocate nothing; calls on
// distinct buffers may run concurrently. They add no
// Ethernet padding: a caller that needs the 60-byte minimum frame asks for a
// payload that reaches it (18 bytes for UDP and ICMP, 6 for TCP).

import "encoding/binary"

// MAC is an Ethernet address.
type MAC [6]byte

// String formats m as six colon-separated hex bytes (for logs; allocates).
func (m MAC) String() string {
	const hex = "0123456789abcdef"
	b := make([]byte, 0, 17)
	for i, x := range m {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, hex[x>>4], hex[x&0x0F])
	}
	return string(b)
}

// Offsets in frames the builders write (untagged Ethernet, IPv4 without
// options), for callers that patch fields in place and update checksums
// with ChecksumUpdate16/32 instead of rebuilding.
const (
	OffIPv4         = EthHeaderBytes            // IPv4 header
	OffIPv4Checksum = OffIPv4 + 10              // IPv4 header checksum
	OffIPv4Src      = OffIPv4 + 12              // IPv4 source address
	OffIPv4Dst      = OffIPv4 + 16              // IPv4 destination address
	OffL4           = OffIPv4 + IPv4HeaderBytes // transport header
	OffSrcPort      = OffL4                     // TCP/UDP source port
	OffDstPort      = OffL4 + 2                 // TCP/UDP destination port
	OffUDPChecksum  = OffL4 + 6                 // UDP checksum
	OffTCPSeq       = OffL4 + 4                 // TCP sequence number
	OffTCPChecksum  = OffL4 + 16                // TCP checksum
	OffICMPChecksum = OffL4 + 2                 // ICMP checksum
)

// BuildUDP4 writes an Ethernet + IPv4 + UDP frame with payloadLen zero bytes
// of payload into buf and returns its length (42 + payloadLen). Both
// checksums are valid. It fails with ErrShortBuffer if buf is too small and
// ErrBadLength if payloadLen is negative or too large for IPv4; buf is then
// unchanged.
func BuildUDP4(buf []byte, src, dst MAC, srcIP, dstIP [4]byte, srcPort, dstPort uint16, payloadLen int) (n int, err error) {
	l4 := UDPHeaderBytes + payloadLen
	n, err = startIPv4(buf, src, dst, srcIP, dstIP, ProtoUDP, l4, payloadLen)
	if err != nil {
		return 0, err
	}
	u := buf[OffL4:n]
	binary.BigEndian.PutUint16(u[0:], srcPort)
	binary.BigEndian.PutUint16(u[2:], dstPort)
	binary.BigEndian.PutUint16(u[4:], uint16(l4))
	binary.BigEndian.PutUint16(u[6:], 0)
	clear(u[UDPHeaderBytes:])
	c := ^fold(uint64(fold(sum(u, 0))) + pseudoSum4(buf[OffIPv4:], ProtoUDP, l4))
	if c == 0 {
		c = 0xFFFF // RFC 768: 0 would mean "no checksum"
	}
	binary.BigEndian.PutUint16(u[6:], c)
	return n, nil
}

// BuildTCP4 writes an Ethernet + IPv4 + TCP frame into buf: a plain
// established-flow segment (flags ACK, or ACK|PSH with a payload; seq and
// ack 1; window 65535; no options) with payloadLen zero bytes of payload,
// and returns its length (54 + payloadLen). Errors as BuildUDP4.
func BuildTCP4(buf []byte, src, dst MAC, srcIP, dstIP [4]byte, srcPort, dstPort uint16, payloadLen int) (n int, err error) {
	l4 := TCPHeaderBytes + payloadLen
	n, err = startIPv4(buf, src, dst, srcIP, dstIP, ProtoTCP, l4, payloadLen)
	if err != nil {
		return 0, err
	}
	t := buf[OffL4:n]
	binary.BigEndian.PutUint16(t[0:], srcPort)
	binary.BigEndian.PutUint16(t[2:], dstPort)
	binary.BigEndian.PutUint32(t[4:], 1) // seq
	binary.BigEndian.PutUint32(t[8:], 1) // ack
	t[12] = TCPHeaderBytes / 4 << 4
	t[13] = 0x10 // ACK
	if payloadLen > 0 {
		t[13] |= 0x08 // PSH
	}
	binary.BigEndian.PutUint16(t[14:], defaultWindow)
	binary.BigEndian.PutUint32(t[16:], 0) // checksum, urgent pointer
	clear(t[TCPHeaderBytes:])
	c := ^fold(uint64(fold(sum(t, 0))) + pseudoSum4(buf[OffIPv4:], ProtoTCP, l4))
	binary.BigEndian.PutUint16(t[16:], c)
	return n, nil
}

// BuildICMP4Echo writes an Ethernet + IPv4 + ICMP echo request (type 8,
// RFC 792) with identifier id, sequence number seq and payloadLen zero
// bytes of data into buf and returns its length (42 + payloadLen). Errors
// as BuildUDP4.
func BuildICMP4Echo(buf []byte, src, dst MAC, srcIP, dstIP [4]byte, id, seq uint16, payloadLen int) (n int, err error) {
	l4 := ICMPHeaderBytes + payloadLen
	n, err = startIPv4(buf, src, dst, srcIP, dstIP, ProtoICMP, l4, payloadLen)
	if err != nil {
		return 0, err
	}
	m := buf[OffL4:n]
	m[0], m[1] = 8, 0 // echo request, code 0
	binary.BigEndian.PutUint16(m[2:], 0)
	binary.BigEndian.PutUint16(m[4:], id)
	binary.BigEndian.PutUint16(m[6:], seq)
	clear(m[ICMPHeaderBytes:])
	binary.BigEndian.PutUint16(m[2:], Checksum(m))
	return n, nil
}

// startIPv4 checks the sizes and writes the Ethernet and IPv4 headers for a
// transport segment of l4 bytes; it returns the frame length.
func startIPv4(buf []byte, src, dst MAC, srcIP, dstIP [4]byte, proto uint8, l4, payloadLen int) (int, error) {
	if payloadLen < 0 || IPv4HeaderBytes+l4 > 0xFFFF {
		return 0, errBuildBadLen
	}
	n := OffL4 + l4
	if len(buf) < n {
		return 0, errBuildShort
	}
	copy(buf[0:6], dst[:])
	copy(buf[6:12], src[:])
	binary.BigEndian.PutUint16(buf[12:], EtherTypeIPv4)
	ip := buf[OffIPv4:OffL4]
	ip[0], ip[1] = 0x45, 0 // version 4, IHL 5; DSCP/ECN 0
	binary.BigEndian.PutUint16(ip[2:], uint16(IPv4HeaderBytes+l4))
	binary.BigEndian.PutUint16(ip[4:], 0) // ID: DF is set, so RFC 6864 §4.1 lets it be constant
	binary.BigEndian.PutUint16(ip[6:], ipv4FlagDF)
	ip[8], ip[9] = defaultTTL, proto
	binary.BigEndian.PutUint16(ip[10:], 0)
	copy(ip[12:16], srcIP[:])
	copy(ip[16:20], dstIP[:])
	binary.BigEndian.PutUint16(ip[10:], Checksum(ip))
	return n, nil
}
