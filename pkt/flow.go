package pkt

import (
	"encoding/binary"
	"math/bits"
)

// FiveTuple identifies a transport flow in one direction. Addresses are 16
// bytes so IPv4 and IPv6 share one type: an IPv4 address is stored
// v4-mapped (::ffff:a.b.c.d, RFC 4291 §2.5.5.2). A plain value, safe to copy
// and compare with ==.
type FiveTuple struct {
	SrcIP, DstIP     [16]byte
	SrcPort, DstPort uint16 // 0 for protocols without ports and for IP fragments
	Proto            uint8
}

// v4Mapped is the ::ffff:0:0/96 prefix of a v4-mapped address.
var v4Mapped = [12]byte{10: 0xFF, 11: 0xFF}

// V4Mapped returns a's v4-mapped IPv6 form, as FiveTuple stores IPv4 addresses.
func V4Mapped(a [4]byte) [16]byte {
	var m [16]byte
	copy(m[:12], v4Mapped[:])
	copy(m[12:], a[:])
	return m
}

// FiveTuple returns the flow of a frame h decoded from, and false if the
// frame is not IP (or h is the zero value). frame MUST be the slice h was
// decoded from. Ports are read for TCP and UDP only, and only when the
// transport header is present and the packet is not a fragment: every fragment of a datagram, including the first, gets ports 0, so all of
// them hash alike and reach the same NF instance (as NIC RSS does).
func (h *Headers) FiveTuple(frame []byte) (FiveTuple, bool) {
	var ft FiveTuple
	l3 := int(h.L3)
	switch h.IPVersion {
	case 4:
		if len(frame) < l3+IPv4HeaderBytes {
			return ft, false
		}
		copy(ft.SrcIP[:12], v4Mapped[:])
		copy(ft.DstIP[:12], v4Mapped[:])
		copy(ft.SrcIP[12:], frame[l3+12:l3+16])
		copy(ft.DstIP[12:], frame[l3+16:l3+20])
	case 6:
		if len(frame) < l3+IPv6HeaderBytes {
			return ft, false
		}
		copy(ft.SrcIP[:], frame[l3+8:l3+24])
		copy(ft.DstIP[:], frame[l3+24:l3+40])
	default:
		return ft, false
	}
	ft.Proto = h.Proto
	if h.Flags&(FlagL4|FlagFragment) == FlagL4 && (h.Proto == ProtoTCP || h.Proto == ProtoUDP) {
		l4 := int(h.L4)
		if len(frame) >= l4+4 {
			ft.SrcPort = binary.BigEndian.Uint16(frame[l4:])
			ft.DstPort = binary.BigEndian.Uint16(frame[l4+2:])
		}
	}
	return ft, true
}

// Reverse returns the tuple of the opposite direction.
func (ft FiveTuple) Reverse() FiveTuple {
	return FiveTuple{SrcIP: ft.DstIP, DstIP: ft.SrcIP, SrcPort: ft.DstPort, DstPort: ft.SrcPort, Proto: ft.Proto}
}

// Hash constants: wyhash's secrets (public domain, Wang Yi), odd 64-bit
// values with balanced bits.
const (
	wyp0 = 0xa0761d6478bd642f
	wyp1 = 0xe7037ed1a0b428db
	wyp2 = 0x8ebc6af09c88c6e3
	wyp3 = 0x589965cc75374cc3
)

// SymmetricHash returns a 32-bit hash of ft that is the same for both
// directions of the flow (SymmetricHash(ft) == SymmetricHash(ft.Reverse())),
// so the manager sends both directions to the same NF instance when it
// indexes its 256-bucket table with the hash (ONVM reaches the same end with
// a symmetric RSS key). The endpoints are put in a canonical order before
// mixing rather than XORed together, because XOR makes every flow between
// the same two hosts with swapped ports collide. Mixing is wyhash's
// 128-bit multiply-fold, three rounds, so every input bit reaches every
// output bit and any byte of the result, the low one included, is usable
// as a bucket index. Safe for concurrent use.
func SymmetricHash(ft FiveTuple) uint32 {
	sHi, sLo := binary.BigEndian.Uint64(ft.SrcIP[:8]), binary.BigEndian.Uint64(ft.SrcIP[8:])
	dHi, dLo := binary.BigEndian.Uint64(ft.DstIP[:8]), binary.BigEndian.Uint64(ft.DstIP[8:])
	sp, dp := ft.SrcPort, ft.DstPort
	if sHi > dHi || sHi == dHi && (sLo > dLo || sLo == dLo && sp > dp) {
		sHi, sLo, sp, dHi, dLo, dp = dHi, dLo, dp, sHi, sLo, sp
	}
	a := mum(sLo^wyp0, dLo^wyp1)
	b := mum(sHi^wyp2, dHi^wyp3)
	h := mum(a^uint64(sp)<<32^uint64(dp)<<16^uint64(ft.Proto)^wyp1, b^wyp0)
	return uint32(h) ^ uint32(h>>32)
}

// mum multiplies to 128 bits and folds the halves together (wyhash's
// mixing step): every bit of either input influences most output bits.
func mum(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}
