package pkt

// Decoding, layer by layer, in the order Decode runs:
//
//	Ethernet → up to two VLAN tags (802.1ad/802.1Q) → IPv4 (IHL, total length,
//	fragment word) or IPv6 (payload length, extension headers) → TCP, UDP,
//	ICMP or ICMPv6 header checks
//
// Every read is preceded by a bounds check against the frame (for layer 3
// and above, against the end the IP length fields give), so a hostile frame
// yields an error, never a panic or a read past the slot.

import "encoding/binary"

// Headers holds the offsets of one frame's headers, filled by Decode. It
// holds no reference to the frame: the offsets index the slice that was
// decoded. Zero-value-ready; a caller keeps one per goroutine (typically on
// the stack) and reuses it. Fields are valid only after Decode returned nil.
type Headers struct {
	// EtherType is the innermost EtherType, after any VLAN tags (values below
	// 0x0600 are 802.3 length fields; Decode leaves such frames at layer 2).
	EtherType uint16
	// VLANs is the number of VLAN tags, 0..MaxVLANTags.
	VLANs uint8
	// IPVersion is 4 or 6, or 0 when the frame is not IP (then only the
	// layer-2 fields and L3 are valid).
	IPVersion uint8
	// VLAN holds each tag's TCI, outermost first; valid for indices < VLANs.
	// The VLAN ID is TCI&0x0FFF, the priority TCI>>13.
	VLAN [MaxVLANTags]uint16
	// L3 is the offset of the network header (14 plus 4 per VLAN tag). The
	// layer-2 header is always at offset 0.
	L3 uint16
	// L3End is one past the last byte of the IP packet as its length field
	// says; bytes from L3End to the end of the frame are Ethernet padding.
	// Equal to the frame length for non-IP frames.
	L3End uint16
	// L4 is the offset of the transport header (after IPv4 options and IPv6
	// extension headers); valid iff Flags&FlagL4.
	L4 uint16
	// Payload is the offset of the transport payload: after the TCP header
	// with options, the UDP header or the 8-byte ICMP header; equal to L4 for
	// other protocols. Valid iff Flags&FlagL4.
	Payload uint16
	// Proto is the IP protocol (IPv4) or the last next-header value (IPv6,
	// after extension headers). Valid iff IPVersion != 0.
	Proto uint8
	// Flags says which optional parts are valid.
	Flags Flags
}

// Flags is a bit set describing a decoded frame.
type Flags uint8

const (
	// FlagL4 means the transport header is in the frame: L4 and Payload are
	// valid and, for TCP, UDP, ICMP and ICMPv6, the header passed its length
	// checks.
	FlagL4 Flags = 1 << iota
	// FlagFragment means the IP packet is a fragment. The first fragment
	// (offset 0) still has FlagL4, but its transport checksum cannot be
	// verified without reassembly; later fragments have no FlagL4.
	FlagFragment
	// FlagIPOptions means the IPv4 header carries options (IHL > 5) or the
	// IPv6 packet carries extension headers.
	FlagIPOptions
)

// Decode parses frame's headers into h, replacing its previous contents.
// It returns nil or a *FrameError (errors.Is ErrTruncated, ErrMalformed or
// ErrUnsupported). A frame that is not IP, or an IP protocol other than
// TCP/UDP/ICMP, is not an error: decoding stops at the last layer it knows.
// Decode never allocates, never panics and does not keep frame. Calls on
// distinct Headers values may run concurrently, on the same frame too.
func (h *Headers) Decode(frame []byte) error {
	*h = Headers{}
	if len(frame) > MaxFrameBytes {
		return errTooLong
	}
	if len(frame) < EthHeaderBytes {
		return errEthShort
	}
	off := 12
	et := binary.BigEndian.Uint16(frame[off:])
	for et == EtherTypeVLAN || et == EtherTypeQinQ || et == EtherTypeQinQOld {
		if h.VLANs == MaxVLANTags {
			return errVLANDepth
		}
		if len(frame) < off+2+VLANTagBytes {
			return errVLANShort
		}
		h.VLAN[h.VLANs] = binary.BigEndian.Uint16(frame[off+2:])
		h.VLANs++
		off += VLANTagBytes
		et = binary.BigEndian.Uint16(frame[off:])
	}
	h.EtherType = et
	h.L3 = uint16(off + 2)
	h.L3End = uint16(len(frame))
	switch et {
	case EtherTypeIPv4:
		return h.decodeIPv4(frame)
	case EtherTypeIPv6:
		return h.decodeIPv6(frame)
	}
	return nil
}

