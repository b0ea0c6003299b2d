package state

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"reflect"
	"unsafe"

	"github.com/reinforce-nfv/reinforce/shm"
)

// Containers are allocated by name. Opening a name that exists (a restarted
// NF, a standby) returns the same memory after checking that kind, sizes and
// capacity match; a mismatch is an error, never a silent reinterpretation.
// Reads are plain loads; every write goes through the file's transaction
// (undo and redo in the log).

// alloc finds or creates the directory entry name and returns its data
// offset.
func (f *File) alloc(name string, kind, keyBytes, valBytes uint32, capacity, size uint64) (uint64, uint64, error) {
	if name == "" || len(name) > maxNameBytes {
		return 0, 0, fmt.Errorf("state container %q: name must be 1..%d bytes", name, maxNameBytes)
	}
	le := binary.LittleEndian
	size = roundUp(size, containerAlign)
	used := f.u64(hDirUsed)
	for i := uint64(0); i < used; i++ {
		e := f.mem[dirOff+i*dirEntryBytes : dirOff+(i+1)*dirEntryBytes]
		if string(bytes.TrimRight(e[dName:dName+maxNameBytes+1], "\x00")) != name {
			continue
		}
		k, kb, vb, c := le.Uint32(e[dKind:]), le.Uint32(e[dKeyBytes:]), le.Uint32(e[dValBytes:]), le.Uint64(e[dCap:])
		if k != kind || kb != keyBytes || vb != valBytes || c != capacity {
			return 0, 0, fmt.Errorf("state container %q in %s: exists as %s (key %d B, value %d B, capacity %d), asked for %s (key %d B, value %d B, capacity %d); delete the state file to change a container's layout",
				name, f.path, kindName(k), kb, vb, c, kindName(kind), keyBytes, valBytes, capacity)
		}
		off, sz := le.Uint64(e[dOff:]), le.Uint64(e[dSize:])
		if sz != size || off < dataOff || off+sz > dataOff+f.data {
			return 0, 0, fmt.Errorf("state container %q in %s: offset %d size %d out of range: %w", name, f.path, off, sz, ErrCorrupt)
		}
		return off, le.Uint64(e[dSeed:]), nil
	}
	if used >= dirEntries {
		return 0, 0, fmt.Errorf("state container %q: %s already holds %d containers: %w", name, f.path, dirEntries, ErrNoRoom)
	}
	dataUsed := f.u64(hDataUsed)
	if size > f.data-dataUsed {
		return 0, 0, fmt.Errorf("state container %q needs %d bytes, %s has %d of %d left (raise the NF's state size): %w",
			name, size, f.path, f.data-dataUsed, f.data, ErrNoRoom)
	}
	off := dataOff + dataUsed
	seed := f.seed() ^ hashBytes([]byte(name), 0x5bd1e995)
	if tx := f.tx; !tx.open && !f.unlocked && !f.unlogged {
		// One transaction for the whole allocation: a crash leaves the
		// container entirely made or not at all.
		if err := tx.Begin(); err != nil {
			return 0, 0, err
		}
		defer func() {
			if err := tx.Commit(nil, nil, nil); err != nil {
				tx.Rollback()
				return
			}
			tx.Done()
		}()
	}
	var e [dirEntryBytes]byte
	copy(e[dName:], name)
	le.PutUint32(e[dKind:], kind)
	le.PutUint32(e[dKeyBytes:], keyBytes)
	le.PutUint32(e[dValBytes:], valBytes)
	le.PutUint64(e[dCap:], capacity)
	le.PutUint64(e[dOff:], off)
	le.PutUint64(e[dSize:], size)
	le.PutUint64(e[dSeed:], seed)
	// The container's memory may hold bytes from a rolled-back allocation:
	// zero it as part of the same transaction.
	if err := f.zero(off, size); err != nil {
		return 0, 0, err
	}
	if err := f.write(dirOff+used*dirEntryBytes, e[:]); err != nil {
		return 0, 0, err
	}
	if err := f.writeU64(hDataUsed, dataUsed+size); err != nil {
		return 0, 0, err
	}
	if err := f.writeU64(hDirUsed, used+1); err != nil {
		return 0, 0, err
	}
	return off, seed, nil
}

// zero clears [off, off+n), logging only the parts that are not zero.
func (f *File) zero(off, n uint64) error {
	var z [4096]byte
	for p := off; p < off+n; p += uint64(len(z)) {
		k := min(uint64(len(z)), off+n-p)
		if bytes.Equal(f.mem[p:p+k], z[:k]) {
			continue
		}
		if err := f.write(p, z[:k]); err != nil {
			return err
		}
	}
	return nil
}

func (f *File) write(off uint64, b []byte) error { return f.tx.Write(off, b) }

