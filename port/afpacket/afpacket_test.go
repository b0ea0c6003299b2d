package afpacket_test

import (
	"errors"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reinforce-nfv/reinforce/internal/testenv"
	"github.com/reinforce-nfv/reinforce/pkt"
	"github.com/reinforce-nfv/reinforce/port"
	"github.com/reinforce-nfv/reinforce/port/afpacket"
	"github.com/reinforce-nfv/reinforce/port/afpacket/afpackettest"
	"github.com/reinforce-nfv/reinforce/shm"
	"github.com/reinforce-nfv/reinforce/shm/shmtest"
)

func TestConfigRejected(t *testing.T) {
	tests := []struct {
		cfg  afpacket.Config
		want string
	}{
		{afpacket.Config{BlockBytes: 3 << 12}, "block size 12288: not a power of two"},
		{afpacket.Config{BlockBytes: 2048}, "block size 2048: not a power of two"},
		{afpacket.Config{BlockBytes: 128 << 20}, "block size 134217728: not a power of two"},
		{afpacket.Config{Blocks: 1}, "1 blocks of 262144 bytes: outside 2..4096 blocks"},
		{afpacket.Config{Blocks: 5000}, "5000 blocks of 262144 bytes: outside 2..4096 blocks"},
		{afpacket.Config{BlockTimeout: -time.Millisecond}, "block timeout -1ms: outside 1ms..1s"},
		{afpacket.Config{BlockTimeout: 2 * time.Second}, "block timeout 2s: outside 1ms..1s"},
		{afpacket.Config{SndBufBytes: -1}, "send buffer -1 bytes: negative"},
	}
	for _, tt := range tests {
		p, err := afpacket.New(3, "lo", tt.cfg)
		if err == nil {
			p.Close()
			t.Errorf("New(%+v) succeeded", tt.cfg)
			continue
		}
		if !strings.HasPrefix(err.Error(), "afpacket port 3 (lo): "+tt.want) {
			t.Errorf("New(%+v) = %q, want %q", tt.cfg, err, tt.want)
		}
	}
	if _, err := port.Open(port.Desc{ID: 4, Driver: port.DriverAFPacket}); err == nil || err.Error() != "afpacket port 4: no interface" {
		t.Errorf("Open without an interface: %v", err)
	}
}