// decodeIPv4 checks the IPv4 header at h.L3 (RFC 791 §3.1): version, IHL,
// total length against the frame, then the fragment word.
func (h *Headers) decodeIPv4(frame []byte) error {
	l3 := int(h.L3)
	if len(frame) < l3+IPv4HeaderBytes {
		return errIPv4Short
	}
	ip := frame[l3:]
	if ip[0]>>4 != 4 {
		return errIPv4Version
	}
	hl := int(ip[0]&0x0F) * 4
	if hl < IPv4HeaderBytes {
		return errIPv4IHL
	}
	if len(ip) < hl {
		return errIPv4Short
	}
	tot := int(binary.BigEndian.Uint16(ip[2:]))
	if tot < hl {
		return errIPv4TotLen
	}
	if len(ip) < tot {
		return errIPv4TotLong
	}
	h.IPVersion = 4
	h.Proto = ip[9]
	h.L3End = uint16(l3 + tot)
	if hl > IPv4HeaderBytes {
		h.Flags |= FlagIPOptions
	}
	frag := binary.BigEndian.Uint16(ip[6:])
	if frag&(ipv4MF|ipv4OffMask) != 0 {
		h.Flags |= FlagFragment
		if frag&ipv4OffMask != 0 {
			return nil // no transport header in a later fragment
		}
	}
	return h.decodeL4(frame, l3+hl)
}

// decodeIPv6 checks the fixed header (RFC 8200 §3) and walks the extension
// headers (§4) to the upper-layer header, at most maxIPv6ExtHeaders deep.
func (h *Headers) decodeIPv6(frame []byte) error {
	l3 := int(h.L3)
	if len(frame) < l3+IPv6HeaderBytes {
		return errIPv6Short
	}
	ip := frame[l3:]
	if ip[0]>>4 != 6 {
		return errIPv6Version
	}
	end := l3 + IPv6HeaderBytes + int(binary.BigEndian.Uint16(ip[4:]))
	if end > len(frame) {
		return errIPv6PayLong
	}
	h.IPVersion = 6
	h.L3End = uint16(end)
	next, off := ip[6], l3+IPv6HeaderBytes
	for i := 0; ; i++ {
		var n int
		switch next {
		case protoHopByHop, protoRouting, protoDestOpts:
			if end < off+8 {
				return errIPv6ExtShort
			}
			n = (int(frame[off+1]) + 1) * 8
		case protoAH:
			if end < off+8 {
				return errIPv6ExtShort
			}
			n = (int(frame[off+1]) + 2) * 4 // RFC 4302 §2.2: in 32-bit words, minus 2
		case protoFragment:
			if end < off+8 {
				return errIPv6ExtShort
			}
			h.Flags |= FlagFragment
			if binary.BigEndian.Uint16(frame[off+2:])&0xFFF8 != 0 {
				h.Proto = frame[off]
				h.Flags |= FlagIPOptions
				return nil // a later fragment: no transport header
			}
			n = 8
		default:
			h.Proto = next
			return h.decodeL4(frame, off)
		}
		if i == maxIPv6ExtHeaders {
			return errIPv6ExtDepth
		}
		if end < off+n {
			return errIPv6ExtShort
		}
		h.Flags |= FlagIPOptions
		next = frame[off]
		off += n
	}
}

// decodeL4 checks the transport header at off against h.L3End and sets L4,
// Payload and FlagL4.
func (h *Headers) decodeL4(frame []byte, off int) error {
	end := int(h.L3End)
	pay := off
	switch h.Proto {
	case ProtoTCP:
		if end < off+TCPHeaderBytes {
			return errTCPShort
		}
		do := int(frame[off+12]>>4) * 4
		if do < TCPHeaderBytes {
			return errTCPDataOff
		}
		if end < off+do {
			return errTCPShort
		}
		pay = off + do
	case ProtoUDP:
		if end < off+UDPHeaderBytes {
			return errUDPShort
		}
		// RFC 768: the length covers header and data. Shorter than the IP
		// payload is legal (the rest is ignored, as Linux does); longer is not.
		ul := int(binary.BigEndian.Uint16(frame[off+4:]))
		if ul < UDPHeaderBytes {
			return errUDPLen
		}
		if end < off+ul {
			return errUDPLenLong
		}
		pay = off + UDPHeaderBytes
	case ProtoICMP, ProtoICMPv6:
		if end < off+ICMPHeaderBytes {
			return errICMPShort
		}
		pay = off + ICMPHeaderBytes
	}
	h.L4, h.Payload = uint16(off), uint16(pay)
	h.Flags |= FlagL4
	return nil
}

// VLANID returns the VLAN ID of tag i (0 outermost), or 0 if there is no
// such tag.
func (h *Headers) VLANID(i int) uint16 {
	if i < 0 || i >= int(h.VLANs) {
		return 0
	}
	return h.VLAN[i] & 0x0FFF
}
