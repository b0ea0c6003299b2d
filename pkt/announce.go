package pkt

// Address announcements: the frames a host sends when an address moves to
// it (a virtual IP taken over at a failover), so that neighbours' ARP and
// neighbour caches point at its MAC at once instead of after they expire.
// Like the other builders they write only into the caller's buffer and
// allocate nothing.

import "encoding/binary"

// ARP (RFC 826) over Ethernet for IPv4, and IPv6 neighbour discovery
// (RFC 4861), as the announcement builders write them.
const (
	// ARPBytes is an Ethernet/IPv4 ARP packet after the Ethernet header.
	ARPBytes = 28
	// ARPOpRequest and ARPOpReply are ARP's opcodes.
	ARPOpRequest uint16 = 1
	ARPOpReply   uint16 = 2
	// arpHTypeEthernet is ARP's hardware type for Ethernet.
	arpHTypeEthernet = 1

	// ICMPv6TypeNeighborAdvert is the Neighbor Advertisement (RFC 4861 §4.4).
	ICMPv6TypeNeighborAdvert uint8 = 136
	// NAFlagRouter, NAFlagSolicited and NAFlagOverride are the R, S and O
	// bits of a Neighbor Advertisement's flags word.
	NAFlagRouter    uint32 = 1 << 31
	NAFlagSolicited uint32 = 1 << 30
	NAFlagOverride  uint32 = 1 << 29
	// NDOptTargetLinkAddr is the Target Link-Layer Address option's type
	// (RFC 4861 §4.6.1); its length is in units of 8 bytes.
	NDOptTargetLinkAddr uint8 = 2
	// NDHopLimit is the hop limit every neighbour discovery packet carries:
	// a receiver drops one with any other, as it may have been routed
	// (RFC 4861 §7.1.2).
	NDHopLimit = 255
	// naBytes is the advertisement with one Target Link-Layer Address
	// option: type, code, checksum, flags, target, option (8 bytes).
	naBytes = ICMPHeaderBytes + 16 + 8

	// GARPFrameBytes and UnsolicitedNAFrameBytes are the frames' lengths:
	// the ARP packet padded to the Ethernet minimum (a software port such
	// as a veth does not pad), and the advertisement (86 bytes, no padding
	// needed).
	GARPFrameBytes          = MinFrameBytes
	UnsolicitedNAFrameBytes = EthHeaderBytes + IPv6HeaderBytes + naBytes
)

// Offsets in the frames the announcement builders write.
const (
	OffARP    = EthHeaderBytes // ARP packet
	OffARPOp  = OffARP + 6     // opcode
	OffARPSHA = OffARP + 8     // sender hardware address
	OffARPSPA = OffARP + 14    // sender protocol address
	OffARPTHA = OffARP + 18    // target hardware address
	OffARPTPA = OffARP + 24    // target protocol address

	OffIPv6       = EthHeaderBytes   // IPv6 header
	OffIPv6Src    = OffIPv6 + 8      // IPv6 source address
	OffIPv6Dst    = OffIPv6 + 24     // IPv6 destination address
	OffNA         = OffIPv6 + 40     // the ICMPv6 Neighbor Advertisement
	OffNATarget   = OffNA + 8        // its target address
	OffNAOption   = OffNATarget + 16 // its Target Link-Layer Address option
	OffNAOptionLL = OffNAOption + 2  // the option's link-layer address
	OffNAChecksum = OffNA + 2        // the ICMPv6 checksum
	OffNAFlags    = OffNA + 4        // its flags word (R, S, O, reserved)
)

// BroadcastMAC is Ethernet's broadcast address.
var BroadcastMAC = MAC{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}

// AllNodesMAC is the Ethernet group ff02::1 maps to (33:33 and the
// address's low 32 bits, RFC 2464 §7).
var AllNodesMAC = MAC{0x33, 0x33, 0, 0, 0, 1}

// AllNodes6 is the link-local all-nodes multicast address ff02::1.
var AllNodes6 = [16]byte{0xFF, 0x02, 15: 1}

// BuildGARP writes a gratuitous ARP announcing that ip is at mac: an ARP
// announcement as RFC 5227 §3 defines it (a request, sender and target
// protocol address both ip, target hardware address zero), broadcast from
// mac, padded with zeros to the 60-byte Ethernet minimum. The request form
// rather than a reply because every stack updates an existing cache entry
// from a request, and some ignore unsolicited replies. It returns
// GARPFrameBytes, or ErrShortBuffer with buf unchanged.
func BuildGARP(buf []byte, mac MAC, ip [4]byte) (n int, err error) {
	if len(buf) < GARPFrameBytes {
		return 0, errBuildShort
	}
	b := buf[:GARPFrameBytes]
	copy(b[0:6], BroadcastMAC[:])
	copy(b[6:12], mac[:])
	binary.BigEndian.PutUint16(b[12:], EtherTypeARP)
	a := b[OffARP:]
	binary.BigEndian.PutUint16(a[0:], arpHTypeEthernet)
	binary.BigEndian.PutUint16(a[2:], EtherTypeIPv4)
	a[4], a[5] = 6, 4 // hardware and protocol address lengths
	binary.BigEndian.PutUint16(a[6:], ARPOpRequest)
	copy(a[8:14], mac[:])
	copy(a[14:18], ip[:])
	clear(a[18:24])
	copy(a[24:28], ip[:])
	clear(b[OffARP+ARPBytes:])
	return GARPFrameBytes, nil
}

// BuildUnsolicitedNA writes an unsolicited Neighbor Advertisement for ip
// at mac (RFC 4861 §7.2.6): from ip to ff02::1 (Ethernet 33:33:00:00:00:01),
// hop limit 255, flags Override only (not Solicited, as no one asked; not
// Router), target ip, a Target Link-Layer Address option carrying mac, and
// a valid ICMPv6 checksum. Override makes receivers replace the cached MAC
// of an address that moved. It returns UnsolicitedNAFrameBytes, or
// ErrShortBuffer with buf unchanged.
func BuildUnsolicitedNA(buf []byte, mac MAC, ip [16]byte) (n int, err error) {
	if len(buf) < UnsolicitedNAFrameBytes {
		return 0, errBuildShort
	}
	b := buf[:UnsolicitedNAFrameBytes]
	copy(b[0:6], AllNodesMAC[:])
	copy(b[6:12], mac[:])
	binary.BigEndian.PutUint16(b[12:], EtherTypeIPv6)
	h := b[OffIPv6:OffNA]
	binary.BigEndian.PutUint32(h[0:], 6<<28) // version 6, traffic class 0, flow label 0
	binary.BigEndian.PutUint16(h[4:], naBytes)
	h[6], h[7] = ProtoICMPv6, NDHopLimit
	copy(h[8:24], ip[:])
	copy(h[24:40], AllNodes6[:])
	na := b[OffNA:]
	na[0], na[1] = ICMPv6TypeNeighborAdvert, 0
	binary.BigEndian.PutUint16(na[2:], 0)
	binary.BigEndian.PutUint32(na[4:], NAFlagOverride) // flags and reserved bits
	copy(na[8:24], ip[:])
	na[24], na[25] = NDOptTargetLinkAddr, 1 // one 8-byte unit
	copy(na[26:32], mac[:])
	c := ^fold(uint64(fold(sum(na, 0))) + pseudoSum6(h, ProtoICMPv6, naBytes))
	binary.BigEndian.PutUint16(na[2:], c)
	return UnsolicitedNAFrameBytes, nil
}
