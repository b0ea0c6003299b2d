package state

import (
	"encoding/binary"
	"fmt"

	"github.com/reinforce-nfv/reinforce/shm"
)

// Report says what Recover did.
type Report struct {
	Seq           uint64 // the transaction found open (0: none)
	RolledBack    bool
	RolledForward bool
	Redelivered   int // input packets returned to their rings
	Writes        int // container writes undone
	Packets       int // packets whose bytes were restored
	Allocs        int // allocations returned
	Frees         int // deferred frees completed (roll forward)
}

func (r Report) String() string {
	switch {
	case r.RolledBack:
		return fmt.Sprintf("rolled back transaction %d: %d packets redelivered, %d state writes undone, %d packets restored, %d allocations returned",
			r.Seq, r.Redelivered, r.Writes, r.Packets, r.Allocs)
	case r.RolledForward:
		return fmt.Sprintf("rolled forward transaction %d: publication repeated, %d frees completed", r.Seq, r.Frees)
	}
	return "nothing to recover"
}

// Recover brings a state file whose holder died back to its last commit and
// returns what it did. It runs in the process taking over (a standby, a
// restarted NF, a checker), which holds the file's lock and has opened the
// dead holder's cache (same owner) in reg. An uncommitted transaction is
// rolled back: container writes undone, packet bytes and metadata restored,
// inputs returned to their rings (so the same packets, bit for bit, are
// delivered again), allocations freed. A committed one is rolled forward:
// its index stores repeated and its frees completed. Either way an abort
// or the transaction's end is recorded so nobody acts on it twice. Packets
// the manager has meanwhile reclaimed are left alone (their state words no
// longer name the owner). reg and c may be nil for a file whose
// transactions never touched packets.
func Recover(f *File, reg *shm.Region, c *shm.Cache) (Report, error) {
	if c != nil {
		c.Resync()
	}
	f.tx.open = false
	return recoverFile(f, reg, c, true)
}

type record struct {
	typ uint16
	p   []byte
}

func recoverFile(f *File, reg *shm.Region, c *shm.Cache, crashed bool) (Report, error) {
	start := f.word(hTxStart).Load()
	if start == noTx {
		return Report{}, nil
	}
	seq := f.word(hTxSeq).Load()
	rep := Report{Seq: seq}
	recs, err := f.records(start, f.word(hHead).Load(), seq)
	if err != nil {
		return rep, err
	}
	var commit []byte
	for _, r := range recs {
		if r.typ == recCommit {
			commit = r.p
		}
	}
	if commit != nil {
		if err := rollForward(f, reg, c, commit, &rep); err != nil {
			return rep, err
		}
		f.word(hRollForwards).Add(1)
		f.word(hPublished).Store(seq)
		f.word(hTxStart).Store(noTx)
		return rep, nil
	}
	if err := rollBack(f, reg, c, recs, &rep); err != nil {
		return rep, err
	}
	f.tx.seq = seq
	if b, err := f.tx.reserve(recAbort, 0); err == nil {
		_ = b
		f.tx.finish()
	}
	f.word(hRollbacks).Add(1)
	if !crashed {
		f.word(hAborts).Add(1)
	}
	f.word(hRedelivered).Add(uint64(rep.Redelivered))
	f.word(hTxStart).Store(noTx)
	return rep, nil
}

// records parses the log from start to head, checking every header, and
// returns the records of transaction seq.
func (f *File) records(start, head, seq uint64) ([]record, error) {
	if head-start > f.logSz {
		return nil, fmt.Errorf("state log: transaction %d starts at %d, head %d: more than the log apart: %w", seq, start, head, ErrCorrupt)
	}
	var out []record
	for lsn := start; lsn < head; {
		pos := lsn % f.logSz
		rem := f.logSz - pos
		if rem < recHdrBytes {
			lsn += rem
			continue
		}
		le := binary.LittleEndian
		typ, n, rseq := le.Uint16(f.log[pos:]), uint64(le.Uint32(f.log[pos+4:])), le.Uint64(f.log[pos+8:])
		if typ == recPad {
			lsn += rem
			continue
		}
		size := recHdrBytes + roundUp(n, 8)
		if size > rem || lsn+size > head || typ < recBegin || typ > recAbort {
			return nil, fmt.Errorf("state log: bad record at %d (type %d, %d bytes): %w", lsn, typ, n, ErrCorrupt)
		}
		if rseq != seq {
			return nil, fmt.Errorf("state log: record at %d belongs to transaction %d, not %d: %w", lsn, rseq, seq, ErrCorrupt)
		}
		out = append(out, record{typ: typ, p: f.log[pos+recHdrBytes : pos+recHdrBytes+n]})
		lsn += size
	}
	return out, nil
}

