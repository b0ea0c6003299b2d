package nflib

import (
	"encoding/binary"
	"path/filepath"
	"testing"

	"github.com/reinforce-nfv/reinforce/pkt"
	"github.com/reinforce-nfv/reinforce/pkt/probe"
	"github.com/reinforce-nfv/reinforce/shm"
	"github.com/reinforce-nfv/reinforce/shm/state"
)

// The burst path with a stamp-like handler (examples/stamp and
// examples/mutate in one): per packet a probe lookup, a per-flow counter
// read and written in a state map, and two packet writes through Writable.
// One op is one burst of 32 through the loop rig's real region and rings;
// "tx=on" makes it a transaction (the default), "tx=off" is what
// REINFORCE_TX=off gives. allocs/op must be 0.

// probeFrames are benchFlows template frames, one per flow, each with a
// probe record and a valid UDP checksum.
const benchFlows = 64

func probeFrames(b testing.TB) [][]byte {
	frames := make([][]byte, benchFlows)
	for f := range frames {
		buf := make([]byte, 128)
		n, err := pkt.BuildUDP4(buf, pkt.MAC{2}, pkt.MAC{4}, [4]byte{10, 0, 0, byte(f)}, [4]byte{10, 1, 0, 1},
			uint16(1000+f), 5000, probe.Bytes+16)
		if err != nil {
			b.Fatal(err)
		}
		r := probe.Record{Flow: uint32(f)}
		r.Put(buf[pkt.OffL4+pkt.UDPHeaderBytes:])
		var h pkt.Headers
		if err := h.Decode(buf[:n]); err != nil {
			b.Fatal(err)
		}
		h.SetL4Checksum(buf[:n])
		frames[f] = buf[:n]
	}
	return frames
}

// pumpFrames is loopRig.pump with frames copied into the packets, flow
// after flow from *next.
func (g *loopRig) pumpFrames(frames [][]byte, next *int, h Handler) (viaMgr, direct int) {
	s := g.inputBuf[:32]
	k := g.feeder.Alloc(s)
	for i := 0; i < k; i++ {
		m := g.region.Meta(s[i])
		f := frames[*next%len(frames)]
		*next++
		m.Chain, m.ChainIndex, m.DataOff = 0, 1, shm.HeadroomBytes
		m.Len = uint32(copy(g.region.Buf(s[i])[shm.HeadroomBytes:], f))
	}
	g.feeder.Send(g.feed, s[:k])
	g.nf.burstFrom(g.inRing, g.rt, g.st, h, nil)
	var out [64]shm.Slot
	viaMgr, _ = g.mgr.Recv(g.toMgr, out[:])
	g.mgr.Free(out[:viaMgr])
	direct, _ = g.sink.Recv(g.direct, out[:])
	g.sink.Free(out[:direct])
	g.region.Pool().Service()
	return viaMgr, direct
}

// stampHandler returns the stamp-and-mutate handler over m.
func stampHandler(m *state.Map[uint32, uint64]) Handler {
	var h pkt.Headers
	return func(p Packet) Action {
		off, ok := probe.Find(&h, p.Data())
		if !ok {
			return Next
		}
		flow := binary.BigEndian.Uint32(p.Data()[off+4:])
		c, _ := m.Get(flow)
		c++
		if m.Put(flow, c) != nil {
			return Next
		}
		w := p.Writable()
		csum := probe.ChecksumOffset(&h)
		probe.SetUint32(w, off+probe.OffStamp0, csum, uint32(c))
		probe.SetUint32(w, off+probe.OffMutate, csum, binary.BigEndian.Uint32(w[off+probe.OffMutate:])+1)
		return Next
	}
}

func newStampRig(b testing.TB, txOff bool) (*loopRig, *state.Map[uint32, uint64]) {
	g := newLoopRig(b)
	f, err := state.Open(filepath.Join(b.TempDir(), "nf.state"), state.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	if err := g.nf.useState(f, txOff); err != nil {
		b.Fatal(err)
	}
	m, err := NewMap[uint32, uint64](g.nf, "flows", 4096)
	if err != nil {
		b.Fatal(err)
	}
	return g, m
}

// BenchmarkTxStampBurst: one op is a burst of 32 probe packets through the
// stamp-and-mutate handler; ns/pkt is per packet.
func BenchmarkTxStampBurst(b *testing.B) {
	frames := probeFrames(b)
	for _, tc := range []struct {
		name  string
		txOff bool
	}{{"tx=on", false}, {"tx=off", true}} {
		b.Run(tc.name, func(b *testing.B) {
			g, m := newStampRig(b, tc.txOff)
			h := stampHandler(m)
			next := 0
			b.ReportAllocs()
			for b.Loop() {
				if _, d := g.pumpFrames(frames, &next, h); d != 32 {
					b.Fatalf("%d packets out of 32", d)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(32*b.N), "ns/pkt")
			// Every packet was counted once: the counters sum to the packets.
			var sum uint64
			for f := range benchFlows {
				v, _ := m.Get(uint32(f))
				sum += v
			}
			if sum != uint64(next) {
				b.Fatalf("counters sum to %d, %d packets sent", sum, next)
			}
		})
	}
}

// The stamp-like burst path is asserted allocation-free, not only
// measured: a regression fails the tests.
func TestTxStampBurstAllocationFree(t *testing.T) {
	frames := probeFrames(t)
	for _, txOff := range []bool{false, true} {
		g, m := newStampRig(t, txOff)
		h := stampHandler(m)
		next := 0
		if allocs := testing.AllocsPerRun(200, func() { g.pumpFrames(frames, &next, h) }); allocs != 0 {
			t.Fatalf("transactions off %v: a stamping burst allocates %.1f times", txOff, allocs)
		}
	}
}
