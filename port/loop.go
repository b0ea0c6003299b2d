package port

// The loop port, a single-producer/single-consumer ring of frame copies:
//
//	TxBurst (TX goroutine): copy each frame into the byte arena, write its
//	  descriptor → Free the slots → publish prod for the frames Free took
//	RxBurst (RX goroutine): load prod → Alloc slots → copy frames out of
//	  the arena → publish cons
//
// Ordering: the producer writes arena bytes and descriptors, then stores
// prod; the consumer loads prod before reading them. The consumer is done
// with everything below cons when it stores it; the producer loads cons
// before reusing that space. Go's atomics are sequentially consistent, so
// each store publishes the plain writes before it (as in shm's rings). Each
// side reads the other's index once per burst and publishes its own once.
//
// Frames are packed back to back in the arena (a frame never wraps: it
// skips to the arena's start instead), so small frames stay dense in cache.
// A descriptor records a frame's free-running byte position and length; the
// arena space in use runs from the oldest unconsumed descriptor's position
// to the producer's position.

import (
	"fmt"
	"math/bits"
	"sync/atomic"

	"github.com/reinforce-nfv/reinforce/shm"
)

// loopDesc locates one frame in the arena.
type loopDesc struct {
	pos uint64 // free-running byte position of the frame's first byte
	n   uint32 // frame length in bytes
	_   uint32
}

// Loop is a port whose TxBurst frames come back on its RxBurst, copied
// through a fixed, preallocated ring of depth frames: a wire looped back to
// the same NIC, for tests and benchmarks of the full manager path. RxBurst
// is for one goroutine and TxBurst for one (possibly another); ID, Name,
// Stats and Close are safe from any.
type Loop struct {
	id    uint16
	name  string
	stats Counters

	// Fixed at construction.
	desc      []loopDesc // depth entries, a power of two
	mask      uint64     // len(desc) - 1
	arena     []byte     // a power of two bytes, >= 2 frames of loopMaxFrameBytes
	arenaMask uint64

	_    [shm.CacheLineBytes]byte
	prod atomic.Uint64 // descriptors published; stored by TxBurst only
	_    [shm.CacheLineBytes - 8]byte
	cons atomic.Uint64 // descriptors consumed; stored by RxBurst only
	_    [shm.CacheLineBytes - 8]byte

	// TX goroutine only.
	txProd uint64 // == prod, kept locally so TX never loads its own index
	txPos  uint64 // byte position after the last published frame

	// RX goroutine only.
	rxCons uint64 // == cons

	closed atomic.Bool
}

// NewLoop returns a loop port with ID id holding up to depth frames in
// flight (rounded up to a power of two, 1..MaxLoopDepth; 0 means
// DefaultLoopDepth). Its memory is allocated here, once: the ring and a
// byte arena of depth × 2 KiB (at least 256 KiB). Safe for concurrent use.
func NewLoop(id uint16, depth int) (*Loop, error) {
	if depth == 0 {
		depth = DefaultLoopDepth
	}
	if depth < 0 || depth > MaxLoopDepth {
		return nil, fmt.Errorf("loop port %d: depth %d outside 1..%d", id, depth, MaxLoopDepth)
	}
	d := 1 << bits.Len(uint(depth-1))
	a := max(d*loopAvgFrameBytes, 2*loopMaxFrameBytes)
	a = 1 << bits.Len(uint(a-1))
	return &Loop{
		id:        id,
		name:      portName(DriverLoop, id),
		desc:      make([]loopDesc, d),
		mask:      uint64(d - 1),
		arena:     make([]byte, a),
		arenaMask: uint64(a - 1),
	}, nil
}

// ID is the port number. Safe from any goroutine.
func (l *Loop) ID() uint16 { return l.id }

// Name is "loop" and the ID. Safe from any goroutine.
func (l *Loop) Name() string { return l.name }

// Stats returns the counters. Safe from any goroutine.
func (l *Loop) Stats() Stats { return l.stats.Snapshot() }

// Depth is the ring's capacity in frames. Safe from any goroutine.
func (l *Loop) Depth() int { return len(l.desc) }

// Close stops the port: RxBurst and TxBurst return 0 afterwards and frames
// still in the ring are discarded (they are copies; no slot is held).
// Idempotent, safe from any goroutine.
func (l *Loop) Close() error {
	l.closed.Store(true)
	return nil
}