func rollForward(f *File, reg *shm.Region, c *shm.Cache, p []byte, rep *Report) error {
	le := binary.LittleEndian
	if len(p) < 16 {
		return fmt.Errorf("state log: short commit record: %w", ErrCorrupt)
	}
	nIn, nOut, nFree := uint64(le.Uint32(p[0:])), uint64(le.Uint32(p[4:])), uint64(le.Uint32(p[8:]))
	if 16+8*(nIn+nOut)+4*nFree != uint64(len(p)) {
		return fmt.Errorf("state log: commit record sizes disagree: %w", ErrCorrupt)
	}
	rep.RolledForward = true
	if reg == nil {
		if nIn+nOut+nFree != 0 {
			return fmt.Errorf("state log: commit names rings but no region was given")
		}
		return nil
	}
	idx := p[16:]
	// Outputs first, then inputs, then frees: a freed slot must have left
	// every ring window (the order the live burst uses).
	for i := nIn; i < nIn+nOut; i++ {
		r, err := reg.OpenRing(le.Uint32(idx[8*i:]))
		if err != nil {
			return fmt.Errorf("roll forward: %w", err)
		}
		if err := r.PublishTo(le.Uint32(idx[8*i+4:])); err != nil {
			return fmt.Errorf("roll forward: %w", err)
		}
	}
	for i := uint64(0); i < nIn; i++ {
		r, err := reg.OpenRing(le.Uint32(idx[8*i:]))
		if err != nil {
			return fmt.Errorf("roll forward: %w", err)
		}
		if err := r.ReleaseTo(le.Uint32(idx[8*i+4:])); err != nil {
			return fmt.Errorf("roll forward: %w", err)
		}
	}
	frees := idx[8*(nIn+nOut):]
	for i := uint64(0); i < nFree; i++ {
		c.Refree(shm.Slot(le.Uint32(frees[4*i:])))
		rep.Frees++
	}
	return nil
}

func rollBack(f *File, reg *shm.Region, c *shm.Cache, recs []record, rep *Report) error {
	le := binary.LittleEndian
	rep.RolledBack = true
	// 1. Container writes, newest first.
	for i := len(recs) - 1; i >= 0; i-- {
		r := recs[i]
		if r.typ != recWrite {
			continue
		}
		if len(r.p) < 16 {
			return fmt.Errorf("state log: short write record: %w", ErrCorrupt)
		}
		off, n := le.Uint64(r.p[0:]), uint64(le.Uint32(r.p[8:]))
		if 16+2*roundUp(n, 8) != uint64(len(r.p)) || !f.writable(off, n) {
			return fmt.Errorf("state log: write record at %d+%d out of range: %w", off, n, ErrCorrupt)
		}
		copy(f.mem[off:off+n], r.p[16:16+n])
		rep.Writes++
	}
	if reg == nil || c == nil {
		for _, r := range recs {
			if r.typ == recInputs || r.typ == recData || r.typ == recAlloc {
				return fmt.Errorf("state log: transaction took packets but no region was given")
			}
		}
		return nil
	}
	ours := func(s shm.Slot) bool { return c.Reown(s) || c.Holds(s) }
	// 2. Packet bytes, then metadata and ownership of what it took.
	for _, r := range recs {
		if r.typ != recData {
			continue
		}
		if len(r.p) < 16 {
			return fmt.Errorf("state log: short data record: %w", ErrCorrupt)
		}
		s, off, n := shm.Slot(le.Uint32(r.p[0:])), uint64(le.Uint32(r.p[4:])), uint64(le.Uint32(r.p[8:]))
		buf := reg.Buf(s)
		if 16+n != uint64(len(r.p)) || off+n > uint64(len(buf)) {
			return fmt.Errorf("state log: data record for slot %d out of range: %w", s.Index(), ErrCorrupt)
		}
		if !ours(s) {
			continue // reclaimed meanwhile: not ours to write
		}
		copy(buf[off:off+n], r.p[16:])
		rep.Packets++
	}
	for _, r := range recs {
		if r.typ != recInputs {
			continue
		}
		if len(r.p) < 8 {
			return fmt.Errorf("state log: short inputs record: %w", ErrCorrupt)
		}
		cnt := uint64(le.Uint32(r.p[0:]))
		if 8+cnt*inputEntryBytes != uint64(len(r.p)) {
			return fmt.Errorf("state log: inputs record sizes disagree: %w", ErrCorrupt)
		}
		for k := uint64(0); k < cnt; k++ {
			e := r.p[8+k*inputEntryBytes:]
			s, ring, word := shm.Slot(le.Uint32(e[0:])), le.Uint32(e[4:]), le.Uint64(e[8:])
			if reg.SlotWord(s) == word {
				continue // never taken
			}
			if !ours(s) {
				continue
			}
			copy(reg.MetaFields(s), e[16:16+shm.MetaFieldBytes])
			if c.RestoreWord(s, word) && ring != noRing {
				rep.Redelivered++
			}
		}
	}
	// 3. Allocations go back to the pool.
	for _, r := range recs {
		if r.typ != recAlloc {
			continue
		}
		if len(r.p) < 8 {
			return fmt.Errorf("state log: short alloc record: %w", ErrCorrupt)
		}
		cnt := uint64(le.Uint32(r.p[0:]))
		if 8+4*cnt != uint64(len(r.p)) {
			return fmt.Errorf("state log: alloc record sizes disagree: %w", ErrCorrupt)
		}
		for k := uint64(0); k < cnt; k++ {
			s := shm.Slot(le.Uint32(r.p[8+4*k:]))
			if c.Reown(s) {
				one := [1]shm.Slot{s}
				c.Free(one[:])
				rep.Allocs++
			}
		}
	}
	return nil
}
