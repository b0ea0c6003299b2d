package nflib

import "github.com/reinforce-nfv/reinforce/shm"

// Action is a handler's verdict on a packet (ONVM's onvm_pkt_meta.action and
// destination): drop, next in the chain, to a service, or out of a port.
type Action uint32

// Verdicts without a destination.
const (
	Drop Action = Action(shm.ActionDrop) << 16 // free the packet
	Next Action = Action(shm.ActionNext) << 16 // the packet's chain decides
)

// ToNF sends the packet to an instance of service (chosen by flow hash, so a
// flow stays on one instance).
func ToNF(service uint16) Action { return Action(shm.ActionToNF)<<16 | Action(service) }

// Out sends the packet out of port.
func Out(port uint16) Action { return Action(shm.ActionOut)<<16 | Action(port) }

// Kind is the action code (shm.ActionDrop/Next/ToNF/Out).
func (a Action) Kind() uint8 { return uint8(a >> 16) }

// Dest is the service (ToNF) or port (Out).
func (a Action) Dest() uint16 { return uint16(a) }

// Packet is a handler's view of one packet in the pool. It is valid during
// the handler call only; a handler that keeps packets pushes them onto a
// Queue and returns Keep.
type Packet struct {
	r    *shm.Region
	slot shm.Slot
	nf   *NF
}

// Slot is the packet's slot reference.
func (p Packet) Slot() shm.Slot { return p.slot }

// Meta is the packet's metadata (ONVM's onvm_pkt_meta plus ours).
func (p Packet) Meta() *shm.Meta { return p.r.Meta(p.slot) }

// Data is the packet's bytes (Meta().Len of them), to read. Write through
// Writable: a write through Data is not undone if the burst rolls back, so
// a standby would see the packet changed twice.
func (p Packet) Data() []byte { return p.r.Packet(p.slot) }

// Writable is the packet's bytes, to change: the first call in a burst
// saves the original bytes in the transaction (copy on first write), so a
// rollback restores them bit for bit.
func (p Packet) Writable() []byte {
	p.save()
	return p.r.Packet(p.slot)
}

// Room is the slot's whole buffer (headroom and data room) for building or
// growing a packet; set Meta().DataOff and SetLen to describe it. Like
// Writable, it saves the original bytes first.
func (p Packet) Room() []byte {
	p.save()
	return p.r.Buf(p.slot)
}

func (p Packet) save() {
	nf := p.nf
	if nf == nil || nf.tx == nil || nf.txOff || !nf.sc.open {
		return
	}
	if err := nf.tx.SaveData(p.slot); err != nil {
		nf.fail(err)
	}
}

// SetLen sets the packet length, clamped to the room after DataOff.
func (p Packet) SetLen(n int) {
	m := p.Meta()
	room := len(p.r.Buf(p.slot)) - int(m.DataOff)
	if n > room {
		n = room
	}
	if n < 0 {
		n = 0
	}
	m.Len = uint32(n)
}

// Handler processes one packet and returns its verdict. It runs on the NF's
// burst loop goroutine.
type Handler func(p Packet) Action

// BurstHandler processes a burst: it MUST set acts[i] for every pkts[i].
type BurstHandler func(pkts []Packet, acts []Action)
