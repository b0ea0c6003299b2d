package pkt

// The Internet checksum (RFC 1071): the ones' complement of the ones'
// complement sum of 16-bit big-endian words. sum adds 64-bit words with
// end-around carry, which is the same sum because 2^16 ≡ 1 (mod 2^16-1), so
// 2^64 ≡ 1 as well; fold brings it back to 16 bits.

import (
	"encoding/binary"
	"math/bits"
)

// sum adds b to acc as big-endian 16-bit words (an odd final byte is padded
// with a zero low byte). Chaining calls is correct only if every b but the
// last has even length.
func sum(b []byte, acc uint64) uint64 {
	var c uint64
	for len(b) >= 32 {
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[8:]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[16:]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[24:]), c)
		b = b[32:]
	}
	for len(b) >= 8 {
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b), c)
		b = b[8:]
	}
	if len(b) >= 4 {
		acc, c = bits.Add64(acc, uint64(binary.BigEndian.Uint32(b)), c)
		b = b[4:]
	}
	if len(b) >= 2 {
		acc, c = bits.Add64(acc, uint64(binary.BigEndian.Uint16(b)), c)
		b = b[2:]
	}
	if len(b) == 1 {
		acc, c = bits.Add64(acc, uint64(b[0])<<8, c)
	}
	acc, c = bits.Add64(acc, 0, c)
	return acc + c // cannot carry again: acc+c overflowed only if acc was all ones, then c is 0
}

// fold reduces a 64-bit end-around-carry sum to 16 bits (not complemented).
func fold(acc uint64) uint16 {
	hi, lo := acc>>32, acc&0xFFFFFFFF
	acc = hi + lo // at most 33 bits
	acc = acc>>16 + acc&0xFFFF
	acc = acc>>16 + acc&0xFFFF
	acc = acc>>16 + acc&0xFFFF
	return uint16(acc)
}

// Checksum returns the Internet checksum of b (RFC 1071): what goes into a
// header's checksum field when b covers the header with that field zero.
// Safe for concurrent use.
func Checksum(b []byte) uint16 { return ^fold(sum(b, 0)) }

// IPv4HeaderChecksum returns the checksum for IPv4 header hdr (IHL*4 bytes,
// options included), computed as if its checksum field (bytes 10–11) were
// zero, so it is correct whatever the field holds. hdr shorter than 20
// bytes yields 0.
func IPv4HeaderChecksum(hdr []byte) uint16 {
	if len(hdr) < IPv4HeaderBytes {
		return 0
	}
	// Subtract the stored checksum by adding its ones' complement.
	acc := uint64(fold(sum(hdr, 0))) + uint64(^binary.BigEndian.Uint16(hdr[10:]))
	return ^fold(acc)
}

// pseudoSum4 is the IPv4 pseudo-header's sum (RFC 768, RFC 9293 §3.1).
func pseudoSum4(ip []byte, proto uint8, n int) uint64 {
	acc := uint64(binary.BigEndian.Uint32(ip[12:])) + uint64(binary.BigEndian.Uint32(ip[16:]))
	return acc + uint64(proto) + uint64(n)
}

// pseudoSum6 is the IPv6 pseudo-header's sum (RFC 8200 §8.1). With a routing
// header the destination should be the final one; we use the header's, as
// a Routing header is rare on the paths we serve.
func pseudoSum6(ip []byte, proto uint8, n int) uint64 {
	// Fold first: sum may return nearly 2^64, and a carry out of the
	// additions below would be lost (found by FuzzDecode).
	return uint64(fold(sum(ip[8:40], 0))) + uint64(proto) + uint64(n)
}

// l4Span returns the transport segment's bounds [from, to) and the offset of
// its checksum field, or ok false when h has no checksummable transport
// header: not TCP/UDP/ICMP/ICMPv6, no FlagL4, or a fragment (whose checksum
// covers bytes this frame does not hold).
func (h *Headers) l4Span(frame []byte) (from, to, field int, ok bool) {
	if h.Flags&(FlagL4|FlagFragment) != FlagL4 || int(h.L3End) > len(frame) || h.L4 > h.L3End {
		return 0, 0, 0, false
	}
	from, to = int(h.L4), int(h.L3End)
	switch h.Proto {
	case ProtoTCP:
		field = from + 16
	case ProtoUDP:
		field = from + 6
		if from+UDPHeaderBytes <= to {
			to = from + int(binary.BigEndian.Uint16(frame[from+4:]))
		}
	case ProtoICMP:
		if h.IPVersion != 4 {
			return 0, 0, 0, false
		}
		field = from + 2
	case ProtoICMPv6:
		if h.IPVersion != 6 {
			return 0, 0, 0, false
		}
		field = from + 2
	default:
		return 0, 0, 0, false
	}
	if field+2 > to || to > int(h.L3End) {
		return 0, 0, 0, false
	}
	return from, to, field, true
}

// l4Sum is the ones' complement sum over the segment [from, to) and, except
// for ICMPv4, the pseudo-header, including the stored checksum field. Each
// part is folded to 16 bits before they are added, so nothing overflows.
func (h *Headers) l4Sum(frame []byte, from, to int) uint64 {
	return h.l4SumSkip(frame, from, to, -1)
}

