package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/reinforce-nfv/reinforce/shm"
)

// ErrLogFull reports a transaction that does not fit in the state log.
var ErrLogFull = errors.New("state log full")

// ErrNoRoom reports a container that is full, or a state file without room
// for another container.
var ErrNoRoom = errors.New("no room")

// RingIndex is a ring and the index a commit stores in it: the consumer
// index of an input ring, the producer index of an output ring.
type RingIndex struct {
	Ring  uint32
	Index uint32
}

// readerWait is how long a transaction waits for the log reader to free
// room before it fails with ErrLogFull.
const readerWait = 200 * time.Millisecond

// maxTxInputs bounds the packets one transaction takes (inputs of a burst
// plus packets popped from queues); more is a programming error reported by
// Inputs.
const maxTxInputs = 4 * shm.MaxBurst

// inRec is what the transaction remembers of a packet it took, so the
// packet's bytes are saved before its first write.
type inRec struct {
	slot  shm.Slot
	off   uint32 // original data offset within the slot's buffer
	n     uint32 // original data length
	saved bool
}

// Tx is the file's transaction: the burst (or callback) in progress. A
// burst runs Begin → Inputs → (SaveData, Alloc, Write)* → Commit → the
// caller publishes its rings and frees → Done. Before Commit, everything it
// did can be undone from the log (Rollback in process, Recover after a
// crash); after Commit, Recover repeats the publication. Not safe for
// concurrent use.
type Tx struct {
	f     *File
	reg   *shm.Region
	c     *shm.Cache
	open  bool
	seq   uint64
	start uint64 // LSN of the begin record
	rec   uint64 // LSN of the record being written
	pend  uint64 // LSN after it
	ins   [maxTxInputs]inRec
	nIns  int
	alloc [shm.MaxBurst]shm.Slot // allocations, for SaveData's "fresh" test
	nAl   int
	err   error // the first failure in the open transaction: it cannot commit
}

// Bind attaches the region and the owner's cache whose slots the
// transaction takes, allocates and frees. Without it only container writes
// are possible.
func (t *Tx) Bind(reg *shm.Region, c *shm.Cache) { t.reg, t.c = reg, c }

// Open reports whether a transaction is in progress.
func (t *Tx) Open() bool { return t.open }

// Seq is the open (or last) transaction's sequence number.
func (t *Tx) Seq() uint64 { return t.seq }

// Begin opens a transaction. The file must not have one open (Recover runs
// first after a crash).
func (t *Tx) Begin() error {
	f := t.f
	if t.open || f.word(hTxStart).Load() != noTx {
		return fmt.Errorf("state file %s: begin: transaction %d still open", f.path, f.word(hTxSeq).Load())
	}
	if f.word(hReader).Load() == 0 {
		// Nothing before this transaction is needed any more (no reader
		// holds the log), so it starts at the log's first byte: a process
		// touches only as many log pages as its largest transaction needs.
		head := roundUp(f.word(hHead).Load(), f.logSz)
		f.word(hHead).Store(head)
		f.word(hTail).Store(head)
	}
	t.seq = f.word(hTxSeq).Load() + 1
	t.nIns, t.nAl, t.err = 0, 0, nil
	if _, err := t.reserve(recBegin, 0); err != nil {
		return err
	}
	t.start = t.rec
	t.finish()
	f.word(hTxSeq).Store(t.seq)
	f.word(hTxStart).Store(t.start) // from here on, Recover acts on this transaction
	t.open = true
	return nil
}

// Inputs logs packets about to be taken from ring (their references as read
// from the ring, their state words and metadata), before any hand-over
// changes them. ring is the input ring's ID.
func (t *Tx) Inputs(ring uint32, raw []shm.Slot) error {
	if len(raw) == 0 {
		return nil
	}
	if t.nIns+len(raw) > maxTxInputs {
		return fmt.Errorf("transaction %d takes more than %d packets", t.seq, maxTxInputs)
	}
	b, err := t.reserve(recInputs, 8+inputEntryBytes*len(raw))
	if err != nil {
		return err
	}
	le := binary.LittleEndian
	le.PutUint32(b[0:], uint32(len(raw)))
	le.PutUint32(b[4:], ring)
	e := b[8:]
	for _, s := range raw {
		le.PutUint32(e[0:], uint32(s))
		le.PutUint32(e[4:], ring)
		le.PutUint64(e[8:], t.reg.SlotWord(s))
		copy(e[16:16+shm.MetaFieldBytes], t.reg.MetaFields(s))
		m := t.reg.Meta(s)
		t.ins[t.nIns] = inRec{slot: s, off: uint32(m.DataOff), n: m.Len}
		t.nIns++
		e = e[inputEntryBytes:]
	}
	t.finish()
	return nil
}

