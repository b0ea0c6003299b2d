package nflib

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"

	"github.com/reinforce-nfv/reinforce/shm"
	"github.com/reinforce-nfv/reinforce/shm/state"
)

// newTxRig is newLoopRig with a state file: every burst a transaction.
func newTxRig(t testing.TB, o state.Options) *loopRig {
	g := newLoopRig(t)
	f, err := state.Open(filepath.Join(t.TempDir(), "nf.state"), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := g.nf.useState(f, false); err != nil {
		t.Fatal(err)
	}
	return g
}

func TestTxBurstAllocationFree(t *testing.T) {
	g := newTxRig(t, state.Options{})
	m, err := NewMap[uint32, uint64](g.nf, "flows", 1024)
	if err != nil {
		t.Fatal(err)
	}
	h := func(p Packet) Action {
		k := p.Meta().FlowHash & 255
		v, _ := m.Get(k)
		m.Put(k, v+1)
		p.Writable()[0]++
		return Next
	}
	if allocs := testing.AllocsPerRun(200, func() { g.pump(32, h) }); allocs != 0 {
		t.Fatalf("a transactional burst allocates %.1f times", allocs)
	}
	if st := g.nf.st.Stats(); st.Commits < 200 || st.Rollbacks != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// A burst whose writes do not fit in the log fails with a clear error and
// leaves everything as it was: state, packet bytes and metadata, and the
// packets still waiting in the input ring.
func TestTxBurstOverflowingTheLogRollsBack(t *testing.T) {
	g := newTxRig(t, state.Options{LogBytes: 64 << 10})
	big, err := NewArray[[4096]byte](g.nf, "big", 64)
	if err != nil {
		t.Fatal(err)
	}
	s := g.inputBuf[:32]
	k := g.feeder.Alloc(s)
	orig := map[shm.Slot][]byte{}
	for i := 0; i < k; i++ {
		m := g.region.Meta(s[i])
		m.Len, m.ChainIndex = 64, 1
		for j := range g.region.Packet(s[i]) {
			g.region.Packet(s[i])[j] = byte(i + j)
		}
		orig[s[i]] = append(bytes.Clone(g.region.Packet(s[i])), g.region.MetaFields(s[i])...)
	}
	g.feeder.Send(g.feed, s[:k])
	var v [4096]byte
	h := func(p Packet) Action {
		w := p.Writable()
		w[0] ^= 0xFF
		p.Meta().Port = 77
		i := int(w[1]) % 64
		v[0]++
		big.Set(i, v)
		return Next
	}
	n, err := g.nf.burstFrom(g.inRing, g.rt, g.st, h, nil)
	if !errors.Is(err, state.ErrLogFull) || n != 0 {
		t.Fatalf("burst = %d, %v; want the log-full error", n, err)
	}
	t.Logf("error: %v", err)
	for i := 0; i < 64; i++ {
		if x, _ := big.Get(i); x[0] != 0 {
			t.Fatalf("element %d kept a rolled-back write", i)
		}
	}
	// The same packets, bit for bit, are delivered again.
	again := make([]shm.Slot, 64)
	got := 0
	for got < k {
		n, err := g.nf.cache.Peek(g.inRing, again[got:])
		if err != nil || n == 0 {
			t.Fatalf("redelivery: %d of %d, %v", got, k, err)
		}
		got += n
	}
	for i, sl := range again[:got] {
		if sl != s[i] {
			t.Fatalf("redelivered slot %d is %v, want %v", i, sl, s[i])
		}
		now := append(bytes.Clone(g.region.Packet(sl)), g.region.MetaFields(sl)...)
		if !bytes.Equal(now, orig[sl]) {
			t.Fatalf("packet %d not restored bit for bit", i)
		}
	}
	if st := g.nf.st.Stats(); st.Aborts != 1 || st.Redelivered != uint64(k) {
		t.Fatalf("stats %+v", st)
	}
}

// Packets kept in a queue stay the NF's across bursts and leave when popped
// and injected.
func TestTxQueueKeepsPacketsAcrossBursts(t *testing.T) {
	g := newTxRig(t, state.Options{})
	q, err := g.nf.NewQueue("held", 128)
	if err != nil {
		t.Fatal(err)
	}
	keep := func(p Packet) Action {
		if q.Push(p) != nil {
			return Drop
		}
		return Keep
	}
	if m, d := g.pump(32, keep); m+d != 0 || q.Len() != 32 {
		t.Fatalf("kept burst sent %d+%d, queue %d", m, d, q.Len())
	}
	// Keep without a push is a drop, not a leak.
	if m, d := g.pump(8, func(Packet) Action { return Keep }); m+d != 0 {
		t.Fatalf("unpushed Keep sent %d+%d", m, d)
	}
	// Pop them in a later transaction (an idle callback's).
	sent := 0
	g.nf.inScope(func() error {
		for {
			p, ok := q.Pop()
			if !ok {
				return nil
			}
			p.Meta().ChainIndex = 1
			if g.nf.Inject(p, Next) {
				sent++
			}
		}
	})
	var out [64]shm.Slot
	d, _ := g.sink.Recv(g.direct, out[:])
	g.sink.Free(out[:d])
	if sent != 32 || d != 32 || q.Len() != 0 {
		t.Fatalf("injected %d, received %d, queue %d", sent, d, q.Len())
	}
}

func BenchmarkTxBurst(b *testing.B) {
	for _, tc := range []struct {
		name string
		off  bool
	}{{"tx", false}, {"tx-off", true}} {
		b.Run(tc.name, func(b *testing.B) {
			g := newTxRig(b, state.Options{})
			g.nf.st.SetUnlogged(tc.off)
			g.nf.txOff = tc.off
			m, _ := NewMap[uint32, uint64](g.nf, "flows", 1024)
			h := func(p Packet) Action {
				k := p.Meta().FlowHash & 255
				v, _ := m.Get(k)
				m.Put(k, v+1)
				p.Writable()[0]++
				return Next
			}
			b.ReportAllocs()
			for b.Loop() {
				g.pump(32, h)
			}
			b.ReportMetric(float64(b.N*32)/b.Elapsed().Seconds(), "pkts/s")
		})
	}
}