// l4SumSkip is l4Sum with the 16-bit word at skip (an even offset from from)
// counted as zero, or nothing skipped if skip < 0. Skipping the word, rather
// than adding its complement, keeps a sum of +0 from turning into -0
// (0xFFFF), which would yield a checksum of 0x0000 instead of 0xFFFF.
func (h *Headers) l4SumSkip(frame []byte, from, to, skip int) uint64 {
	var acc uint64
	if skip < 0 {
		acc = uint64(fold(sum(frame[from:to], 0)))
	} else {
		acc = uint64(fold(sum(frame[from:skip], 0))) + uint64(fold(sum(frame[skip+2:to], 0)))
	}
	ip := frame[h.L3:]
	switch {
	case h.Proto == ProtoICMP: // RFC 792: no pseudo-header
	case h.IPVersion == 4:
		acc += pseudoSum4(ip, h.Proto, to-from)
	case h.IPVersion == 6:
		acc += pseudoSum6(ip, h.Proto, to-from)
	}
	return acc
}

// VerifyIPv4Checksum reports whether the IPv4 header of the frame h was
// decoded from has a correct checksum; false if the frame is not IPv4.
func (h *Headers) VerifyIPv4Checksum(frame []byte) bool {
	if h.IPVersion != 4 || len(frame) <= int(h.L3) {
		return false
	}
	hl := int(frame[h.L3]&0x0F) * 4
	if hl < IPv4HeaderBytes || len(frame) < int(h.L3)+hl {
		return false
	}
	return fold(sum(frame[int(h.L3):int(h.L3)+hl], 0)) == 0xFFFF
}

// SetIPv4Checksum writes the IPv4 header checksum of the frame h was decoded
// from; it does nothing and returns false if the frame is not IPv4.
func (h *Headers) SetIPv4Checksum(frame []byte) bool {
	if h.IPVersion != 4 || len(frame) <= int(h.L3) {
		return false
	}
	hl := int(frame[h.L3]&0x0F) * 4
	if hl < IPv4HeaderBytes || len(frame) < int(h.L3)+hl {
		return false
	}
	ip := frame[h.L3 : int(h.L3)+hl]
	binary.BigEndian.PutUint16(ip[10:], IPv4HeaderChecksum(ip))
	return true
}

// L4Checksum returns the checksum the transport header of the frame h was
// decoded from should carry (TCP, UDP, ICMP, ICMPv6, over the IPv4 or IPv6
// pseudo-header as the protocol requires), computed as if its checksum
// field were zero. ok is false for other protocols and for fragments. For
// UDP a computed 0 is returned as 0xFFFF, because 0 on the wire means "no
// checksum" (RFC 768).
func (h *Headers) L4Checksum(frame []byte) (c uint16, ok bool) {
	from, to, field, ok := h.l4Span(frame)
	if !ok {
		return 0, false
	}
	c = ^fold(h.l4SumSkip(frame, from, to, field))
	if c == 0 && h.Proto == ProtoUDP {
		c = 0xFFFF
	}
	return c, true
}

// VerifyL4Checksum reports whether the transport checksum of the frame h
// was decoded from is correct. A UDP-over-IPv4 checksum of 0 (not computed,
// RFC 768) counts as correct; over IPv6 it does not (RFC 8200 §8.1). False
// when L4Checksum's ok would be false.
func (h *Headers) VerifyL4Checksum(frame []byte) bool {
	from, to, field, ok := h.l4Span(frame)
	if !ok {
		return false
	}
	if h.Proto == ProtoUDP && h.IPVersion == 4 && binary.BigEndian.Uint16(frame[field:]) == 0 {
		return true
	}
	return fold(h.l4Sum(frame, from, to)) == 0xFFFF
}

// SetL4Checksum writes the transport checksum L4Checksum computes into the
// frame h was decoded from and reports whether it did.
func (h *Headers) SetL4Checksum(frame []byte) bool {
	c, ok := h.L4Checksum(frame)
	if ok {
		_, _, field, _ := h.l4Span(frame)
		binary.BigEndian.PutUint16(frame[field:], c)
	}
	return ok
}

// ChecksumUpdate16 returns what checksum field value csum becomes when a
// 16-bit word of the data it covers changes from old to new, without
// re-reading the data (RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m')). For a UDP checksum the caller
// MUST leave a 0 field (no checksum) alone and store a 0 result as 0xFFFF.
// Safe for concurrent use.
func ChecksumUpdate16(csum, old, new uint16) uint16 {
	acc := uint32(^csum) + uint32(^old) + uint32(new)
	acc = acc>>16 + acc&0xFFFF
	acc = acc>>16 + acc&0xFFFF
	return ^uint16(acc)
}

// ChecksumUpdate32 is ChecksumUpdate16 for a 32-bit word (an IPv4 address,
// a TCP sequence number) that changed from old to new.
func ChecksumUpdate32(csum uint16, old, new uint32) uint16 {
	acc := uint64(^csum) + uint64(^uint16(old>>16)) + uint64(^uint16(old)) + uint64(new>>16) + uint64(new&0xFFFF)
	acc = acc>>16 + acc&0xFFFF
	acc = acc>>16 + acc&0xFFFF
	return ^uint16(acc)
}
