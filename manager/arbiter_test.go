package manager_test

import (
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/manager"
	"github.com/reinforce-nfv/reinforce/manager/config"
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
	return func(c *config.Config) {
		c.Arbiter = config.Arbiter{Address: srv.Addr(), Member: name, PSK: arbPSK, Profile: "loaded", Lease: 40 * time.Millisecond}
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
