// Package porttest is an in-memory port.Port for tests of code above the
// ports (the manager): a test injects frames for the port to receive and
// reads back copies of what was transmitted. It favours inspection over
// speed: it takes a mutex per burst and copies every frame to the heap.
package porttest

import (
	"sync"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/port"
	"github.com/reinforce-nfv/reinforce/shm"
)

// Frame is one transmitted frame as the port saw it: a caller-owned copy
// of the data and the metadata fields the manager sets.
type Frame struct {
	Data      []byte
	InPort    uint16 // Meta.Port: the port it was received on
	Chain     uint16 // Meta.Chain
	Src       uint16 // Meta.Src: the NF instance that sent it
	Seq       uint64 // Meta.Seq, valid iff MetaFlags&shm.FlagHasSeq
	FlowHash  uint32 // Meta.FlowHash, valid iff MetaFlags&shm.FlagHasHash
	MetaFlags uint16 // Meta.MetaFlags
	Timestamp int64  // Meta.Timestamp: the RX stamp, CLOCK_MONOTONIC ns
}

// Port is an in-memory port. RxBurst and TxBurst follow port.Port's
// one-goroutine-each rule; every other method is safe from any goroutine,
// concurrently with them.
type Port struct {
	id    uint16
	name  string
	stats port.Counters
	sent  chan struct{} // signalled after each TxBurst that took a frame; capacity 1

	mu      sync.Mutex
	rx      [][]byte // injected, not yet received; guarded by mu
	tx      []Frame  // transmitted; guarded by mu
	txLimit int      // most frames one TxBurst accepts, < 0 unlimited; guarded by mu
	closed  bool     // guarded by mu
}

// New returns an empty test port with ID id, named "test<id>".
func New(id uint16) *Port {
	return &Port{id: id, name: "test" + itoa(id), sent: make(chan struct{}, 1), txLimit: -1}
}

func itoa(v uint16) string {
	if v == 0 {
		return "0"
	}
	var b [5]byte
	i := len(b)
	for ; v > 0; v /= 10 {
		i--
		b[i] = byte('0' + v%10)
	}
	return string(b[i:])
}

// ID is the port number.
func (p *Port) ID() uint16 { return p.id }

// Name is "test" and the ID.
func (p *Port) Name() string { return p.name }

// Stats returns the counters.
func (p *Port) Stats() port.Stats { return p.stats.Snapshot() }

// Close makes RxBurst and TxBurst return 0. Idempotent.
func (p *Port) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	return nil
}

// Inject queues copies of frames for RxBurst to deliver, in order.
func (p *Port) Inject(frames ...[]byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range frames {
		p.rx = append(p.rx, append([]byte(nil), f...))
	}
}

// Pending is how many injected frames RxBurst has not delivered yet.
func (p *Port) Pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.rx)
}

// SetTxLimit makes each TxBurst accept at most n frames (n < 0: all), as a
// NIC with a full TX queue does, so tests can exercise TX drops.
func (p *Port) SetTxLimit(n int) {
	p.mu.Lock()
	p.txLimit = n
	p.mu.Unlock()
}

// Sent returns the frames transmitted so far, oldest first, in a
// caller-owned slice (the Frames' Data are not shared with the port).
func (p *Port) Sent() []Frame {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Frame(nil), p.tx...)
}

// TakeSent returns the frames transmitted so far and forgets them.
func (p *Port) TakeSent() []Frame {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.tx
	p.tx = nil
	return f
}

// WaitSent waits until at least n frames have been transmitted and returns
// them (as Sent does); it fails t if that takes longer than d.
func (p *Port) WaitSent(t testing.TB, n int, d time.Duration) []Frame {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		if f := p.Sent(); len(f) >= n {
			return f
		}
		select {
		case <-p.sent:
		case <-deadline.C:
			t.Fatalf("%s: %d frames sent within %v, want %d", p.name, len(p.Sent()), d, n)
			return nil
		}
	}
}

// RxBurst delivers injected frames into slots allocated from c, data at
// shm.HeadroomBytes, and returns how many it wrote to out. A frame longer
// than the region's data room is dropped and counted in RxDrops. For one
// goroutine only.
func (p *Port) RxBurst(c *shm.Cache, out []shm.Slot) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0
	}
	r := c.Region()
	room := int(r.DataBytes())
	n := 0 // deliverable frames at the front of the queue; an oversized one ends the burst
	for n < len(out) && n < len(p.rx) {
		if len(p.rx[n]) > room {
			if n > 0 {
				break
			}
			p.rx = p.rx[1:] // dropped as it reaches the front
			p.stats.RxDrops.Add(1)
			continue
		}
		n++
	}
	if n == 0 {
		return 0
	}
	k := c.Alloc(out[:n])
	now := port.Nanotime()
	var bytes uint64
	for i, s := range out[:k] {
		f := p.rx[i]
		copy(r.Buf(s)[shm.HeadroomBytes:], f)
		m := r.Meta(s)
		m.DataOff, m.Len, m.Port, m.Timestamp = shm.HeadroomBytes, uint32(len(f)), p.id, now
		bytes += uint64(len(f))
	}
	p.rx = p.rx[k:]
	p.stats.RxPkts.Add(uint64(k))
	p.stats.RxBytes.Add(bytes)
	return k
}

// TxBurst records a copy of each frame of s (up to the SetTxLimit limit),
// frees the slots with c and returns how many it took; the caller keeps
// s[n:], counted in TxDrops. For one goroutine only.
func (p *Port) TxBurst(c *shm.Cache, s []shm.Slot) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0
	}
	n := len(s)
	if p.txLimit >= 0 {
		n = min(n, p.txLimit)
	}
	r := c.Region()
	base := len(p.tx)
	for _, sl := range s[:n] {
		m := r.Meta(sl)
		p.tx = append(p.tx, Frame{
			Data: append([]byte(nil), r.Packet(sl)...), InPort: m.Port, Chain: m.Chain, Src: m.Src,
			Seq: m.Seq, FlowHash: m.FlowHash, MetaFlags: m.MetaFlags, Timestamp: m.Timestamp,
		})
	}
	// Copies first, then Free: a freed slot may be reallocated at once.
	k := c.Free(s[:n])
	p.tx = p.tx[:base+k] // what Free did not take stays the caller's: not sent
	var bytes uint64
	for _, f := range p.tx[base:] {
		bytes += uint64(len(f.Data))
	}
	p.stats.TxPkts.Add(uint64(k))
	p.stats.TxBytes.Add(bytes)
	p.stats.TxDrops.Add(uint64(len(s) - k))
	if k > 0 {
		select {
		case p.sent <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
	return k
}

var _ port.Port = (*Port)(nil)
