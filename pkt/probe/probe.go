// Package probe is the test payload that tools/pktgen writes, the stamping
// and mutating NFs change, and tools/sink checks: a fixed 48-byte record at
// the start of a UDP payload (IPv4 or IPv6, with or without VLAN tags).
//
//	off  size  field
//	  0     4  magic "RFPB"
//	  4     4  flow ID
//	  8     8  per-flow sequence number (from 0)
//	 16     8  send time, CLOCK_MONOTONIC ns (the generator's)
//	 24     4  mutation counter (0 when sent; examples/mutate adds 1)
//	 28     4  reserved, 0
//	 32    16  stamp fields 0..3 (0 when sent; examples/stamp writes its
//	           per-flow counter into the field its -f flag names)
//
// All fields are big-endian (network order). Writers that change a field
// keep the UDP checksum valid with pkt.ChecksumUpdate32.
package probe

import (
	"encoding/binary"

	"github.com/reinforce-nfv/reinforce/pkt"
)

// Layout of the record.
const (
	Magic     = 0x52465042 // "RFPB"
	Bytes     = 48
	Stamps    = 4
	offMagic  = 0
	offFlow   = 4
	offSeq    = 8
	offSent   = 16
	OffMutate = 24 // mutation counter, from the record's start
	OffStamp0 = 32 // stamp field i is at OffStamp0 + 4*i
)

// Record is a decoded probe.
type Record struct {
	Flow   uint32
	Seq    uint64
	SentNs uint64
	Mutate uint32
	Stamp  [Stamps]uint32
}

// Put writes r at the start of b (len(b) >= Bytes) and zeroes the reserved word.
func (r *Record) Put(b []byte) {
	_ = b[Bytes-1]
	binary.BigEndian.PutUint32(b[offMagic:], Magic)
	binary.BigEndian.PutUint32(b[offFlow:], r.Flow)
	binary.BigEndian.PutUint64(b[offSeq:], r.Seq)
	binary.BigEndian.PutUint64(b[offSent:], r.SentNs)
	binary.BigEndian.PutUint32(b[OffMutate:], r.Mutate)
	binary.BigEndian.PutUint32(b[OffMutate+4:], 0)
	for i, s := range r.Stamp {
		binary.BigEndian.PutUint32(b[OffStamp0+4*i:], s)
	}
}

// Get decodes the record at the start of b; false if b is short or the
// magic is wrong.
func (r *Record) Get(b []byte) bool {
	if len(b) < Bytes || binary.BigEndian.Uint32(b[offMagic:]) != Magic {
		return false
	}
	r.Flow = binary.BigEndian.Uint32(b[offFlow:])
	r.Seq = binary.BigEndian.Uint64(b[offSeq:])
	r.SentNs = binary.BigEndian.Uint64(b[offSent:])
	r.Mutate = binary.BigEndian.Uint32(b[OffMutate:])
	for i := range r.Stamp {
		r.Stamp[i] = binary.BigEndian.Uint32(b[OffStamp0+4*i:])
	}
	return true
}

// Find decodes frame's headers into h and returns the offset of the probe
// record in frame: the start of a UDP payload that holds one. It never
// panics on a malformed frame.
func Find(h *pkt.Headers, frame []byte) (off int, ok bool) {
	if h.Decode(frame) != nil || h.Flags&pkt.FlagL4 == 0 || h.Proto != pkt.ProtoUDP || h.Flags&pkt.FlagFragment != 0 {
		return 0, false
	}
	off = int(h.Payload)
	if off+Bytes > int(h.L3End) || binary.BigEndian.Uint32(frame[off:]) != Magic {
		return 0, false
	}
	return off, true
}

// SetUint32 stores v in the big-endian field at frame[at:at+4] (at = a probe
// offset plus OffMutate or a stamp field's offset) and keeps the UDP
// checksum at frame[csum:csum+2] valid; csum < 0 skips the checksum (e.g.
// an IPv4 datagram sent without one).
func SetUint32(frame []byte, at, csum int, v uint32) {
	old := binary.BigEndian.Uint32(frame[at:])
	binary.BigEndian.PutUint32(frame[at:], v)
	if csum < 0 {
		return
	}
	c := binary.BigEndian.Uint16(frame[csum:])
	if c == 0 { // IPv4 "no checksum": leave it so
		return
	}
	n := pkt.ChecksumUpdate32(c, old, v)
	if n == 0 {
		n = 0xFFFF
	}
	binary.BigEndian.PutUint16(frame[csum:], n)
}

// ChecksumOffset is the UDP checksum's offset in a frame decoded into h.
func ChecksumOffset(h *pkt.Headers) int { return int(h.L4) + 6 }
