package arbiter_test

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/internal/testenv"
	"github.com/reinforce-nfv/reinforce/replicator/arbiter"
	"github.com/reinforce-nfv/reinforce/replicator/bfd"
)

var testPSK = []byte("0123456789abcdef-arbiter-driver")

var (
	idA   = arbiter.MemberID(arbiter.NameID("a"))
	idB   = arbiter.MemberID(arbiter.NameID("b"))
	idC   = arbiter.MemberID(arbiter.NameID("c")) // configured, never running
	chain = arbiter.ChainID(arbiter.NameID("c0"))
	lo    = netip.MustParseAddrPort("127.0.0.1:0")
)

// relaxed is the profile of tests about mechanics rather than timing:
// slow enough that a loaded 2-vCPU machine (other tests, the race
// detector) does not make BFD declare a live member down.
var relaxed = arbiter.Profile{Name: "relaxed", TxInterval: 2 * time.Millisecond, RxInterval: 2 * time.Millisecond, DetectMult: 10, Lease: 30 * time.Millisecond}

// recorder collects a client's callbacks with their times.
type recorder struct {
	mu        sync.Mutex
	promote   []time.Time
	demote    []time.Time
	yields    int
	epochs    []arbiter.Epoch
	c         atomic.Pointer[arbiter.Client]
	autoYield atomic.Bool // OnYield calls Yielded at once
	// noJoin: the manager never catches up (SetStandbyReady is never
	// called); else it "joins" the new primary at once on OnDemote.
	noJoin    atomic.Bool
	demotedAt atomic.Uint64 // the epoch of the last OnDemote (0: none)
}

// join plays the manager's replication: on a demotion to epoch e it joins
// the primary (nothing to copy in this test) and says so.
func (r *recorder) join(e arbiter.Epoch) {
	if c := r.c.Load(); c != nil && !r.noJoin.Load() {
		c.SetStandbyReady(chain, e, true)
	}
}

func (r *recorder) config(id arbiter.MemberID, server netip.AddrPort, p arbiter.Profile) arbiter.ClientConfig {
	return arbiter.ClientConfig{
		Local: lo, Arbiter: server, ID: id, Chains: []arbiter.ChainID{chain}, PSK: testPSK,
		Profile: p, SlowTx: 20 * time.Millisecond,
		OnPromote: func(_ arbiter.ChainID, e arbiter.Epoch) {
			r.mu.Lock()
			r.promote = append(r.promote, time.Now())
			r.epochs = append(r.epochs, e)
			r.mu.Unlock()
		},
		OnDemote: func(_ arbiter.ChainID, e arbiter.Epoch, _ arbiter.MemberID) {
			r.mu.Lock()
			r.demote = append(r.demote, time.Now())
			r.mu.Unlock()
			r.demotedAt.Store(uint64(e))
			r.join(e)
		},
		OnYield: func(ch arbiter.ChainID) {
			r.mu.Lock()
			r.yields++
			r.mu.Unlock()
			if r.autoYield.Load() {
				// Nothing held in this test: drained at once.
				r.c.Load().Yielded(ch)
			}
		},
	}
}

func (r *recorder) promotions() ([]time.Time, []arbiter.Epoch) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.promote...), append([]arbiter.Epoch(nil), r.epochs...)
}

func (r *recorder) demotions() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.demote)
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		// Polling (not spinning: a spinning goroutine on each of the two
		// CPUs keeps the netpoller from waking the drivers). Go's sleeps
		// last ~1 ms here, so times measured by polling are that coarse;
		// the callbacks' own timestamps are exact.
		time.Sleep(100 * time.Microsecond)
	}
}

type testbed struct {
	p         arbiter.Profile
	srv       *arbiter.Server
	events    chan arbiter.Event
	redirects chan arbiter.Redirect
	ra, rb    *recorder
	a, b      *arbiter.Client
}

func startTestbed(t *testing.T, p arbiter.Profile) *testbed { return startTestbedWith(t, p, nil) }

