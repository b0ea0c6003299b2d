package afpacket

// The RX path, in order (RX goroutine only):
//
//	count: walk the ring from the cursor, without moving it, counting the
//	  frames this burst will deliver (at most len(out); frames too big for a
//	  slot are skipped) → Alloc exactly that many slots
//	deliver: walk again from the cursor: copy each deliverable frame into
//	  the next slot (reinserting a VLAN tag the kernel stripped) and fill its
//	  Meta; count and skip the others; release each block to the kernel as
//	  soon as its last frame is copied; store the cursor once
//
// Counting first means no slot is allocated that is not filled, so none has
// to be given back. The walk reads only block status words until a block
// is ready: an empty poll is one atomic load, never a syscall.
//
// Ordering: a block's frames are read only after its status load says
// TP_STATUS_USER, and the block is handed back with a store after its last
// read (rxRing.open, rxRing.release). The kernel never touches a block in
// between, so the two walks see the same frames.

import (
	"encoding/binary"

	"github.com/reinforce-nfv/reinforce/pkt"
	"github.com/reinforce-nfv/reinforce/port"
	"github.com/reinforce-nfv/reinforce/shm"
	"golang.org/x/sys/unix"
)

// RxBurst copies up to len(out) received frames into slots allocated from
// c and returns how many it wrote to out; the caller owns them. Each slot
// has its data at Meta.DataOff = shm.HeadroomBytes, Meta.Len, Meta.Port =
// ID() and Meta.Timestamp = port.Nanotime() at the burst. A frame longer
// than the slot's data room is dropped and counted (Stats.RxDrops,
// Detail.RxTooBig). Frames wait in the ring while c is empty. It never
// blocks and makes no syscall; it returns 0 once closed. For one goroutine
// only.
func (p *Port) RxBurst(c *shm.Cache, out []shm.Slot) int {
	if p.closed.Load() || len(out) == 0 {
		return 0
	}
	if p.rxLeft == 0 {
		// Fast path of an idle poll: the next block is not ours yet.
		if p.ring.desc(p.rxBlk).status.Load()&unix.TP_STATUS_USER == 0 {
			return 0
		}
	}
	r := c.Region()
	room := r.DataBytes()
	k := 0
	if want := p.count(room, len(out)); want > 0 {
		k = c.Alloc(out[:want])
	}
	n := p.deliver(r, out[:k], room)
	if n < k {
		// Cannot happen (both walks see the same frames); give back what
		// was not filled rather than hand out empty slots.
		c.Free(out[n:k])
	}
	return n
}

// count returns how many frames, up to limit, a burst into slots of room
// data bytes would deliver from the ready blocks. It moves nothing; it
// walks as deliver does, skipping what deliver drops.
func (p *Port) count(room uint32, limit int) int {
	g := &p.ring
	blk, left, off := p.rxBlk, p.rxLeft, p.rxOff
	n := 0
	for turns := uint32(0); n < limit && turns < g.blocks; { // each block once: nothing is released
		if left == 0 {
			var ready, ok bool
			if left, off, ready, ok = g.open(blk); !ready {
				break
			}
			if !ok {
				blk = g.next(blk)
				turns++
				continue
			}
		}
		f, ok := g.frame(blk, off, left)
		if !ok {
			left = 0
			blk = g.next(blk)
			turns++
			continue
		}
		if f.verdict(room) == rxDeliver {
			n++
		}
		left--
		if left == 0 {
			blk = g.next(blk)
			turns++
		} else {
			off += f.next
		}
	}
	return n
}

// deliver copies frames from the cursor into the slots of out until all of
// out is filled or no ready frame is left, dropping those it cannot deliver,
// releasing each block it finishes and storing the cursor. It returns how
// many slots it filled.
func (p *Port) deliver(r *shm.Region, out []shm.Slot, room uint32) int {
	g := &p.ring
	now := port.Nanotime()
	blk, left, off := p.rxBlk, p.rxLeft, p.rxOff
	n := 0
	var bytes, tooBig, truncated, malformed, csum uint64
walk:
	// At most one lap: released blocks may be refilled while we walk, and
	// a burst must end.
	for turns := uint32(0); turns <= g.blocks; {
		if left == 0 {
			var ready, ok bool
			left, off, ready, ok = g.open(blk)
			if !ready {
				break
			}
			if !ok {
				malformed++ // an empty or unreadable block: give it back
				g.release(blk)
				blk = g.next(blk)
				turns++
				continue
			}
		}
		f, ok := g.frame(blk, off, left)
		if !ok {
			malformed += uint64(left)
			left = 0
			g.release(blk)
			blk = g.next(blk)
			turns++
			continue
		}
		switch f.verdict(room) {
		case rxDeliver:
			if n == len(out) {
				break walk // the frame stays for the next burst
			}
			bytes += uint64(p.copyFrame(r, out[n], &f, now))
			if f.status&unix.TP_STATUS_CSUMNOTREADY != 0 {
				csum++
			}
			n++
		case rxTooBig:
			tooBig++
		case rxTruncated:
			truncated++
		default:
			malformed++
		}
		left--
		if left == 0 {
			g.release(blk)
			blk = g.next(blk)
			turns++
		} else {
			off += f.next
		}
	}
	p.rxBlk, p.rxLeft, p.rxOff = blk, left, off
	p.stats.RxPkts.Add(uint64(n))
	p.stats.RxBytes.Add(bytes)
	if drops := tooBig + truncated + malformed; drops > 0 {
		p.stats.RxDrops.Add(drops)
		p.rxTooBig.Add(tooBig)
		p.rxTruncated.Add(truncated)
		p.rxMalformed.Add(malformed)
	}
	if csum > 0 {
		p.rxCsum.Add(csum)
	}
	return n
}

// copyFrame copies frame f from the ring into slot s at HeadroomBytes,
// putting back the VLAN tag the kernel moved into the frame header (it
// strips tags before packet taps see a frame), and fills s's Meta. f's
// verdict is rxDeliver, so it fits. It returns the frame's length.
func (p *Port) copyFrame(r *shm.Region, s shm.Slot, f *rxFrame, now int64) uint32 {
	src := p.ring.mem[f.data : f.data+f.snap]
	dst := r.Buf(s)[shm.HeadroomBytes:]
	n := f.snap
	if f.status&unix.TP_STATUS_VLAN_VALID != 0 {
		copy(dst[:macPairBytes], src)
		binary.BigEndian.PutUint16(dst[macPairBytes:], f.tpid)
		binary.BigEndian.PutUint16(dst[macPairBytes+2:], f.tci)
		copy(dst[macPairBytes+pkt.VLANTagBytes:], src[macPairBytes:])
		n += pkt.VLANTagBytes
	} else {
		copy(dst, src)
	}
	m := r.Meta(s)
	m.DataOff, m.Len, m.Port, m.Timestamp = shm.HeadroomBytes, n, p.id, now
	return n
}
