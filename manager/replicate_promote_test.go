package manager_test

import (
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/manager"
	"github.com/reinforce-nfv/reinforce/manager/config"
	"github.com/reinforce-nfv/reinforce/nflib"
)

// nfByInstance finds instance id in m's NF list.
func nfByInstance(m *manager.Manager, id uint16) (manager.NFStats, bool) {
	for _, nf := range m.Snapshot().NFs {
		if nf.Instance == id {
			return nf, true
		}
	}
	return manager.NFStats{}, false
}

// TestStandbyNFsHeldThenPromoted: the standby manager runs the chain's NFs
// too, held (registered, idle, outside the routes) while it applies the
// primary's transactions into their files. A primary NF stopped cleanly
// and restarted continues from its state file, which the manager keeps
// because it reads its log (before, the stop deleted it and the restart
// began at zero, unseen by replication). Then the primary is gone, the
// standby's chain is promoted, and its NFs continue every flow from the
// replicated state: both ports' output together counts up by one per
// flow, each packet stamped by both NFs exactly once.
func TestStandbyNFsHeldThenPromoted(t *testing.T) {
	pAddr, sAddr := freeUDP(t), freeUDP(t)
	relay := startRelay(t, pAddr, sAddr, time.Millisecond, 0.02, 0.02)
	withNFs := func(c *config.Config) {
		c.NFs = []config.NF{
			{Tag: "txstamp", Service: 1, Instance: 1, Command: []string{os.Args[0]}},
			{Tag: "txstamp", Service: 2, Instance: 2, Command: []string{os.Args[0]}},
		}
	}
	sb, sp := repManagerWith(t, config.RepStandby, sAddr, relay.addrB(), 4096, withNFs)
	defer sb.Close()
	pm, p := repManager(t, config.RepPrimary, pAddr, relay.addrA(), 4096)
	pmOpen := true
	defer func() {
		if pmOpen {
			pm.Close()
		}
	}()
	waitFor(t, 20*time.Second, "two NFs running on the primary", func() bool {
		s := pm.Snapshot()
		return len(s.NFs) == 2 && s.NFs[0].Running && s.NFs[1].Running
	})
	waitFor(t, 20*time.Second, "two NFs held on the standby", func() bool {
		s := sb.Snapshot()
		return len(s.NFs) == 2 && s.NFs[0].Held && s.NFs[1].Held && !s.NFs[0].Running && !s.NFs[1].Running
	})
	waitFor(t, 10*time.Second, "chain c0 protected on both sides", func() bool {
		return repStats(pm).Status == manager.RepProtected && repStats(sb).Status == manager.RepProtected
	})
	sent := 0
	feed := func(port *memPort, n int) {
		for range n {
			port.inject(frame(sent % repFlows))
			sent++
			if sent%50 == 0 {
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
	feed(p, 200)
	waitFor(t, 10*time.Second, "200 packets out of the primary", func() bool { return len(p.sent()) == sent })
	checkOutput(t, p.sent())

	// A clean stop and restart of a primary NF (the manager relaunches it).
	old, _ := nfByInstance(pm, 2)
	if err := pm.StopNF(2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "instance 2 restarted", func() bool {
		nf, ok := nfByInstance(pm, 2)
		return ok && nf.Running && nf.PID != old.PID
	})
	feed(p, 200)
	waitFor(t, 10*time.Second, "400 packets out of the primary", func() bool { return len(p.sent()) == sent })
	checkOutput(t, p.sent()) // instance 2's stamps continue: it kept its state
	converged(t, pm, sb)
	if s := sb.Snapshot(); s.NFs[0].RX != 0 || s.NFs[1].RX != 0 {
		t.Fatalf("held NFs received packets: %+v", s.NFs)
	}

	// The primary server is gone; the standby's chain is promoted.
	pm.Close()
	pmOpen = false
	missing, err := sb.PromoteChain("c0")
	if err != nil || len(missing) != 0 {
		t.Fatalf("promote: missing %v, %v", missing, err)
	}
	if _, err := sb.PromoteChain("c0"); !errors.Is(err, manager.ErrNotStandby) {
		t.Fatalf("second promotion: %v", err)
	}
	waitFor(t, 10*time.Second, "the standby's NFs running", func() bool {
		s := sb.Snapshot()
		return len(s.NFs) == 2 && s.NFs[0].Running && s.NFs[1].Running && !s.NFs[0].Held
	})
	// Its output is latched now (policy hold): nothing leaves until a
	// standby has the state behind it.
	feed(sp, 100)
	time.Sleep(200 * time.Millisecond)
	if n := len(sp.sent()); n != 0 {
		t.Fatalf("%d packets left the promoted chain before a standby acknowledged their state", n)
	}
	if s := repStats(sb); s.Role != "promoted" || s.Epoch != 2 || s.Latched != 100 {
		t.Fatalf("promoted chain: %+v", s)
	}
	// The old primary's server returns: its manager starts as the standby
	// (new region, no state, the configured epoch 1), joins the new epoch,
	// catches up by snapshot, and the held output leaves.
	pm2, p2 := repManagerWith(t, config.RepStandby, pAddr, relay.addrA(), 4096, withNFs)
	defer pm2.Close()
	waitFor(t, 10*time.Second, "chain c0 protected again, the old primary as standby", func() bool {
		return repStats(sb).Status == manager.RepProtected && repStats(pm2).Status == manager.RepProtected
	})
	waitFor(t, 10*time.Second, "the held output released", func() bool { return len(sp.sent()) == 100 })
	feed(sp, 100)
	waitFor(t, 10*time.Second, "200 packets out of the promoted standby", func() bool { return len(sp.sent()) == 200 })
	checkOutput(t, append(p.sent(), sp.sent()...))
	converged(t, sb, pm2)
	if d := sb.Snapshot().Drops; d.Promotions != 1 {
		t.Fatalf("promotions %d", d.Promotions)
	}
	if s := repStats(pm2); s.Epoch != 2 || s.SnapshotsApplied != 1 {
		t.Fatalf("rejoined standby: %+v", s)
	}

	// A planned switchover back, by hand: the primary (all its output
	// released) is demoted to epoch 3 first, then the standby promoted
	// with it; the demoted manager's NFs come back held and it rejoins.
	if err := sb.DemoteChain("c0", 2); !errors.Is(err, manager.ErrStaleEpoch) {
		t.Fatalf("demotion to the current epoch: %v", err)
	}
	if err := sb.DemoteChain("c0", 3); err != nil {
		t.Fatal(err)
	}
	if _, err := pm2.PromoteChainEpoch("c0", 3); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the demoted manager's NFs back and held", func() bool {
		s := sb.Snapshot()
		return len(s.NFs) == 2 && s.NFs[0].Held && s.NFs[1].Held
	})
	waitFor(t, 10*time.Second, "chain c0 protected, roles swapped", func() bool {
		return repStats(pm2).Status == manager.RepProtected && repStats(sb).Status == manager.RepProtected
	})
	feed(p2, 100)
	waitFor(t, 10*time.Second, "100 packets out after the switchover", func() bool { return len(p2.sent()) == 100 })
	checkOutput(t, slices.Concat(p.sent(), sp.sent(), p2.sent()))
	converged(t, pm2, sb)
	if s := repStats(sb); s.Discarded != 0 || s.Role != "standby" || s.Epoch != 3 {
		t.Fatalf("demoted chain: %+v", s)
	}
	if d := sb.Snapshot().Drops; d.Demotions != 1 {
		t.Fatalf("demotions %d", d.Demotions)
	}
}

// attachInstance registers an NF of service svc with instance id on m in
// this process. The caller closes it before m: a manager's Close kills the
// NFs still registered, and this one's PID is the test's.
func attachInstance(t *testing.T, m *manager.Manager, tag string, svc, id uint16) *nflib.NF {
	t.Helper()
	nf, err := nflib.Attach(tag, nflib.Args{Service: svc, Instance: id}, m.SocketPath())
	if err != nil {
		t.Fatal(err)
	}
	nf.SetSummary(false)
	return nf
}

// TestPromotionInstallsBucketTables: service 2 of the replicated chain c0
// has two instances on the primary (2, then 9 joins and takes half of the
// buckets); the standby runs instance 9 too, ready before the held
// instance 2, so its own registry would give the halves the other way
// round. The primary is cut off and the standby promoted: it installs the
// primary's last table, so every flow reaches the instance it reached
// before. Then the old primary's server rejoins as the standby, without
// instance 9, and the roles swap: the buckets naming 9 keep that
// registry's choice (instance 2), counted. Last, that primary closes
// cleanly: its NFs' exits do not empty the standby's replicated tables.
func TestPromotionInstallsBucketTables(t *testing.T) {
	pAddr, sAddr := freeUDP(t), freeUDP(t)
	relay := startRelay(t, pAddr, sAddr, time.Millisecond, 0, 0)
	cut := func(on bool) {
		relay.mu.Lock()
		relay.loss = float64(btoi(on))
		relay.mu.Unlock()
	}
	withNFs := func(c *config.Config) {
		c.NFs = []config.NF{
			{Tag: "txstamp", Service: 1, Instance: 1, Command: []string{os.Args[0]}},
			{Tag: "txstamp", Service: 2, Instance: 2, Command: []string{os.Args[0]}},
		}
	}
	sb, _ := repManagerWith(t, config.RepStandby, sAddr, relay.addrB(), 4096, withNFs)
	defer sb.Close()
	pm, _ := repManager(t, config.RepPrimary, pAddr, relay.addrA(), 4096)
	pmOpen := true
	defer func() {
		if pmOpen {
			pm.Close()
		}
	}()
	waitFor(t, 20*time.Second, "two NFs running on the primary, two held on the standby", func() bool {
		s, b := pm.Snapshot(), sb.Snapshot()
		return len(s.NFs) == 2 && s.NFs[0].Running && s.NFs[1].Running && len(b.NFs) == 2 && b.NFs[0].Held && b.NFs[1].Held
	})
	waitFor(t, 10*time.Second, "chain c0 protected on both sides", func() bool {
		return repStats(pm).Status == manager.RepProtected && repStats(sb).Status == manager.RepProtected
	})

	pExtra := attachInstance(t, pm, "extra", 2, 9)
	defer pExtra.Close() // before pm's Close
	want := map[manager.ServiceID][manager.NumBuckets]manager.InstanceID{1: pm.BucketsForTest(1), 2: pm.BucketsForTest(2)}
	if tbl := want[2]; tbl[0] != 2 || tbl[manager.NumBuckets-1] != 9 {
		t.Fatalf("primary's service 2 after instance 9 joined: %v", tbl)
	}
	waitFor(t, 10*time.Second, "the primary's tables replicated", func() bool {
		rb := sb.ReplicatedBuckets("c0")
		return rb[1] == want[1] && rb[2] == want[2]
	})
	sExtra := attachInstance(t, sb, "extra", 2, 9)
	defer sExtra.Close() // before sb's Close
	if tbl := sb.BucketsForTest(2); slices.ContainsFunc(tbl[:], func(x manager.InstanceID) bool { return x != 9 }) {
		t.Fatalf("standby's own service 2 with instance 9 alone: %v", tbl)
	}

	// The primary's server is cut off, then gone (its instance 9 first:
	// it is this test process); the standby is promoted.
	cut(true)
	pExtra.Close()
	pm.Close()
	pmOpen = false
	if missing, err := sb.PromoteChain("c0"); err != nil || len(missing) != 0 {
		t.Fatalf("promote: missing %v, %v", missing, err)
	}
	for svc, tbl := range want {
		if got := sb.BucketsForTest(svc); got != tbl {
			t.Fatalf("promoted: service %d's table\n%v\nthe primary's was\n%v", svc, got, tbl)
		}
	}
	waitFor(t, 10*time.Second, "the promoted NFs running", func() bool {
		s := sb.Snapshot()
		return len(s.NFs) == 3 && s.NFs[0].Running && s.NFs[1].Running && s.NFs[2].Running
	})
	if got := sb.BucketsForTest(2); got != want[2] {
		t.Fatalf("service 2's table changed after the NFs ran: %v", got)
	}
	if n := sb.Snapshot().Drops.BucketFallbacks; n != 0 {
		t.Fatalf("%d bucket fallbacks with every instance here", n)
	}

	// The old primary's server returns as the standby, without instance
	// 9; it gets the promoted manager's tables, then the roles swap.
	cut(false)
	pm2, _ := repManagerWith(t, config.RepStandby, pAddr, relay.addrA(), 4096, withNFs)
	pm2Open := true
	defer func() {
		if pm2Open {
			pm2.Close()
		}
	}()
	waitFor(t, 20*time.Second, "chain c0 protected again, the old primary as standby", func() bool {
		return repStats(sb).Status == manager.RepProtected && repStats(pm2).Status == manager.RepProtected
	})
	waitFor(t, 10*time.Second, "the tables at the new standby", func() bool {
		rb := pm2.ReplicatedBuckets("c0")
		return rb[1] == want[1] && rb[2] == want[2]
	})
	if err := sb.DemoteChain("c0", 3); err != nil {
		t.Fatal(err)
	}
	if _, err := pm2.PromoteChainEpoch("c0", 3); err != nil {
		t.Fatal(err)
	}
	nines := 0
	for i, x := range want[2] {
		if x == 9 {
			nines++
		}
		if got := pm2.BucketsForTest(2)[i]; got != 2 {
			t.Fatalf("bucket %d of service 2 at instance %d, want 2 (9 is not here, 2 alone is)", i, got)
		}
	}
	if got := pm2.BucketsForTest(1); got != want[1] {
		t.Fatalf("service 1's table after the swap: %v", got)
	}
	if n := pm2.Snapshot().Drops.BucketFallbacks; n != uint64(nines) || n == 0 {
		t.Fatalf("%d bucket fallbacks, want the %d buckets of instance 9", n, nines)
	}

	// The new primary's tables reach the demoted manager; then the
	// primary closes cleanly and the tables stay.
	last := map[manager.ServiceID][manager.NumBuckets]manager.InstanceID{1: pm2.BucketsForTest(1), 2: pm2.BucketsForTest(2)}
	waitFor(t, 20*time.Second, "chain c0 protected, roles swapped, the tables at the standby", func() bool {
		rb := sb.ReplicatedBuckets("c0")
		return repStats(pm2).Status == manager.RepProtected && repStats(sb).Status == manager.RepProtected &&
			rb[1] == last[1] && rb[2] == last[2]
	})
	pm2.Close()
	pm2Open = false
	time.Sleep(100 * time.Millisecond) // what the relay still held
	if rb := sb.ReplicatedBuckets("c0"); rb[1] != last[1] || rb[2] != last[2] {
		t.Fatalf("after the primary's clean close, the standby's tables are\n%v\n%v", rb[1], rb[2])
	}
}