// SaveData saves slot s's original bytes before the transaction first
// writes them (copy on first write). It does nothing for a packet allocated
// in this transaction or already saved. A slot the transaction did not take
// (one held in a queue, say) is logged as taken first.
func (t *Tx) SaveData(s shm.Slot) error {
	if !t.open {
		return nil
	}
	var in *inRec
	for i := range t.ins[:t.nIns] {
		if t.ins[i].slot == s {
			in = &t.ins[i]
			break
		}
	}
	if in == nil {
		for _, a := range t.alloc[:t.nAl] {
			if a == s {
				return nil
			}
		}
		one := [1]shm.Slot{s}
		if err := t.Inputs(noRing, one[:]); err != nil {
			return err
		}
		in = &t.ins[t.nIns-1]
	}
	if in.saved {
		return nil
	}
	buf := t.reg.Buf(s)
	off, n := uint64(in.off), uint64(in.n)
	if off > uint64(len(buf)) {
		off = uint64(len(buf))
	}
	if n > uint64(len(buf))-off {
		n = uint64(len(buf)) - off
	}
	b, err := t.reserve(recData, 16+int(n))
	if err != nil {
		return err
	}
	le := binary.LittleEndian
	le.PutUint32(b[0:], uint32(s))
	le.PutUint32(b[4:], uint32(off))
	le.PutUint32(b[8:], uint32(n))
	copy(b[16:], buf[off:off+n])
	t.finish()
	in.saved = true
	return nil
}

// Held logs slot s, which this owner holds from an earlier transaction (a
// packet popped from a queue), as taken by this one.
func (t *Tx) Held(s shm.Slot) error {
	one := [1]shm.Slot{s}
	return t.Inputs(noRing, one[:])
}

// Alloc logs slots read from the fill ring before they are taken.
func (t *Tx) Alloc(s []shm.Slot) error {
	if len(s) == 0 {
		return nil
	}
	if t.nAl+len(s) > len(t.alloc) {
		return fmt.Errorf("transaction %d allocates more than %d packets", t.seq, len(t.alloc))
	}
	b, err := t.reserve(recAlloc, 8+4*len(s))
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint32(b[0:], uint32(len(s)))
	for i, sl := range s {
		binary.LittleEndian.PutUint32(b[8+4*i:], uint32(sl))
	}
	t.finish()
	t.nAl += copy(t.alloc[t.nAl:], s)
	return nil
}

// Write logs the old and new bytes at file offset off (inside the directory
// or data area), then writes b there. Outside a transaction it commits on
// its own.
func (t *Tx) Write(off uint64, b []byte) error {
	f := t.f
	if !f.writable(off, uint64(len(b))) {
		return fmt.Errorf("state write at %d+%d: outside the containers", off, len(b))
	}
	if f.unlogged {
		copy(f.mem[off:off+uint64(len(b))], b)
		return nil
	}
	auto := !t.open
	if auto {
		if err := t.Begin(); err != nil {
			return err
		}
	}
	n := len(b)
	pad := int(roundUp(uint64(n), 8))
	rec, err := t.reserve(recWrite, 16+2*pad)
	if err != nil {
		if auto {
			t.Rollback()
		}
		return err
	}
	le := binary.LittleEndian
	le.PutUint64(rec[0:], off)
	le.PutUint32(rec[8:], uint32(n))
	copy(rec[16:16+n], f.mem[off:])
	copy(rec[16+pad:16+pad+n], b)
	t.finish()
	copy(f.mem[off:off+uint64(n)], b) // after the record: a crash here leaves the undo bytes logged
	if auto {
		if err := t.Commit(nil, nil, nil); err != nil {
			return err
		}
		t.Done()
	}
	return nil
}

