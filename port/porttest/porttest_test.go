package porttest_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/port"
	"github.com/reinforce-nfv/reinforce/port/porttest"
	"github.com/reinforce-nfv/reinforce/shm"
	"github.com/reinforce-nfv/reinforce/shm/shmtest"
)

func setup(t *testing.T) (*shm.Region, *shm.Cache) {
	t.Helper()
	r := shmtest.TempRegion(t, shmtest.SmallOptions())
	if err := r.Pool().AddOwner(1, 0); err != nil {
		t.Fatal(err)
	}
	c, err := r.OpenCache(1)
	if err != nil {
		t.Fatal(err)
	}
	return r, c
}

func TestInjectReceiveTransmit(t *testing.T) {
	r, c := setup(t)
	p := porttest.New(4)
	if p.Name() != "test4" || p.ID() != 4 {
		t.Fatalf("name %q id %d", p.Name(), p.ID())
	}
	frames := [][]byte{{1, 2, 3}, bytes.Repeat([]byte{9}, 256), {4}}
	p.Inject(frames...)
	frames[0][0] = 99 // Inject copied
	var buf [8]shm.Slot
	n := p.RxBurst(c, buf[:2])
	if n != 2 || p.Pending() != 1 {
		t.Fatalf("RxBurst = %d, pending %d", n, p.Pending())
	}
	if got := r.Packet(buf[0]); !bytes.Equal(got, []byte{1, 2, 3}) || r.Meta(buf[0]).Port != 4 || r.Meta(buf[0]).DataOff != shm.HeadroomBytes {
		t.Fatalf("first frame %v, meta %+v", got, r.Meta(buf[0]))
	}
	n += p.RxBurst(c, buf[2:])
	if n != 3 {
		t.Fatalf("received %d of 3", n)
	}
	r.Meta(buf[1]).Seq, r.Meta(buf[1]).MetaFlags = 77, shm.FlagHasSeq
	p.SetTxLimit(2)
	if k := p.TxBurst(c, buf[:3]); k != 2 {
		t.Fatalf("TxBurst with limit 2 took %d", k)
	}
	p.SetTxLimit(-1)
	if k := p.TxBurst(c, buf[2:3]); k != 1 {
		t.Fatalf("TxBurst took %d", k)
	}
	sent := p.WaitSent(t, 3, time.Second)
	if !bytes.Equal(sent[0].Data, []byte{1, 2, 3}) || !bytes.Equal(sent[1].Data, frames[1]) || sent[1].Seq != 77 || sent[2].InPort != 4 {
		t.Fatalf("sent %+v", sent)
	}
	want := port.Stats{RxPkts: 3, RxBytes: 3 + 256 + 1, TxPkts: 3, TxBytes: 3 + 256 + 1, TxDrops: 1}
	if st := p.Stats(); st != want {
		t.Fatalf("stats %+v, want %+v", st, want)
	}
	if len(p.TakeSent()) != 3 || len(p.Sent()) != 0 {
		t.Fatal("TakeSent did not empty the record")
	}
	if c.Allocs != c.Frees {
		t.Fatalf("%d allocs, %d frees", c.Allocs, c.Frees)
	}
}

func TestOversizedFrameDropped(t *testing.T) {
	r, c := setup(t)
	p := porttest.New(0)
	p.Inject(make([]byte, int(r.DataBytes())+1), []byte{1}, make([]byte, 1000), []byte{2})
	var buf [8]shm.Slot
	got := 0
	for i := 0; i < 4; i++ {
		n := p.RxBurst(c, buf[:])
		for _, s := range buf[:n] {
			got++
			if len(r.Packet(s)) != 1 {
				t.Fatalf("delivered a %d-byte frame", len(r.Packet(s)))
			}
		}
		c.Free(buf[:n])
	}
	if got != 2 || p.Stats().RxDrops != 2 || p.Pending() != 0 {
		t.Fatalf("delivered %d, dropped %d, pending %d", got, p.Stats().RxDrops, p.Pending())
	}
}

func TestWaitSentConcurrent(t *testing.T) {
	r, c := setup(t)
	p := porttest.New(0)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var s [1]shm.Slot
		for i := 0; i < 5; i++ {
			for c.Alloc(s[:]) == 0 {
				r.Pool().Service()
			}
			r.Meta(s[0]).Len = 10
			p.TxBurst(c, s[:])
		}
	}()
	if got := p.WaitSent(t, 5, 10*time.Second); len(got) != 5 {
		t.Fatalf("got %d", len(got))
	}
	<-done
}

func TestClosed(t *testing.T) {
	_, c := setup(t)
	p := porttest.New(0)
	p.Inject([]byte{1})
	p.Close()
	var buf [1]shm.Slot
	if p.RxBurst(c, buf[:]) != 0 {
		t.Fatal("closed port received")
	}
}
