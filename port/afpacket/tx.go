package afpacket

// The TX path, in order (TX goroutine only):
//
//	free what an earlier burst sent but could not free (pend); refuse the
//	  burst while any is left
//	per chunk of up to txBatch frames: check each frame's length against
//	  the interface (drop those the kernel would refuse for their size)
//	  → point an iovec at each other frame, in its slot → one sendmmsg
//	  (MSG_DONTWAIT) → the frames before the first one the kernel did not
//	  take are consumed: Free them with c (what Free cannot take yet waits
//	  in pend) → stop at the first refusal
//
// Why sendmmsg rather than a TPACKET TX ring: the iovecs point into the
// slots, so the only copy is the kernel's into its skb, and once sendmmsg
// returns the slots can be freed. A TX ring needs a copy into the ring, and
// its frames stay busy until the driver frees the skb (which, with the
// ring's zero-copy skb, may be later still), so completions would need
// tracking. sendmmsg also reports exactly how many frames the kernel took:
// a refusal (socket buffer full, EAGAIN; the device dropped it, ENOBUFS;
// link down, ENETDOWN) ends the prefix TxBurst consumes, which is
// port.Port's contract. The cost is one syscall per 64 frames, small
// next to the kernel's per-frame work on a veth.

import (
	"encoding/binary"
	"unsafe"

	"github.com/reinforce-nfv/reinforce/pkt"
	"github.com/reinforce-nfv/reinforce/shm"
	"golang.org/x/sys/unix"
)

// TxBurst sends the frames of s (Meta.DataOff, Meta.Len) and takes
// ownership of the first n it returns, freeing them with c. A frame the
// interface cannot carry (shorter than an Ethernet header, longer than MTU
// plus header, or plus an 802.1Q tag it carries) is consumed unsent and
// counted (TxDrops, Detail.TxInvalid). The first frame the kernel refuses
// ends the burst: the caller keeps s[n:], counted in Detail.TxRefused (not
// TxDrops: the caller may send them again, or drop them and count that). It never blocks; it returns 0 once closed. c MUST be the
// same cache on every call: when c's drain ring is full, TxBurst holds the
// slots it sent and refuses new frames until it has freed them, which any
// later call does, TxBurst(c, nil) included. For one goroutine only.
func (p *Port) TxBurst(c *shm.Cache, s []shm.Slot) int {
	if p.closed.Load() {
		return 0
	}
	if p.npend > 0 && !p.freePending(c) {
		p.refuse(len(s))
		return 0
	}
	r := c.Region()
	done := 0
	for done < len(s) {
		k, more := p.sendChunk(c, r, s[done:min(len(s), done+txBatch)])
		done += k
		if !more {
			break
		}
	}
	p.refuse(len(s) - done)
	return done
}

// sendChunk sends the frames of chunk (at most txBatch) in one sendmmsg,
// frees those it consumed and returns how many that is; more is false when
// the burst must stop (a refusal, or slots left in pend).
func (p *Port) sendChunk(c *shm.Cache, r *shm.Region, chunk []shm.Slot) (consumed int, more bool) {
	m := 0
	for i, sl := range chunk {
		f := r.Packet(sl) // clamped to the slot: Meta is the sender's to get wrong
		if !p.txFits(f) {
			continue
		}
		p.iov[m].Base = &f[0]
		p.iov[m].SetLen(len(f))
		p.pos[m] = uint8(i)
		m++
	}
	sent := 0
	if m > 0 {
		sent = p.sendmmsg(m)
	}
	consumed = len(chunk)
	if sent < m {
		consumed = int(p.pos[sent]) // the refused frame and all after it stay the caller's
	}
	var bytes uint64
	for i := range sent {
		bytes += uint64(p.iov[i].Len)
	}
	// The kernel has copied the frames: the slots may be freed (and so
	// reallocated at once).
	freed := c.Free(chunk[:consumed])
	if p.npend = copy(p.pend[:], chunk[freed:consumed]); p.npend > 0 {
		p.pendCache = c
	}
	p.stats.TxPkts.Add(uint64(sent))
	p.stats.TxBytes.Add(bytes)
	if invalid := consumed - sent; invalid > 0 {
		p.stats.TxDrops.Add(uint64(invalid))
		p.txInvalid.Add(uint64(invalid))
	}
	return consumed, consumed == len(chunk) && p.npend == 0
}

// txFits reports whether the kernel's packet_snd accepts frame f on this
// interface: at least the link header (dev_validate_header), at most MTU
// plus header, or plus a tag if it carries an 802.1Q tag on Ethernet
// (packet_extra_vlan_len_allowed).
func (p *Port) txFits(f []byte) bool {
	n, limit := len(f), p.mtu+pkt.EthHeaderBytes
	switch {
	case n < pkt.EthHeaderBytes:
		return false
	case n <= limit:
		return true
	}
	return p.ether && n <= limit+pkt.VLANTagBytes && binary.BigEndian.Uint16(f[macPairBytes:]) == pkt.EtherTypeVLAN
}

// sendmmsg sends msgs[:m] without blocking and returns how many the kernel
// took; the first it did not take was refused (or dropped by the device),
// so it and the rest were not sent. The error is kept for Detail.
func (p *Port) sendmmsg(m int) int {
	for {
		n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(p.txFD), uintptr(unsafe.Pointer(&p.msgs[0])),
			uintptr(m), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			return int(n)
		case unix.EINTR:
			continue
		}
		p.txErrno.Store(uintptr(e))
		return 0
	}
}

// freePending frees the slots a previous burst sent but could not free and
// reports whether none is left. Called with nothing (TxBurst(c, nil)) it
// is the way to flush them. Only the cache that holds them can free them:
// another would count them as bad references and lose them.
func (p *Port) freePending(c *shm.Cache) bool {
	if c != p.pendCache {
		return false
	}
	k := c.Free(p.pend[:p.npend])
	p.npend = copy(p.pend[:], p.pend[k:p.npend])
	return p.npend == 0
}

// refuse counts n frames handed back to TxBurst's caller.
func (p *Port) refuse(n int) {
	if n > 0 {
		// Not a drop yet: the caller keeps them, and may try again.
		p.txRefused.Add(uint64(n))
	}
}
