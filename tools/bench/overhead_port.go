package main

// probePort is the overhead benchmark's wire: a port inside the manager
// process whose RX generates probe-carrying UDP frames (pkt/probe) at a set
// rate, and whose TX is the sink: it checks that every frame that comes
// back was stamped (stamp field 0 counting up by one per flow) and mutated
// exactly once, counts it and frees it. Like a NIC, it costs the manager
// process the same with transactions on or off.
//
//	RX: pacing credit from the monotonic clock → Alloc → copy the flow's
//	    template → write the sequence number, patch the UDP checksum
//	TX: per frame, magic/flow/mutation/stamp checks → Free

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"sync/atomic"

	"github.com/reinforce-nfv/reinforce/pkt"
	"github.com/reinforce-nfv/reinforce/pkt/probe"
	"github.com/reinforce-nfv/reinforce/port"
	"github.com/reinforce-nfv/reinforce/shm"
)

// probeQueueFrames is how far the generator may fall behind its clock
// before frames count as dropped at the "NIC" (the manager did not poll).
const probeQueueFrames = 4096

// probeAt is the probe's offset in the generated frames (untagged IPv4/UDP).
const probeAt = pkt.OffL4 + pkt.UDPHeaderBytes

type probePort struct {
	id    uint16
	tmpl  [][]byte // per flow: the frame with sequence 0
	csum0 []uint16 // per flow: its UDP checksum
	rate  uint64   // packets per second; 0: as fast as the manager polls
	pause atomic.Bool

	// RX goroutine only.
	seq     []uint64 // per flow: next sequence number
	flow    int
	start   int64
	emitted uint64

	// TX goroutine only.
	stamp []uint32 // per flow: last stamp seen

	rxPkts, rxDrops, txPkts atomic.Uint64
	bad                     atomic.Uint64 // not a probe of ours, or mutated other than once
	stampGaps               atomic.Uint64 // stamp not the flow's previous plus one
	firstBad                atomic.Pointer[string]
}

func newProbePort(id uint16, flows, size int, rate uint64) (*probePort, error) {
	if size < probeAt+probe.Bytes || size > 2048 {
		return nil, fmt.Errorf("frame size %d: want %d..2048 (headers and the %d-byte probe)", size, probeAt+probe.Bytes, probe.Bytes)
	}
	if flows < 1 || flows > 1<<16 {
		return nil, fmt.Errorf("flows %d: want 1..65536", flows)
	}
	p := &probePort{id: id, rate: rate, tmpl: make([][]byte, flows), csum0: make([]uint16, flows), seq: make([]uint64, flows),
		stamp: make([]uint32, flows)}
	for f := range flows {
		b := make([]byte, size)
		if _, err := pkt.BuildUDP4(b, pkt.MAC{2, 0, 0, 0, 0, 1}, pkt.MAC{2, 0, 0, 0, 0, 2},
			[4]byte{10, 0, byte(f >> 8), byte(f)}, [4]byte{198, 18, 0, 1}, uint16(1024+f), 9, size-probeAt); err != nil {
			return nil, err
		}
		r := probe.Record{Flow: uint32(f)}
		r.Put(b[probeAt:])
		var h pkt.Headers
		if err := h.Decode(b); err != nil {
			return nil, err
		}
		h.SetL4Checksum(b)
		p.tmpl[f] = b
		p.csum0[f] = binary.BigEndian.Uint16(b[pkt.OffUDPChecksum:])
	}
	return p, nil
}

func (p *probePort) ID() uint16   { return p.id }
func (p *probePort) Name() string { return fmt.Sprintf("probe%d", p.id) }
func (p *probePort) Close() error { p.pause.Store(true); return nil }

func (p *probePort) Stats() port.Stats {
	return port.Stats{RxPkts: p.rxPkts.Load(), RxDrops: p.rxDrops.Load(), TxPkts: p.txPkts.Load()}
}

// due is how many frames the pacing credit allows now.
func (p *probePort) due(now int64, want int) int {
	rate := p.rate
	if rate == 0 {
		return want
	}
	if p.start == 0 {
		p.start = now
	}
	hi, lo := bits.Mul64(uint64(now-p.start), rate)
	if hi >= 1e9 {
		return 0
	}
	allowed, _ := bits.Div64(hi, lo, 1e9)
	backlog := allowed - p.emitted
	if backlog > probeQueueFrames {
		lost := backlog - probeQueueFrames
		p.rxDrops.Add(lost)
		p.emitted += lost
		backlog = probeQueueFrames
	}
	return int(min(backlog, uint64(want)))
}

func (p *probePort) RxBurst(c *shm.Cache, out []shm.Slot) int {
	if p.pause.Load() {
		return 0
	}
	now := port.Nanotime()
	want := p.due(now, len(out))
	if want == 0 {
		return 0
	}
	k := c.Alloc(out[:want])
	r := c.Region()
	for _, s := range out[:k] {
		f := p.flow
		if p.flow++; p.flow == len(p.tmpl) {
			p.flow = 0
		}
		seq := p.seq[f]
		p.seq[f]++
		b := r.Buf(s)[shm.HeadroomBytes:]
		n := copy(b, p.tmpl[f])
		hi, lo := uint32(seq>>32), uint32(seq)
		binary.BigEndian.PutUint32(b[probeAt+8:], hi)
		binary.BigEndian.PutUint32(b[probeAt+12:], lo)
		cs := pkt.ChecksumUpdate32(pkt.ChecksumUpdate32(p.csum0[f], 0, hi), 0, lo)
		if cs == 0 {
			cs = 0xFFFF
		}
		binary.BigEndian.PutUint16(b[pkt.OffUDPChecksum:], cs)
		m := r.Meta(s)
		m.DataOff, m.Len, m.Port, m.Timestamp = shm.HeadroomBytes, uint32(n), p.id, now
	}
	p.emitted += uint64(k)
	p.rxPkts.Add(uint64(k))
	return k
}

func (p *probePort) TxBurst(c *shm.Cache, s []shm.Slot) int {
	r := c.Region()
	for _, sl := range s {
		p.check(r.Packet(sl))
	}
	for k := 0; k < len(s); {
		k += c.Free(s[k:])
	}
	p.txPkts.Add(uint64(len(s)))
	return len(s)
}

// check is the sink's per-frame verdict.
func (p *probePort) check(b []byte) {
	if len(b) < probeAt+probe.Bytes || binary.BigEndian.Uint32(b[probeAt:]) != probe.Magic {
		p.fail("a frame without our probe (%d bytes)", len(b))
		return
	}
	f := binary.BigEndian.Uint32(b[probeAt+4:])
	if int(f) >= len(p.stamp) {
		p.fail("flow %d out of range", f)
		return
	}
	if m := binary.BigEndian.Uint32(b[probeAt+probe.OffMutate:]); m != 1 {
		p.fail("flow %d: mutated %d times", f, m)
	}
	st := binary.BigEndian.Uint32(b[probeAt+probe.OffStamp0:])
	if st != p.stamp[f]+1 {
		if p.stampGaps.Add(1) == 1 {
			msg := fmt.Sprintf("flow %d: stamp %d after %d", f, st, p.stamp[f])
			p.firstBad.CompareAndSwap(nil, &msg)
		}
	}
	p.stamp[f] = st
}

func (p *probePort) fail(format string, args ...any) {
	if p.bad.Add(1) == 1 {
		msg := fmt.Sprintf(format, args...)
		p.firstBad.CompareAndSwap(nil, &msg)
	}
}

var _ port.Port = (*probePort)(nil)