func (f *File) writeU64(off, v uint64) error {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	return f.tx.Write(off, b[:])
}

func kindName(k uint32) string {
	switch k {
	case kindMap:
		return "map"
	case kindArray:
		return "array"
	case kindValue:
		return "value"
	case kindQueue:
		return "queue"
	}
	return fmt.Sprintf("kind %d", k)
}

// checkPlain refuses types that hold pointers (a pointer in shared memory
// means nothing to another process) and, for keys, types with padding
// (padding bytes are not compared by ==, but they are hashed).
func checkPlain(t reflect.Type, what string, noPadding bool) error {
	if why := plainWhy(t); why != "" {
		return fmt.Errorf("state container %s type %s: %s; containers hold plain, pointer-free values", what, t, why)
	}
	if noPadding && paddedSize(t) != t.Size() {
		return fmt.Errorf("state container %s type %s has padding bytes; give it explicit fields so equal keys hash equally", what, t)
	}
	return nil
}

func plainWhy(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return ""
	case reflect.Array:
		return plainWhy(t.Elem())
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			if why := plainWhy(t.Field(i).Type); why != "" {
				return "field " + t.Field(i).Name + ": " + why
			}
		}
		return ""
	}
	return "it is a " + t.Kind().String()
}

// paddedSize is the sum of the type's leaf sizes (no padding counted).
func paddedSize(t reflect.Type) uintptr {
	switch t.Kind() {
	case reflect.Array:
		return uintptr(t.Len()) * paddedSize(t.Elem())
	case reflect.Struct:
		var n uintptr
		for i := 0; i < t.NumField(); i++ {
			n += paddedSize(t.Field(i).Type)
		}
		return n
	}
	return t.Size()
}

func bytesOf[T any](v *T) []byte { return unsafe.Slice((*byte)(unsafe.Pointer(v)), unsafe.Sizeof(*v)) }

// ---- Map ----

// Map is a fixed-capacity hash map in the state file: open addressing with
// linear probing over a power-of-two table at most 2/3 full, and backward
// shift deletion (no tombstones). Keys hash with the container's seed, kept
// in the file, so every process that maps it finds the same buckets.
type Map[K comparable, V any] struct {
	f      *File
	off    uint64 // count word; buckets follow on the next line
	mask   uint64
	bucket uint64 // bytes per bucket: used word, key, value
	valAt  uint64
	cap    uint64
	seed   uint64
	buf    []byte // one bucket, for writes
}

// NewMap opens (or creates) the map name holding up to capacity entries.
func NewMap[K comparable, V any](f *File, name string, capacity int) (*Map[K, V], error) {
	var k K
	var v V
	if err := checkPlain(reflect.TypeOf(k), "key", true); err != nil {
		return nil, err
	}
	if err := checkPlain(reflect.TypeOf(v), "value", false); err != nil {
		return nil, err
	}
	if capacity <= 0 || capacity > 1<<30 {
		return nil, fmt.Errorf("state map %q: capacity %d out of range 1..2^30", name, capacity)
	}
	slots := uint64(1)
	for slots*2 < uint64(capacity)*3 {
		slots <<= 1
	}
	ks, vs := uint64(unsafe.Sizeof(k)), uint64(unsafe.Sizeof(v))
	m := &Map[K, V]{f: f, mask: slots - 1, cap: uint64(capacity), valAt: 8 + roundUp(ks, 8)}
	m.bucket = m.valAt + roundUp(vs, 8)
	off, seed, err := f.alloc(name, kindMap, uint32(ks), uint32(vs), uint64(capacity), lineBytes+slots*m.bucket)
	if err != nil {
		return nil, err
	}
	m.off, m.seed = off, seed
	m.buf = make([]byte, m.bucket)
	return m, nil
}

func (m *Map[K, V]) at(i uint64) uint64 { return m.off + lineBytes + i*m.bucket }

func (m *Map[K, V]) used(b uint64) bool { return binary.LittleEndian.Uint64(m.f.mem[b:]) != 0 }

func (m *Map[K, V]) key(b uint64) K { return *(*K)(unsafe.Pointer(&m.f.mem[b+8])) }

func (m *Map[K, V]) val(b uint64) V { return *(*V)(unsafe.Pointer(&m.f.mem[b+m.valAt])) }

func (m *Map[K, V]) home(k *K) uint64 { return hashBytes(bytesOf(k), m.seed) & m.mask }

// find returns the bucket index holding k, or the empty one where it would go.
func (m *Map[K, V]) find(k K) (uint64, bool) {
	for i := m.home(&k); ; i = (i + 1) & m.mask {
		b := m.at(i)
		if !m.used(b) {
			return i, false
		}
		if m.key(b) == k {
			return i, true
		}
	}
}

