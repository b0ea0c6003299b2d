// Package pktprint formats what ONVM's example NFs print on the terminal,
// byte for byte, without allocating: the "std packet print" many NFs show
// every -p packets (ONVM-COMPAT.md §5), onvm_pkt_print's header dump
// (onvm_pkt_helper.c, §3.5) and the printf-style padded numbers of the
// periodic stats blocks.
//
// Every function appends to a caller's buffer and returns it, so an NF
// keeps one buffer, formats into it from its handler and writes it once;
// with a buffer of enough capacity nothing allocates. Packets are read
// bounds-checked: a header that does not fit in the packet is not printed,
// where ONVM would read past the data.
//
// ONVM runs on x86 and prints a few header fields without byte-swapping
// them (the IPv4 header checksum and addresses, the IPv4 flags); those are
// read little-endian here, so the output matches ONVM's on any machine.
package pktprint

import (
	"encoding/binary"
	"strconv"
)

// ClearScreen is the ANSI sequence ONVM's NFs print before each periodic
// block: clear the screen, then move to the top left.
const ClearScreen = "\x1b[2J\x1b[1;1H"

// Header layout onvm_pkt_print assumes: Ethernet without VLAN tags, IPv4
// without options (it ignores IHL when locating TCP and UDP).
const (
	ethLen  = 14
	ipv4Len = 20
	l4Off   = ethLen + ipv4Len
	tcpLen  = 20
	udpLen  = 8

	protoTCP = 6
	protoUDP = 17
)

// AppendStd appends ONVM's std packet print for a packet of size bytes that
// arrived on port and is the n-th packet processed (N°); data is the packet.
// It is do_stats_display of simple_forward and its kin.
func AppendStd(b []byte, port uint16, size uint32, n uint64, data []byte) []byte {
	b = append(b, ClearScreen...)
	b = append(b, "PACKETS\n-----\nPort : "...)
	b = strconv.AppendUint(b, uint64(port), 10)
	b = append(b, "\nSize : "...)
	b = strconv.AppendUint(b, uint64(size), 10)
	b = append(b, "\nN°   : "...)
	b = strconv.AppendUint(b, n, 10)
	b = append(b, "\n\n\n"...)
	if !IsIPv4(data) {
		return append(b, "No IP4 header found\n"...)
	}
	return AppendPkt(b, data)
}

// IsIPv4 reports whether data holds an IPv4 header where onvm_pkt_ipv4_hdr
// looks for one: the version nibble after a 14-byte Ethernet header is 4
// (the EtherType is not checked). Unlike ONVM it also needs the 20 bytes of
// the header to be in the packet.
func IsIPv4(data []byte) bool {
	return len(data) >= l4Off && data[ethLen]>>4 == 4
}

// AppendPkt appends onvm_pkt_print's dump of data: the IPv4 header, then the
// TCP or UDP header found right after 20 bytes of IPv4 header. It appends
// nothing for a packet IsIPv4 refuses.
func AppendPkt(b []byte, data []byte) []byte {
	if !IsIPv4(data) {
		return b
	}
	ip := data[ethLen:l4Off]
	b = appendIPv4(b, ip)
	switch ip[9] {
	case protoTCP:
		if len(data) >= l4Off+tcpLen {
			b = appendTCP(b, data[l4Off:l4Off+tcpLen])
		}
	case protoUDP:
		if len(data) >= l4Off+udpLen {
			b = appendUDP(b, data[l4Off:l4Off+udpLen])
		}
	}
	return b
}