// Commit writes the commit record: the input rings' new consumer indices,
// the output rings' new producer indices and the slots to free once they
// are published. From here on the transaction is durable: a crash before
// Done is rolled forward.
func (t *Tx) Commit(ins, outs []RingIndex, frees []shm.Slot) error {
	if !t.open {
		return fmt.Errorf("commit: no transaction open")
	}
	if t.err != nil {
		return t.err // a write the caller may have ignored failed: never commit half a transaction
	}
	b, err := t.reserve(recCommit, 16+8*(len(ins)+len(outs))+4*len(frees))
	if err != nil {
		return err
	}
	le := binary.LittleEndian
	le.PutUint32(b[0:], uint32(len(ins)))
	le.PutUint32(b[4:], uint32(len(outs)))
	le.PutUint32(b[8:], uint32(len(frees)))
	p := b[16:]
	for _, ri := range ins {
		le.PutUint32(p[0:], ri.Ring)
		le.PutUint32(p[4:], ri.Index)
		p = p[8:]
	}
	for _, ri := range outs {
		le.PutUint32(p[0:], ri.Ring)
		le.PutUint32(p[4:], ri.Index)
		p = p[8:]
	}
	for _, s := range frees {
		le.PutUint32(p[0:], uint32(s))
		p = p[4:]
	}
	t.finish()
	t.f.word(hCommitted).Store(t.seq)
	t.f.word(hCommits).Add(1)
	return nil
}

// Done ends a committed transaction once its publication and frees are
// complete.
func (t *Tx) Done() {
	t.f.word(hPublished).Store(t.seq)
	t.f.word(hTxStart).Store(noTx) // the transaction needs nothing from the log any more
	t.open = false
}

// Err is the first failure inside the open transaction (nil if none):
// Commit refuses a transaction that had one.
func (t *Tx) Err() error { return t.err }

// Rollback undoes the open, uncommitted transaction in process: container
// writes, packet bytes and metadata, hand-overs and allocations, as Recover
// would after a crash. The caller rewinds its own ring cursors (inputs
// peeked, outputs staged).
func (t *Tx) Rollback() error {
	if !t.open {
		return nil
	}
	t.open = false
	_, err := recoverFile(t.f, t.reg, t.c, false)
	return err
}

// reserve starts a record of type typ with n payload bytes at the log head
// and returns the payload to fill; finish makes it part of the log.
func (t *Tx) reserve(typ uint16, n int) ([]byte, error) {
	f := t.f
	need := uint64(recHdrBytes) + roundUp(uint64(n), 8)
	head := f.word(hHead).Load()
	pos := head % f.logSz
	if rem := f.logSz - pos; rem < need {
		if rem >= recHdrBytes {
			putRecHdr(f.log[pos:], recPad, uint32(rem-recHdrBytes), t.seq)
		}
		head += rem
		pos = 0
	}
	if head+need-f.word(hTail).Load() > f.logSz && f.word(hReader).Load() != 0 {
		// Back-pressure, never truncation: the reader (the replicator) frees
		// the log as the standby acknowledges. Wait for it a while.
		for deadline := time.Now().Add(readerWait); head+need-f.word(hTail).Load() > f.logSz && time.Now().Before(deadline); {
			runtime.Gosched()
		}
	}
	if head+need-f.word(hTail).Load() > f.logSz {
		err := fmt.Errorf("transaction %d needs more than the %d-byte state log holds (raise the NF's state log size): %w",
			t.seq, f.logSz, ErrLogFull)
		if t.err == nil {
			t.err = err
		}
		return nil, err
	}
	putRecHdr(f.log[pos:], typ, uint32(n), t.seq)
	t.rec, t.pend = head, head+need
	return f.log[pos+recHdrBytes : pos+recHdrBytes+uint64(n)], nil
}

func (t *Tx) finish() {
	t.f.word(hHead).Store(t.pend) // publishes the record written above; Recover reads up to head
}

func putRecHdr(b []byte, typ uint16, n uint32, seq uint64) {
	le := binary.LittleEndian
	le.PutUint16(b[0:], typ)
	le.PutUint16(b[2:], 0)
	le.PutUint32(b[4:], n)
	le.PutUint64(b[8:], seq)
}