// TxBurst copies the frames of s into the ring, frees their slots with c
// and returns how many it took: fewer than len(s) when the ring is full or
// c's drain ring is; the caller keeps s[n:] and they count as TxDrops.
// Returns 0 once closed. For one goroutine only.
func (l *Loop) TxBurst(c *shm.Cache, s []shm.Slot) int {
	if l.closed.Load() || len(s) == 0 {
		return 0
	}
	r := c.Region()
	cons := l.cons.Load() // pairs with the Store in RxBurst: entries below cons are free
	prod, pos := l.txProd, l.txPos
	alen := uint64(len(l.arena))
	staged := 0
	for _, sl := range s {
		if prod-cons == uint64(len(l.desc)) {
			break
		}
		f := r.Packet(sl)
		n := uint64(len(f))
		start := pos
		if off := pos & l.arenaMask; off+n > alen {
			start += alen - off // skip the arena's tail: a frame never wraps
		}
		head := start // the ring is empty: all of the arena is free
		if cons != prod {
			head = l.desc[cons&l.mask].pos // the consumer's oldest frame
		}
		if start+n-head > alen {
			break
		}
		copy(l.arena[start&l.arenaMask:], f)
		l.desc[prod&l.mask] = loopDesc{pos: start, n: uint32(n)}
		prod++
		pos = start + n
		staged++
	}
	if staged == 0 {
		l.stats.TxDrops.Add(uint64(len(s)))
		return 0
	}
	// Free after copying: a freed slot may be reallocated at once. Publish
	// only what Free took; the rest stays the caller's, and their copies
	// are overwritten by the next burst.
	k := c.Free(s[:staged])
	var bytes uint64
	for i := range uint64(k) {
		bytes += uint64(l.desc[(l.txProd+i)&l.mask].n)
	}
	if k > 0 {
		last := l.desc[(l.txProd+uint64(k)-1)&l.mask]
		l.txPos = last.pos + uint64(last.n)
		l.txProd += uint64(k)
		l.prod.Store(l.txProd) // publishes the arena bytes and descriptors above; pairs with the Load in RxBurst
	}
	l.stats.TxPkts.Add(uint64(k))
	l.stats.TxBytes.Add(bytes)
	if k < len(s) {
		l.stats.TxDrops.Add(uint64(len(s) - k))
	}
	return k
}

// RxBurst copies up to len(out) looped frames into slots allocated from c
// and returns how many it wrote to out; the caller owns them. Frames wait
// in the ring while the cache is empty. A frame longer than a slot (only
// possible when TX and RX use different regions) is dropped and counted.
// Returns 0 once closed. For one goroutine only.
func (l *Loop) RxBurst(c *shm.Cache, out []shm.Slot) int {
	if l.closed.Load() || len(out) == 0 {
		return 0
	}
	prod := l.prod.Load() // pairs with the Store in TxBurst: descriptors and bytes below prod are written
	cons := l.rxCons
	if prod == cons {
		return 0
	}
	r := c.Region()
	room := uint32(shm.HeadroomBytes + r.DataBytes())
	// Count the frames this burst delivers, so exactly that many slots are
	// allocated and none is left over to give back.
	want := 0
	for i := cons; i != prod && want < len(out); i++ {
		if l.desc[i&l.mask].n <= room {
			want++
		}
	}
	k := 0
	if want > 0 {
		k = c.Alloc(out[:want])
	}
	now := Nanotime()
	var bytes, drops uint64
	j := 0
	for cons != prod && (j < k || want == 0) {
		d := l.desc[cons&l.mask]
		cons++
		if d.n > room {
			drops++
			continue
		}
		s := out[j]
		j++
		b := r.Buf(s)
		// Data at HeadroomBytes as on every port; a frame longer than the data
		// room (an NF used headroom before TX) moves into the headroom.
		off := uint32(shm.HeadroomBytes)
		if d.n > room-off {
			off = room - d.n
		}
		copy(b[off:off+d.n], l.arena[d.pos&l.arenaMask:])
		m := r.Meta(s)
		m.DataOff, m.Len, m.Port, m.Timestamp = uint16(off), d.n, l.id, now
		bytes += uint64(d.n)
	}
	l.rxCons = cons
	l.cons.Store(cons) // the consumer is done with the frames below cons; pairs with the Load in TxBurst
	l.stats.RxPkts.Add(uint64(j))
	l.stats.RxBytes.Add(bytes)
	if drops > 0 {
		l.stats.RxDrops.Add(drops)
	}
	return j
}

var _ Port = (*Loop)(nil)
