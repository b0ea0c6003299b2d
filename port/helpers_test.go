package port_test

import (
	"flag"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/shm"
	"github.com/reinforce-nfv/reinforce/shm/shmtest"
)

var seedFlag = flag.Uint64("seed", 0, "seed for the randomised tests (0: time-based, printed)")

func testRand(t testing.TB) *rand.Rand {
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay with -seed=%d)", seed, seed)
	return rand.New(rand.NewPCG(seed, 0))
}

// Owners of the test regions, as the manager has them: one cache for the
// RX loop and one for the TX loop.
const (
	ownerRX shm.OwnerID = 1
	ownerTX shm.OwnerID = 2
)

// newRegion creates a test region with the RX and TX owners added and
// returns their caches. The pool is serviced by the caller (Service) unless
// service is set, in which case the service loop runs until the test ends.
func newRegion(t testing.TB, o shm.Options, service bool) (r *shm.Region, rx, tx *shm.Cache) {
	t.Helper()
	r = shmtest.TempRegion(t, o)
	for _, ow := range []shm.OwnerID{ownerRX, ownerTX} {
		if err := r.Pool().AddOwner(ow, 0); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if rx, err = r.OpenCache(ownerRX); err != nil {
		t.Fatal(err)
	}
	if tx, err = r.OpenCache(ownerTX); err != nil {
		t.Fatal(err)
	}
	if service {
		r.Pool().StartService()
		t.Cleanup(r.Pool().StopService)
	}
	return r, rx, tx
}

// checkPoolWhole fails t if any cache still holds slots it allocated or
// received (allocations not matched by frees) or counted a bad reference;
// then it returns the caches' fill rings to the pool and checks every slot
// is free again.
func checkPoolWhole(t testing.TB, r *shm.Region, caches ...*shm.Cache) {
	t.Helper()
	for _, c := range caches {
		if c.Allocs != c.Frees || c.Bad != 0 {
			t.Fatalf("owner %d: %d allocs, %d frees, %d bad", c.Owner(), c.Allocs, c.Frees, c.Bad)
		}
	}
	p := r.Pool()
	p.StopService()
	p.Service()
	for _, c := range caches {
		if _, err := p.Reclaim(c.Owner(), shm.ReclaimOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if p.FreeCount() != p.Capacity() {
		t.Fatalf("pool has %d of %d slots free", p.FreeCount(), p.Capacity())
	}
}

// rxAll polls p.RxBurst with c until it has received n frames, servicing
// the pool in between, and returns copies of them (a test helper, not a
// fast path). It fails t if no progress is made for a second.
func rxAll(t testing.TB, r *shm.Region, c *shm.Cache, rx func(*shm.Cache, []shm.Slot) int, n int, keep func(shm.Slot)) {
	t.Helper()
	var buf [shm.BurstSize]shm.Slot
	got := 0
	last := time.Now()
	for got < n {
		k := rx(c, buf[:min(len(buf), n-got)])
		if k == 0 {
			r.Pool().Service()
			if time.Since(last) > time.Second {
				t.Fatalf("received %d of %d frames, then nothing for 1 s", got, n)
			}
			continue
		}
		last = time.Now()
		for _, s := range buf[:k] {
			keep(s)
		}
		got += k
	}
}
