package shm_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/shm"
	"github.com/reinforce-nfv/reinforce/shm/shmtest"
)

func reportElems(b *testing.B, elems int) {
	sec := b.Elapsed().Seconds()
	if elems > 0 && sec > 0 {
		b.ReportMetric(sec*1e9/float64(elems), "ns/elem")
		b.ReportMetric(float64(elems)/sec/1e6, "Melems/s")
	}
}

// BenchmarkRing moves bursts through one ring within one process.
func BenchmarkRing(b *testing.B) {
	for _, burst := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("burst=%d", burst), func(b *testing.B) {
			r := shmtest.TempRegion(b, shmtest.SmallOptions())
			r.Pool().AssignRing(1, 1, 2, 1)
			p, _ := r.OpenRing(1)
			c, _ := r.OpenRing(1)
			in, out := seqSlots(0, burst), make([]shm.Slot, burst)
			b.ReportAllocs()
			elems := 0
			for b.Loop() {
				p.Enqueue(in)
				n, _ := c.Dequeue(out)
				elems += n
			}
			reportElems(b, elems)
		})
	}
}

// BenchmarkRingCrossProcess: this process produces, a child process consumes.
func BenchmarkRingCrossProcess(b *testing.B) {
	for _, burst := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("burst=%d", burst), func(b *testing.B) {
			r := shmtest.TempRegion(b, shmtest.SmallOptions())
			r.Pool().AssignRing(1, 1, 2, 1)
			p, _ := r.OpenRing(1)
			total := 0
			for range b.N {
				total += burst
			}
			// As DPDK's ring_perf_autotest measures rte_ring: the producer
			// enqueues one fixed burst over and over, the consumer counts.
			// (TestRingCrossProcessOrdering checks every entry instead.)
			cons := shmtest.StartChild(b, "TestNone", "count-consumer",
				"REGION="+r.Path(), "RING=1", fmt.Sprintf("COUNT=%d", total), fmt.Sprintf("BURST=%d", burst))
			cons.ReadLine(b, 30*time.Second) // its pid: it is attached and polling
			in := seqSlots(0, burst)
			b.ReportAllocs()
			b.ResetTimer()
			next := 0
			for next < total {
				n, _ := p.Enqueue(in[:min(burst, total-next)])
				next += n
			}
			if got := cons.ReadLine(b, time.Minute); got != fmt.Sprintf("ok %d", total) {
				b.Fatalf("consumer: %s", got)
			}
			b.StopTimer()
			reportElems(b, total)
			cons.Wait(b)
		})
	}
}

// BenchmarkPoolAllocFree allocates and frees bursts of 32 through a cache,
// with the creator's service step in the loop (as the manager runs it).
func BenchmarkPoolAllocFree(b *testing.B) {
	b.Run("burst=32", func(b *testing.B) {
		r := shmtest.TempRegion(b, shmtest.SmallOptions())
		r.Pool().AddOwner(1, 0)
		c, _ := r.OpenCache(1)
		s := make([]shm.Slot, 32)
		b.ReportAllocs()
		slots := 0
		for b.Loop() {
			n := c.Alloc(s)
			c.Free(s[:n])
			slots += n
			r.Pool().Service()
		}
		if slots > 0 {
			b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(slots), "ns/slot")
		}
	})
}

// BenchmarkMetaWriteRead writes and reads back the per-packet metadata an
// RX path sets, for one packet per op.
func BenchmarkMetaWriteRead(b *testing.B) {
	r := shmtest.TempRegion(b, shmtest.SmallOptions())
	b.ReportAllocs()
	var sum uint64
	i := uint32(0)
	for b.Loop() {
		s := shm.Slot(i & 1023)
		m := r.Meta(s)
		m.Action, m.Destination, m.Port, m.Len, m.Seq = shm.ActionToNF, 2, 1, 64, uint64(i)
		m.ChainIndex++
		m2 := r.Meta(s)
		sum += uint64(m2.Destination) + uint64(m2.Len) + m2.Seq
		i++
	}
	_ = sum
}

// childEcho sleeps on its doorbell until ring RING has an entry, then echoes
// it on ring BACK: the other half of the wake-up latency benchmark.
func childEcho() error {
	r, err := attachEnv()
	if err != nil {
		return err
	}
	in, err := r.OpenRing(uint32(envU64("RING")))
	if err != nil {
		return err
	}
	out, err := r.OpenRing(uint32(envU64("BACK")))
	if err != nil {
		return err
	}
	shmtest.Reportf("pid %d", uint32(envU64("RING")))
	w := shm.Waiter{Bell: in.Bell(), Spins: 1, Max: time.Second} // sleep at once: we measure wake-ups
	var buf [1]shm.Slot
	for {
		if !w.Wait(in.HasWork) {
			continue
		}
		n, _ := in.Dequeue(buf[:])
		if n == 1 {
			if buf[0] == shm.NoSlot {
				return nil
			}
			out.Enqueue(buf[:1])
		}
	}
}

// BenchmarkWakeupLatency wakes a sleeping child process through a futex
// doorbell and times until its answer arrives (this side spins).
func BenchmarkWakeupLatency(b *testing.B) {
	r := shmtest.TempRegion(b, shmtest.SmallOptions())
	r.Pool().AssignRing(1, 1, 2, 5)
	r.Pool().AssignRing(2, 2, 1, 6)
	to, _ := r.OpenRing(1)
	from, _ := r.OpenRing(2)
	echo := shmtest.StartChild(b, "TestNone", "echo", "REGION="+r.Path(), "RING=1", "BACK=2")
	echo.ReadLine(b, 30*time.Second)
	lat := make([]time.Duration, 0, 1024)
	var buf [1]shm.Slot
	b.ReportAllocs()
	for b.Loop() {
		// Let the child fall asleep: it sleeps right after its last echo.
		for deadline := time.Now().Add(2 * time.Millisecond); time.Now().Before(deadline); {
		}
		t0 := time.Now()
		to.Enqueue([]shm.Slot{1})
		for {
			if n, _ := from.Dequeue(buf[:]); n == 1 {
				break
			}
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	to.Enqueue([]shm.Slot{shm.NoSlot})
	echo.Wait(b)
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
		b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
	}
}

// childCountConsumer dequeues COUNT entries from ring RING in bursts of
// BURST, counting them, then reports "ok N": the consumer half of
// BenchmarkRingCrossProcess.
func childCountConsumer() error {
	_, ring, err := attachRing()
	if err != nil {
		return err
	}
	count, burst := envU64("COUNT"), int(envU64("BURST"))
	buf := make([]shm.Slot, burst)
	got := uint64(0)
	for got < count {
		n, err := ring.Dequeue(buf)
		if err != nil {
			return err
		}
		got += uint64(n)
	}
	shmtest.Reportf("ok %d", got)
	return nil
}
