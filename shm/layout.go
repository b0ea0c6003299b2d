package shm

import (
	"encoding/binary"
	"fmt"
	"unsafe"
)

// The region, as every process maps it (all offsets from the file start;
// every section starts on a cache line; nothing in it is a pointer):
//
//	0        ┌──────────────────────────────┐
//	         │ header (HeaderBytes)          │ magic, version, sizes, epoch,
//	         │   section table at 256        │ section table (kind, off, size, count, stride)
//	4096     ├──────────────────────────────┤
//	         │ doorbells  [count] × 64 B     │ futex word + sleepers count
//	         ├──────────────────────────────┤
//	         │ caches     [count] × stride   │ per-owner record + counters (128 B) + fill ring + drain ring
//	         ├──────────────────────────────┤
//	         │ rings      [count] × stride   │ edge rings: header (256 B) + entries
//	         ├──────────────────────────────┤
//	         │ slots      [count] × stride   │ Meta (64 B) + headroom + data
//	         └──────────────────────────────┘
//
// A ring block is ringHeaderBytes of header — identity line (ringHeader),
// producer-index line, consumer-index line (each index alone on its line,
// so producer and consumer never share one), spare line — followed by
// capacity 32-bit entries rounded up to a cache line.

// Section kinds in the section table.
const (
	secDoorbells uint32 = 1 + iota
	secCaches
	secRings
	secSlots
	numSectionKinds = 4
)

// Header field offsets (little endian, fixed by LayoutVersion).
const (
	hdrMagic        = 0   // [8]byte
	hdrVersion      = 8   // uint32
	hdrHeaderBytes  = 12  // uint32
	hdrTotalBytes   = 16  // uint64
	hdrEpoch        = 24  // uint64, atomic
	hdrCreatorPID   = 32  // uint32
	hdrNumSections  = 36  // uint32
	hdrSlotData     = 40  // uint32: data room per slot
	hdrSlotHeadroom = 44  // uint32
	hdrRingCap      = 48  // uint32: edge ring capacity
	hdrCacheCap     = 52  // uint32: fill/drain ring capacity
	hdrFlags        = 56  // uint32
	hdrSections     = 256 // section table
	sectionBytes    = 40  // kind u32, pad u32, off u64, size u64, count u64, stride u64
	maxSections     = 16
)

// ringHeaderBytes precedes each ring's entries: four cache lines.
const ringHeaderBytes = 4 * CacheLineBytes

// cacheHeaderBytes precedes a cache record's two rings: the cacheHeader
// line and the owner's Counters line.
const cacheHeaderBytes = 2 * CacheLineBytes

// metaBytes is the per-slot metadata cache line.
const metaBytes = CacheLineBytes

// ringHeader is the identity line of a ring block. Written by the creator
// only (AssignRing); other processes read it for diagnostics, never trust it.
type ringHeader struct {
	id        uint32
	capacity  uint32
	prodOwner uint16
	consOwner uint16
	bell      uint32 // doorbell index the producer rings for the consumer
	state     uint32 // 1 = assigned
	_         [44]byte
}

// cacheHeader is the first line of an owner's cache record.
type cacheHeader struct {
	owner  uint16
	_      uint16
	state  uint32 // 1 = active
	pid    int32
	_      uint32
	allocs uint64 // counters written by the owner, read by the creator for stats
	frees  uint64
	bad    uint64 // handovers refused by this owner's checks
	config uint64 // control-plane configuration version the owner runs (Cache.SetConfigVersion)
	loop   uint64 // iterations<<1 | about-to-sleep bit (Cache.SetLoop), for hang detection
	_      [8]byte
}

// doorbellWord is one futex word and the number of processes asleep on it.
type doorbellWord struct {
	seq      uint32
	sleepers uint32
	_        [56]byte
}

// Compile-time layout checks: a size change here is a LayoutVersion change.
var (
	_ [CacheLineBytes - unsafe.Sizeof(ringHeader{})]byte
	_ [unsafe.Sizeof(ringHeader{}) - CacheLineBytes]byte
	_ [CacheLineBytes - unsafe.Sizeof(cacheHeader{})]byte
	_ [unsafe.Sizeof(cacheHeader{}) - CacheLineBytes]byte
	_ [CacheLineBytes - unsafe.Sizeof(doorbellWord{})]byte
	_ [unsafe.Sizeof(doorbellWord{}) - CacheLineBytes]byte
	_ [CacheLineBytes - unsafe.Sizeof(Counters{})]byte
	_ [unsafe.Sizeof(Counters{}) - CacheLineBytes]byte
	_ [metaBytes - unsafe.Sizeof(Meta{})]byte
	_ [unsafe.Sizeof(Meta{}) - metaBytes]byte
)

// section is one row of the section table.
type section struct {
	kind   uint32
	off    uint64
	size   uint64
	count  uint64
	stride uint64
}

