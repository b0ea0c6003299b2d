package nflib

import (
	"testing"

	"github.com/reinforce-nfv/reinforce/shm"
)

// SendRoom is the least room among the NF's output rings, at most a burst,
// and counts what the open scope has staged already.
func TestSendRoomIsTheFullestRingsRoom(t *testing.T) {
	g := newLoopRig(t)
	g.nf.injectRoutes()
	if got := g.nf.SendRoom(); got != shm.MaxBurst {
		t.Fatalf("empty rings: SendRoom %d, want %d", got, shm.MaxBurst)
	}
	// Fill the direct ring to service 2 up to 5 free entries, through the
	// NF's own handle (its producer cursor is the one that counts).
	direct := g.nf.outs[3].ring
	free, err := direct.Free()
	if err != nil {
		t.Fatal(err)
	}
	fill := make([]shm.Slot, free-5)
	n := 0
	for i := 0; i < 1000 && n < len(fill); i++ {
		n += g.nf.cache.Alloc(fill[n:])
		g.region.Pool().Service() // refills the cache
	}
	if n != len(fill) {
		t.Fatalf("allocated %d of %d", n, len(fill))
	}
	if k, _ := g.nf.cache.Send(direct, fill); k != len(fill) {
		t.Fatalf("sent %d of %d", k, len(fill))
	}
	if got := g.nf.SendRoom(); got != 5 {
		t.Fatalf("direct ring with 5 free: SendRoom %d, want 5", got)
	}
	// Two more staged in an open scope (not yet published) leave 3.
	g.nf.begin()
	for i := 0; i < 2; i++ {
		p, ok := g.nf.NewPacket()
		if !ok || !g.nf.Inject(p, ToNF(2)) {
			t.Fatal("inject failed")
		}
	}
	if got := g.nf.SendRoom(); got != 3 {
		t.Fatalf("after staging 2: SendRoom %d, want 3", got)
	}
	if err := g.nf.commit(); err != nil {
		t.Fatal(err)
	}
}
