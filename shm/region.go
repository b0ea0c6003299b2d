package shm

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// Options sizes a region. Zero fields take DefaultOptions' values.
type Options struct {
	Name      string // file name in Dir, without directory; required
	Dir       string // directory for the file; "" picks a hugetlbfs mount if one has room, else /dev/shm
	Slots     uint32 // packet pool slots
	DataBytes uint32 // data room per slot (DefaultDataBytes, JumboDataBytes, ...)
	Rings     uint32 // edge rings in the ring table
	RingCap   uint32 // entries per edge ring, a power of two
	Owners    uint32 // allocation caches, owner 0 included (unused)
	CacheCap  uint32 // entries of each cache's fill and drain ring, a power of two
	Doorbells uint32 // futex words for sleeping consumers
	Log       *zerolog.Logger
}

// DefaultOptions returns the sizes the manager uses unless configured.
func DefaultOptions() Options {
	return Options{
		Slots:     32768,
		DataBytes: DefaultDataBytes,
		Rings:     1024,
		RingCap:   4096,
		Owners:    256,
		CacheCap:  512,
		Doorbells: 256,
	}
}

func (o *Options) fill() {
	d := DefaultOptions()
	if o.Slots == 0 {
		o.Slots = d.Slots
	}
	if o.DataBytes == 0 {
		o.DataBytes = d.DataBytes
	}
	if o.Rings == 0 {
		o.Rings = d.Rings
	}
	if o.RingCap == 0 {
		o.RingCap = d.RingCap
	}
	if o.Owners == 0 {
		o.Owners = d.Owners
	}
	if o.CacheCap == 0 {
		o.CacheCap = d.CacheCap
	}
	if o.Doorbells == 0 {
		o.Doorbells = d.Doorbells
	}
}

// Region is a mapped region file. The creator (Create) owns it: it holds the
// file's flock for as long as the region lives, and only it has a Pool.
// Other processes Attach. Methods are safe for concurrent use unless noted.
type Region struct {
	path    string
	f       *os.File
	mem     []byte
	l       layout
	creator bool
	pool    *Pool // creator only
	huge    bool

	closeOnce sync.Once
	closeErr  error

	// scratch absorbs accesses through slot references that failed their
	// bounds check, so a bad reference never faults or touches another slot.
	scratch []byte
}

// Create makes a new region file, locks it and maps it. An existing file
// whose lock can be taken is stale and is replaced (never reused); one whose
// lock is held belongs to a live creator and yields ErrRegionInUse.
func Create(o Options) (*Region, error) {
	o.fill()
	log := o.Log
	if log == nil {
		nop := zerolog.Nop()
		log = &nop
	}
	if o.Name == "" || strings.ContainsRune(o.Name, '/') {
		return nil, fmt.Errorf("create region: bad name %q", o.Name)
	}
	dir, huge, why := o.Dir, false, ""
	if dir == "" {
		dir, huge, why = pickDir(o)
	} else {
		huge = isHugetlbfs(dir)
	}
	roundTo := uint64(CacheLineBytes)
	if huge {
		roundTo = HugePageBytes
	}
	l, err := planLayout(o.Slots, o.DataBytes, o.Rings, o.RingCap, o.Owners, o.CacheCap, o.Doorbells, roundTo)
	if err != nil {
		return nil, fmt.Errorf("create region %s: %w", o.Name, err)
	}
	path := filepath.Join(dir, o.Name)
	if err := removeStale(path, log); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create region %s: %w", path, err)
	}
	r := &Region{path: path, f: f, l: l, creator: true, huge: huge}
	if err := r.initCreated(); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("create region %s: %w", path, err)
	}
	backing := "/dev/shm (4 KiB pages)"
	if huge {
		backing = "hugetlbfs (2 MiB pages)"
	}
	ev := log.Info().Str("component", "shm").Str("path", path).Str("backing", backing).Uint64("bytes", l.total)
	if why != "" {
		ev = ev.Str("why", why)
	}
	ev.Msg("region created")
	return r, nil
}