// Len is the number of entries.
func (m *Map[K, V]) Len() int { return int(m.f.u64(m.off)) }

// Cap is the most entries the map holds.
func (m *Map[K, V]) Cap() int { return int(m.cap) }

// Get returns k's value.
func (m *Map[K, V]) Get(k K) (V, bool) {
	i, ok := m.find(k)
	if !ok {
		var zero V
		return zero, false
	}
	return m.val(m.at(i)), true
}

// Put sets k's value; ErrNoRoom if k is new and the map is full.
func (m *Map[K, V]) Put(k K, v V) error {
	i, ok := m.find(k)
	b := m.at(i)
	if ok {
		return m.f.write(b+m.valAt, bytesOf(&v))
	}
	n := m.f.u64(m.off)
	if n >= m.cap {
		return fmt.Errorf("state map: %d entries: %w", n, ErrNoRoom)
	}
	clear(m.buf)
	binary.LittleEndian.PutUint64(m.buf, 1)
	copy(m.buf[8:], bytesOf(&k))
	copy(m.buf[m.valAt:], bytesOf(&v))
	if err := m.f.write(b, m.buf); err != nil {
		return err
	}
	return m.f.writeU64(m.off, n+1)
}

// Delete removes k and reports whether it was there.
func (m *Map[K, V]) Delete(k K) (bool, error) {
	i, ok := m.find(k)
	if !ok {
		return false, nil
	}
	// Backward shift: pull later entries of the cluster into the hole
	// unless that would put them before their home bucket.
	for j := (i + 1) & m.mask; ; j = (j + 1) & m.mask {
		bj := m.at(j)
		if !m.used(bj) {
			break
		}
		kj := m.key(bj)
		h := m.home(&kj)
		if (j-h)&m.mask < (j-i)&m.mask {
			continue // h lies in (i, j]: the entry stays reachable
		}
		copy(m.buf, m.f.mem[bj:bj+m.bucket])
		if err := m.f.write(m.at(i), m.buf); err != nil {
			return false, err
		}
		i = j
	}
	clear(m.buf)
	if err := m.f.write(m.at(i), m.buf); err != nil {
		return false, err
	}
	return true, m.f.writeU64(m.off, m.f.u64(m.off)-1)
}

// Range calls fn for each entry until it returns false. fn may delete the
// key it is given (and nothing else) or change values.
func (m *Map[K, V]) Range(fn func(k K, v V) bool) {
	// Start after an empty bucket, so no cluster wraps past the start and
	// backward shifts never move an unvisited entry behind the cursor.
	e := uint64(0)
	for m.used(m.at(e)) {
		e++
		if e > m.mask {
			return // cannot happen: the table is never full
		}
	}
	for n := uint64(0); n <= m.mask; {
		i := (e + 1 + n) & m.mask
		b := m.at(i)
		if !m.used(b) {
			n++
			continue
		}
		k := m.key(b)
		if !fn(k, m.val(b)) {
			return
		}
		if m.used(b) && m.key(b) != k {
			continue // fn deleted k and a later entry moved here: visit it
		}
		n++
	}
}

// ---- Array ----

// Array is a fixed-length array of values in the state file.
type Array[V any] struct {
	f      *File
	off    uint64
	n      uint64
	stride uint64
}

// NewArray opens (or creates) the array name of n values.
func NewArray[V any](f *File, name string, n int) (*Array[V], error) {
	var v V
	if err := checkPlain(reflect.TypeOf(v), "value", false); err != nil {
		return nil, err
	}
	if n <= 0 || n > 1<<30 {
		return nil, fmt.Errorf("state array %q: length %d out of range 1..2^30", name, n)
	}
	stride := uint64(unsafe.Sizeof(v))
	off, _, err := f.alloc(name, kindArray, 0, uint32(stride), uint64(n), uint64(n)*stride)
	if err != nil {
		return nil, err
	}
	return &Array[V]{f: f, off: off, n: uint64(n), stride: stride}, nil
}

// Len is the array's length.
func (a *Array[V]) Len() int { return int(a.n) }

// Get returns element i (the zero value and false if i is out of range).
func (a *Array[V]) Get(i int) (V, bool) {
	if uint64(i) >= a.n {
		var zero V
		return zero, false
	}
	return *(*V)(unsafe.Pointer(&a.f.mem[a.off+uint64(i)*a.stride])), true
}

// Set stores v as element i.
func (a *Array[V]) Set(i int, v V) error {
	if uint64(i) >= a.n {
		return fmt.Errorf("state array: index %d out of range 0..%d", i, a.n-1)
	}
	return a.f.write(a.off+uint64(i)*a.stride, bytesOf(&v))
}