// layout is a validated description of a region: every offset and size a
// process uses comes from here, never from a second read of the header.
type layout struct {
	total     uint64
	slotData  uint32
	headroom  uint32
	ringCap   uint32
	cacheCap  uint32
	doorbells section
	caches    section
	rings     section
	slots     section
}

func alignUp(n, a uint64) uint64 { return (n + a - 1) &^ (a - 1) }

func ringBlockBytes(capacity uint32) uint64 {
	return ringHeaderBytes + alignUp(uint64(capacity)*4, CacheLineBytes)
}

func slotStride(data uint32) uint64 {
	return alignUp(metaBytes+HeadroomBytes+uint64(data), CacheLineBytes)
}

func isPow2(v uint32) bool { return v != 0 && v&(v-1) == 0 }

// planLayout computes the layout for the given sizes (creator side).
func planLayout(slots, data, rings, ringCap, owners, cacheCap, bells uint32, roundTo uint64) (layout, error) {
	switch {
	case slots == 0 || slots > MaxSlots-1:
		return layout{}, fmt.Errorf("pool slots %d out of range 1..%d", slots, MaxSlots-1)
	case data < MinDataBytes || data > MaxDataBytes:
		return layout{}, fmt.Errorf("slot data %d out of range %d..%d", data, MinDataBytes, MaxDataBytes)
	case rings == 0 || rings > MaxRings:
		return layout{}, fmt.Errorf("rings %d out of range 1..%d", rings, MaxRings)
	case !isPow2(ringCap) || ringCap > MaxRingCap:
		return layout{}, fmt.Errorf("ring capacity %d is not a power of two up to %d", ringCap, MaxRingCap)
	case owners < 2 || owners > MaxOwners:
		return layout{}, fmt.Errorf("owners %d out of range 2..%d", owners, MaxOwners)
	case !isPow2(cacheCap) || cacheCap > MaxRingCap:
		return layout{}, fmt.Errorf("cache capacity %d is not a power of two up to %d", cacheCap, MaxRingCap)
	case bells == 0 || bells > 1<<20:
		return layout{}, fmt.Errorf("doorbells %d out of range 1..%d", bells, 1<<20)
	}
	l := layout{slotData: data, headroom: HeadroomBytes, ringCap: ringCap, cacheCap: cacheCap}
	off := uint64(HeaderBytes)
	put := func(kind uint32, count, stride uint64) section {
		s := section{kind: kind, off: off, count: count, stride: stride, size: count * stride}
		off = alignUp(off+s.size, CacheLineBytes)
		return s
	}
	l.doorbells = put(secDoorbells, uint64(bells), CacheLineBytes)
	l.caches = put(secCaches, uint64(owners), cacheHeaderBytes+2*ringBlockBytes(cacheCap))
	l.rings = put(secRings, uint64(rings), ringBlockBytes(ringCap))
	l.slots = put(secSlots, uint64(slots), slotStride(data))
	l.total = alignUp(off, roundTo)
	return l, nil
}

// encodeHeader writes everything but the magic, which the creator stores
// last so that no process ever validates a half-written header.
func (l *layout) encodeHeader(b []byte, epoch uint64, pid int) {
	le := binary.LittleEndian
	le.PutUint32(b[hdrVersion:], LayoutVersion)
	le.PutUint32(b[hdrHeaderBytes:], HeaderBytes)
	le.PutUint64(b[hdrTotalBytes:], l.total)
	le.PutUint64(b[hdrEpoch:], epoch)
	le.PutUint32(b[hdrCreatorPID:], uint32(pid))
	le.PutUint32(b[hdrNumSections:], numSectionKinds)
	le.PutUint32(b[hdrSlotData:], l.slotData)
	le.PutUint32(b[hdrSlotHeadroom:], l.headroom)
	le.PutUint32(b[hdrRingCap:], l.ringCap)
	le.PutUint32(b[hdrCacheCap:], l.cacheCap)
	for i, s := range []section{l.doorbells, l.caches, l.rings, l.slots} {
		p := b[hdrSections+i*sectionBytes:]
		le.PutUint32(p[0:], s.kind)
		le.PutUint64(p[8:], s.off)
		le.PutUint64(p[16:], s.size)
		le.PutUint64(p[24:], s.count)
		le.PutUint64(p[32:], s.stride)
	}
}