func (r *Region) initCreated() error {
	if err := unix.Flock(int(r.f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	if err := r.f.Truncate(int64(r.l.total)); err != nil {
		return fmt.Errorf("size to %d bytes: %w", r.l.total, err)
	}
	mem, err := unix.Mmap(int(r.f.Fd()), 0, int(r.l.total), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("mmap %d bytes: %w", r.l.total, err)
	}
	r.mem = mem
	var nonce [8]byte
	rand.Read(nonce[:])
	r.l.encodeHeader(mem, binary.LittleEndian.Uint64(nonce[:])|1, os.Getpid())
	r.setup()
	r.pool = newPool(r)
	copy(mem[hdrMagic:], regionMagic[:]) // last: the header is complete before anyone can validate it
	return nil
}

// Attach maps an existing region created by a live process. It validates
// the whole header and section table and refuses anything else with a clear
// error: wrong magic, other layout version, truncation, a section table that
// does not fit, a stale file, or a file it may not open.
func Attach(path string) (*Region, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("attach region %s: %w", path, err)
	}
	r, err := attachFile(path, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return r, nil
}

func attachFile(path string, f *os.File) (*Region, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, fmt.Errorf("attach region %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, &LayoutError{Path: path, Why: "not a regular file"}
	}
	hdr := make([]byte, HeaderBytes)
	if n, _ := f.ReadAt(hdr, 0); n < HeaderBytes || st.Size < HeaderBytes {
		return nil, &LayoutError{Path: path, Why: fmt.Sprintf("truncated: %d bytes, header alone needs %d", st.Size, HeaderBytes)}
	}
	l, err := parseLayout(hdr, st.Size)
	if err != nil {
		return nil, &LayoutError{Path: path, Why: err.Error()}
	}
	// A shared lock succeeds only if no creator holds the exclusive one.
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err == nil {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		return nil, fmt.Errorf("attach region %s: %w", path, ErrStaleRegion)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, int(l.total), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("attach region %s: mmap %d bytes: %w", path, l.total, err)
	}
	r := &Region{path: path, f: f, mem: mem, l: l, huge: isHugetlbfs(filepath.Dir(path))}
	// The header may change under us (a scribbling process): the mapped
	// header must still equal what we validated, or we refuse.
	if !equalHeader(mem[:HeaderBytes], hdr) {
		unix.Munmap(mem)
		return nil, &LayoutError{Path: path, Why: "header changed while attaching"}
	}
	r.setup()
	return r, nil
}

func equalHeader(a, b []byte) bool {
	// The epoch word may legitimately move; compare everything else.
	return string(a[:hdrEpoch]) == string(b[:hdrEpoch]) && string(a[hdrEpoch+8:]) == string(b[hdrEpoch+8:])
}

func (r *Region) setup() {
	r.scratch = make([]byte, r.l.slots.stride)
}

// Path is the region file's path.
func (r *Region) Path() string { return r.path }

// Huge reports whether the region lives on hugetlbfs.
func (r *Region) Huge() bool { return r.huge }

// Size is the mapped size in bytes.
func (r *Region) Size() uint64 { return r.l.total }

// Creator reports whether this process created the region.
func (r *Region) Creator() bool { return r.creator }

// Pool is the creator's pool; nil in attached processes.
func (r *Region) Pool() *Pool { return r.pool }

// NumSlots is the pool's slot count.
func (r *Region) NumSlots() uint32 { return uint32(r.l.slots.count) }

// NumRings is the size of the edge-ring table.
func (r *Region) NumRings() uint32 { return uint32(r.l.rings.count) }

// NumOwners is the number of cache records (owner IDs 1..NumOwners-1 are usable).
func (r *Region) NumOwners() uint32 { return uint32(r.l.caches.count) }

// NumDoorbells is the number of doorbells.
func (r *Region) NumDoorbells() uint32 { return uint32(r.l.doorbells.count) }

// DataBytes is the data room of each slot.
func (r *Region) DataBytes() uint32 { return r.l.slotData }

// RingCap is the capacity of each edge ring.
func (r *Region) RingCap() uint32 { return r.l.ringCap }

// Epoch is the region's epoch word: a creation nonce the manager may bump;
// processes compare it to notice a replaced region.
func (r *Region) Epoch() uint64 { return r.epochWord().Load() }

// BumpEpoch increments the epoch and returns the new value. Creator only.
func (r *Region) BumpEpoch() uint64 { return r.epochWord().Add(1) }

func (r *Region) epochWord() *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Pointer(&r.mem[hdrEpoch]))
}

