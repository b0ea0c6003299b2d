package port_test

import (
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/shm"
	"github.com/reinforce-nfv/reinforce/shm/shmtest"
)

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
