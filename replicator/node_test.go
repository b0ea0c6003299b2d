package replicator_test

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/internal/testenv"
	"github.com/reinforce-nfv/reinforce/replicator"
	"github.com/reinforce-nfv/reinforce/replicator/bfd"
	"github.com/reinforce-nfv/reinforce/replicator/reptest"
)

var testPSK = []byte("0123456789abcdef-test-psk")

// primaryResult is what a primary reports: every release with its time,
// and its counters.
type primaryResult struct {
	Releases []release
	Stats    replicator.NodeStats
}

type release struct {
	Latch replicator.LatchID
	Nanos int64 // CLOCK_MONOTONIC via time.Since(epoch) is per process: use wall ns
}

// standbyResult is the standby's log: each applied transaction's latches in
// order (a snapshot resets the state), with the time it was applied.
type standbyResult struct {
	Log   []applied
	State []replicator.LatchID
	Stats replicator.NodeStats
}

type applied struct {
	TxID     replicator.TxID
	Snapshot bool
	Latches  []replicator.LatchID
	Nanos    int64
}

func nodeConfig(role replicator.Role, local, peer netip.AddrPort) replicator.NodeConfig {
	return replicator.NodeConfig{
		Replicator: replicator.Config{Role: role, Epoch: 1, Digest: replicator.Digest{7}, RetransmitTicks: 20, JoinTicks: 50},
		BFD:        bfd.Config{DesiredMinTxMicros: 2000, RequiredMinRxMicros: 2000, DetectMult: 5, SlowTxMicros: 20000, AuthType: bfd.AuthMeticulousSHA1},
		Local:      local, Peer: peer, PSK: testPSK, Initiator: role == replicator.RoleStandby, Seed: 1,
	}
}

// pacing spaces proposals: sleep after every every-th; midway runs once
// halfway through.
type pacing struct {
	every  int
	sleep  time.Duration
	midway func()
}

