package pcap

import (
	"sync/atomic"

	"github.com/reinforce-nfv/reinforce/shm"
)

// sideTable keeps, per pool slot, the capture record of the frame the
// port last delivered in it, so that TX can write the frame back with its
// capture timestamp and original length while Meta.Timestamp keeps its
// meaning (the monotonic RX time). An entry applies to a slot on TX only
// if the slot reference (index and generation tag), the port and the
// delivery stamp all match what RX noted, and the frame's length is still
// the captured one for the original length to apply: a slot freed and
// reused for another frame fails the match.
//
// RX writes an entry only for a slot it holds and TX reads it only for a
// slot it holds, so the two never touch one entry at once; the accesses
// are atomic because the hand-off between them is invisible to Go (see
// port.go).
type sideTable struct {
	ent []capInfo // one per pool slot
}

// capInfo is one slot's entry. RX stores ts and lens before key; TX loads
// key first.
type capInfo struct {
	key  atomic.Uint64 // uint64(slot)<<32 | low 32 bits of Meta.Timestamp at delivery
	lens atomic.Uint64 // captured length << 32 | original length
	ts   atomic.Int64  // capture time, ns since the Unix epoch
}

func sideKey(s shm.Slot, stamp int64) uint64 { return uint64(s)<<32 | uint64(uint32(stamp)) }

// sideFor returns the side table for region r's slots, making it on the
// first call (nil without OutPath: nobody would read it). rxMu is held.
func (p *Port) sideFor(r *shm.Region) *sideTable {
	if p.o.OutPath == "" {
		return nil
	}
	if t := p.rxSide; t != nil && len(t.ent) == int(r.NumSlots()) {
		return t
	}
	t := &sideTable{ent: make([]capInfo, r.NumSlots())}
	p.rxSide = t
	p.side.Store(t) // publishes the table to TX; pairs with the Load in txBurst
	return t
}

// note records that slot s was delivered at stamp with rec's contents.
func (t *sideTable) note(s shm.Slot, stamp int64, rec *Record) {
	i := s.Index()
	if int(i) >= len(t.ent) {
		return
	}
	e := &t.ent[i]
	e.ts.Store(rec.Timestamp)
	e.lens.Store(uint64(len(rec.Data))<<32 | uint64(rec.OrigLen))
	e.key.Store(sideKey(s, stamp)) // after ts and lens; pairs with the Load in lookup
}

// lookup returns the capture timestamp and original length (0 when the
// frame's length n is no longer the captured one) of the frame in slot s,
// whose metadata is m, if port id delivered it; ok is false otherwise.
// A nil table finds nothing.
func (t *sideTable) lookup(s shm.Slot, m *shm.Meta, id uint16, n int) (ts int64, orig uint32, ok bool) {
	if t == nil || int(s.Index()) >= len(t.ent) || m.Port != id {
		return 0, 0, false
	}
	e := &t.ent[s.Index()]
	if e.key.Load() != sideKey(s, m.Timestamp) {
		return 0, 0, false
	}
	l := e.lens.Load()
	if int(l>>32) == n {
		orig = uint32(l)
	}
	return e.ts.Load(), orig, true
}
