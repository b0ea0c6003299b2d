package manager

// The payload of a replication transaction (docs/replicator.md, "Payload"):
// self-delimiting records, little-endian, so that two payloads concatenated
// apply as the first then the second (the replicator's default coalescing).
//
//	write: type 1, pad u8, instance u16, length u32, file offset u64, bytes
//	file:  type 2, pad u8, instance u16, 0 u32, seed u64, data bytes u64,
//	       log bytes u64, layout digest u64        (snapshots only: the file
//	       the writes after it go to is recreated with this seed and sizes)
//	flow, rules, buckets: type 3/4/5, op u8, service u16, length u32, 0 u64,
//	       body: the manager's run-time state (replicate_runtime.go)

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/reinforce-nfv/reinforce/shm/state"
)

const (
	prWrite     = 1
	prFile      = 2
	prFlow      = 3 // an exact flow-director entry added or removed
	prRules     = 4 // the chain's run-time rules, all of them
	prBuckets   = 5 // a service's bucket → instance table
	prWriteHdr  = 16
	prFileBytes = 40
)

var errPayload = errors.New("malformed replication payload")

// payloadRec is one decoded record.
type payloadRec struct {
	typ  uint8
	inst uint16
	// write
	off  uint64
	data []byte // aliases the payload
	// file
	seed, dataBytes, logBytes, digest uint64
	// flow, rules, buckets (data is the body)
	op  uint8
	svc ServiceID
}