// startTestbedWith is startTestbed with setup run before the clients start
// (a recorder's settings: a demotion may come within a round trip).
func startTestbedWith(t *testing.T, p arbiter.Profile, setup func(*testbed)) *testbed {
	tb := &testbed{p: p, events: make(chan arbiter.Event, 1024), redirects: make(chan arbiter.Redirect, 16), ra: &recorder{}, rb: &recorder{}}
	if setup != nil {
		setup(tb)
	}
	srv, err := arbiter.StartServer(arbiter.ServerConfig{
		Listen:  lo,
		Members: []arbiter.ServerMember{{ID: idA, Name: "a"}, {ID: idB, Name: "b"}, {ID: idC, Name: "c"}},
		Chains:  []arbiter.ChainConfig{{ID: chain, Name: "c0", Members: [2]arbiter.MemberID{idA, idB}, Primary: idA, Epoch: 1}},
		PSK:     testPSK, Profile: p, SlowTx: 20 * time.Millisecond,
		OnRedirect: func(r arbiter.Redirect) {
			select {
			case tb.redirects <- r:
			default:
			}
		},
		OnEvent: func(e arbiter.Event) {
			select {
			case tb.events <- e:
			default:
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	tb.srv = srv
	t.Cleanup(func() { srv.Close() })
	tb.a = tb.startClient(t, tb.ra, idA)
	tb.b = tb.startClient(t, tb.rb, idB)
	return tb
}

func (tb *testbed) startClient(t *testing.T, r *recorder, id arbiter.MemberID) *arbiter.Client {
	c, err := arbiter.StartClient(r.config(id, tb.srv.Addr(), tb.p))
	if err != nil {
		t.Fatal(err)
	}
	r.c.Store(c)
	// A demotion that came before the Store (unlikely: a round trip) is
	// joined now.
	if e := r.demotedAt.Load(); e != 0 {
		r.join(arbiter.Epoch(e))
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// watchOne polls both gates until stop and fails t if both are ever open
// at once (a's gate read before and after b's, so a preemption between
// the reads cannot fake a violation).
func watchOne(t *testing.T, a, b *arbiter.Gate, stop chan struct{}, done *sync.WaitGroup) {
	done.Add(1)
	go func() {
		defer done.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if a.Allowed() && b.Allowed() && a.Allowed() {
				t.Error("both members may release the chain at once")
				return
			}
			time.Sleep(50 * time.Microsecond)
		}
	}()
}

// TestFailoverLoopback: the primary's Client stops (its server died); the
// arbiter detects it, waits out the lease and promotes the standby. The
// time from the stop to the standby's OnPromote is reported, for both
// profiles (under the race detector only the relaxed one: the detector
// slows this machine into spurious detections).
func TestFailoverLoopback(t *testing.T) {
	profiles := []arbiter.Profile{arbiter.ProfileDefault, arbiter.ProfileLoaded}
	if raceEnabled {
		profiles = []arbiter.Profile{relaxed}
	}
	for _, p := range profiles {
		t.Run(p.Name, func(t *testing.T) {
			// A spurious detection before the stop (this 2-vCPU machine is
			// shared with other tests) is not what this test measures: it
			// is logged and the run repeated, at most three times.
			for attempt := 1; ; attempt++ {
				if failoverOnce(t, p) || attempt == 3 {
					return
				}
				t.Logf("attempt %d: spurious failover before the stop (machine loaded); again", attempt)
			}
		})
	}
}

// failoverOnce runs the failover and reports false if the arbiter failed
// over before the primary was stopped.
func failoverOnce(t *testing.T, p arbiter.Profile) bool {
	testenv.CheckLeaks(t)
	tb := startTestbed(t, p)
	defer func() { tb.a.Close(); tb.b.Close(); tb.srv.Close() }()
	ga, gb := tb.a.Gate(chain), tb.b.Gate(chain)
	waitFor(t, "a to hold a lease", 5*time.Second, ga.Allowed)
	if gb.Allowed() {
		t.Fatal("standby may release")
	}
	waitFor(t, "b to be a ready standby", 5*time.Second, func() bool { return tb.srv.Stats().Chains[0].StandbyReady })
	waitFor(t, "b's stats to say it is a ready standby", time.Second, func() bool { return tb.b.Stats().Chains[0].StandbyReady })
	stop := make(chan struct{})
	var wg sync.WaitGroup
	watchOne(t, ga, gb, stop, &wg)
	time.Sleep(50 * time.Millisecond) // leases renewed a few times
	if tb.srv.Stats().Arbiter.Promotions != 0 {
		close(stop)
		wg.Wait()
		return false
	}
	if p, _ := tb.ra.promotions(); len(p) != 1 {
		t.Fatalf("a promoted %d times", len(p))
	}

	stopped := time.Now()
	tb.a.Close()
	if ga.Allowed() {
		t.Fatal("a stopped client's gate is open")
	}
	leaseEnd := ga.Expiry() // the end of the last lease a held
	waitFor(t, "b's promotion", 5*time.Second, func() bool { p, _ := tb.rb.promotions(); return len(p) > 0 })
	promos, epochs := tb.rb.promotions()
	promoted := promos[0]
	waitFor(t, "b to hold a lease", time.Second, gb.Allowed)
	released := time.Now()
	close(stop)
	wg.Wait()

	toPromote := promoted.Sub(stopped)
	t.Logf("profile %s (detect %v, lease %v, margin %v): stop → OnPromote %v, → b may release %v",
		p.Name, p.Detect(), p.Lease, arbiter.DefaultMargin, toPromote, released.Sub(stopped))
	// Guarantee 5 on real clocks: b is promoted only after a's last lease
	// ended, by about the margin.
	t.Logf("promoted %v after a's last lease ended (margin %v)", promoted.Sub(leaseEnd), arbiter.DefaultMargin)
	if leaseEnd.IsZero() || !promoted.After(leaseEnd) {
		t.Fatalf("promoted at %v, a's lease ended at %v", promoted, leaseEnd)
	}
	if epochs[0] <= 1 {
		t.Fatalf("promoted at epoch %d", epochs[0])
	}
	t.Logf("b: %+v", tb.b.Stats().Member)
	st := tb.srv.Stats()
	t.Logf("arbiter: %+v", st.Arbiter)
	if st.Arbiter.Failovers != 1 || st.Chains[0].Primary != idB {
		t.Fatalf("stats %+v", st)
	}
	var sawDown, sawPromoting bool
	for len(tb.events) > 0 {
		e := <-tb.events
		sawDown = sawDown || e.Kind == arbiter.EventPrimaryDown && e.Member == idA
		sawPromoting = sawPromoting || e.Kind == arbiter.EventPromoting && e.Member == idB
	}
	if !sawDown || !sawPromoting {
		t.Fatal("events missing primary-down or promoting")
	}
	// The ingress was told: first to a at epoch 1, then to b at the new epoch.
	if r := <-tb.redirects; r.To != idA || r.Epoch != 1 {
		t.Fatalf("first redirect %+v", r)
	}
	if r := <-tb.redirects; r.To != idB || r.Epoch != epochs[0] {
		t.Fatalf("failover redirect %+v, b promoted at %d", r, epochs[0])
	}

	// a's server comes back: a new incarnation is demoted and stays a
	// standby.
	ra2 := &recorder{}
	a2 := tb.startClient(t, ra2, idA)
	waitFor(t, "a's demotion", 5*time.Second, func() bool { return ra2.demotions() > 0 })
	if a2.CanRelease(chain) {
		t.Fatal("after rejoin: a may release")
	}
	// b's lease is renewed every few milliseconds; on a loaded machine a
	// renewal can come after the last lease ended (b then holds none for a
	// moment, which is safe): b must hold one again, a never.
	waitFor(t, "b to hold a lease after the rejoin", time.Second, gb.Allowed)
	if a2.CanRelease(chain) {
		t.Fatal("after rejoin: a may release")
	}
	waitFor(t, "the arbiter to see a's demotion", time.Second, func() bool { return tb.srv.Stats().Chains[0].StandbyAcked })
	waitFor(t, "a to be a ready standby again", time.Second, func() bool { return tb.srv.Stats().Chains[0].StandbyReady })
	a2.Close()
	return true
}

// TestNoReadyStandbyLoopback: the standby never catches up (its manager
// never reports ready). The primary's Client stops: nothing is promoted,
// the arbiter says why, and nobody may release. The primary's server comes
// back as a new process (its state rebuilt from nothing): it is re-promoted
// at a new epoch, with EventStateLost; the standby is demoted to it.
func TestNoReadyStandbyLoopback(t *testing.T) {
	testenv.CheckLeaks(t)
	tb := startTestbedWith(t, relaxed, func(tb *testbed) { tb.rb.noJoin.Store(true) })
	ga, gb := tb.a.Gate(chain), tb.b.Gate(chain)
	waitFor(t, "a to hold a lease", 5*time.Second, ga.Allowed)
	waitFor(t, "the standby to acknowledge", 5*time.Second, func() bool { return tb.srv.Stats().Chains[0].StandbyAcked })
	if err := tb.srv.Switchover(chain); !errors.Is(err, arbiter.ErrStandbyNotReady) {
		t.Fatalf("switchover to an unready standby: %v", err)
	}
	if st := tb.srv.Stats().Chains[0]; st.StandbyReady {
		t.Fatalf("standby ready: %+v", st)
	}

	tb.a.Close()
	var sawNoReady bool
	deadline := time.After(5 * time.Second)
	for !sawNoReady {
		select {
		case e := <-tb.events:
			if e.Kind == arbiter.EventPromoting {
				t.Fatalf("promoted: %+v", e)
			}
			if e.Kind == arbiter.EventNoReadyStandby && e.Member == idB {
				sawNoReady = true
				t.Logf("event: %v: %s", e.Kind, e.Detail)
			}
		case <-deadline:
			t.Fatal("no no-ready-standby event")
		}
	}
	// Several leases long: still nothing promoted, nothing released.
	time.Sleep(3 * tb.p.Lease)
	if p, _ := tb.rb.promotions(); len(p) != 0 || gb.Allowed() {
		t.Fatalf("b promoted %d times, may release %v", len(p), gb.Allowed())
	}
	if st := tb.srv.Stats(); st.Arbiter.Promotions != 0 || st.Chains[0].Phase != arbiter.PhaseFailover {
		t.Fatalf("arbiter: %+v %+v", st.Arbiter, st.Chains[0])
	}

	ra2 := &recorder{}
	a2 := tb.startClient(t, ra2, idA)
	waitFor(t, "a's re-promotion", 5*time.Second, func() bool { p, _ := ra2.promotions(); return len(p) > 0 })
	ga2 := a2.Gate(chain)
	waitFor(t, "a to hold a lease again", 5*time.Second, ga2.Allowed)
	waitFor(t, "b's demotion to a", 5*time.Second, func() bool { return tb.rb.demotions() > 1 })
	_, epochs := ra2.promotions()
	var sawLost bool
	for len(tb.events) > 0 {
		e := <-tb.events
		sawLost = sawLost || e.Kind == arbiter.EventStateLost && e.Member == idA
	}
	st := tb.srv.Stats()
	if !sawLost || st.Arbiter.StateLost != 1 || st.Arbiter.Returns != 1 || st.Chains[0].Primary != idA || epochs[0] <= 1 || gb.Allowed() {
		t.Fatalf("state-lost event %v, arbiter %+v, chain %+v, a promoted at %v", sawLost, st.Arbiter, st.Chains[0], epochs)
	}
	a2.Close()
	tb.b.Close()
	tb.srv.Close()
}

// TestSwitchoverLoopback: a planned switchover promotes the standby as soon
// as the primary yields, without waiting out the lease; then back.
func TestSwitchoverLoopback(t *testing.T) {
	testenv.CheckLeaks(t)
	tb := startTestbed(t, relaxed)
	tb.ra.autoYield.Store(true)
	tb.rb.autoYield.Store(true)
	ga, gb := tb.a.Gate(chain), tb.b.Gate(chain)
	waitFor(t, "a to hold a lease", 5*time.Second, ga.Allowed)
	waitFor(t, "the standby to acknowledge", 5*time.Second, func() bool { return tb.srv.Stats().Chains[0].StandbyAcked })
	waitFor(t, "the standby to be ready", 5*time.Second, func() bool { return tb.srv.Stats().Chains[0].StandbyReady })
	stop := make(chan struct{})
	var wg sync.WaitGroup
	watchOne(t, ga, gb, stop, &wg)

	start := time.Now()
	if err := tb.srv.Switchover(chain); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b to hold a lease", 5*time.Second, gb.Allowed)
	took := time.Since(start)
	t.Logf("switchover: Switchover → new primary may release in %v (lease %v not waited out)", took, tb.p.Lease)
	if ga.Allowed() {
		t.Fatal("a may still release")
	}
	waitFor(t, "a's demotion", time.Second, func() bool { return tb.ra.demotions() > 0 })
	waitFor(t, "the arbiter to see a's demotion", time.Second, func() bool { return tb.srv.Stats().Chains[0].StandbyAcked })
	waitFor(t, "a to be a ready standby", time.Second, func() bool { return tb.srv.Stats().Chains[0].StandbyReady })
	if err := tb.srv.Switchover(chain); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a to hold a lease again", 5*time.Second, ga.Allowed)
	close(stop)
	wg.Wait()
	st := tb.srv.Stats()
	if st.Arbiter.Switchovers != 2 || st.Arbiter.Failovers != 0 || st.Chains[0].Primary != idA {
		t.Fatalf("stats %+v", st.Arbiter)
	}
	tb.a.Close()
	tb.b.Close()
	tb.srv.Close()
}

// TestAuthFailuresCountedAndIgnored: garbage, messages under another key,
// replays and BFD packets under another member's key reach the arbiter;
// each is counted and changes nothing.
func TestAuthFailuresCountedAndIgnored(t *testing.T) {
	testenv.CheckLeaks(t)
	tb := startTestbed(t, relaxed)
	ga := tb.a.Gate(chain)
	waitFor(t, "a to hold a lease", 5*time.Second, ga.Allowed)

	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(tb.srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	forger, _ := arbiter.NewCodec(idB, []byte("not the right key, 16+ bytes"), uint64(time.Now().UnixNano()))
	honest, _ := arbiter.NewCodec(idB, testPSK, 1) // sequence numbers long below b's own
	yielded := arbiter.Msg{Type: arbiter.MsgYielded, Chain: chain, Epoch: 1, Inc: 1}
	promoted := arbiter.Msg{Type: arbiter.MsgPromoted, Chain: chain, Epoch: 1 << 62, Inc: 1 << 62}
	// A BFD packet for member c's (Down) session under the wrong key.
	wrongBFD := bfd.ControlPacket{Version: 1, State: bfd.Down, DetectMult: 3, MyDisc: 77, DesiredMinTx: 1000, RequiredMinRx: 1000,
		Auth: true, AuthType: bfd.AuthMeticulousSHA1, KeyID: 1}
	for i := range 10 {
		conn.Write([]byte{0xA1, 1, 2, 3})                         // malformed
		conn.Write(forger.Seal(nil, arbiter.ArbiterID, promoted)) // wrong key: would be adopted if believed
		conn.Write(honest.Seal(nil, arbiter.ArbiterID, yielded))  // replay window: too old
		bad := append([]byte{arbiter.KindBFD, 0, 0, 0, 0}, make([]byte, 52)...)
		conn.Write(bad) // BFD from "member 0": unknown
		wrongBFD.Seq = uint32(i + 1)
		pkt := bfd.Append(nil, &wrongBFD)
		bfd.Sign(pkt, bfd.AuthMeticulousSHA1, []byte("wrong key, 20 bytes."))
		conn.Write(append([]byte{arbiter.KindBFD, byte(idC >> 24), byte(idC >> 16), byte(idC >> 8), byte(idC)}, pkt...))
	}
	waitFor(t, "the arbiter's counters", 5*time.Second, func() bool {
		w := tb.srv.Stats().Wire
		return w.Malformed >= 10 && w.AuthFailed >= 20 && w.Replayed >= 10 && w.Unknown >= 10
	})
	if c := tb.srv.Stats().Members[2]; c.BFD.AuthFailures < 10 || c.BFDState != bfd.Down {
		t.Fatalf("member c's session: %+v", c)
	}

	// The member side: forged and replayed arbiter messages.
	toA, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(tb.a.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer toA.Close()
	fakeArb, _ := arbiter.NewCodec(arbiter.ArbiterID, []byte("not the right key, 16+ bytes"), uint64(time.Now().UnixNano()))
	oldArb, _ := arbiter.NewCodec(arbiter.ArbiterID, testPSK, 1)
	demote := arbiter.Msg{Type: arbiter.MsgDemote, Chain: chain, Epoch: 1 << 62, Primary: idB}
	for range 10 {
		toA.Write(fakeArb.Seal(nil, idA, demote))
		toA.Write(oldArb.Seal(nil, idA, demote))
	}
	waitFor(t, "a's counters", 5*time.Second, func() bool {
		w := tb.a.Stats().Wire
		return w.AuthFailed >= 10 && w.Replayed >= 10
	})
	st := tb.srv.Stats()
	if st.Chains[0].Epoch != 1 || st.Chains[0].Primary != idA || st.Arbiter.Promotions != 0 {
		t.Fatalf("state changed: %+v", st.Chains[0])
	}
	time.Sleep(20 * time.Millisecond)
	if !ga.Allowed() {
		t.Fatal("a lost its lease")
	}
	if r, e := tb.a.Stats().Chains[0].Role, tb.a.Stats().Chains[0].Epoch; r.String() != "primary" || e != 1 {
		t.Fatalf("a is %v at epoch %d", r, e)
	}
	t.Logf("arbiter wire counters %+v", tb.srv.Stats().Wire)
	t.Logf("member a wire counters %+v", tb.a.Stats().Wire)
	tb.a.Close()
	tb.b.Close()
	tb.srv.Close()
}

// TestGateAllocationFree: the output path's check.
func TestGateAllocationFree(t *testing.T) {
	testenv.CheckLeaks(t)
	tb := startTestbed(t, relaxed)
	g := tb.a.Gate(chain)
	if n := testing.AllocsPerRun(1000, func() { g.Allowed(); tb.a.CanRelease(chain) }); n != 0 {
		t.Fatalf("%v allocations per check", n)
	}
	if tb.a.Gate(999) != nil || tb.a.CanRelease(999) {
		t.Fatal("unknown chain")
	}
	tb.a.Close()
	tb.b.Close()
	tb.srv.Close()
}

func BenchmarkGateAllowed(b *testing.B) {
	c, err := arbiter.StartClient(arbiter.ClientConfig{Local: lo, Arbiter: netip.MustParseAddrPort("127.0.0.1:9"), ID: 1, Chains: []arbiter.ChainID{1}, PSK: testPSK})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	g := c.Gate(1)
	b.ReportAllocs()
	for b.Loop() {
		g.Allowed()
	}
}

// TestDriverRealtimeThread: with RTPriority the driver's thread runs under
// SCHED_FIFO where the kernel allows it (root, as in CI), and says so:
// exactly one more thread of this process is real-time while the client
// runs, and none once it closed (the policy did not pass to other
// threads). Where the kernel refuses it, the driver runs normally and says
// why. Without RTPriority, normally.
func TestDriverRealtimeThread(t *testing.T) {
	before := fifoThreads(t)
	c, err := arbiter.StartClient(arbiter.ClientConfig{Local: lo, Arbiter: netip.MustParseAddrPort("127.0.0.1:9"), ID: 1,
		Chains: []arbiter.ChainID{1}, PSK: testPSK, RTPriority: 7})
	if err != nil {
		t.Fatal(err)
	}
	got := c.Scheduling()
	switch {
	case got == "SCHED_FIFO 7":
		if n := fifoThreads(t); n != before+1 {
			t.Fatalf("scheduling %q, but %d real-time threads (%d before)", got, n, before)
		}
	case strings.HasPrefix(got, "normal (SCHED_FIFO 7 refused"):
		if os.Geteuid() == 0 {
			t.Logf("as root, real-time refused (no RT budget here?): %s", got)
		}
		if n := fifoThreads(t); n != before {
			t.Fatalf("scheduling %q, but %d real-time threads (%d before)", got, n, before)
		}
	default:
		t.Fatalf("scheduling %q", got)
	}
	c.Close()
	// The locked thread ends just after its goroutine (the runtime
	// terminates it): give it a moment.
	n := fifoThreads(t)
	for end := time.Now().Add(time.Second); n != before && time.Now().Before(end); n = fifoThreads(t) {
		time.Sleep(time.Millisecond)
	}
	if n != before {
		t.Fatalf("%d real-time threads after Close (%d before)", n, before)
	}
	s, err := arbiter.StartServer(arbiter.ServerConfig{Listen: lo, PSK: testPSK,
		Members: []arbiter.ServerMember{{ID: idA, Name: "a"}, {ID: idB, Name: "b"}}, Chains: []arbiter.ChainConfig{{ID: chain, Name: "c0", Members: [2]arbiter.MemberID{idA, idB}, Primary: idA, Epoch: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Scheduling() != "normal" || fifoThreads(t) != before {
		t.Fatalf("no RTPriority: scheduling %q, %d real-time threads", s.Scheduling(), fifoThreads(t))
	}
}

// fifoThreads counts this process's threads under SCHED_FIFO (field 41 of
// /proc/self/task/*/stat).
func fifoThreads(t *testing.T) int {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + e.Name() + "/stat")
		if err != nil {
			continue // the thread ended
		}
		// Fields after the command, which is in parentheses: state is
		// field 3, policy field 41.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) > 38 && f[38] == "1" {
			n++
		}
	}
	return n
}

// TestStartServerErrorReturns: a configuration the Arbiter refuses makes
// StartServer return its error (it used to wait for a loop never started).
func TestStartServerErrorReturns(t *testing.T) {
	done := make(chan error, 1)
	go func() {
		_, err := arbiter.StartServer(arbiter.ServerConfig{Listen: lo, PSK: testPSK,
			Members: []arbiter.ServerMember{{ID: idA, Name: "a"}}})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a server with no chain started")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("StartServer hangs on a refused configuration")
	}
}

// TestWakeAfterClose: the manager's replication may still report to a
// closed client; that must neither fail nor touch a reused descriptor
// (run with -race).
func TestWakeAfterClose(t *testing.T) {
	c, err := arbiter.StartClient(arbiter.ClientConfig{Local: lo, Arbiter: netip.MustParseAddrPort("127.0.0.1:9"), ID: 1,
		Chains: []arbiter.ChainID{1}, PSK: testPSK})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 2000 {
			c.ObserveEpoch(1, arbiter.Epoch(i))
			c.SetStandbyReady(1, arbiter.Epoch(i), i%2 == 0)
		}
	}()
	time.Sleep(time.Millisecond)
	c.Close()
	wg.Wait()
}
