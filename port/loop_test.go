package port_test

import (
	"bytes"
	"encoding/binary"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/internal/testenv"
	"github.com/reinforce-nfv/reinforce/port"
	"github.com/reinforce-nfv/reinforce/shm"
	"github.com/reinforce-nfv/reinforce/shm/shmtest"
)

// allocFrames allocates len(frames) slots from c and writes frames into
// them at HeadroomBytes (servicing the pool as needed).
func allocFrames(t testing.TB, r *shm.Region, c *shm.Cache, frames [][]byte) []shm.Slot {
	t.Helper()
	s := make([]shm.Slot, len(frames))
	for got, tries := 0, 0; got < len(s); tries++ {
		got += c.Alloc(s[got:])
		r.Pool().Service()
		if tries > 1000 {
			t.Fatalf("allocated %d of %d slots", got, len(s))
		}
	}
	for i, f := range frames {
		copy(r.Buf(s[i])[shm.HeadroomBytes:], f)
		r.Meta(s[i]).Len = uint32(len(f))
	}
	return s
}

func randFrame(rnd interface{ Uint32() uint32 }, n int) []byte {
	f := make([]byte, n)
	for i := range f {
		f[i] = byte(rnd.Uint32())
	}
	return f
}

func TestLoopRoundTrip(t *testing.T) {
	r, rx, tx := newRegion(t, shmtest.SmallOptions(), false)
	rnd := testenv.Rand(t)
	l, err := port.NewLoop(1, 64)
	if err != nil {
		t.Fatal(err)
	}
	var frames [][]byte
	var total uint64
	for i := range 40 {
		f := randFrame(rnd, 60+i*5)
		frames = append(frames, f)
		total += uint64(len(f))
	}
	s := allocFrames(t, r, tx, frames)
	if k := l.TxBurst(tx, s); k != len(s) {
		t.Fatalf("TxBurst took %d of %d", k, len(s))
	}
	before := port.Nanotime()
	i := 0
	rxAll(t, r, rx, l.RxBurst, len(frames), func(sl shm.Slot) {
		m := r.Meta(sl)
		if m.Port != 1 || m.DataOff != shm.HeadroomBytes || m.Timestamp < before {
			t.Fatalf("frame %d: port %d, off %d, stamp %d", i, m.Port, m.DataOff, m.Timestamp)
		}
		if !bytes.Equal(r.Packet(sl), frames[i]) {
			t.Fatalf("frame %d changed in the loop", i)
		}
		i++
		rx.Free([]shm.Slot{sl})
	})
	want := port.Stats{RxPkts: 40, RxBytes: total, TxPkts: 40, TxBytes: total}
	if st := l.Stats(); st != want {
		t.Fatalf("stats %+v\nwant  %+v", st, want)
	}
	var buf [4]shm.Slot
	if l.RxBurst(rx, buf[:]) != 0 {
		t.Fatal("empty loop delivered a frame")
	}
	shmtest.CheckPoolWhole(t, r, rx, tx)
}

func TestLoopFullAcceptsFewer(t *testing.T) {
	r, rx, tx := newRegion(t, shmtest.SmallOptions(), false)
	l, err := port.NewLoop(0, 8)
	if err != nil {
		t.Fatal(err)
	}
	frames := make([][]byte, 20)
	for i := range frames {
		frames[i] = []byte{byte(i), 1, 2, 3}
	}
	s := allocFrames(t, r, tx, frames)
	k := l.TxBurst(tx, s)
	if k != 8 {
		t.Fatalf("depth-8 loop took %d of 20", k)
	}
	if l.TxBurst(tx, s[k:]) != 0 {
		t.Fatal("full loop took more")
	}
	if st := l.Stats(); st.TxPkts != 8 || st.TxDrops != 12+12 {
		t.Fatalf("stats %+v", st)
	}
	got := 0
	rxAll(t, r, rx, l.RxBurst, 8, func(sl shm.Slot) {
		if r.Packet(sl)[0] != byte(got) {
			t.Fatalf("frame %d is %d", got, r.Packet(sl)[0])
		}
		got++
		rx.Free([]shm.Slot{sl})
	})
	if k2 := l.TxBurst(tx, s[k:]); k2 != 8 { // room again
		t.Fatalf("drained loop took %d", k2)
	}
	rxAll(t, r, rx, l.RxBurst, 8, func(sl shm.Slot) { rx.Free([]shm.Slot{sl}) })
	tx.Free(s[16:])
	shmtest.CheckPoolWhole(t, r, rx, tx)
}

