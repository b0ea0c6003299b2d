package afpacket

// The TPACKET_V3 receive ring as mapped from the kernel (Documentation/
// networking/packet_mmap.rst, "TPACKET_V3"):
//
//	block 0                         block 1            ...  block Blocks-1
//	┌──────────────────────────────┬──────────────────┬─────┬────────────┐
//	│ tpacket_block_desc (48 B)    │                  │     │            │
//	│   block_status  (+8)  ◀── hand-over word        │     │            │
//	│   num_pkts      (+12)        │                  │     │            │
//	│   offset_to_first_pkt (+16)  │                  │     │            │
//	│ frame: tpacket3_hdr (48 B)   │                  │     │            │
//	│   … sockaddr_ll, pad, data at tp_mac            │     │            │
//	│ frame at + tp_next_offset …  │                  │     │            │
//	└──────────────────────────────┴──────────────────┴─────┴────────────┘
//
// The kernel fills blocks in order, frame after frame, and hands a block
// over by storing TP_STATUS_USER in block_status once it is full or its
// timeout expired (after smp_wmb: the frames are written first). We hand it
// back by storing TP_STATUS_KERNEL once every frame is copied out; the
// kernel then reuses it. Per-frame status words are not used in V3, so a
// block is read only after its hand-over. Everything read from a block is
// checked against the block's bounds before use: a bad offset ends the
// block (counted), never reads outside the mapping.

import (
	"sync/atomic"
	"unsafe"

	"github.com/reinforce-nfv/reinforce/pkt"
	"golang.org/x/sys/unix"
)

// blockDesc mirrors struct tpacket_block_desc with its tpacket_hdr_v1.
type blockDesc struct {
	version      uint32
	offsetToPriv uint32
	status       atomic.Uint32 // block_status: TP_STATUS_KERNEL or TP_STATUS_USER (| LOSING, BLK_TMO)
	numPkts      uint32        // frames in the block; valid once status says USER
	firstOff     uint32        // offset of the first frame from the block's start
	blkLen       uint32
	seq          uint64
	tsFirst      [8]byte
	tsLast       [8]byte
}

// The layout the kernel writes; checked at compile time (an index out of
// range of [1]struct{} fails to compile).
var (
	_ = [1]struct{}{}[unsafe.Sizeof(blockDesc{})-blockDescBytes]
	_ = [1]struct{}{}[unsafe.Sizeof(blockDesc{})-unsafe.Sizeof(unix.TpacketBlockDesc{})]
	_ = [1]struct{}{}[unsafe.Offsetof(blockDesc{}.status)-8]
	_ = [1]struct{}{}[unsafe.Offsetof(blockDesc{}.numPkts)-12]
	_ = [1]struct{}{}[unsafe.Offsetof(blockDesc{}.firstOff)-16]
	_ = [1]struct{}{}[unsafe.Sizeof(unix.Tpacket3Hdr{})-frameHdrBytes]
)

// rxRing is the mapped ring. Its fields are fixed once mapped; the blocks'
// contents move between the kernel and the RX goroutine as described above.
type rxRing struct {
	mem        []byte // Blocks × BlockBytes, MAP_SHARED with the kernel
	blockBytes uint32
	blocks     uint32
}

// desc returns block b's descriptor; b < blocks.
func (g *rxRing) desc(b uint32) *blockDesc {
	return (*blockDesc)(unsafe.Pointer(&g.mem[uint64(b)*uint64(g.blockBytes)]))
}

// next is the block after b, wrapping.
func (g *rxRing) next(b uint32) uint32 {
	if b+1 == g.blocks {
		return 0
	}
	return b + 1
}

// open reports whether block b has been handed to us and, if so, how many
// frames it holds and where the first one is. ok is false for a block the
// kernel handed over with no frame or a first offset outside the block:
// nothing in it can be read, and the caller gives it back.
func (g *rxRing) open(b uint32) (left, off uint32, ready, ok bool) {
	d := g.desc(b)
	// This load pairs with the kernel's store of TP_STATUS_USER after
	// smp_wmb in prb_close_block: the block's frames are written before it.
	if d.status.Load()&unix.TP_STATUS_USER == 0 {
		return 0, 0, false, false
	}
	left, off = d.numPkts, d.firstOff
	if left == 0 || off < blockDescBytes || off > g.blockBytes-frameHdrBytes {
		return 0, 0, true, false
	}
	return left, off, true, true
}

// release hands block b back to the kernel. The caller has finished reading
// it: this store publishes that, and pairs with the kernel's read of
// block_status before it writes the block again (prb_dispatch_next_block).
func (g *rxRing) release(b uint32) { g.desc(b).status.Store(unix.TP_STATUS_KERNEL) }

// rxFrame is one frame's header fields, copied out and checked.
type rxFrame struct {
	data   uint32 // offset of the frame's first byte in rxRing.mem
	snap   uint32 // bytes of it in the ring (tp_snaplen)
	wire   uint32 // bytes it had on the wire (tp_len); > snap when truncated
	next   uint32 // tp_next_offset: the next frame's offset from this one's
	status uint32 // tp_status: TP_STATUS_VLAN_VALID, CSUMNOTREADY, ...
	tci    uint16 // stripped VLAN tag, valid iff status&TP_STATUS_VLAN_VALID
	tpid   uint16 // its TPID
}

// frame reads the header of the frame at offset off of block b, of which
// left frames (this one included) remain. ok is false if the header, the
// data or the next frame's offset falls outside the block: the rest of the
// block is unreadable.
func (g *rxRing) frame(b, off, left uint32) (f rxFrame, ok bool) {
	if off < blockDescBytes || off > g.blockBytes-frameHdrBytes {
		return f, false
	}
	base := uint64(b)*uint64(g.blockBytes) + uint64(off)
	h := (*unix.Tpacket3Hdr)(unsafe.Pointer(&g.mem[base]))
	mac := uint64(h.Mac)
	f.snap, f.wire, f.next, f.status = h.Snaplen, h.Len, h.Next_offset, h.Status
	if mac+uint64(f.snap) > uint64(g.blockBytes-off) {
		return f, false
	}
	if left > 1 && (f.next < frameHdrBytes || uint64(off)+uint64(f.next) > uint64(g.blockBytes-frameHdrBytes)) {
		return f, false
	}
	f.data = uint32(base + mac)
	if f.status&unix.TP_STATUS_VLAN_VALID != 0 {
		f.tci = uint16(h.Hv1.Vlan_tci)
		f.tpid = vlanTPIDDefault
		if f.status&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
			f.tpid = h.Hv1.Vlan_tpid
		}
	}
	return f, true
}

// rxVerdict is what RX does with one frame.
type rxVerdict uint8

const (
	rxDeliver   rxVerdict = iota // copy it into a slot
	rxTruncated                  // the kernel cut it to fit the block: drop
	rxTooBig                     // longer than the slot's data room: drop
	rxMalformed                  // tag to reinsert but no MAC addresses: drop
)

// verdict decides frame f's fate for slots of room data bytes. A stripped
// VLAN tag is put back into the frame on delivery, so it counts.
func (f *rxFrame) verdict(room uint32) rxVerdict {
	n := uint64(f.snap)
	if f.status&unix.TP_STATUS_VLAN_VALID != 0 {
		if f.snap < macPairBytes {
			return rxMalformed
		}
		n += pkt.VLANTagBytes
	}
	switch {
	case f.snap < f.wire:
		return rxTruncated
	case n > uint64(room):
		return rxTooBig
	}
	return rxDeliver
}
