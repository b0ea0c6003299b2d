package pkt

// Constants fixed by IEEE 802.3/802.1Q and the IETF.
const (
	// EthHeaderBytes is the Ethernet II header: two MACs and an EtherType.
	EthHeaderBytes = 14
	// VLANTagBytes is one 802.1Q or 802.1ad tag (TPID + TCI).
	VLANTagBytes = 4
	// IPv4HeaderBytes is an IPv4 header without options (IHL 5, RFC 791).
	IPv4HeaderBytes = 20
	// IPv6HeaderBytes is the fixed IPv6 header (RFC 8200 §3).
	IPv6HeaderBytes = 40
	// UDPHeaderBytes is the UDP header (RFC 768).
	UDPHeaderBytes = 8
	// TCPHeaderBytes is a TCP header without options (data offset 5, RFC 9293).
	TCPHeaderBytes = 20
	// ICMPHeaderBytes is the ICMP and ICMPv6 header up to the end of the
	// type-specific word (RFC 792, RFC 4443 §2.1).
	ICMPHeaderBytes = 8
	// MinFrameBytes is the Ethernet minimum frame without FCS.
	MinFrameBytes = 60
	// MaxFrameBytes is the largest frame Decode accepts: offsets are 16 bits.
	MaxFrameBytes = 65535

	// EtherTypeIPv4 is IPv4's EtherType.
	EtherTypeIPv4 uint16 = 0x0800
	// EtherTypeARP is ARP's EtherType.
	EtherTypeARP uint16 = 0x0806
	// EtherTypeIPv6 is IPv6's EtherType.
	EtherTypeIPv6 uint16 = 0x86DD
	// EtherTypeVLAN is the 802.1Q customer tag's TPID.
	EtherTypeVLAN uint16 = 0x8100
	// EtherTypeQinQ is the 802.1ad service tag's TPID.
	EtherTypeQinQ uint16 = 0x88A8
	// EtherTypeQinQOld is the pre-standard service tag TPID some switches still send.
	EtherTypeQinQOld uint16 = 0x9100

	// ProtoICMP is ICMP's IP protocol number.
	ProtoICMP uint8 = 1
	// ProtoTCP is TCP's IP protocol number.
	ProtoTCP uint8 = 6
	// ProtoUDP is UDP's IP protocol number.
	ProtoUDP uint8 = 17
	// ProtoICMPv6 is ICMPv6's IP protocol (next header) number.
	ProtoICMPv6 uint8 = 58

	// IPv6 extension headers Decode walks (RFC 8200 §4, RFC 4302 for AH).
	protoHopByHop uint8 = 0
	protoRouting  uint8 = 43
	protoFragment uint8 = 44
	protoAH       uint8 = 51
	protoDestOpts uint8 = 60

	// ipv4MF and ipv4OffMask select the IPv4 more-fragments flag and the
	// fragment offset in the flags/offset word (RFC 791 §3.1).
	ipv4MF      = 0x2000
	ipv4OffMask = 0x1FFF
)

// Implementation choices.
const (
	// MaxVLANTags is how many stacked tags Decode accepts: 802.1Q alone or
	// QinQ (802.1ad outer, 802.1Q inner). Deeper stacks are an error rather
	// than a silent misparse.
	MaxVLANTags = 2
	// maxIPv6ExtHeaders bounds the extension-header walk so a crafted chain
	// costs a fixed amount of work.
	maxIPv6ExtHeaders = 8

	// Defaults of generated frames (RFC 1700's TTL recommendation; DF as
	// Linux sets it for UDP without PMTU discovery off).
	defaultTTL    = 64
	ipv4FlagDF    = 0x4000
	defaultWindow = 65535
)