// decodePayload calls fn for each record of p in order. It checks every
// length before using it: a payload comes from the network.
func decodePayload(p []byte, fn func(r *payloadRec) error) error {
	le := binary.LittleEndian
	var r payloadRec
	for len(p) > 0 {
		if len(p) < prWriteHdr {
			return fmt.Errorf("%d trailing bytes: %w", len(p), errPayload)
		}
		r = payloadRec{typ: p[0], inst: le.Uint16(p[2:])}
		switch r.typ {
		case prWrite:
			n := uint64(le.Uint32(p[4:]))
			if n > uint64(len(p)-prWriteHdr) {
				return fmt.Errorf("write of %d bytes with %d left: %w", n, len(p)-prWriteHdr, errPayload)
			}
			r.off, r.data = le.Uint64(p[8:]), p[prWriteHdr:prWriteHdr+n]
			p = p[prWriteHdr+n:]
		case prFile:
			if len(p) < prFileBytes {
				return fmt.Errorf("file record of %d bytes: %w", len(p), errPayload)
			}
			r.seed, r.dataBytes, r.logBytes, r.digest = le.Uint64(p[8:]), le.Uint64(p[16:]), le.Uint64(p[24:]), le.Uint64(p[32:])
			p = p[prFileBytes:]
		case prFlow, prRules, prBuckets:
			n := uint64(le.Uint32(p[4:]))
			if n > uint64(len(p)-prWriteHdr) {
				return fmt.Errorf("record type %d of %d bytes with %d left: %w", r.typ, n, len(p)-prWriteHdr, errPayload)
			}
			r.op, r.svc, r.data = p[1], ServiceID(r.inst), p[prWriteHdr:prWriteHdr+n]
			if err := checkRuntimeRec(&r); err != nil {
				return err
			}
			p = p[prWriteHdr+n:]
		default:
			return fmt.Errorf("record type %d: %w", r.typ, errPayload)
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
	return nil
}

func appendWrite(b []byte, inst uint16, off uint64, data []byte) []byte {
	le := binary.LittleEndian
	b = append(b, prWrite, 0)
	b = le.AppendUint16(b, inst)
	b = le.AppendUint32(b, uint32(len(data)))
	b = le.AppendUint64(b, off)
	return append(b, data...)
}

func appendFile(b []byte, inst uint16, seed, dataBytes, logBytes, digest uint64) []byte {
	le := binary.LittleEndian
	b = append(b, prFile, 0)
	b = le.AppendUint16(b, inst)
	b = le.AppendUint32(b, 0)
	b = le.AppendUint64(b, seed)
	b = le.AppendUint64(b, dataBytes)
	b = le.AppendUint64(b, logBytes)
	return le.AppendUint64(b, digest)
}

// coalescer gathers one round's redo writes and drops those a later write
// to the same bytes overwrites (the last write wins). Only exact repeats
// (same instance, offset and length: a flow's counter written again) are
// dropped; partial overlaps stay in order, which applying in order makes
// right.
type coalescer struct {
	arena []byte
	ws    []cWrite
	last  map[cKey]int
	live  int
}

type cKey struct {
	inst uint16
	off  uint64
	n    uint32
}

type cWrite struct {
	k     cKey
	at    int // in arena
	alive bool
}

func (c *coalescer) reset() {
	c.arena, c.ws, c.live = c.arena[:0], c.ws[:0], 0
	if c.last == nil {
		c.last = make(map[cKey]int)
	}
	clear(c.last)
}

func (c *coalescer) add(inst uint16, w state.Write) {
	k := cKey{inst: inst, off: w.Off, n: uint32(len(w.Data))}
	if i, ok := c.last[k]; ok && c.ws[i].alive {
		// Removing the earlier copy and appending this one keeps every
		// write that came between them ordered before it.
		c.ws[i].alive = false
		c.live--
	}
	c.last[k] = len(c.ws)
	c.ws = append(c.ws, cWrite{k: k, at: len(c.arena), alive: true})
	c.arena = append(c.arena, w.Data...)
	c.live++
}

// empty reports whether the round wrote nothing.
func (c *coalescer) empty() bool { return c.live == 0 }

// encode appends the surviving writes to b and calls fn with each (for the
// shadow copy).
func (c *coalescer) encode(b []byte, fn func(inst uint16, off uint64, data []byte)) []byte {
	for _, w := range c.ws {
		if !w.alive {
			continue
		}
		d := c.arena[w.at : w.at+int(w.k.n)]
		b = appendWrite(b, w.k.inst, w.k.off, d)
		fn(w.k.inst, w.k.off, d)
	}
	return b
}

// shadow is the primary manager's copy of one NF's state file as of the
// last round (every write the manager read from its log, nothing else):
// the snapshot a joining standby gets is taken from it, so it is exactly
// the cut of the rounds proposed so far, with no need to stop the NF.
// Pages only exist once written; each remembers the range written in it,
// so a snapshot never writes what the NF never did (the header, say).
type shadow struct {
	pages map[uint64]*shadowPage
}

const shadowPageBytes = 4096

type shadowPage struct {
	lo, hi int // written range
	b      [shadowPageBytes]byte
}

func (s *shadow) write(off uint64, d []byte) {
	if s.pages == nil {
		s.pages = make(map[uint64]*shadowPage)
	}
	for len(d) > 0 {
		pi, po := off/shadowPageBytes, int(off%shadowPageBytes)
		p := s.pages[pi]
		if p == nil {
			p = &shadowPage{lo: po, hi: po}
			s.pages[pi] = p
		}
		n := copy(p.b[po:], d)
		p.lo, p.hi = min(p.lo, po), max(p.hi, po+n)
		off += uint64(n)
		d = d[n:]
	}
}

// appendTo appends the shadow as write records for instance inst, merging
// ranges that continue across pages.
func (s *shadow) appendTo(b []byte, inst uint16) []byte {
	idx := make([]uint64, 0, len(s.pages))
	for k := range s.pages {
		idx = append(idx, k)
	}
	slices.Sort(idx)
	var run []byte
	var runOff uint64
	for _, k := range idx {
		p := s.pages[k]
		off := k*shadowPageBytes + uint64(p.lo)
		if len(run) > 0 && runOff+uint64(len(run)) == off {
			run = append(run, p.b[p.lo:p.hi]...)
			continue
		}
		if len(run) > 0 {
			b = appendWrite(b, inst, runOff, run)
		}
		run, runOff = append(run[:0], p.b[p.lo:p.hi]...), off
	}
	if len(run) > 0 {
		b = appendWrite(b, inst, runOff, run)
	}
	return b
}
