package manager_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/reinforce-nfv/reinforce/manager"
	"github.com/reinforce-nfv/reinforce/manager/config"
	"github.com/reinforce-nfv/reinforce/port"
	"github.com/reinforce-nfv/reinforce/replicator/arbiter"
)

const arbPSK = "arbiter test key 0123456789abcdef"

// startTestArbiter serves chain c0 for members a (the initial primary)
// and b on loopback.
func startTestArbiter(t *testing.T) *arbiter.Server {
	t.Helper()
	a, b := arbiter.MemberID(arbiter.NameID("a")), arbiter.MemberID(arbiter.NameID("b"))
	srv, err := arbiter.StartServer(arbiter.ServerConfig{
		Listen:  netip.MustParseAddrPort("127.0.0.1:0"),
		Members: []arbiter.ServerMember{{ID: a, Name: "a"}, {ID: b, Name: "b"}},
		Chains: []arbiter.ChainConfig{{ID: arbiter.ChainID(arbiter.NameID("c0")), Name: "c0",
			Members: [2]arbiter.MemberID{a, b}, Primary: a, Epoch: 1}},
		// Slower than the real profiles: this test is about what the
		// managers do with the arbiter's decisions, and go test runs other
		// packages beside it on two CPUs (the lab's fault loops time the
		// real profiles). The arbiter's detection is 3 × 10 ms.
		PSK: []byte(arbPSK), Profile: arbiter.Profile{Name: "test", TxInterval: 10 * time.Millisecond,
			RxInterval: 10 * time.Millisecond, DetectMult: 3, Lease: 40 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// member makes a manager configuration report to the arbiter as name.
func member(srv *arbiter.Server, name string, nfs bool) func(*config.Config) {
	return memberOf(srv.Addr(), name, nfs)
}

// memberOf makes a manager configuration report to the arbiter at addr.
func memberOf(addr netip.AddrPort, name string, nfs bool) func(*config.Config) {
	return func(c *config.Config) {
		c.Arbiter = config.Arbiter{Address: addr, Member: name, PSK: arbPSK, Profile: "loaded", Lease: 40 * time.Millisecond}
		if nfs {
			c.NFs = []config.NF{
				{Tag: "txstamp", Service: 1, Instance: 1, Command: []string{os.Args[0]}},
				{Tag: "txstamp", Service: 2, Instance: 2, Command: []string{os.Args[0]}},
			}
		}
	}
}

// TestArbiterFailsTheChainOver: two managers report to an arbiter. The
// configured primary releases only once the arbiter has confirmed it and
// granted a lease. When it dies, the arbiter waits out its lease and
// promotes the standby with a new epoch; the old primary's manager comes
// back with its unchanged configuration (role primary), is demoted by the
// arbiter, discards its state and rejoins as the standby; the chain is
// protected again and every flow's stamps continue across both servers.
func TestArbiterFailsTheChainOver(t *testing.T) {
	srv := startTestArbiter(t)
	aAddr, bAddr := freeUDP(t), freeUDP(t)
	b, bp := repManagerWith(t, config.RepStandby, bAddr, aAddr, 4096, member(srv, "b", true))
	defer b.Close()
	a, ap := repManagerWith(t, config.RepPrimary, aAddr, bAddr, 4096, member(srv, "a", true))
	aOpen := true
	defer func() {
		if aOpen {
			a.Close()
		}
	}()
	waitFor(t, 20*time.Second, "chain c0 protected", func() bool {
		return repStats(a).Status == manager.RepProtected && repStats(b).Status == manager.RepProtected
	})
	sent := 0
	feed := func(p *memPort, n int) {
		for range n {
			p.inject(frame(sent % repFlows))
			sent++
		}
	}
	feed(ap, 200)
	waitFor(t, 10*time.Second, "200 packets out of a (lease granted, acknowledged)", func() bool { return len(ap.sent()) == 200 })
	converged(t, a, b)
	// The members' stats show the arbiter's view of them.
	waitFor(t, 10*time.Second, "a's and b's arbiter stats", func() bool {
		return memberView(a, "a", "primary", false) == "" && memberView(b, "b", "standby", true) == ""
	})

	// a's server dies (once the arbiter knows b has caught up: it
	// promotes only a ready standby).
	waitFor(t, 10*time.Second, "the arbiter sees a ready standby", func() bool {
		cs := srv.Stats().Chains
		return len(cs) == 1 && cs[0].StandbyReady
	})
	a.Close()
	aOpen = false
	waitFor(t, 10*time.Second, "b promoted by the arbiter", func() bool {
		s := b.Snapshot()
		return repStats(b).Role == "promoted" && len(s.NFs) == 2 && s.NFs[0].Running && s.NFs[1].Running
	})
	epoch := repStats(b).Epoch
	if epoch <= 1 {
		t.Fatalf("promoted at epoch %d", epoch)
	}
	waitFor(t, 10*time.Second, "b's arbiter stats: primary at the replicator's epoch", func() bool {
		cs := b.Snapshot().Arbiter.Client
		return memberView(b, "b", "primary", false) == "" && cs.Chains[0].Epoch == repStats(b).Epoch && cs.Counters.Promotions >= 1
	})
	feed(bp, 100)
	time.Sleep(100 * time.Millisecond)
	if n := len(bp.sent()); n != 0 {
		t.Fatalf("%d packets left b with no standby (policy hold)", n)
	}

	// a's manager comes back with its configuration unchanged.
	a2, a2p := repManagerWith(t, config.RepPrimary, aAddr, bAddr, 4096, member(srv, "a", true))
	defer a2.Close()
	waitFor(t, 20*time.Second, "a demoted by the arbiter, protected again", func() bool {
		sa, sb := repStats(a2), repStats(b)
		return sa.Role == "standby" && sa.Status == manager.RepProtected && sb.Status == manager.RepProtected && a2.Snapshot().Drops.Demotions == 1
	})
	waitFor(t, 10*time.Second, "b's held output released", func() bool { return len(bp.sent()) == 100 })
	feed(bp, 100)
	waitFor(t, 10*time.Second, "200 packets out of b", func() bool { return len(bp.sent()) == 200 })
	checkOutput(t, slices.Concat(ap.sent(), bp.sent()))
	if n := len(a2p.sent()); n != 0 {
		t.Fatalf("the demoted manager sent %d packets before its switchover", n)
	}
	converged(t, b, a2)

	// A planned switchover back to a's server, with nothing in flight (an
	// ingress holds its input meanwhile: Manager.Switchover): b drains and
	// yields, a is promoted without a lease wait, b is demoted and rejoins.
	waitFor(t, 10*time.Second, "the arbiter sees a ready standby", func() bool {
		cs := srv.Stats().Chains
		return len(cs) == 1 && cs[0].StandbyReady
	})
	if err := srv.Switchover(arbiter.ChainID(arbiter.NameID("c0"))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "roles swapped back, protected", func() bool {
		sa, sb := repStats(a2), repStats(b)
		return sa.Role == "promoted" && b.Snapshot().Drops.Demotions == 1 &&
			sa.Status == manager.RepProtected && sb.Status == manager.RepProtected
	})
	feed(a2p, 100)
	waitFor(t, 10*time.Second, "100 packets out of a after the switchover", func() bool { return len(a2p.sent()) == 100 })
	checkOutput(t, slices.Concat(ap.sent(), bp.sent(), a2p.sent()))
	if got := len(ap.sent()) + len(bp.sent()) + len(a2p.sent()); got != sent {
		t.Fatalf("%d packets out of %d", got, sent)
	}
	st := srv.Stats()
	t.Logf("arbiter: %+v", st.Arbiter)
}

// memberView reports how m's arbiter stats differ from a member named name
// whose session with the arbiter is up and which holds chain c0 in role
// (as primary with a lease; as standby, ready if ready) ("" if they do not).
func memberView(m *manager.Manager, name, role string, ready bool) string {
	as := m.Snapshot().Arbiter
	if as == nil || as.Client == nil || as.Server != nil {
		return fmt.Sprintf("arbiter stats %+v", as)
	}
	cs := as.Client
	switch {
	case cs.Member != name || cs.BFDState != "Up" || cs.Scheduling == "":
		return fmt.Sprintf("member %q BFD %s scheduling %q", cs.Member, cs.BFDState, cs.Scheduling)
	case cs.BFD.Received == 0 || cs.Wire.Datagrams == 0 || cs.Counters.Requests == 0 && role == "primary":
		return fmt.Sprintf("counters %+v %+v %+v", cs.BFD, cs.Wire, cs.Counters)
	case len(cs.Chains) != 1:
		return fmt.Sprintf("chains %+v", cs.Chains)
	}
	c := cs.Chains[0]
	if c.Chain != "c0" || c.Role != role || c.Epoch == 0 || (role == "primary") != (c.LeaseLeftUs > 0) || c.StandbyReady != ready {
		return fmt.Sprintf("chain %+v", c)
	}
	return ""
}

// TestArbiterStatsInSnapshot: a manager serving as the arbiter ([arbiter]
// serve, the ingress) and its two members show the arbiter's state in
// their snapshots (what reinforce ctl stats prints): the members' names,
// their BFD sessions up, chain c0's roles and epoch, the ingress's view of
// the chain, the same on both sides. The primary's manager goes; the
// arbiter's stats show its session down and the chain failed over to the
// other member, whose stats say it is the primary now. (Whichever member
// leads: on a loaded machine the arbiter may fail over once before.)
func TestArbiterStatsInSnapshot(t *testing.T) {
	serve := freeUDP(t)
	cfg := config.DefaultConfig()
	cfg.Manager.Name = fmt.Sprintf("ing%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)
	cfg.Manager.RegionDir = "/dev/shm"
	cfg.Manager.PoolSlots = 2048
	cfg.Manager.StatsOut = config.StatsNone
	cfg.Ports = []config.Port{{ID: 0, Driver: config.DriverNull, PktBytes: 64}, {ID: 1, Driver: config.DriverNull, PktBytes: 64},
		{ID: 2, Driver: config.DriverNull, PktBytes: 64}}
	cfg.Chains = []config.Chain{{Name: "c0", Services: []int{1}, OutPort: 1}}
	cfg.Manager.DefaultChain = "c0"
	cfg.Arbiter = config.Arbiter{Serve: serve, PSK: arbPSK, Profile: "shared",
		Chains: []config.ArbiterChain{{Chain: "c0", Members: []string{"a", "b"}, Primary: "a", Ports: []int{1, 2}}}}
	ing, err := manager.New(cfg, manager.Options{Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
		SocketPath: filepath.Join(t.TempDir(), "ctl.sock"), Ports: []port.Port{&memPort{id: 0}, &memPort{id: 1}, &memPort{id: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := ing.Start(); err != nil {
		ing.Close()
		t.Fatal(err)
	}
	defer ing.Close()

	// The members run the slowest profile too (10 ms × 5, lease 100 ms):
	// this test is about the stats, not the timing.
	shared := func(name string, nfs bool) func(*config.Config) {
		return func(c *config.Config) {
			memberOf(serve, name, nfs)(c)
			c.Arbiter.Profile, c.Arbiter.Lease = "shared", 0
		}
	}
	aAddr, bAddr := freeUDP(t), freeUDP(t)
	b, _ := repManagerWith(t, config.RepStandby, bAddr, aAddr, 4096, shared("b", false))
	bOpen := true
	defer func() {
		if bOpen {
			b.Close()
		}
	}()
	a, _ := repManagerWith(t, config.RepPrimary, aAddr, bAddr, 4096, shared("a", true))
	aOpen := true
	defer func() {
		if aOpen {
			a.Close()
		}
	}()
	members := map[string]*manager.Manager{"a": a, "b": b}
	other := map[string]string{"a": "b", "b": "a"}

	// arbiterView reports how the ingress's arbiter stats differ from
	// chain c0 led by primary, above before (epoch and failovers) if
	// failedOver, the members' sessions up but the old primary's if it is
	// gone. It leaves what it saw in seen and seenFailovers.
	var before, seen manager.ArbiterChainState
	var failovers, seenFailovers uint64
	arbiterView := func(primary string, failedOver bool) string {
		as := ing.Snapshot().Arbiter
		if as == nil || as.Server == nil || as.Client != nil {
			return fmt.Sprintf("arbiter stats %+v", as)
		}
		ss := as.Server
		if ss.Scheduling == "" || ss.Wire.Datagrams == 0 || len(ss.Members) != 2 || len(ss.Chains) != 1 {
			return fmt.Sprintf("server %+v", ss)
		}
		for _, ml := range ss.Members {
			up := !failedOver || ml.Member == primary
			if (ml.Member != "a" && ml.Member != "b") || (ml.BFDState == "Up") != up || ml.BFD.Received == 0 || (up && ml.Addr == "") {
				return fmt.Sprintf("member link %+v", ml)
			}
		}
		c := ss.Chains[0]
		if c.Chain != "c0" || c.Primary != primary || c.Phase != "normal" || !c.PrimaryAcked || !c.PrimaryLive ||
			c.Epoch == 0 || (failedOver && c.Epoch <= before.Epoch) || c.StandbyLive == failedOver || c.StandbyReady == failedOver {
			return fmt.Sprintf("chain %+v (led by %s before at epoch %d)", c, before.Primary, before.Epoch)
		}
		if failedOver && ss.Counters.Failovers <= failovers {
			return fmt.Sprintf("counters %+v", ss.Counters)
		}
		// The primary's own stats: the same epoch.
		if mc := members[primary].Snapshot().Arbiter; mc == nil || mc.Client == nil || len(mc.Client.Chains) != 1 || mc.Client.Chains[0].Epoch != uint64(c.Epoch) {
			return fmt.Sprintf("%s's arbiter stats %+v, the arbiter's epoch %d", primary, mc, c.Epoch)
		}
		seen, seenFailovers = c, ss.Counters.Failovers
		return ""
	}
	var last, primary string
	defer func() {
		if t.Failed() {
			t.Logf("last difference: %s", last)
		}
	}()
	waitFor(t, 20*time.Second, "the arbiter's and members' stats: c0 led by one member, the other ready", func() bool {
		if as := ing.Snapshot().Arbiter; as != nil && as.Server != nil && len(as.Server.Chains) == 1 {
			primary = as.Server.Chains[0].Primary
		}
		if members[primary] == nil {
			last = "no primary " + primary
			return false
		}
		if last = arbiterView(primary, false); last != "" {
			return false
		}
		if last = memberView(members[primary], primary, "primary", false); last != "" {
			return false
		}
		last = memberView(members[other[primary]], other[primary], "standby", true)
		return last == ""
	})
	before, failovers = seen, seenFailovers
	// The JSON the control socket sends carries the section; a manager
	// without an arbiter has none.
	for _, m := range []*manager.Manager{ing, a} {
		js, err := json.Marshal(m.Snapshot())
		if err != nil {
			t.Fatal(err)
		}
		var back manager.Snapshot
		if err := json.Unmarshal(js, &back); err != nil || back.Arbiter == nil || !bytes.Contains(js, []byte(`"bfd_state":"Up"`)) {
			t.Fatalf("snapshot JSON (%v): %s", err, js)
		}
	}
	if js, _ := json.Marshal(manager.Snapshot{}); bytes.Contains(js, []byte(`"arbiter"`)) {
		t.Fatalf("a snapshot without an arbiter: %s", js)
	}

	gone, next := primary, other[primary]
	if gone == "a" {
		a.Close()
		aOpen = false
	} else {
		b.Close()
		bOpen = false
	}
	waitFor(t, 20*time.Second, "the arbiter's stats: the primary down, c0 failed over", func() bool {
		if last = arbiterView(next, true); last != "" {
			return false
		}
		last = memberView(members[next], next, "primary", false)
		return last == ""
	})
	if d := ing.Snapshot().Drops; d.Redirects == 0 {
		t.Fatalf("no redirect counted at the ingress: %+v", d)
	}
}

// TestArbiterWireCoversWireCounters: the stats' wire counters have a field
// for each of the driver's (a counter added there must be shown too).
func TestArbiterWireCoversWireCounters(t *testing.T) {
	if d, s := reflect.TypeFor[arbiter.WireCounters]().NumField(), reflect.TypeFor[manager.ArbiterWire]().NumField(); d != s {
		t.Fatalf("arbiter.WireCounters has %d fields, manager.ArbiterWire %d: copy the new ones (arbiterWire)", d, s)
	}
}