// runPrimary proposes transactions 1..n of size bytes once the standby has
// joined, waits for every release, and stops.
func runPrimary(local, peer netip.AddrPort, n, size int, pace pacing, timeout time.Duration) (primaryResult, error) {
	var mu sync.Mutex
	var res primaryResult
	var proposed []replicator.LatchID
	cfg := nodeConfig(replicator.RolePrimary, local, peer)
	cfg.Release = func(l replicator.LatchID) {
		mu.Lock()
		res.Releases = append(res.Releases, release{l, time.Now().UnixNano()})
		mu.Unlock()
	}
	cfg.Snapshot = func() []byte {
		mu.Lock()
		defer mu.Unlock()
		var b []byte
		for _, l := range proposed {
			b = append(b, reptest.Record(l, size)...)
		}
		return b
	}
	node, err := replicator.StartNode(cfg)
	if err != nil {
		return res, err
	}
	deadline := time.Now().Add(timeout)
	for !node.Stats().Joined {
		if time.Now().After(deadline) {
			node.Stop()
			return res, fmt.Errorf("standby never joined: %+v", node.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	lastReleased := func() replicator.LatchID {
		mu.Lock()
		defer mu.Unlock()
		if len(res.Releases) == 0 {
			return 0
		}
		return res.Releases[len(res.Releases)-1].Latch
	}
	for l := replicator.LatchID(1); l <= replicator.LatchID(n); {
		mu.Lock()
		proposed = append(proposed, l)
		mu.Unlock()
		err := node.Propose(l, reptest.Record(l, size))
		if errors.Is(err, replicator.ErrBackpressure) {
			mu.Lock()
			proposed = proposed[:len(proposed)-1]
			mu.Unlock()
			time.Sleep(100 * time.Microsecond)
			continue
		}
		if err != nil {
			node.Stop()
			return res, err
		}
		if pace.every > 0 && int(l)%pace.every == 0 {
			// Rounds at a steady rate rather than all at once, so the
			// stream is many transactions, not one coalesced lump.
			time.Sleep(pace.sleep)
		}
		if pace.midway != nil && int(l) == n/2 {
			pace.midway()
		}
		l++
	}
	for lastReleased() != replicator.LatchID(n) {
		if time.Now().After(deadline) {
			node.Stop()
			return res, fmt.Errorf("released up to %d of %d: %+v", lastReleased(), n, node.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	// Let the final ack's retransmissions settle before the standby stops.
	time.Sleep(20 * time.Millisecond)
	res.Stats = node.Stats()
	return res, node.Stop()
}

// runStandby applies what arrives until n latches are in its state and
// stop is closed (or timeout).
func runStandby(local, peer netip.AddrPort, n int, stop <-chan struct{}, timeout time.Duration) (standbyResult, error) {
	var mu sync.Mutex
	var res standbyResult
	cfg := nodeConfig(replicator.RoleStandby, local, peer)
	cfg.Apply = func(a replicator.Apply) error {
		ls, err := reptest.Latches(a.Payload)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		if a.Snapshot {
			res.State = nil
		}
		res.State = append(res.State, ls...)
		res.Log = append(res.Log, applied{a.TxID, a.Snapshot, ls, time.Now().UnixNano()})
		return nil
	}
	node, err := replicator.StartNode(cfg)
	if err != nil {
		return res, err
	}
	deadline := time.After(timeout)
	for done := false; !done; {
		select {
		case <-stop:
			done = true
		case <-deadline:
			done = true
		case <-time.After(time.Millisecond):
		}
	}
	mu.Lock()
	res.Stats = node.Stats()
	mu.Unlock()
	return res, node.Stop()
}

// checkRun asserts the acceptance properties from both sides' records:
// the standby applied latches 1..n exactly once and in order, and every
// release came after the standby applied the latch it released.
func checkRun(t *testing.T, n int, p primaryResult, s standbyResult) {
	t.Helper()
	want := make([]replicator.LatchID, n)
	for i := range want {
		want[i] = replicator.LatchID(i + 1)
	}
	if !slices.Equal(s.State, want) {
		t.Fatalf("standby state has %d latches, want 1..%d in order (first differences: %v)", len(s.State), n, firstDiff(s.State, want))
	}
	var seq []replicator.LatchID // every latch applied, across snapshots
	appliedAt := map[replicator.LatchID]int64{}
	for _, a := range s.Log {
		if a.Snapshot {
			seq = nil
		}
		for _, l := range a.Latches {
			if _, dup := appliedAt[l]; dup && !a.Snapshot {
				t.Fatalf("latch %d applied twice", l)
			}
			appliedAt[l] = a.Nanos
		}
		seq = append(seq, a.Latches...)
	}
	if !slices.Equal(seq, want) {
		t.Fatalf("applied sequence differs from 1..%d", n)
	}
	var last replicator.LatchID
	for _, r := range p.Releases {
		if r.Latch <= last {
			t.Fatalf("release %d after %d", r.Latch, last)
		}
		for l := last + 1; l <= r.Latch; l++ {
			at, ok := appliedAt[l]
			if !ok || at > r.Nanos {
				t.Fatalf("latch %d released at %d before the standby applied it (%v, %d)", l, r.Nanos, ok, at)
			}
		}
		last = r.Latch
	}
	if last != replicator.LatchID(n) || p.Stats.Replicator.Released != last {
		t.Fatalf("released up to %d (counter %d), want %d", last, p.Stats.Replicator.Released, n)
	}
}

func firstDiff(a, b []replicator.LatchID) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("at %d: %d vs %d", i, a[i], b[i])
		}
	}
	return fmt.Sprintf("lengths %d vs %d", len(a), len(b))
}

func TestNodeLoopback(t *testing.T) {
	testenv.CheckLeaks(t)
	pa := netip.MustParseAddrPort("127.0.0.1:47811")
	sa := netip.MustParseAddrPort("127.0.0.1:47812")
	const n, size = 500, 600
	stop := make(chan struct{})
	sres := make(chan standbyResult, 1)
	serr := make(chan error, 1)
	go func() {
		r, err := runStandby(sa, pa, n, stop, 30*time.Second)
		sres <- r
		serr <- err
	}()
	p, err := runPrimary(pa, sa, n, size, pacing{}, 20*time.Second)
	close(stop)
	s := <-sres
	if err2 := <-serr; err2 != nil {
		t.Fatal(err2)
	}
	if err != nil {
		t.Fatal(err)
	}
	checkRun(t, n, p, s)
	t.Logf("primary %+v", p.Stats)
	t.Logf("standby %+v", s.Stats)
}

// BenchmarkNodeRoundTrip measures proposal → release over loopback UDP: one
// 64-byte transaction at a time, so each is a full round (send, stage,
// apply, ack, release). The p50/p99 are the latency replication adds to a
// latched packet on an idle system, before the network's own delay.
func BenchmarkNodeRoundTrip(b *testing.B) {
	pa := netip.MustParseAddrPort("127.0.0.1:47821")
	sa := netip.MustParseAddrPort("127.0.0.1:47822")
	released := make(chan replicator.LatchID, 16)
	pc := nodeConfig(replicator.RolePrimary, pa, sa)
	pc.Release = func(l replicator.LatchID) { released <- l }
	pc.Snapshot = func() []byte { return nil }
	sc := nodeConfig(replicator.RoleStandby, sa, pa)
	sc.Apply = func(replicator.Apply) error { return nil }
	s, err := replicator.StartNode(sc)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Stop()
	p, err := replicator.StartNode(pc)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Stop()
	for !p.Stats().Joined {
		time.Sleep(time.Millisecond)
	}
	payload := make([]byte, 64)
	var lat []time.Duration
	l := replicator.LatchID(0)
	for b.Loop() {
		l++
		t0 := time.Now()
		if err := p.Propose(l, payload); err != nil {
			b.Fatal(err)
		}
		for got := <-released; got < l; got = <-released {
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