// TestLoopMatchesQueueModel drives a loop with random bursts of random
// frame sizes, mostly large, so both limits (descriptors and arena bytes)
// and the arena's wrap are hit, and checks what comes out against a queue
// of the sizes sent. Frame contents derive from a sequence number in their
// first 4 bytes.
func TestLoopMatchesQueueModel(t *testing.T) {
	o := shmtest.SmallOptions()
	o.Slots, o.DataBytes = 1024, shm.JumboDataBytes
	r, rx, tx := newRegion(t, o, false)
	rnd := testenv.Rand(t)
	l, err := port.NewLoop(0, 64)
	if err != nil {
		t.Fatal(err)
	}
	fill := func(f []byte, seq uint32) {
		binary.BigEndian.PutUint32(f, seq)
		for j := 4; j < len(f); j++ {
			f[j] = byte(seq) ^ byte(j)
		}
	}
	var (
		model          []int // sizes of the frames in the loop, oldest first
		nextTx, nextRx uint32
		buf            [48]shm.Slot
		refused, arena int
	)
	for iter := 0; iter < 5000; iter++ {
		r.Pool().Service()
		if rnd.IntN(2) == 0 {
			n := tx.Alloc(buf[:1+rnd.IntN(len(buf))])
			sizes := make([]int, n)
			for i, sl := range buf[:n] {
				sizes[i] = 60 + rnd.IntN(200)
				if rnd.IntN(4) != 0 {
					sizes[i] = 60 + rnd.IntN(int(o.DataBytes)-60)
				}
				fill(r.Buf(sl)[shm.HeadroomBytes:shm.HeadroomBytes+sizes[i]], nextTx+uint32(i))
				r.Meta(sl).Len = uint32(sizes[i])
			}
			k := l.TxBurst(tx, buf[:n])
			model = append(model, sizes[:k]...)
			nextTx += uint32(k)
			if k < n {
				refused++
				if len(model) < l.Depth() {
					arena++ // refused with descriptors free: the bytes were the limit
				}
				tx.Free(buf[k:n])
			}
			continue
		}
		n := l.RxBurst(rx, buf[:1+rnd.IntN(len(buf))])
		if n > len(model) {
			t.Fatalf("iter %d: received %d with %d in the loop", iter, n, len(model))
		}
		for _, sl := range buf[:n] {
			f := r.Packet(sl)
			want := make([]byte, model[0])
			fill(want, nextRx)
			if !bytes.Equal(f, want) {
				t.Fatalf("iter %d: frame %d (%d bytes) arrived as %d bytes, seq %d", iter, nextRx, len(want), len(f), binary.BigEndian.Uint32(f))
			}
			model = model[1:]
			nextRx++
		}
		rx.Free(buf[:n])
	}
	t.Logf("%d frames through; TX refused %d bursts, %d of them for arena bytes", nextRx, refused, arena)
	if arena == 0 || refused == arena {
		t.Error("the test did not reach both the descriptor and the byte limit")
	}
	rxAll(t, r, rx, l.RxBurst, len(model), func(sl shm.Slot) { rx.Free([]shm.Slot{sl}) })
	shmtest.CheckPoolWhole(t, r, rx, tx)
}

// TestLoopFrameUsingHeadroom sends a frame longer than the data room (an
// NF prepended a header in the headroom): it comes back whole, moved into
// the headroom.
func TestLoopFrameUsingHeadroom(t *testing.T) {
	r, rx, tx := newRegion(t, shmtest.SmallOptions(), false)
	l, _ := port.NewLoop(0, 4)
	var s [1]shm.Slot
	for tx.Alloc(s[:]) == 0 {
		r.Pool().Service()
	}
	b := r.Buf(s[0])
	for i := range b {
		b[i] = byte(i * 3)
	}
	want := append([]byte(nil), b[8:]...)
	m := r.Meta(s[0])
	m.DataOff, m.Len = 8, uint32(len(want))
	if l.TxBurst(tx, s[:]) != 1 {
		t.Fatal("TxBurst refused")
	}
	rxAll(t, r, rx, l.RxBurst, 1, func(sl shm.Slot) {
		if !bytes.Equal(r.Packet(sl), want) || r.Meta(sl).DataOff != 8 {
			t.Fatalf("frame of %d bytes came back as %d at offset %d", len(want), len(r.Packet(sl)), r.Meta(sl).DataOff)
		}
		rx.Free([]shm.Slot{sl})
	})
	shmtest.CheckPoolWhole(t, r, rx, tx)
}

