package shm

import "sync/atomic"

// Slot is a reference to a pool slot as it travels through rings: the slot
// index in the low 24 bits and the low 8 bits of the slot's generation in
// the high 8, so a stale reference to a freed and reallocated slot is caught
// at hand-over (with probability 255/256 per reuse; the state word catches
// the rest).
type Slot uint32

const (
	slotIndexBits = 24
	slotIndexMask = 1<<slotIndexBits - 1
)

// NoSlot is never a valid reference (index MaxSlots-1 is never allocated).
const NoSlot Slot = 1<<32 - 1

func makeSlot(idx uint32, gen uint32) Slot { return Slot(idx&slotIndexMask | gen<<slotIndexBits) }

// Index is the slot's position in the pool.
func (s Slot) Index() uint32 { return uint32(s) & slotIndexMask }

// Gen is the generation tag the reference was issued with.
func (s Slot) Gen() uint8 { return uint8(uint32(s) >> slotIndexBits) }

// OwnerID names an allocation cache and so a process (or a manager thread)
// that may hold slots. 0 means none.
type OwnerID uint16

// Meta is a slot's 64-byte metadata line. The first 8 bytes mirror ONVM's
// onvm_pkt_meta (ONVM-COMPAT.md §2.3) at the same offsets; the rest carries
// what the data path and resiliency need. Fields are plain memory written by
// whoever holds the slot; only state is shared between processes.
type Meta struct {
	Action      uint8  // onvm_pkt_meta.action: ActionDrop/Next/ToNF/Out
	_           uint8  // onvm_pkt_meta padding
	Destination uint16 // onvm_pkt_meta.destination: service ID (ToNF) or port (Out)
	Src         uint16 // onvm_pkt_meta.src: sending NF's instance ID, 0 from RX
	ChainIndex  uint8  // onvm_pkt_meta.chain_index
	Flags       uint8  // onvm_pkt_meta.flags
	Port        uint16 // ingress port
	Chain       uint16 // service chain the packet was classified onto
	Len         uint32 // bytes of packet data
	FlowHash    uint32 // symmetric flow hash, valid iff FlagHasHash
	DataOff     uint16 // offset of the packet's first byte in Buf (HeadroomBytes when fresh)
	MetaFlags   uint16 // FlagHas* bits
	Seq         uint64 // ingress sequence number, valid iff FlagHasSeq
	Timestamp   int64  // CLOCK_MONOTONIC ns at ingress
	_           [8]byte
	state       atomic.Uint64 // slot ownership, see stateWord; written only through the pool's checks
	_           [8]byte
}

// Meta flag bits.
const (
	FlagHasHash uint16 = 1 << iota // FlowHash is valid
	FlagHasSeq                     // Seq is valid
	FlagMessage                    // the slot carries an NF-to-NF message, not a packet (ONVM's MSG_FROM_NF)
)

// Reset clears the metadata for a fresh packet of n data bytes.
func (m *Meta) Reset(n uint32) {
	m.Action, m.Destination, m.Src, m.ChainIndex, m.Flags = ActionDrop, 0, 0, 0, 0
	m.Port, m.Chain, m.Len, m.FlowHash = 0, 0, n, 0
	m.DataOff, m.MetaFlags, m.Seq, m.Timestamp = HeadroomBytes, 0, 0, 0
}

// Slot ownership states (the kind field of the state word).
const (
	kindFree  uint64 = iota // in the creator's free list
	kindFill                // in an owner's fill ring
	kindHeld                // held by owner
	kindRing                // published or staged into edge ring `ring` by owner
	kindDrain               // freed by owner into its drain ring
)

// stateWord packs gen:24 | kind:8 | owner:16 | ring:16 (high to low).
func stateWord(gen uint32, kind uint64, owner OwnerID, ring uint16) uint64 {
	return uint64(gen&0xFFFFFF)<<40 | kind<<32 | uint64(owner)<<16 | uint64(ring)
}

func stGen(w uint64) uint32         { return uint32(w >> 40) }
func stKind(w uint64) uint64        { return (w >> 32) & 0xFF }
func stOwner(w uint64) OwnerID      { return OwnerID(w >> 16) }
func stRing(w uint64) uint16        { return uint16(w) }
func genTag(gen uint32) uint8       { return uint8(gen) }
func stTagOK(w uint64, s Slot) bool { return genTag(stGen(w)) == s.Gen() }
