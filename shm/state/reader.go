package state

import (
	"encoding/binary"
	"fmt"
	"hash/crc64"
)

// What the replicator needs from a state file (RESILIENCY.md, "Remote
// standby"): the redo records of committed transactions in order, a tail it
// moves as the standby acknowledges (the log never overwrites what the
// reader has not released: writers wait, then fail, never truncate), the
// layout digest the handshake compares, and an atomic apply on the standby.

// Write is one container write: the new bytes at a file offset.
type Write struct {
	Off  uint64
	Data []byte // aliases the log (LogReader) or the caller's buffer (Apply)
}

// Committed is one committed transaction as the reader returns it.
type Committed struct {
	Seq    uint64
	End    uint64  // LSN just past its commit record: Release(End) frees it
	Writes []Write // in log order; a later write to the same bytes wins
}

// LogReader reads committed transactions from a live state file. One per
// file; used from one goroutine.
type LogReader struct {
	f   *File
	cur uint64 // LSN of the next record to parse
}

// NewLogReader attaches the file's log reader: from now on the writer
// keeps the log from the tail on, and the reader moves the tail with
// Release. It starts at the oldest record still in the log.
func (f *File) NewLogReader() *LogReader {
	f.word(hReader).Store(1)
	return &LogReader{f: f, cur: f.word(hTail).Load()}
}

// Close detaches the reader: the writer reclaims the log at its next
// transaction.
func (r *LogReader) Close() { r.f.word(hReader).Store(0) }

// Next returns the next committed transaction after the last one returned,
// skipping rolled-back ones, or ok false if none is complete yet (an open
// transaction stops the reader until it commits or aborts). writes is
// reused for the result. The returned slices alias the log: valid until
// Release frees them.
func (r *LogReader) Next(writes []Write) (c Committed, ok bool, err error) {
	f := r.f
	head := f.word(hHead).Load() // pairs with the Store of head in Tx.finish
	le := binary.LittleEndian
	for {
		lsn := r.cur
		var seq uint64
		began := false
		writes = writes[:0]
		for lsn < head {
			pos := lsn % f.logSz
			rem := f.logSz - pos
			if rem < recHdrBytes {
				lsn += rem
				continue
			}
			typ, n, rseq := le.Uint16(f.log[pos:]), uint64(le.Uint32(f.log[pos+4:])), le.Uint64(f.log[pos+8:])
			if typ == recPad {
				lsn += rem
				continue
			}
			size := recHdrBytes + roundUp(n, 8)
			if size > rem || lsn+size > head || typ < recBegin || typ > recAbort {
				return Committed{}, false, fmt.Errorf("state log reader: bad record at %d (type %d, %d bytes): %w", lsn, typ, n, ErrCorrupt)
			}
			p := f.log[pos+recHdrBytes : pos+recHdrBytes+n]
			lsn += size
			if !began {
				if typ != recBegin {
					// The tail of a transaction recovery aborted after its
					// begin fell behind the reader: skip to the next begin.
					r.cur = lsn
					continue
				}
				began, seq = true, rseq
				continue
			}
			if rseq != seq {
				return Committed{}, false, fmt.Errorf("state log reader: record at %d of transaction %d inside %d: %w", lsn-size, rseq, seq, ErrCorrupt)
			}
			switch typ {
			case recWrite:
				off, wn := le.Uint64(p[0:]), uint64(le.Uint32(p[8:]))
				if 16+2*roundUp(wn, 8) != n {
					return Committed{}, false, fmt.Errorf("state log reader: write record sizes disagree: %w", ErrCorrupt)
				}
				pad := roundUp(wn, 8)
				writes = append(writes, Write{Off: off, Data: p[16+pad : 16+pad+wn]})
			case recCommit:
				r.cur = lsn
				return Committed{Seq: seq, End: lsn, Writes: writes}, true, nil
			case recAbort:
				r.cur = lsn
				began = false
				writes = writes[:0]
			}
		}
		return Committed{}, false, nil // the transaction at r.cur is still open (or nothing is there)
	}
}

// Release frees the log up to lsn (a Committed.End the standby has
// acknowledged): writers may overwrite it.
func (r *LogReader) Release(lsn uint64) {
	if t := r.f.word(hTail).Load(); lsn > t && lsn <= r.cur {
		r.f.word(hTail).Store(lsn)
	}
}

// LayoutDigest is a digest of the file's containers (names, kinds, sizes,
// capacities, offsets, hash seeds): a standby's file must have the same
// before it applies the primary's writes.
func (f *File) LayoutDigest() uint64 {
	used := f.u64(hDirUsed)
	return crc64.Checksum(f.mem[dirOff:dirOff+used*dirEntryBytes], crc64.MakeTable(crc64.ECMA)) ^ used
}

// Apply makes writes one transaction of this file (a standby applying what
// the primary committed): all of them or, after a crash, none.
func (f *File) Apply(writes []Write) error {
	t := f.tx
	if err := t.Begin(); err != nil {
		return err
	}
	for _, w := range writes {
		if err := t.Write(w.Off, w.Data); err != nil {
			t.Rollback()
			return err
		}
	}
	if err := t.Commit(nil, nil, nil); err != nil {
		t.Rollback()
		return err
	}
	t.Done()
	return nil
}

// Containers returns the directory and data area as they are (for a
// snapshot the caller makes consistent, e.g. with the writer quiesced) and
// the used size of the data area.
func (f *File) Containers() (dir []byte, data []byte) {
	used := f.u64(hDirUsed)
	return f.mem[dirOff : dirOff+used*dirEntryBytes], f.mem[dataOff : dataOff+f.u64(hDataUsed)]
}

// Image calls fn with every logged part of the file as it is: the header's
// allocator words, the used directory and the used data, each at its file
// offset, as a log reader would have received them write by write. A
// manager that becomes a chain's primary seeds its snapshot copy with it.
// The caller keeps writers out (the file's holder has not started).
func (f *File) Image(fn func(off uint64, b []byte)) {
	fn(hDirUsed, f.mem[hDirUsed:hDataUsed+8])
	dir, data := f.Containers()
	if len(dir) > 0 {
		fn(dirOff, dir)
	}
	if len(data) > 0 {
		fn(dataOff, data)
	}
}
