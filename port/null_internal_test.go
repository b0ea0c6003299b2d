package port

import (
	"testing"

	"github.com/reinforce-nfv/reinforce/shm"
	"github.com/reinforce-nfv/reinforce/shm/shmtest"
)

// BenchmarkNullFill measures the generator alone: writing a burst of
// frames into slots already held, without the pool's Alloc and Free that
// BenchmarkNullRx includes.
func BenchmarkNullFill(b *testing.B) {
	r := shmtest.TempRegion(b, shmtest.SmallOptions())
	if err := r.Pool().AddOwner(1, 0); err != nil {
		b.Fatal(err)
	}
	c, _ := r.OpenCache(1)
	var s [shm.BurstSize]shm.Slot
	if c.Alloc(s[:]) != len(s) {
		b.Fatal("short allocation")
	}
	n, _ := NewNull(0, NullOptions{Flows: 1024})
	b.ReportAllocs()
	for b.Loop() {
		n.fill(r, s[:], 1)
	}
	b.ReportMetric(float64(b.N)*shm.BurstSize/b.Elapsed().Seconds(), "pkts/s")
	c.Free(s[:])
}