// appendIPv4 is onvm_pkt_print_ipv4 for the 20-byte header h, quirks
// included: DSCP is printed as the low six bits of the TOS byte and ECN as
// the top two (RFC 2474 has it the other way round), the flags come from the
// wrong byte
// (the raw big-endian word shifted as if it were host order), the flags
// line has no closing parenthesis, and the checksum and addresses are not
// byte-swapped.
func appendIPv4(b, h []byte) []byte {
	be, le := binary.BigEndian, binary.LittleEndian
	b = appendField(b, "IHL: ", uint64(h[0]&0xF))
	b = appendField(b, "DSCP: ", uint64(h[1]&0x3F))
	b = appendField(b, "ECN: ", uint64(h[1]>>6))
	b = appendField(b, "Total Length: ", uint64(be.Uint16(h[2:])))
	b = appendField(b, "Identification: ", uint64(be.Uint16(h[4:])))
	flags := le.Uint16(h[6:]) >> 13 & 7
	b = append(b, "Flags: "...)
	b = strconv.AppendUint(b, uint64(flags), 16)
	b = append(b, "\n\t("...)
	if flags&2 != 0 {
		b = append(b, "DF,"...)
	}
	if flags&1 != 0 {
		b = append(b, "MF,"...)
	}
	b = append(b, '\n')
	b = appendField(b, "Fragment Offset: ", uint64(be.Uint16(h[6:])&0x1FFF))
	b = appendField(b, "TTL: ", uint64(h[8]))
	b = append(b, "Protocol: "...)
	b = strconv.AppendUint(b, uint64(h[9]), 10)
	switch h[9] {
	case protoTCP:
		b = append(b, " (TCP)"...)
	case protoUDP:
		b = append(b, " (UDP)"...)
	}
	b = append(b, '\n')
	b = appendField(b, "Header Checksum: ", uint64(le.Uint16(h[10:])))
	b = appendAddr(b, "Source IP: ", h[12:16])
	return appendAddr(b, "Destination IP: ", h[16:20])
}

// appendAddr prints an IPv4 address as ONVM does: the raw word read in host
// (little-endian) order, then the dotted quad.
func appendAddr(b []byte, name string, a []byte) []byte {
	b = append(b, name...)
	b = strconv.AppendUint(b, uint64(binary.LittleEndian.Uint32(a)), 10)
	b = append(b, " ("...)
	for i, v := range a {
		if i > 0 {
			b = append(b, '.')
		}
		b = strconv.AppendUint(b, uint64(v), 10)
	}
	return append(b, ")\n"...)
}

// tcpFlagNames are the nine TCP flags from bit 8 (NS) down to bit 0 (FIN).
var tcpFlagNames = [9]string{"NS,", "CWR,", "ECE,", "URG,", "ACK,", "PSH,", "RST,", "SYN,", "FIN,"}

// appendTCP is onvm_pkt_print_tcp for the 20-byte header h. "Data offset"
// is the raw byte (offset << 4 plus the NS bit), as ONVM prints it.
func appendTCP(b, h []byte) []byte {
	be := binary.BigEndian
	b = appendField(b, "Source Port: ", uint64(be.Uint16(h[0:])))
	b = appendField(b, "Destination Port: ", uint64(be.Uint16(h[2:])))
	b = appendField(b, "Sequence number: ", uint64(be.Uint32(h[4:])))
	b = appendField(b, "Acknowledgement number: ", uint64(be.Uint32(h[8:])))
	b = appendField(b, "Data offset: ", uint64(h[12]))
	flags := (uint16(h[12])<<8 | uint16(h[13])) & 0x1FF
	b = append(b, "Flags: "...)
	b = strconv.AppendUint(b, uint64(flags), 16)
	b = append(b, "\n\t("...)
	for i, name := range tcpFlagNames {
		if flags>>(8-i)&1 != 0 {
			b = append(b, name...)
		}
	}
	b = append(b, ")\n"...)
	b = appendField(b, "Window Size: ", uint64(be.Uint16(h[14:])))
	b = appendField(b, "Checksum: ", uint64(be.Uint16(h[16:])))
	return appendField(b, "Urgent Pointer: ", uint64(be.Uint16(h[18:])))
}

// appendUDP is onvm_pkt_print_udp for the 8-byte header h.
func appendUDP(b, h []byte) []byte {
	be := binary.BigEndian
	b = appendField(b, "Source Port: ", uint64(be.Uint16(h[0:])))
	b = appendField(b, "Destination Port: ", uint64(be.Uint16(h[2:])))
	b = appendField(b, "Length: ", uint64(be.Uint16(h[4:])))
	return appendField(b, "Checksum: ", uint64(be.Uint16(h[6:])))
}

// appendField appends "name" v "\n".
func appendField(b []byte, name string, v uint64) []byte {
	b = append(b, name...)
	b = strconv.AppendUint(b, v, 10)
	return append(b, '\n')
}

// AppendPadded appends v right-aligned in width columns, as printf's "%9lu"
// does (wider numbers are not cut).
func AppendPadded(b []byte, v uint64, width int) []byte {
	var d [20]byte
	s := strconv.AppendUint(d[:0], v, 10)
	for i := len(s); i < width; i++ {
		b = append(b, ' ')
	}
	return append(b, s...)
}