func (r *Region) at(off uint64) unsafe.Pointer { return unsafe.Pointer(&r.mem[off]) }

// Meta returns slot s's metadata line; valid until the slot is freed. A
// reference whose index is out of range yields a process-private scratch
// line (checks elsewhere count it), never another slot's memory.
func (r *Region) Meta(s Slot) *Meta {
	i := uint64(s.Index())
	if i >= r.l.slots.count {
		return (*Meta)(unsafe.Pointer(&r.scratch[0]))
	}
	return (*Meta)(r.at(r.l.slots.off + i*r.l.slots.stride))
}

// Buf returns slot s's headroom and data room (HeadroomBytes + DataBytes);
// valid until the slot is freed.
func (r *Region) Buf(s Slot) []byte {
	i := uint64(s.Index())
	n := uint64(HeadroomBytes) + uint64(r.l.slotData)
	if i >= r.l.slots.count {
		return r.scratch[metaBytes : metaBytes+n]
	}
	off := r.l.slots.off + i*r.l.slots.stride + metaBytes
	return r.mem[off : off+n : off+n]
}

// Packet returns the packet bytes of slot s as its metadata describes them,
// clamped to the slot's room so a bad length or offset cannot reach past it.
func (r *Region) Packet(s Slot) []byte {
	b := r.Buf(s)
	m := r.Meta(s)
	off, n := uint32(m.DataOff), m.Len
	if off > uint32(len(b)) {
		off = uint32(len(b))
	}
	if n > uint32(len(b))-off {
		n = uint32(len(b)) - off
	}
	return b[off : off+n]
}

func (r *Region) slotState(i uint32) *atomic.Uint64 {
	return &(*Meta)(r.at(r.l.slots.off + uint64(i)*r.l.slots.stride)).state
}

// Doorbell returns doorbell i, or an error if i is out of range.
func (r *Region) Doorbell(i uint32) (Doorbell, error) {
	if uint64(i) >= r.l.doorbells.count {
		return Doorbell{}, &CorruptError{What: "doorbell index", Value: uint64(i), Why: "out of range"}
	}
	return newDoorbell(r.at(r.l.doorbells.off + uint64(i)*r.l.doorbells.stride)), nil
}

func (r *Region) ringBase(i uint32) unsafe.Pointer {
	return r.at(r.l.rings.off + uint64(i)*r.l.rings.stride)
}

// OpenRing returns a handle on edge ring i, its private cursors synced to
// the shared indices. The doorbell comes from the ring's header (written by
// the creator); a bad one is refused.
func (r *Region) OpenRing(i uint32) (*Ring, error) {
	if uint64(i) >= r.l.rings.count {
		return nil, &CorruptError{What: "ring index", Value: uint64(i), Why: "out of range"}
	}
	h := (*ringHeader)(r.ringBase(i))
	bell, err := r.Doorbell(h.bell)
	if err != nil {
		return nil, fmt.Errorf("open ring %d: %w", i, err)
	}
	return newRing(r.ringBase(i), i, r.l.ringCap, bell), nil
}