func TestOpenByDriverName(t *testing.T) {
	pair := afpackettest.NewVethPair(t, 0)
	var p port.Port
	if err := pair.Do(func() (err error) {
		p, err = port.Open(port.Desc{ID: 7, Driver: port.DriverAFPacket, Iface: pair.A})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ap, ok := p.(*afpacket.Port)
	if !ok || p.Name() != "afpacket7" || p.ID() != 7 || ap.Iface() != pair.A || ap.MTU() != 1500 || ap.Config() != afpacket.DefaultConfig() {
		t.Fatalf("opened %T %s id %d", p, p.Name(), p.ID())
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	var s [1]shm.Slot
	if p.RxBurst(nil, s[:]) != 0 || p.TxBurst(nil, s[:]) != 0 {
		t.Fatal("bursts after Close did not return 0")
	}
	if st := p.Stats(); st != (port.Stats{}) {
		t.Fatalf("stats after Close: %+v", st)
	}

	err := pair.Do(func() error {
		_, err := port.Open(port.Desc{ID: 1, Driver: port.DriverAFPacket, Iface: "rft-none"})
		return err
	})
	if !errors.Is(err, unix.ENODEV) || err.Error() != "afpacket port 1 (rft-none): interface rft-none: no such device" {
		t.Fatalf("Open of a missing interface: %v", err)
	}
}

// TestPromiscuousWhileOpen: a port holds its interface promiscuous until it
// closes, unless configured not to; the kernel counts the holders.
func TestPromiscuousWhileOpen(t *testing.T) {
	pair := afpackettest.NewVethPair(t, 0)
	if n := promiscuity(t, pair, pair.A); n != 0 {
		t.Fatalf("promiscuity %d before any port", n)
	}
	p := openPort(t, pair, 1, pair.A, afpacket.Config{})
	q := openPort(t, pair, 2, pair.A, afpacket.Config{NoPromisc: true})
	if n := promiscuity(t, pair, pair.A); n != 1 {
		t.Fatalf("promiscuity %d with one promiscuous port open, want 1", n)
	}
	p.Close()
	if n := promiscuity(t, pair, pair.A); n != 0 {
		t.Fatalf("promiscuity %d after Close, want 0", n)
	}
	q.Close()
}

// promiscuity returns the kernel's promiscuous-mode reference count of
// iface in pair's namespace, as ip -d link shows it.
func promiscuity(t *testing.T, pair *afpackettest.Pair, iface string) int {
	t.Helper()
	out, err := exec.Command("ip", "-n", pair.NS, "-d", "link", "show", "dev", iface).CombinedOutput()
	if err != nil {
		t.Fatalf("ip link show %s: %v: %s", iface, err, out)
	}
	_, rest, ok := strings.Cut(string(out), " promiscuity ")
	n, err := strconv.Atoi(strings.Fields(rest + " x")[0])
	if !ok || err != nil {
		t.Fatalf("no promiscuity in %q", out)
	}
	return n
}

// TestVethFramesArriveInOrder runs a stream each way through a veth pair,
// each port's RxBurst and TxBurst on goroutines of their own as the
// manager's loops are: every frame arrives once, byte-identical (802.1Q tags
// included), in order, with no kernel drop, and no port receives what it
// sent.
func TestVethFramesArriveInOrder(t *testing.T) {
	testenv.CheckLeaks(t)
	pair := afpackettest.NewVethPair(t, 0)
	r, c := newRegion(t, shm.DefaultDataBytes, 4) // A's TX, A's RX, B's TX, B's RX
	a := openPort(t, pair, 1, pair.A, afpacket.Config{})
	b := openPort(t, pair, 2, pair.B, afpacket.Config{})
	n := 20000
	if raceEnabled {
		n = 3000
	}
	const window = 512 // in flight per direction: far below the ring, so the kernel never drops
	ab := stream{id: 0xA, minLen: pkt.MinFrameBytes, maxLen: 1514, vlanEvery: 7}
	ba := stream{id: 0xB, minLen: pkt.MinFrameBytes, maxLen: 1514, vlanEvery: 5}

	type result struct {
		refused, noise int
		bytes          uint64
		err            error
	}
	var (
		wg                 sync.WaitGroup
		ackAB, ackBA       atomic.Int64
		sendAB, sendBA     result
		recvAB, recvBA     result
		from, to           = []*afpacket.Port{a, b}, []*afpacket.Port{b, a}
		streams            = []stream{ab, ba}
		acks               = []*atomic.Int64{&ackAB, &ackBA}
		sends, recvs       = []*result{&sendAB, &sendBA}, []*result{&recvAB, &recvBA}
		txCaches, rxCaches = []*shm.Cache{c[0], c[2]}, []*shm.Cache{c[3], c[1]}
	)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := sends[i]
			res.refused, res.bytes, res.err = send(from[i], r, txCaches[i], streams[i], n, acks[i], window)
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := recvs[i]
			res.noise, res.err = receive(to[i], r, rxCaches[i], streams[i], n, acks[i])
		}()
	}
	wg.Wait()
	for _, res := range []result{sendAB, sendBA, recvAB, recvBA} {
		if res.err != nil {
			t.Fatal(res.err)
		}
	}
	// Own frames would have shown up in order among the peer's; a last
	// look covers any still in a block.
	drainQuiet(t, a, c[1], 10*time.Millisecond)
	drainQuiet(t, b, c[3], 10*time.Millisecond)

	for i, p := range []*afpacket.Port{a, b} {
		st, d := p.Stats(), p.Detail()
		snd, rcv := sends[i], recvs[1-i]
		t.Logf("%s: %+v, %d refusals retried, %d noise frames, %+v", p.Name(), st, snd.refused, rcv.noise, d)
		if st.TxPkts != uint64(n) || st.TxBytes != snd.bytes || st.TxDrops != 0 || d.TxRefused != uint64(snd.refused) || d.TxInvalid != 0 {
			t.Errorf("%s TX: %+v, %+v; want %d frames, %d bytes, %d refused", p.Name(), st, d, n, snd.bytes, snd.refused)
		}
		if st.RxPkts < uint64(n) || st.RxDrops != 0 || d.RxKernelDrops != 0 || d.RxTooBig != 0 || d.RxMalformed != 0 || d.RxTruncated != 0 {
			t.Errorf("%s RX: %+v, %+v; want %d frames and no drop", p.Name(), st, d, n)
		}
	}
	for i, p := range []*afpacket.Port{a, b} {
		p.TxBurst(c[2*i], nil) // free what TX may still hold
	}
	shmtest.CheckPoolWhole(t, r, c...)
}

// TestKernelDropsCounted overflows a small ring that nobody polls: the
// frames the kernel could not place are counted in RxDrops, and every frame
// sent is either delivered afterwards or counted.
func TestKernelDropsCounted(t *testing.T) {
	pair := afpackettest.NewVethPair(t, 0)
	r, c := newRegion(t, shm.DefaultDataBytes, 2)
	a := openPort(t, pair, 1, pair.A, afpacket.Config{})
	b := openPort(t, pair, 2, pair.B, afpacket.Config{BlockBytes: 4096, Blocks: 2}) // about 50 small frames
	const n = 500
	var ack atomic.Int64
	ack.Store(n) // no flow control: overflow is the point
	if _, _, err := send(a, r, c[0], stream{id: 0x5, minLen: 60, maxLen: 60}, n, &ack, n); err != nil {
		t.Fatal(err)
	}
	got := 0
	var buf [shm.BurstSize]shm.Slot
	for end := time.Now().Add(20 * time.Millisecond); time.Now().Before(end); { // several block timeouts
		k := b.RxBurst(c[1], buf[:])
		for _, sl := range buf[:k] {
			if _, _, ok := parse(r.Packet(sl)); ok {
				got++
			}
		}
		freeAll(c[1], buf[:k])
	}
	st, d := b.Stats(), b.Detail()
	t.Logf("%d delivered, %+v, %+v", got, st, d)
	if d.RxKernelDrops == 0 || st.RxDrops != d.RxKernelDrops || uint64(got)+d.RxKernelDrops != n {
		t.Fatalf("%d delivered + %d kernel drops, want > 0 drops and %d in all", got, d.RxKernelDrops, n)
	}
	if again := b.Stats(); again.RxDrops != st.RxDrops {
		t.Fatalf("RxDrops moved from %d to %d with no traffic (the kernel's counters reset on read)", st.RxDrops, again.RxDrops)
	}
	shmtest.CheckPoolWhole(t, r, c...)
}

// TestLinkDownRefusesAndRecovers: while the interface is down, TxBurst
// refuses every frame (ENETDOWN) and leaves it to the caller; once the link
// is up again both directions work without reopening the ports.
func TestLinkDownRefusesAndRecovers(t *testing.T) {
	pair := afpackettest.NewVethPair(t, 0)
	r, c := newRegion(t, shm.DefaultDataBytes, 4) // A's TX, A's RX, B's TX, B's RX
	a := openPort(t, pair, 1, pair.A, afpacket.Config{})
	b := openPort(t, pair, 2, pair.B, afpacket.Config{})
	// txOne sends frame i from p with c and reports whether TxBurst took
	// it; a refused frame is freed here, as the manager drops it.
	txOne := func(p *afpacket.Port, c *shm.Cache, i int) bool {
		var one [1]shm.Slot
		for c.Alloc(one[:]) == 0 {
			runtime.Gosched()
		}
		r.Meta(one[0]).Len = uint32(stream{id: 0x7, minLen: 60, maxLen: 300}.frame(r.Buf(one[0])[shm.HeadroomBytes:], i))
		if p.TxBurst(c, one[:]) == 1 {
			return true
		}
		freeAll(c, one[:])
		return false
	}
	if !txOne(a, c[0], 0) || len(collect(t, b, c[3], 1)) != 1 {
		t.Fatal("no frame with the link up")
	}

	ipLink(t, pair, pair.A, "down")
	if txOne(a, c[0], 1) {
		t.Fatal("TxBurst took a frame with the link down")
	}
	if d := a.Detail(); d.TxLastErrno != unix.ENETDOWN || d.TxRefused != 1 {
		t.Fatalf("link down: %+v; want 1 refused with ENETDOWN", d)
	}

	ipLink(t, pair, pair.A, "up")
	for end := time.Now().Add(progressTimeout); !txOne(a, c[0], 2); {
		if time.Now().After(end) {
			t.Fatalf("TxBurst still refuses %v after link up (%+v)", progressTimeout, a.Detail())
		}
		runtime.Gosched()
	}
	if _, i, _ := parse(collect(t, b, c[3], 1)[0]); i != 2 {
		t.Fatalf("after link up B got frame %d, want 2", i)
	}
	if !txOne(b, c[2], 3) {
		t.Fatal("B's TxBurst refused after link up")
	}
	if _, i, _ := parse(collect(t, a, c[1], 1)[0]); i != 3 {
		t.Fatalf("after link up A got frame %d, want 3", i)
	}
	shmtest.CheckPoolWhole(t, r, c...)
}

// ipLink sets iface in pair's namespace up or down.
func ipLink(t *testing.T, pair *afpackettest.Pair, iface, state string) {
	t.Helper()
	if out, err := exec.Command("ip", "-n", pair.NS, "link", "set", iface, state).CombinedOutput(); err != nil {
		t.Fatalf("ip link set %s %s: %v: %s", iface, state, err, out)
	}
}

// TestJumboFrames sends 9000-byte-MTU frames through a veth: a port whose
// slots hold them delivers them whole; one whose slots are 2 KiB counts
// them as dropped and delivers the small frame that follows.
func TestJumboFrames(t *testing.T) {
	const mtu = 9000
	pair := afpackettest.NewVethPair(t, mtu)
	big, bc := newRegion(t, shm.JumboDataBytes, 2) // A's TX, the big receiver
	small, sc := newRegion(t, shm.DefaultDataBytes, 1)
	a := openPort(t, pair, 1, pair.A, afpacket.Config{})
	bBig := openPort(t, pair, 2, pair.B, afpacket.Config{})
	bSmall := openPort(t, pair, 3, pair.B, afpacket.Config{})
	if a.MTU() != mtu {
		t.Fatalf("MTU %d, want %d", a.MTU(), mtu)
	}
	// A block too small for the MTU is refused at open.
	if err := pair.Do(func() error {
		_, err := afpacket.New(4, pair.B, afpacket.Config{BlockBytes: 8192})
		return err
	}); err == nil || !strings.Contains(err.Error(), "block size 8192: below the 9194 bytes a frame of MTU 9000 needs") {
		t.Fatalf("New with a block below the MTU: %v", err)
	}

	// Frames 0 and 1 are jumbo (the largest untagged, then the largest
	// tagged: the tag is allowed beyond the MTU); frame 2 is small.
	const maxLen = mtu + pkt.EthHeaderBytes
	frames := [][]byte{
		stream{id: 0xC, minLen: maxLen, maxLen: maxLen}.bytes(0),
		stream{id: 0xC, minLen: maxLen + pkt.VLANTagBytes, maxLen: maxLen + pkt.VLANTagBytes, vlanEvery: 1}.bytes(1),
		stream{id: 0xC, minLen: 100, maxLen: 100}.bytes(2),
	}
	slots := make([]shm.Slot, len(frames))
	for got := 0; got < len(slots); {
		got += bc[0].Alloc(slots[got:])
	}
	for i, f := range frames {
		copy(big.Buf(slots[i])[shm.HeadroomBytes:], f)
		big.Meta(slots[i]).Len = uint32(len(f))
	}
	if k := a.TxBurst(bc[0], slots); k != len(slots) {
		t.Fatalf("TxBurst took %d of %d (%+v)", k, len(slots), a.Detail())
	}

	got := collect(t, bBig, bc[1], len(frames))
	for i, f := range got {
		if string(f) != string(frames[i]) {
			t.Errorf("big slots: frame %d: %d bytes, want %d bytes as sent", i, len(f), len(frames[i]))
		}
	}
	got = collect(t, bSmall, sc[0], 1)
	if string(got[0]) != string(frames[2]) {
		t.Errorf("small slots: got a %d-byte frame, want the %d-byte one", len(got[0]), len(frames[2]))
	}
	if st, d := bSmall.Stats(), bSmall.Detail(); st.RxPkts != 1 || st.RxDrops != 2 || d.RxTooBig != 2 || d.RxKernelDrops != 0 {
		t.Errorf("small slots: %+v, %+v; want 1 frame, 2 dropped as too big", st, d)
	}
	if st := bBig.Stats(); st.RxPkts != 3 || st.RxDrops != 0 || st.RxBytes != uint64(len(frames[0])+len(frames[1])+len(frames[2])) {
		t.Errorf("big slots: %+v", st)
	}
	shmtest.CheckPoolWhole(t, big, bc...)
	shmtest.CheckPoolWhole(t, small, sc...)
}

// collect receives want frames from p (failing t if they do not come) and
// returns copies of them; it frees the slots.
func collect(t *testing.T, p *afpacket.Port, c *shm.Cache, want int) [][]byte {
	t.Helper()
	var out [][]byte
	var buf [shm.BurstSize]shm.Slot
	r := c.Region()
	for end := time.Now().Add(progressTimeout); len(out) < want; {
		k := p.RxBurst(c, buf[:])
		for _, sl := range buf[:k] {
			if _, _, ok := parse(r.Packet(sl)); ok {
				out = append(out, append([]byte(nil), r.Packet(sl)...))
			}
		}
		freeAll(c, buf[:k])
		if k == 0 {
			if time.Now().After(end) {
				t.Fatalf("%s: received %d of %d frames (%+v)", p.Name(), len(out), want, p.Detail())
			}
			runtime.Gosched()
		}
	}
	return out
}

// TestTxDropsFramesTheLinkCannotCarry: frames shorter than an Ethernet
// header or longer than the MTU allows are consumed, counted and not sent;
// the frames around them go out in order.
func TestTxDropsFramesTheLinkCannotCarry(t *testing.T) {
	pair := afpackettest.NewVethPair(t, 0)
	r, c := newRegion(t, shm.DefaultDataBytes, 2)
	a := openPort(t, pair, 1, pair.A, afpacket.Config{})
	b := openPort(t, pair, 2, pair.B, afpacket.Config{})
	tagged := func(n int) []byte { return stream{id: 0xD, minLen: n, maxLen: n, vlanEvery: 1}.bytes(0) }
	plain := func(n, i int) []byte { return stream{id: 0xD, minLen: n, maxLen: n}.bytes(i) }
	frames := []struct {
		f    []byte
		sent bool
	}{
		{plain(100, 1), true},
		{plain(1515, 2), false},   // MTU + header + 1
		{make([]byte, 13), false}, // shorter than a header
		{tagged(1518), true},      // a tag may exceed the MTU
		{tagged(1519), false},
		{plain(1514, 4), true},
	}
	slots := make([]shm.Slot, len(frames))
	for got := 0; got < len(slots); {
		got += c[0].Alloc(slots[got:])
	}
	var want [][]byte
	for i, f := range frames {
		copy(r.Buf(slots[i])[shm.HeadroomBytes:], f.f)
		r.Meta(slots[i]).Len = uint32(len(f.f))
		if f.sent {
			want = append(want, f.f)
		}
	}
	if k := a.TxBurst(c[0], slots); k != len(slots) {
		t.Fatalf("TxBurst took %d of %d", k, len(slots))
	}
	if st, d := a.Stats(), a.Detail(); st.TxPkts != 3 || st.TxDrops != 3 || d.TxInvalid != 3 || d.TxRefused != 0 || st.TxBytes != 100+1518+1514 {
		t.Fatalf("%+v, %+v; want 3 sent, 3 invalid", st, d)
	}
	got := collect(t, b, c[1], len(want))
	for i := range want {
		if string(got[i]) != string(want[i]) {
			t.Errorf("frame %d: %d bytes, want %d", i, len(got[i]), len(want[i]))
		}
	}
	shmtest.CheckPoolWhole(t, r, c...)
}

// TestTxHoldsSentSlotsWhileDrainFull: when the TX cache's drain ring is
// full, TxBurst keeps the slots it sent until it can free them, refuses new
// frames meanwhile, and TxBurst(c, nil) frees them once the pool has
// serviced the ring. No slot is lost.
func TestTxHoldsSentSlotsWhileDrainFull(t *testing.T) {
	pair := afpackettest.NewVethPair(t, 0)
	o := shmtest.SmallOptions()
	o.DataBytes = shm.DefaultDataBytes
	r := shmtest.TempRegion(t, o) // no service loop: the test services the pool
	for _, ow := range []shm.OwnerID{1, 2} {
		if err := r.Pool().AddOwner(ow, 0); err != nil {
			t.Fatal(err)
		}
	}
	tx, _ := r.OpenCache(1)
	rx, _ := r.OpenCache(2)
	a := openPort(t, pair, 1, pair.A, afpacket.Config{})
	b := openPort(t, pair, 2, pair.B, afpacket.Config{})

	// fill will fill the drain ring; frames are sent; more comes after.
	held := make([]shm.Slot, o.CacheCap+shm.BurstSize+1)
	for got := 0; got < len(held); r.Pool().Service() {
		got += tx.Alloc(held[got:])
	}
	fill, frames, more := held[:o.CacheCap], held[o.CacheCap:len(held)-1], held[len(held)-1:]
	s := stream{id: 0x6, minLen: 60, maxLen: 200}
	for i, sl := range frames {
		r.Meta(sl).Len = uint32(s.frame(r.Buf(sl)[shm.HeadroomBytes:], i))
	}
	if k := tx.Free(fill); k != len(fill) {
		t.Fatalf("drain ring took %d of %d", k, len(fill))
	}
	if k := a.TxBurst(tx, frames); k != len(frames) {
		t.Fatalf("TxBurst took %d of %d with the drain ring full", k, len(frames))
	}
	r.Meta(more[0]).Len = 60
	if k := a.TxBurst(rx, nil); k != 0 { // the wrong cache: must not touch them
		t.Fatalf("TxBurst with another cache took %d", k)
	}
	if k := a.TxBurst(tx, more); k != 0 {
		t.Fatalf("TxBurst took %d while holding unfreed slots", k)
	}
	if st, d := a.Stats(), a.Detail(); st.TxPkts != shm.BurstSize || st.TxDrops != 0 || d.TxRefused != 1 {
		t.Fatalf("%+v, %+v; want %d sent and 1 refused", st, d, shm.BurstSize)
	}
	r.Pool().Service()
	if k := a.TxBurst(tx, nil); k != 0 || tx.Free(more) != 1 || tx.Allocs != tx.Frees {
		t.Fatalf("flush: %d allocs, %d frees", tx.Allocs, tx.Frees)
	}
	var buf [shm.BurstSize]shm.Slot
	got := 0
	for end := time.Now().Add(progressTimeout); got < shm.BurstSize; r.Pool().Service() {
		k := b.RxBurst(rx, buf[:])
		for _, sl := range buf[:k] {
			if _, i, ok := parse(r.Packet(sl)); ok {
				if i != got {
					t.Fatalf("frame %d, want %d", i, got)
				}
				got++
			}
		}
		rx.Free(buf[:k])
		if time.Now().After(end) {
			t.Fatalf("received %d of %d", got, shm.BurstSize)
		}
	}
	shmtest.CheckPoolWhole(t, r, tx, rx)
}

// TestBurstsDoNotAllocate: after warm-up, a TX burst on one port and the RX
// bursts that take it on the other allocate nothing.
func TestBurstsDoNotAllocate(t *testing.T) {
	pair := afpackettest.NewVethPair(t, 0)
	r, c := newRegion(t, shm.DefaultDataBytes, 2)
	a := openPort(t, pair, 1, pair.A, afpacket.Config{})
	b := openPort(t, pair, 2, pair.B, afpacket.Config{})
	s := stream{id: 0xE, minLen: 60, maxLen: 1514, vlanEvery: 3}
	var tx, rx [shm.BurstSize]shm.Slot
	seq := 0
	round := func() {
		k := 0
		for k == 0 {
			k = c[0].Alloc(tx[:])
		}
		for _, sl := range tx[:k] {
			r.Meta(sl).Len = uint32(s.frame(r.Buf(sl)[shm.HeadroomBytes:], seq))
			seq++
		}
		sent := a.TxBurst(c[0], tx[:k])
		freeAll(c[0], tx[sent:k])
		for end, got := time.Now().Add(progressTimeout), 0; got < sent; {
			n := b.RxBurst(c[1], rx[:])
			got += n
			freeAll(c[1], rx[:n])
			if n == 0 && time.Now().After(end) {
				t.Fatalf("received %d of %d", got, sent)
			}
		}
	}
	round()
	if allocs := testing.AllocsPerRun(100, round); allocs != 0 {
		t.Fatalf("%v allocations per TX+RX burst, want 0", allocs)
	}
	if st := b.Stats(); st.RxDrops != 0 || st.RxPkts != uint64(seq) {
		t.Fatalf("receiver %+v, want %d frames", st, seq)
	}
	shmtest.CheckPoolWhole(t, r, c...)
}
