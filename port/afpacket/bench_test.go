package afpacket_test

import (
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/port/afpacket"
	"github.com/reinforce-nfv/reinforce/port/afpacket/afpackettest"
	"github.com/reinforce-nfv/reinforce/shm"
)

// BenchmarkVethRoundTrip sends frames from port A through a veth pair to
// port B, which forwards each burst straight back (RxBurst → TxBurst, as an
// l2fwd does), and counts them home on A. A's TX and RX run on goroutines
// of their own, as the manager's loops do. An op is a burst of 32 frames;
// pkts/s counts frames back home per second (each crossed the veth twice).
// At most window frames are out at once, far below the RX rings, so the
// kernel drops none; lost/op counts frames B's kernel refused to send.
func BenchmarkVethRoundTrip(b *testing.B) {
	for _, size := range []int{64, 1500} {
		b.Run("bytes="+strconv.Itoa(size), func(b *testing.B) { benchRoundTrip(b, size) })
	}
}

func benchRoundTrip(b *testing.B, size int) {
	const window = 2048
	pair := afpackettest.NewVethPair(b, 0)
	r, c := newRegion(b, shm.DefaultDataBytes, 3) // A's TX, A's RX, B
	pa := openPort(b, pair, 1, pair.A, afpacket.Config{})
	pb := openPort(b, pair, 2, pair.B, afpacket.Config{})
	tmpl := stream{id: 0xF, minLen: size, maxLen: size}.bytes(0)

	var home, lost atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // B: forward everything back
		defer wg.Done()
		var buf [shm.BurstSize]shm.Slot
		for !stop.Load() {
			k := pb.RxBurst(c[2], buf[:])
			if k == 0 {
				runtime.Gosched()
				continue
			}
			if n := pb.TxBurst(c[2], buf[:k]); n < k {
				freeAll(c[2], buf[n:k])
				lost.Add(int64(k - n))
			}
		}
	}()
	wg.Add(1)
	go func() { // A's RX: count and free
		defer wg.Done()
		var buf [shm.BurstSize]shm.Slot
		for !stop.Load() {
			k := pa.RxBurst(c[1], buf[:])
			if k == 0 {
				runtime.Gosched()
				continue
			}
			freeAll(c[1], buf[:k])
			home.Add(int64(k))
		}
	}()
	defer func() {
		stop.Store(true)
		wg.Wait()
	}()

	// spin yields once while frames are in flight, failing b if none has
	// come back for progressTimeout.
	last, mark := int64(0), time.Now()
	spin := func() {
		runtime.Gosched()
		if now := home.Load() + lost.Load(); now != last {
			last, mark = now, time.Now()
		} else if time.Since(mark) > progressTimeout {
			b.Fatalf("no frame came back for %v: A %+v %+v, B %+v %+v", progressTimeout, pa.Stats(), pa.Detail(), pb.Stats(), pb.Detail())
		}
	}

	var batch [shm.BurstSize]shm.Slot
	var sent int64
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		for sent-home.Load()-lost.Load() > window-shm.BurstSize {
			spin()
		}
		for nb := 0; nb < len(batch); {
			nb += c[0].Alloc(batch[nb:])
		}
		for _, sl := range batch {
			copy(r.Buf(sl)[shm.HeadroomBytes:], tmpl)
			r.Meta(sl).Len = uint32(size)
		}
		for done := 0; done < len(batch); { // refused frames are sent again
			if k := pa.TxBurst(c[0], batch[done:]); k > 0 {
				done += k
			} else {
				runtime.Gosched()
			}
		}
		sent += int64(len(batch))
	}
	for home.Load()+lost.Load() < sent {
		spin()
	}
	elapsed := time.Since(start)
	b.ReportMetric(float64(home.Load())/elapsed.Seconds(), "pkts/s")
	b.ReportMetric(float64(lost.Load())/float64(b.N), "lost/op")
	if st := pa.Stats(); st.RxDrops != 0 || pb.Stats().RxDrops != 0 {
		b.Errorf("kernel drops: A %+v, B %+v", pa.Detail(), pb.Detail())
	}
}