// RingEnds returns the producer and consumer owners recorded in ring i's
// header (informational; the creator keeps its own trusted copy).
func (r *Region) RingEnds(i uint32) (prod, cons OwnerID, ok bool) {
	if uint64(i) >= r.l.rings.count {
		return 0, 0, false
	}
	h := (*ringHeader)(r.ringBase(i))
	return OwnerID(h.prodOwner), OwnerID(h.consOwner), h.state == 1
}

func (r *Region) cacheBase(o OwnerID) unsafe.Pointer {
	return r.at(r.l.caches.off + uint64(o)*r.l.caches.stride)
}

// cacheRings returns fresh handles on owner o's fill and drain rings.
func (r *Region) cacheRings(o OwnerID, fillBell, drainBell Doorbell) (fill, drain *Ring) {
	base := r.cacheBase(o)
	fill = newRing(unsafe.Add(base, cacheHeaderBytes), uint32(o), r.l.cacheCap, fillBell)
	drain = newRing(unsafe.Add(base, cacheHeaderBytes+ringBlockBytes(r.l.cacheCap)), uint32(o), r.l.cacheCap, drainBell)
	return fill, drain
}

// Close unmaps the region. The creator also removes the file and releases
// its lock, after which attached processes see a stale region. Idempotent.
func (r *Region) Close() error {
	r.closeOnce.Do(func() {
		var errs []error
		if r.pool != nil {
			r.pool.close()
		}
		if r.creator {
			if err := os.Remove(r.path); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("remove region %s: %w", r.path, err))
			}
		}
		if r.mem != nil {
			if err := unix.Munmap(r.mem); err != nil {
				errs = append(errs, fmt.Errorf("unmap region %s: %w", r.path, err))
			}
			r.mem = nil
		}
		if err := r.f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close region %s: %w", r.path, err))
		}
		r.closeErr = errors.Join(errs...)
	})
	return r.closeErr
}

// removeStale deletes path if it exists and no live creator holds its lock.
func removeStale(path string, log *zerolog.Logger) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create region %s: inspect existing file: %w", path, err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return fmt.Errorf("create region %s: %w", path, ErrRegionInUse)
	}
	log.Warn().Str("component", "shm").Str("path", path).Msg("replacing stale region (its creator is gone)")
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("create region %s: remove stale file: %w", path, err)
	}
	return nil
}

// pickDir chooses hugetlbfs when a 2 MiB mount has enough free pages for the
// region, and /dev/shm otherwise; why says why hugetlbfs was not used.
func pickDir(o Options) (dir string, huge bool, why string) {
	m := HugetlbfsMount()
	if m == "" {
		return "/dev/shm", false, "no hugetlbfs mount"
	}
	l, err := planLayout(o.Slots, o.DataBytes, o.Rings, o.RingCap, o.Owners, o.CacheCap, o.Doorbells, HugePageBytes)
	if err != nil {
		return "/dev/shm", false, err.Error()
	}
	free := freeHugePages()
	if need := l.total / HugePageBytes; free < need {
		return "/dev/shm", false, fmt.Sprintf("hugetlbfs %s has %d free 2 MiB pages, region needs %d", m, free, need)
	}
	if unix.Access(m, unix.W_OK) != nil {
		return "/dev/shm", false, "hugetlbfs " + m + " not writable"
	}
	return m, true, ""
}

// HugetlbfsMount returns the first mounted hugetlbfs with 2 MiB pages, or "".
func HugetlbfsMount() string {
	f, err := os.Open("/proc/mounts")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) >= 4 && fl[2] == "hugetlbfs" && !strings.Contains(fl[3], "pagesize=1") {
			return fl[1]
		}
	}
	return ""
}

func isHugetlbfs(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Type == unix.HUGETLBFS_MAGIC
}

func freeHugePages() uint64 {
	b, err := os.ReadFile("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages")
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return n
}

// HoldLock takes the creator's lock on an existing file, as a live creator
// holds it, and returns its release. Tools and tests use it to inspect
// region images without a manager.
func HoldLock(path string) (release func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