// TestLoopConcurrent runs TX and RX on two goroutines, as the manager does,
// streaming numbered frames; under -race this checks the ring's ordering.
func TestLoopConcurrent(t *testing.T) {
	testenv.CheckLeaks(t)
	r, rx, tx := newRegion(t, shmtest.SmallOptions(), true)
	l, _ := port.NewLoop(0, 128)
	count := uint32(300_000)
	if raceEnabled {
		count = 30_000
	}
	deadline := time.Now().Add(30 * time.Second)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var buf [shm.BurstSize]shm.Slot
		next := uint32(0)
		for next < count && time.Now().Before(deadline) {
			n := tx.Alloc(buf[:min(uint32(len(buf)), count-next)])
			if n == 0 {
				runtime.Gosched() // let the pool's service loop run: 2 vCPUs, 3 busy goroutines
			}
			for i, sl := range buf[:n] {
				f := r.Buf(sl)[shm.HeadroomBytes:]
				binary.BigEndian.PutUint32(f, next+uint32(i))
				r.Meta(sl).Len = 60 + uint32(i)
			}
			k := l.TxBurst(tx, buf[:n])
			next += uint32(k)
			for done := k; done < n; { // refused: the loop is full
				done += tx.Free(buf[done:n])
			}
		}
	}()
	var buf [shm.BurstSize]shm.Slot
	want := uint32(0)
	for want < count && time.Now().Before(deadline) {
		n := l.RxBurst(rx, buf[:])
		if n == 0 {
			runtime.Gosched()
		}
		for _, sl := range buf[:n] {
			f := r.Packet(sl)
			if got := binary.BigEndian.Uint32(f); got != want {
				t.Fatalf("frame %d arrived as %d", want, got)
			}
			if len(f) < 60 || len(f) >= 60+shm.BurstSize {
				t.Fatalf("frame %d has %d bytes", want, len(f))
			}
			want++
		}
		for done := 0; done < n; {
			done += rx.Free(buf[done:n])
		}
	}
	wg.Wait()
	if want != count {
		t.Fatalf("received %d of %d frames before the deadline", want, count)
	}
	shmtest.CheckPoolWhole(t, r, rx, tx)
}

func TestLoopDepth(t *testing.T) {
	for _, tc := range []struct{ in, want int }{{0, port.DefaultLoopDepth}, {1, 1}, {5, 8}, {64, 64}, {port.MaxLoopDepth, port.MaxLoopDepth}} {
		l, err := port.NewLoop(0, tc.in)
		if err != nil || l.Depth() != tc.want {
			t.Errorf("NewLoop(depth %d): depth %d, %v; want %d", tc.in, l.Depth(), err, tc.want)
		}
	}
	for _, d := range []int{-1, port.MaxLoopDepth + 1} {
		if _, err := port.NewLoop(0, d); err == nil {
			t.Errorf("NewLoop(depth %d) succeeded", d)
		}
	}
}

func TestLoopClosed(t *testing.T) {
	r, rx, tx := newRegion(t, shmtest.SmallOptions(), false)
	l, _ := port.NewLoop(0, 4)
	s := allocFrames(t, r, tx, [][]byte{{1, 2, 3}})
	if l.TxBurst(tx, s) != 1 {
		t.Fatal("TxBurst refused")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	var buf [4]shm.Slot
	if l.RxBurst(rx, buf[:]) != 0 {
		t.Fatal("closed loop delivered")
	}
	s = allocFrames(t, r, tx, [][]byte{{1, 2, 3}})
	if l.TxBurst(tx, s) != 0 {
		t.Fatal("closed loop took a frame")
	}
	tx.Free(s)
	shmtest.CheckPoolWhole(t, r, rx, tx)
}

func TestLoopAllocs(t *testing.T) {
	r, rx, tx := newRegion(t, shmtest.SmallOptions(), false)
	l, _ := port.NewLoop(0, 256)
	var in, out [shm.BurstSize]shm.Slot
	allocs := testing.AllocsPerRun(500, func() {
		n := tx.Alloc(in[:])
		for _, sl := range in[:n] {
			r.Meta(sl).Len = 64
		}
		k := l.TxBurst(tx, in[:n])
		tx.Free(in[k:n])
		m := l.RxBurst(rx, out[:])
		rx.Free(out[:m])
		r.Pool().Service()
	})
	if allocs != 0 {
		t.Fatalf("TxBurst+RxBurst: %v allocs per run, want 0", allocs)
	}
	if l.Stats().RxPkts == 0 {
		t.Fatal("nothing looped")
	}
}

// BenchmarkLoopRoundTrip keeps one burst circulating: RxBurst hands the
// frames back to TxBurst, so each op is a copy in, a copy out, an Alloc
// and a Free per frame. One goroutine and one cache, the pool serviced
// inline when the cache comes up short, so the figure is the port's own
// cost without cross-core traffic.
func BenchmarkLoopRoundTrip(b *testing.B) {
	for _, size := range []int{64, 1500} {
		b.Run("bytes="+itoa(size)+"/burst=32", func(b *testing.B) {
			o := shmtest.SmallOptions()
			o.Slots, o.DataBytes, o.CacheCap = 8192, shm.DefaultDataBytes, 1024
			r, c, _ := newRegion(b, o, false)
			l, _ := port.NewLoop(0, 256)
			frames := make([][]byte, shm.BurstSize)
			for i := range frames {
				frames[i] = make([]byte, size)
			}
			s := allocFrames(b, r, c, frames)
			if l.TxBurst(c, s) != len(s) {
				b.Fatal("priming burst refused")
			}
			var buf [shm.BurstSize]shm.Slot
			b.ReportAllocs()
			pkts := 0
			for b.Loop() {
				n := l.RxBurst(c, buf[:])
				k := l.TxBurst(c, buf[:n])
				c.Free(buf[k:n])
				pkts += n
				if n < len(buf) {
					r.Pool().Service()
				}
			}
			b.ReportMetric(float64(pkts)/b.Elapsed().Seconds(), "pkts/s")
		})
	}
}
