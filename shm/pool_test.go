package shm_test

import (
	"testing"

	"github.com/reinforce-nfv/reinforce/shm"
	"github.com/reinforce-nfv/reinforce/shm/shmtest"
)

// twoOwners makes a region with owners 1 and 2, a ring 1→2 (ring 1) and opens their caches.
func twoOwners(t *testing.T) (*shm.Region, *shm.Cache, *shm.Cache, *shm.Ring, *shm.Ring) {
	t.Helper()
	r := shmtest.TempRegion(t, shmtest.SmallOptions())
	p := r.Pool()
	for _, o := range []shm.OwnerID{1, 2} {
		if err := p.AddOwner(o, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.AssignRing(1, 1, 2, 2); err != nil {
		t.Fatal(err)
	}
	c1, err := r.OpenCache(1)
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := r.OpenCache(2)
	tx, _ := r.OpenRing(1)
	rx, _ := r.OpenRing(1)
	return r, c1, c2, tx, rx
}

func inUse(r *shm.Region) int { return r.Pool().Capacity() - r.Pool().FreeCount() }

func TestPoolAllocFreeRoundTrip(t *testing.T) {
	r, c1, _, _, _ := twoOwners(t)
	s := make([]shm.Slot, 32)
	if n := c1.Alloc(s); n != 32 {
		t.Fatalf("alloc %d", n)
	}
	seen := map[uint32]bool{}
	for _, x := range s {
		if seen[x.Index()] || !c1.Holds(x) {
			t.Fatalf("slot %d duplicated or not held", x.Index())
		}
		seen[x.Index()] = true
		if m := r.Meta(x); m.Len != 0 || m.DataOff != shm.HeadroomBytes {
			t.Fatalf("fresh slot meta not reset: %+v", m)
		}
	}
	if n := c1.Free(s); n != 32 {
		t.Fatalf("free %d", n)
	}
	r.Pool().Service()
	if c1.Bad != 0 {
		t.Fatalf("bad count %d", c1.Bad)
	}
}

func TestPoolDoubleFreeRejected(t *testing.T) {
	r, c1, c2, _, _ := twoOwners(t)
	s := make([]shm.Slot, 4)
	c1.Alloc(s)
	c1.Free(s[:1])
	c1.Free(s[:1])
	if c1.Bad != 1 {
		t.Fatalf("double free counted %d times, want 1", c1.Bad)
	}
	// Another owner freeing slots it does not hold.
	c2.Free(s[1:2])
	if c2.Bad != 1 || !c1.Holds(s[1]) {
		t.Fatalf("foreign free: bad=%d, owner still holds=%v", c2.Bad, c1.Holds(s[1]))
	}
	r.Pool().Service()
}

func TestPoolHandOverChecksRefuseStaleAndForged(t *testing.T) {
	r, c1, c2, tx, rx := twoOwners(t)
	s := make([]shm.Slot, 3)
	c1.Alloc(s)
	stale := s[2]
	c1.Free(s[2:3]) // generation moves on: the old reference is stale
	out := make([]shm.Slot, 8)

	// Good hand-over.
	if n, _ := c1.Send(tx, s[:1]); n != 1 {
		t.Fatal("send failed")
	}
	if n, _ := c2.Recv(rx, out); n != 1 || out[0] != s[0] || !c2.Holds(s[0]) || c1.Holds(s[0]) {
		t.Fatalf("receive: n=%d holds=%v", n, c2.Holds(s[0]))
	}
	// The producer writes garbage straight into the ring: a stale reference,
	// an index past the pool, a slot it holds but never handed over, a duplicate.
	junk := []shm.Slot{stale, shm.Slot(r.NumSlots() + 5), s[1], s[0]}
	tx.Enqueue(junk)
	if n, _ := c2.Recv(rx, out); n != 0 {
		t.Fatalf("accepted %d bad entries: %v", n, out[:n])
	}
	if c2.Bad != uint64(len(junk)) {
		t.Fatalf("bad count %d, want %d", c2.Bad, len(junk))
	}
	if !c1.Holds(s[1]) || !c2.Holds(s[0]) {
		t.Fatal("a bad entry changed the ownership of a good slot")
	}
	// Sending a slot one does not hold is refused too.
	c1.Send(tx, s[:1])
	if c1.Bad != 1 {
		t.Fatalf("send of a foreign slot: bad=%d", c1.Bad)
	}
	// Meta and Buf through an out-of-range reference touch no slot.
	r.Meta(shm.Slot(r.NumSlots() + 5)).Len = 1 << 30
	if len(r.Packet(shm.Slot(r.NumSlots()+5))) > int(shm.HeadroomBytes+r.DataBytes()) {
		t.Fatal("packet through bad reference not clamped")
	}
}

func TestPoolReclaimDeadOwnerReturnsEverything(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(map[bool]string{false: "free inputs", true: "keep inputs"}[keep], func(t *testing.T) {
			r, c1, c2, tx, rx := twoOwners(t)
			p := r.Pool()
			if err := p.AssignRing(2, 2, 1, 3); err != nil { // 2 → 1, so owner 2 also produces
				t.Fatal(err)
			}
			back, _ := r.OpenRing(2)
			s := make([]shm.Slot, 64)
			c1.Alloc(s)
			c1.Send(tx, s[:10])    // in flight to 2
			c1.Stage(tx, s[10:12]) // staged, never published
			out := make([]shm.Slot, 8)
			c2.Peek(rx, out[:4]) // 2 peeked 4 and never released
			c2.Alloc(out[4:8])
			c2.Send(back, out[4:6]) // 2 → 1 in flight
			// Owner 2 dies. Owner 1 lives on with its slots.
			if _, err := p.Reclaim(2, shm.ReclaimOptions{KeepInputs: keep}); err != nil {
				t.Fatal(err)
			}
			// Owner 1 can still receive what 2 published before dying.
			got := make([]shm.Slot, 8)
			back1, _ := r.OpenRing(2)
			_ = back
			if n, _ := c1.Recv(back1, got); n != 2 {
				t.Fatalf("owner 1 received %d of the 2 slots owner 2 published", n)
			}
			if keep {
				// A restarted owner 2 gets the inputs it had peeked, again.
				if err := p.AddOwner(2, 0); err != nil {
					t.Fatal(err)
				}
				c2b, _ := r.OpenCache(2)
				rx2, _ := r.OpenRing(1)
				if n, _ := c2b.Recv(rx2, make([]shm.Slot, 32)); n != 10 {
					t.Fatalf("restarted consumer got %d of 10 kept inputs (bad %d)", n, c2b.Bad)
				}
				p.Reclaim(2, shm.ReclaimOptions{})
			}
			// Now owner 1 dies too: the pool must be whole again.
			p.Reclaim(1, shm.ReclaimOptions{})
			if inUse(r) != 0 {
				t.Fatalf("%d slots leaked after both owners were reclaimed", inUse(r))
			}
		})
	}
}

func TestPoolServiceLoopRefillsCaches(t *testing.T) {
	r, c1, _, _, _ := twoOwners(t)
	r.Pool().StartService()
	defer r.Pool().StopService()
	s := make([]shm.Slot, 32)
	total := 0
	for i := 0; total < 20000 && i < 1e7; i++ { // far more than one cache holds
		n := c1.Alloc(s)
		total += n
		for k := 0; k < n; { // a full drain ring waits for the service loop
			k += c1.Free(s[k:n])
		}
	}
	if total < 20000 {
		t.Fatalf("allocated only %d slots: the service loop does not refill", total)
	}
	if c1.Bad != 0 {
		t.Fatalf("%d refused hand-overs", c1.Bad)
	}
}

func TestPoolHotPathAllocationFree(t *testing.T) {
	r, c1, c2, tx, rx := twoOwners(t)
	s, out := make([]shm.Slot, 32), make([]shm.Slot, 32)
	allocs := testing.AllocsPerRun(200, func() {
		n := c1.Alloc(s)
		c1.Send(tx, s[:n])
		m, _ := c2.Recv(rx, out)
		c2.Free(out[:m])
		r.Pool().Service()
	})
	if allocs != 0 {
		t.Fatalf("alloc/send/recv/free allocates %.1f times per burst", allocs)
	}
}

func TestPoolDrainInputsAfterRetain(t *testing.T) {
	r, c1, _, tx, _ := twoOwners(t)
	p := r.Pool()
	s := make([]shm.Slot, 8)
	c1.Alloc(s)
	c1.Send(tx, s)
	if _, err := p.DrainInputs(2); err == nil {
		t.Fatal("drained the inputs of a live owner")
	}
	p.Reclaim(2, shm.ReclaimOptions{KeepInputs: true})
	if n, err := p.DrainInputs(2); n != 8 || err != nil {
		t.Fatalf("drained %d, %v; want the 8 retained packets", n, err)
	}
	p.Reclaim(1, shm.ReclaimOptions{})
	if inUse(r) != 0 {
		t.Fatalf("%d slots leaked", inUse(r))
	}
}