// ---- Value ----

// Value is a single value in the state file.
type Value[V any] struct {
	f   *File
	off uint64
}

// NewValue opens (or creates) the value name.
func NewValue[V any](f *File, name string) (*Value[V], error) {
	var v V
	if err := checkPlain(reflect.TypeOf(v), "value", false); err != nil {
		return nil, err
	}
	off, _, err := f.alloc(name, kindValue, 0, uint32(unsafe.Sizeof(v)), 1, uint64(unsafe.Sizeof(v)))
	if err != nil {
		return nil, err
	}
	return &Value[V]{f: f, off: off}, nil
}

// Load reads the value.
func (x *Value[V]) Load() V { return *(*V)(unsafe.Pointer(&x.f.mem[x.off])) }

// Store writes the value.
func (x *Value[V]) Store(v V) error { return x.f.write(x.off, bytesOf(&v)) }

// ---- Queue ----

// Queue is a FIFO of packets the NF holds across bursts (token buckets,
// fair queues), in the state file: the slots stay held by the NF's owner,
// and a packet popped in a transaction is returned to the queue if the
// transaction rolls back.
type Queue struct {
	f   *File
	off uint64 // head u64, tail u64; entries on the next line
	cap uint64
}

// NewQueue opens (or creates) the queue name of up to capacity packets.
func NewQueue(f *File, name string, capacity int) (*Queue, error) {
	if capacity <= 0 || capacity > 1<<24 {
		return nil, fmt.Errorf("state queue %q: capacity %d out of range 1..2^24", name, capacity)
	}
	off, _, err := f.alloc(name, kindQueue, 0, 4, uint64(capacity), lineBytes+4*uint64(capacity))
	if err != nil {
		return nil, err
	}
	q := &Queue{f: f, off: off, cap: uint64(capacity)}
	if h, t := q.head(), q.tail(); t-h > q.cap {
		return nil, fmt.Errorf("state queue %q: head %d tail %d: %w", name, h, t, ErrCorrupt)
	}
	return q, nil
}

func (q *Queue) head() uint64 { return q.f.u64(q.off) }
func (q *Queue) tail() uint64 { return q.f.u64(q.off + 8) }

// Len is the number of packets queued.
func (q *Queue) Len() int { return int(q.tail() - q.head()) }

// Cap is the most packets the queue holds.
func (q *Queue) Cap() int { return int(q.cap) }

// Push appends s (a packet the NF holds); ErrNoRoom when full.
func (q *Queue) Push(s shm.Slot) error {
	h, t := q.head(), q.tail()
	if t-h >= q.cap {
		return fmt.Errorf("state queue: %d packets: %w", t-h, ErrNoRoom)
	}
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(s))
	if err := q.f.write(q.off+lineBytes+4*(t%q.cap), b[:]); err != nil {
		return err
	}
	return q.f.writeU64(q.off+8, t+1)
}

// Peek returns the i-th queued packet (0 is the oldest) without removing it.
func (q *Queue) Peek(i int) (shm.Slot, bool) {
	h, t := q.head(), q.tail()
	if i < 0 || uint64(i) >= t-h {
		return shm.NoSlot, false
	}
	return shm.Slot(binary.LittleEndian.Uint32(q.f.mem[q.off+lineBytes+4*((h+uint64(i))%q.cap):])), true
}

// Pop removes the oldest packet and logs it as taken by the open
// transaction, so a rollback gives it back to the queue untouched.
func (q *Queue) Pop() (shm.Slot, bool, error) {
	s, ok := q.Peek(0)
	if !ok {
		return shm.NoSlot, false, nil
	}
	tx := q.f.tx
	if tx.reg != nil && !q.f.unlogged {
		if !tx.open {
			return shm.NoSlot, false, fmt.Errorf("state queue: Pop outside a transaction would lose the packet on a crash")
		}
		if err := tx.Held(s); err != nil {
			return shm.NoSlot, false, err
		}
	}
	if err := q.f.writeU64(q.off, q.head()+1); err != nil {
		return shm.NoSlot, false, err
	}
	return s, true, nil
}

// ---- hashing ----

// hashBytes is a seeded 64-bit hash of b, the same in every process (Go's
// maphash seeds are per process, so they cannot be used for shared tables).
func hashBytes(b []byte, seed uint64) uint64 {
	h := seed ^ uint64(len(b))*0x9E3779B97F4A7C15
	for len(b) >= 8 {
		h = mix(h ^ binary.LittleEndian.Uint64(b))
		b = b[8:]
	}
	if len(b) > 0 {
		var t uint64
		for i, c := range b {
			t |= uint64(c) << (8 * i)
		}
		h = mix(h ^ t)
	}
	return mix(h)
}

func mix(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}