// parseLayout validates a header read from a file of fileSize bytes. Every
// field is untrusted: the result is usable only if err is nil.
func parseLayout(b []byte, fileSize int64) (layout, error) {
	var l layout
	if fileSize < HeaderBytes || len(b) < HeaderBytes {
		return l, fmt.Errorf("truncated: %d bytes, header alone needs %d", fileSize, HeaderBytes)
	}
	if [8]byte(b[hdrMagic:hdrMagic+8]) != regionMagic {
		return l, fmt.Errorf("wrong magic %q (not a Reinforce region, or not yet initialised)", b[hdrMagic:hdrMagic+8])
	}
	le := binary.LittleEndian
	if v := le.Uint32(b[hdrVersion:]); v != LayoutVersion {
		return l, fmt.Errorf("layout version %d, this build reads version %d", v, LayoutVersion)
	}
	if h := le.Uint32(b[hdrHeaderBytes:]); h != HeaderBytes {
		return l, fmt.Errorf("header size %d, expected %d", h, HeaderBytes)
	}
	l.total = le.Uint64(b[hdrTotalBytes:])
	if l.total != uint64(fileSize) {
		return l, fmt.Errorf("truncated or padded: header says %d bytes, file has %d", l.total, fileSize)
	}
	l.slotData = le.Uint32(b[hdrSlotData:])
	l.headroom = le.Uint32(b[hdrSlotHeadroom:])
	l.ringCap = le.Uint32(b[hdrRingCap:])
	l.cacheCap = le.Uint32(b[hdrCacheCap:])
	if l.slotData < MinDataBytes || l.slotData > MaxDataBytes {
		return l, fmt.Errorf("slot data size %d out of range", l.slotData)
	}
	if l.headroom != HeadroomBytes {
		return l, fmt.Errorf("slot headroom %d, expected %d", l.headroom, HeadroomBytes)
	}
	if !isPow2(l.ringCap) || l.ringCap > MaxRingCap || !isPow2(l.cacheCap) || l.cacheCap > MaxRingCap {
		return l, fmt.Errorf("ring capacities %d/%d are not powers of two up to %d", l.ringCap, l.cacheCap, MaxRingCap)
	}
	n := le.Uint32(b[hdrNumSections:])
	if n != numSectionKinds {
		return l, fmt.Errorf("section table has %d entries, expected %d", n, numSectionKinds)
	}
	var seen [numSectionKinds + 1]bool
	var secs [numSectionKinds]section
	for i := range secs {
		p := b[hdrSections+i*sectionBytes:]
		s := section{kind: le.Uint32(p[0:]), off: le.Uint64(p[8:]), size: le.Uint64(p[16:]),
			count: le.Uint64(p[24:]), stride: le.Uint64(p[32:])}
		if s.kind == 0 || s.kind > numSectionKinds || seen[s.kind] {
			return l, fmt.Errorf("section %d: unknown or repeated kind %d", i, s.kind)
		}
		seen[s.kind] = true
		if s.off < HeaderBytes || s.off%CacheLineBytes != 0 || s.stride == 0 || s.stride%CacheLineBytes != 0 {
			return l, fmt.Errorf("section %d: misaligned (offset %d, stride %d)", i, s.off, s.stride)
		}
		if s.count == 0 || s.stride > l.total || s.count > l.total/s.stride || s.count*s.stride != s.size {
			return l, fmt.Errorf("section %d: count %d × stride %d does not match size %d", i, s.count, s.stride, s.size)
		}
		if s.size > l.total || s.off > l.total-s.size {
			return l, fmt.Errorf("section %d: [%d, +%d) does not fit in %d bytes", i, s.off, s.size, l.total)
		}
		secs[i] = s
	}
	for i := range secs {
		for j := i + 1; j < len(secs); j++ {
			a, c := secs[i], secs[j]
			if a.off < c.off+c.size && c.off < a.off+a.size {
				return l, fmt.Errorf("sections %d and %d overlap", i, j)
			}
		}
		switch secs[i].kind {
		case secDoorbells:
			l.doorbells = secs[i]
		case secCaches:
			l.caches = secs[i]
		case secRings:
			l.rings = secs[i]
		case secSlots:
			l.slots = secs[i]
		}
	}
	switch {
	case l.doorbells.stride != CacheLineBytes:
		return l, fmt.Errorf("doorbell stride %d", l.doorbells.stride)
	case l.caches.stride != cacheHeaderBytes+2*ringBlockBytes(l.cacheCap):
		return l, fmt.Errorf("cache stride %d does not match capacity %d", l.caches.stride, l.cacheCap)
	case l.caches.count < 2 || l.caches.count > MaxOwners:
		return l, fmt.Errorf("owner count %d out of range", l.caches.count)
	case l.rings.stride != ringBlockBytes(l.ringCap) || l.rings.count > MaxRings:
		return l, fmt.Errorf("ring stride %d or count %d does not match capacity %d", l.rings.stride, l.rings.count, l.ringCap)
	case l.slots.stride != slotStride(l.slotData) || l.slots.count >= MaxSlots:
		return l, fmt.Errorf("slot stride %d or count %d does not match data size %d", l.slots.stride, l.slots.count, l.slotData)
	}
	return l, nil
}
