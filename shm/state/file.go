package state

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrBusy reports a state file whose lock a live process holds (the active
// NF, when a second copy or a standby tries to take it).
var ErrBusy = errors.New("state file held by a live process")

// ErrCorrupt reports a state file or log that failed a check.
var ErrCorrupt = errors.New("corrupt state file")

// Options size a new state file; an existing file keeps its own sizes.
type Options struct {
	DataBytes uint64 // room for containers; 0 means 64 MiB (sparse until used)
	LogBytes  uint64 // state log; 0 means 4 MiB
	// RegionID identifies the manager region the file's packets live in
	// (the region's epoch). A file made for another region describes
	// packets that no longer exist: it is started afresh.
	RegionID uint64
	// Seed is the hash seed of a new file's maps; 0 picks a random one. A
	// remote standby's file takes its primary's (Seed), so both find the
	// same buckets and their layout digests agree.
	Seed uint64
}

// File is one NF's state file, mapped and locked by the process that runs
// the NF (or recovers it). Used from one goroutine.
type File struct {
	path     string
	f        *os.File
	mem      []byte
	data     uint64 // data bytes
	log      []byte // the circular log
	logSz    uint64
	fresh    bool // created by this Open
	unlocked bool // prepared, its lock not yet acquired
	tx       *Tx
	// unlogged: writes go straight to the containers (transactions off,
	// for measuring what they cost); nothing can be rolled back.
	unlogged bool
}

// DirEnv overrides the directory of NF state files.
const DirEnv = "REINFORCE_STATE_DIR"

// PathFor is where the NF with instance ID inst of the manager region at
// regionPath keeps its state: next to the region, or in /dev/shm when the
// region is on hugetlbfs (state pages are touched sparsely; hugepages would
// be reserved whole). $REINFORCE_STATE_DIR overrides the directory.
func PathFor(regionPath string, huge bool, inst uint16) string {
	dir := filepath.Dir(regionPath)
	if huge {
		dir = "/dev/shm"
	}
	if d := os.Getenv(DirEnv); d != "" {
		dir = d
	}
	return filepath.Join(dir, filepath.Base(regionPath)+".nf"+strconv.Itoa(int(inst))+".state")
}

// FilesFor lists the state files of the NFs of the region at regionPath
// (for the manager to delete when it stops).
func FilesFor(regionPath string, huge bool) []string {
	m, _ := filepath.Glob(PathFor(regionPath, huge, 0)[:len(PathFor(regionPath, huge, 0))-len("0.state")] + "*.state")
	return m
}

// Open maps the state file at path, creating it if it does not exist, and
// takes its exclusive lock (ErrBusy if a live process holds it). A file left
// by a dead holder keeps its containers and log: call Recover before
// anything else reads it.
func Open(path string, o Options) (*File, error) {
	if o.DataBytes == 0 {
		o.DataBytes = defaultData
	}
	if o.LogBytes == 0 {
		o.LogBytes = defaultLog
	}
	o.DataBytes = roundUp(o.DataBytes, containerAlign)
	o.LogBytes = roundUp(o.LogBytes, 8)
	if o.LogBytes < minLog || o.DataBytes+o.LogBytes > maxFileBytes {
		return nil, fmt.Errorf("state file %s: log %d bytes (min %d), data %d bytes: out of range", path, o.LogBytes, minLog, o.DataBytes)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state file: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if err == unix.EWOULDBLOCK {
			return nil, fmt.Errorf("state file %s: %w", path, ErrBusy)
		}
		return nil, fmt.Errorf("state file %s: lock: %w", path, err)
	}
	sf, err := mapFile(path, f, o)
	if err != nil {
		f.Close()
		return nil, err
	}
	sf.tx = &Tx{f: sf}
	sf.word(hStopped).Store(0) // a new holder: not stopped any more
	return sf, nil
}

func mapFile(path string, f *os.File, o Options) (*File, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	hdr := make([]byte, headerBytes)
	n, _ := f.ReadAt(hdr, 0)
	fresh := n < headerBytes || string(hdr[hMagic:hMagic+8]) != fileMagic ||
		(o.RegionID != 0 && binary.LittleEndian.Uint64(hdr[hRegionID:]) != o.RegionID)
	if fresh {
		// Never initialised, or its creator died before writing the magic
		// (written last): nothing in it was ever committed.
		total := uint64(dataOff) + o.DataBytes + o.LogBytes
		if err := f.Truncate(0); err != nil {
			return nil, fmt.Errorf("state file %s: %w", path, err)
		}
		if err := f.Truncate(int64(total)); err != nil {
			return nil, fmt.Errorf("state file %s: size to %d bytes: %w", path, total, err)
		}
		clear(hdr)
		le := binary.LittleEndian
		le.PutUint32(hdr[hVersion:], fileVersion)
		le.PutUint64(hdr[hDataBytes:], o.DataBytes)
		le.PutUint64(hdr[hLogOff:], uint64(dataOff)+o.DataBytes)
		le.PutUint64(hdr[hLogBytes:], o.LogBytes)
		le.PutUint64(hdr[hTotal:], total)
		seed := o.Seed
		if seed == 0 {
			var b [8]byte
			rand.Read(b[:])
			seed = le.Uint64(b[:]) | 1
		}
		le.PutUint64(hdr[hSeed:], seed)
		le.PutUint64(hdr[hRegionID:], o.RegionID)
		le.PutUint64(hdr[hTxStart:], noTx)
		st, _ = f.Stat()
	}
	le := binary.LittleEndian
	if v := le.Uint32(hdr[hVersion:]); v != fileVersion {
		return nil, fmt.Errorf("state file %s: layout version %d, this build reads %d: %w", path, v, fileVersion, ErrCorrupt)
	}
	data, logOff, logSz, total := le.Uint64(hdr[hDataBytes:]), le.Uint64(hdr[hLogOff:]), le.Uint64(hdr[hLogBytes:]), le.Uint64(hdr[hTotal:])
	switch {
	case total > maxFileBytes || data > maxFileBytes || logSz > maxFileBytes:
		return nil, fmt.Errorf("state file %s: sizes out of range: %w", path, ErrCorrupt)
	case data%containerAlign != 0 || logOff != uint64(dataOff)+data || logSz < minLog || logSz%8 != 0 || total != logOff+logSz:
		return nil, fmt.Errorf("state file %s: header sizes disagree (data %d, log at %d size %d, total %d): %w", path, data, logOff, logSz, total, ErrCorrupt)
	case uint64(st.Size()) != total:
		return nil, fmt.Errorf("state file %s: %d bytes, header says %d: %w", path, st.Size(), total, ErrCorrupt)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, int(total), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("state file %s: mmap %d bytes: %w", path, total, err)
	}
	sf := &File{path: path, f: f, mem: mem, data: data, log: mem[logOff:total:total], logSz: logSz, fresh: fresh}
	if fresh {
		copy(mem[8:headerBytes], hdr[8:])
		copy(mem[hMagic:], fileMagic) // last: a file without it is re-initialised
		return sf, nil
	}
	if used := sf.u64(hDataUsed); used > data {
		unix.Munmap(mem)
		return nil, fmt.Errorf("state file %s: data used %d > size %d: %w", path, used, data, ErrCorrupt)
	}
	if d := sf.u64(hDirUsed); d > dirEntries {
		unix.Munmap(mem)
		return nil, fmt.Errorf("state file %s: %d directory entries > %d: %w", path, d, dirEntries, ErrCorrupt)
	}
	if h, t := sf.word(hHead).Load(), sf.word(hTail).Load(); h-t > logSz {
		unix.Munmap(mem)
		return nil, fmt.Errorf("state file %s: log head %d tail %d more than its size apart: %w", path, h, t, ErrCorrupt)
	}
	return sf, nil
}

// Prepare maps an existing, initialised state file without taking its lock:
// a standby does this ahead of time, so that taking over is just Acquire
// and Recover. Nothing may be read or written through it before Acquire.
func Prepare(path string) (*File, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("state file: %w", err)
	}
	var hdr [16]byte
	if n, _ := f.ReadAt(hdr[:], 0); n < len(hdr) || string(hdr[hMagic:hMagic+8]) != fileMagic {
		f.Close()
		return nil, fmt.Errorf("state file %s: not initialised yet", path)
	}
	sf, err := mapFile(path, f, Options{})
	if err != nil {
		f.Close()
		return nil, err
	}
	sf.tx = &Tx{f: sf}
	sf.unlocked = true
	// Fault in the header and the log's first pages now, not at takeover.
	var sum byte
	for off := 0; off < len(sf.mem) && off < headerBytes+dataOff; off += 4096 {
		sum += sf.mem[off]
	}
	for off := 0; off < len(sf.log) && off < 256<<10; off += 4096 {
		sum += sf.log[off]
	}
	_ = sum
	return sf, nil
}

