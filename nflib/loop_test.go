package nflib

import (
	"testing"

	"github.com/reinforce-nfv/reinforce/ctlmsg"
	"github.com/reinforce-nfv/reinforce/shm"
	"github.com/reinforce-nfv/reinforce/shm/shmtest"
)

// loopRig is an NF wired by hand to a region, with no manager: ring 1 feeds
// it (owner 3 produces), ring 2 is its ring to the "manager" (owner 4), ring 3
// a direct ring to instance 7 of service 2.
type loopRig struct {
	nf       *NF
	feed     *shm.Ring
	feeder   *shm.Cache
	toMgr    *shm.Ring
	direct   *shm.Ring
	mgr      *shm.Cache
	sink     *shm.Cache
	inRing   *shm.Ring
	rt       *routeTable
	st       *burstState
	region   *shm.Region
	inputBuf []shm.Slot
}

func newLoopRig(t testing.TB) *loopRig {
	r := shmtest.TempRegion(t, shmtest.SmallOptions())
	p := r.Pool()
	for _, o := range []shm.OwnerID{3, 4, 5, 6} {
		if err := p.AddOwner(o, 0); err != nil {
			t.Fatal(err)
		}
	}
	p.AssignRing(1, 3, 5, 5)
	p.AssignRing(2, 5, 4, 4)
	p.AssignRing(3, 5, 6, 6)
	nf := &NF{region: r, owner: 5, instance: 1, burst: 32, ins: map[uint32]*shm.Ring{}, outs: map[uint32]*outQ{}}
	nf.cache, _ = r.OpenCache(5)
	nf.ctr = nf.cache.Counters()
	nf.toMgr, _ = nf.outRing(2)
	buckets := make([]uint16, ctlmsg.NumBuckets)
	for i := range buckets {
		buckets[i] = 7
	}
	nf.routes.Store(&ctlmsg.Routes{Version: 1, Inputs: []uint32{1},
		Chains:   []ctlmsg.ChainRoute{{Services: []uint16{1, 2}, OutPort: 0}},
		Services: []ctlmsg.ServiceRoute{{Service: 2, Buckets: buckets, Direct: []ctlmsg.DirectRing{{Instance: 7, Ring: 3}}}}})
	rt, err := nf.compile(nf.routes.Load())
	if err != nil {
		t.Fatal(err)
	}
	feeder, _ := r.OpenCache(3)
	mgr, _ := r.OpenCache(4)
	feed, _ := r.OpenRing(1)
	toMgr, _ := r.OpenRing(2)
	direct, _ := r.OpenRing(3)
	sink, _ := r.OpenCache(6)
	return &loopRig{nf: nf, sink: sink, feed: feed, feeder: feeder, toMgr: toMgr, direct: direct, mgr: mgr, rt: rt,
		st: new(burstState), region: r, inRing: rt.inputs[0], inputBuf: make([]shm.Slot, 32)}
}

// pump feeds n packets, runs one burst with h, and drains both outputs.
func (g *loopRig) pump(n int, h Handler) (viaMgr, direct int) {
	s := g.inputBuf[:n]
	k := g.feeder.Alloc(s)
	for i := 0; i < k; i++ {
		g.region.Meta(s[i]).Chain = 0
		g.region.Meta(s[i]).ChainIndex = 1
		g.region.Meta(s[i]).Len = 64
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

func TestLoopRoutesEveryAction(t *testing.T) {
	g := newLoopRig(t)
	for _, tc := range []struct {
		name           string
		h              Handler
		viaMgr, direct int
	}{
		{"drop", func(Packet) Action { return Drop }, 0, 0},
		{"next goes direct to service 2", func(Packet) Action { return Next }, 0, 32},
		{"tonf 2 goes direct", func(Packet) Action { return ToNF(2) }, 0, 32},
		{"tonf without a direct ring goes through the manager", func(Packet) Action { return ToNF(3) }, 32, 0},
		{"out goes through the manager", func(Packet) Action { return Out(0) }, 32, 0},
		{"garbage action is dropped", func(Packet) Action { return Action(9 << 16) }, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, d := g.pump(32, tc.h)
			if m != tc.viaMgr || d != tc.direct {
				t.Fatalf("via manager %d, direct %d; want %d, %d", m, d, tc.viaMgr, tc.direct)
			}
		})
	}
	if free := g.region.Pool().FreeCount(); free < g.region.Pool().Capacity()-4*512 {
		t.Fatalf("slots leak: %d free of %d", free, g.region.Pool().Capacity())
	}
}

func TestLoopNextAtChainEndGoesOut(t *testing.T) {
	g := newLoopRig(t)
	h := func(p Packet) Action {
		p.Meta().ChainIndex = 2 // already past both services
		return Next
	}
	if m, d := g.pump(8, h); m != 8 || d != 0 {
		t.Fatalf("via manager %d, direct %d; want 8, 0", m, d)
	}
}

func TestLoopAllocationFree(t *testing.T) {
	g := newLoopRig(t)
	h := func(p Packet) Action { return Next }
	allocs := testing.AllocsPerRun(200, func() { g.pump(32, h) })
	if allocs != 0 {
		t.Fatalf("a burst allocates %.1f times", allocs)
	}
}

func BenchmarkLoopBurst(b *testing.B) {
	g := newLoopRig(b)
	h := func(p Packet) Action { return Next }
	b.ReportAllocs()
	for b.Loop() {
		g.pump(32, h)
	}
	b.ReportMetric(float64(b.N*32)/b.Elapsed().Seconds(), "pkts/s")
}