// Acquire takes the lock of a prepared file (ErrBusy while its holder lives).
func (f *File) Acquire() error {
	if !f.unlocked {
		return nil
	}
	if err := unix.Flock(int(f.f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if err == unix.EWOULDBLOCK {
			return fmt.Errorf("state file %s: %w", f.path, ErrBusy)
		}
		return fmt.Errorf("state file %s: lock: %w", f.path, err)
	}
	f.unlocked = false
	return nil
}

// Close unmaps the file and drops its lock. Containers from it must not be
// used afterwards.
func (f *File) Close() error {
	if f.mem == nil {
		return nil
	}
	err := unix.Munmap(f.mem)
	f.mem = nil
	if e := f.f.Close(); err == nil {
		err = e
	}
	return err
}

// Remove closes the file and deletes it (an NF that stops for good).
func (f *File) Remove() error {
	err := f.Close()
	if e := os.Remove(f.path); err == nil && !errors.Is(e, os.ErrNotExist) {
		err = e
	}
	return err
}

// Retire ends a holder that stops for good. A file whose log a reader
// holds (the manager's replicator) is kept, marked stopped: the reader owns
// its lifetime, and the next holder (a restarted NF) continues from it,
// as the standby server's copy would. Any other file is deleted (Remove),
// so the next NF given the instance does not inherit it. kept says which.
func (f *File) Retire() (kept bool, err error) {
	if f.mem == nil {
		return false, nil
	}
	if f.word(hReader).Load() != 0 {
		f.word(hStopped).Store(1)
		return true, f.Close()
	}
	return false, f.Remove()
}

// Stopped reports whether the file's last holder stopped cleanly (Retire)
// and nobody has opened it since.
func (f *File) Stopped() bool { return f.mem != nil && f.word(hStopped).Load() != 0 }

// Path is the file's path.
func (f *File) Path() string { return f.path }

// Fresh reports whether this Open created the file (no earlier state).
func (f *File) Fresh() bool { return f.fresh }

// SetUnlogged turns logging off (true) or on: with it off, container writes
// are plain stores and nothing can be rolled back or recovered. For
// measuring what transactions cost, never for resilient NFs.
func (f *File) SetUnlogged(off bool) { f.unlogged = off }

// Tx is the file's transaction handle (one per file).
func (f *File) Tx() *Tx { return f.tx }

// Stats are the file's transaction counters.
type Stats struct {
	Commits, Rollbacks, RollForwards, Aborts, Redelivered uint64
	Committed, Published                                  uint64 // last sequences
	LogHead, LogTail, LogBytes                            uint64
	// Takeovers counts processes that took the file over from a dead
	// holder; WokeNs and FirstCommitNs time the last one (CLOCK_MONOTONIC).
	Takeovers, WokeNs, FirstCommitNs uint64
}

// Stats reads the counters (any process that maps the file may call it).
func (f *File) Stats() Stats {
	return Stats{
		Commits: f.word(hCommits).Load(), Rollbacks: f.word(hRollbacks).Load(),
		RollForwards: f.word(hRollForwards).Load(), Aborts: f.word(hAborts).Load(),
		Redelivered: f.word(hRedelivered).Load(),
		Committed:   f.word(hCommitted).Load(), Published: f.word(hPublished).Load(),
		LogHead: f.word(hHead).Load(), LogTail: f.word(hTail).Load(), LogBytes: f.logSz,
		Takeovers: f.word(hTakeovers).Load(), WokeNs: f.word(hWokeNs).Load(), FirstCommitNs: f.word(hFirstNs).Load(),
	}
}

// MarkTakeover records that this process took the file over from a dead
// holder, having seen the death at wokeNs (CLOCK_MONOTONIC).
func (f *File) MarkTakeover(wokeNs uint64) {
	f.word(hTakeovers).Add(1)
	f.word(hFirstNs).Store(0)
	f.word(hWokeNs).Store(wokeNs)
}

// MarkFirstCommit records the first commit after a takeover.
func (f *File) MarkFirstCommit(ns uint64) { f.word(hFirstNs).Store(ns) }

// ReadStats reads the counters of the state file at path without taking
// its lock (for tools and benchmarks watching a live NF).
func ReadStats(path string) (Stats, error) {
	fd, err := os.Open(path)
	if err != nil {
		return Stats{}, err
	}
	defer fd.Close()
	// A copy, not a mapping: the file may be shorter than its header while
	// its creator sizes it, and a mapping would fault (SIGBUS).
	mem := make([]byte, headerBytes)
	if n, _ := fd.ReadAt(mem, 0); n < headerBytes {
		return Stats{}, fmt.Errorf("state file %s: %d bytes, shorter than its header: %w", path, n, ErrCorrupt)
	}
	if string(mem[hMagic:hMagic+8]) != fileMagic {
		return Stats{}, fmt.Errorf("state file %s: no magic: %w", path, ErrCorrupt)
	}
	f := &File{mem: mem, logSz: binary.LittleEndian.Uint64(mem[hLogBytes:])}
	return f.Stats(), nil
}

// MonoNs is CLOCK_MONOTONIC in nanoseconds: comparable between processes,
// unlike time.Time's monotonic reading.
func MonoNs() uint64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano())
}

// word is the 64-bit shared word at header offset off.
func (f *File) word(off uint64) *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Pointer(&f.mem[off]))
}

func (f *File) u64(off uint64) uint64 { return binary.LittleEndian.Uint64(f.mem[off:]) }

func (f *File) seed() uint64 { return f.u64(hSeed) }

// Seed is the file's hash seed (see Options.Seed).
func (f *File) Seed() uint64 { return f.seed() }

// writable reports whether [off, off+n) lies in what transactions may
// write: the allocator line of the header, the directory and the data area.
func (f *File) writable(off, n uint64) bool {
	if off+n < off {
		return false
	}
	if off >= hDirUsed && off+n <= hDataUsed+8 {
		return true
	}
	return off >= dirOff && off+n <= dataOff+f.data
}

func roundUp(v, a uint64) uint64 { return (v + a - 1) / a * a }
