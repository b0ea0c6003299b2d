package manager_test

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/ctlmsg"
	"github.com/reinforce-nfv/reinforce/manager"
	"github.com/reinforce-nfv/reinforce/manager/config"
	"github.com/reinforce-nfv/reinforce/manager/flowdir"
	"github.com/reinforce-nfv/reinforce/nflib"
	"github.com/reinforce-nfv/reinforce/pkt"
)

// rtFlow is an exact FlowAdd and its 5-tuple.
type rtFlow struct {
	msg ctlmsg.FlowAdd
	ft  pkt.FiveTuple
}

func exactFlow(chain, src, dst string, sport, dport uint16) rtFlow {
	s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
	return rtFlow{
		msg: ctlmsg.FlowAdd{Chain: chain, Src: src, Dst: dst, SrcPorts: [2]uint16{sport, sport}, DstPorts: [2]uint16{dport, dport}, Proto: 17},
		ft:  pkt.FiveTuple{SrcIP: s.As16(), DstIP: d.As16(), SrcPort: sport, DstPort: dport, Proto: 17},
	}
}

// TestReplicationRuntimeState: flow entries and rules an NF adds at run
// time for the replicated chain c0, and the bucket tables of c0's services
// (a second instance of service 2 joins, later leaves), reach the standby
// manager's flow director and its replicated tables; entries of chain c1
// (not replicated) do not, and entries moved from c0 to c1 (a static
// [[flow]] one among them) leave the standby's c0. A standby that joins
// late gets the same state by snapshot, then the later changes by rounds.
// NF state files still converge. The link delays 1-1.5 ms, loses and
// duplicates 3 %.
func TestReplicationRuntimeState(t *testing.T) {
	pAddr, sAddr := freeUDP(t), freeUDP(t)
	relay := startRelay(t, pAddr, sAddr, time.Millisecond, 0.03, 0.03)
	static := exactFlow("c0", "10.9.0.1", "10.1.0.1", 9, 53)
	edit := func(c *config.Config) {
		c.Chains = append(c.Chains, config.Chain{Name: "c1", Services: []int{3}, OutPort: 0})
		f := static.msg
		c.Flows = []config.Flow{{Chain: "c0", Src: netip.MustParsePrefix(f.Src + "/32"), Dst: netip.MustParsePrefix(f.Dst + "/32"),
			SrcPorts: f.SrcPorts, DstPorts: f.DstPorts, Proto: f.Proto}}
	}
	sb, _ := repManagerWith(t, config.RepStandby, sAddr, relay.addrB(), 1000, edit)
	defer func() { sb.Close() }()
	pm, p := repManagerWith(t, config.RepPrimary, pAddr, relay.addrA(), 1000, edit)
	defer pm.Close()
	waitFor(t, 20*time.Second, "two NFs running", func() bool {
		s := pm.Snapshot()
		return len(s.NFs) == 2 && s.NFs[0].Running && s.NFs[1].Running
	})
	waitFor(t, 10*time.Second, "chain c0 protected on both sides", func() bool {
		return repStats(pm).Status == manager.RepProtected && repStats(sb).Status == manager.RepProtected
	})
	if _, ok := sb.ExactFlowForTest(static.ft); !ok {
		t.Fatal("the standby lacks the static [[flow]] entry")
	}
	sent := 0
	feed := func(n int) {
		for range n {
			p.inject(frame(sent % repFlows))
			sent++
		}
		waitFor(t, 10*time.Second, "all packets out", func() bool { return len(p.sent()) == sent })
	}
	feed(100)

	// An NF of service 3 (chain c1's) adds flows at run time.
	ctl, err := nflib.Attach("ctl", nflib.Args{Service: 3}, pm.SocketPath())
	if err != nil {
		t.Fatal(err)
	}
	ctl.SetSummary(false)
	defer ctl.Close()
	add := func(f ctlmsg.FlowAdd) {
		t.Helper()
		if err := ctl.AddFlow(f); err != nil {
			t.Fatal(err)
		}
	}
	e1 := exactFlow("c0", "10.7.0.1", "10.1.0.1", 1001, 53)
	e2 := exactFlow("c0", "2001:db8::1", "2001:db8::2", 1002, 53)
	moved := exactFlow("c0", "10.7.0.3", "10.1.0.1", 1003, 53)
	onlyC1 := exactFlow("c1", "10.7.0.4", "10.1.0.1", 1004, 53)
	for _, f := range []rtFlow{e1, e2, moved, onlyC1} {
		add(f.msg)
	}
	add(ctlmsg.FlowAdd{Chain: "c0", Src: "10.6.0.0/16", Priority: 3})
	add(ctlmsg.FlowAdd{Chain: "c1", Src: "10.5.0.0/16"})
	add(ctlmsg.FlowAdd{Chain: "c0", Dst: "2001:db8:1::/48", DstPorts: [2]uint16{53, 53}, Proto: 17})
	m1 := moved.msg
	m1.Chain = "c1"
	add(m1)
	s1 := static.msg
	s1.Chain = "c1"
	add(s1)
	feed(100) // rounds with NF writes and run-time records together
	wantRules := []flowdir.Rule{
		{SrcPrefix: netip.MustParsePrefix("10.6.0.0/16"), Priority: 3},
		{DstPrefix: netip.MustParsePrefix("2001:db8:1::/48"), DstPorts: flowdir.PortRange{Lo: 53, Hi: 53}, Proto: 17},
	}
	present := []rtFlow{e1, e2}
	absent := []rtFlow{moved, onlyC1, static}

	// same reports how the standby's run-time state of c0 differs from
	// the primary's ("" if it does not).
	same := func(sb *manager.Manager) string {
		for _, f := range present {
			if ch, ok := sb.ExactFlowForTest(f.ft); !ok || ch != 0 {
				return fmt.Sprintf("entry %s → %s: chain %d, %v", f.msg.Src, f.msg.Dst, ch, ok)
			}
		}
		for _, f := range absent {
			if ch, ok := sb.ExactFlowForTest(f.ft); ok {
				return fmt.Sprintf("entry %s → %s still there (chain %d)", f.msg.Src, f.msg.Dst, ch)
			}
		}
		if got := sb.FlowRulesForTest(); !slices.Equal(got, wantRules) {
			return fmt.Sprintf("rules %+v", got)
		}
		rb := sb.ReplicatedBuckets("c0")
		if len(rb) != 2 {
			return fmt.Sprintf("%d replicated tables", len(rb))
		}
		for _, s := range []manager.ServiceID{1, 2} {
			if rb[s] != pm.BucketsForTest(s) {
				return fmt.Sprintf("service %d's table differs", s)
			}
		}
		return ""
	}
	check := func(what string, sb *manager.Manager) {
		t.Helper()
		var last string
		defer func() {
			if t.Failed() {
				t.Logf("last difference: %s\nstandby: %+v", last, repStats(sb))
			}
		}()
		waitFor(t, 10*time.Second, what, func() bool { last = same(sb); return last == "" })
	}
	// The primary itself: moved entries are c1's.
	for _, f := range []rtFlow{moved, static, onlyC1} {
		if ch, ok := pm.ExactFlowForTest(f.ft); !ok || ch != 1 {
			t.Fatalf("primary: %s in chain %d, %v", f.msg.Src, ch, ok)
		}
	}
	check("the standby's c0 entries, rules and tables equal to the primary's", sb)

	// A second instance of service 2 joins: half of its buckets move.
	extra, err := nflib.Attach("extra", nflib.Args{Service: 2, Instance: 9}, pm.SocketPath())
	if err != nil {
		t.Fatal(err)
	}
	extra.SetSummary(false)
	extraOpen := true
	defer func() {
		if extraOpen {
			extra.Close()
		}
	}()
	if tbl := pm.BucketsForTest(2); !slices.Contains(tbl[:], 9) || !slices.Contains(tbl[:], 2) {
		t.Fatalf("service 2's buckets after instance 9 joined: %v", tbl)
	}
	check("service 2's new table at the standby", sb)
	ps := repStats(pm)
	if ps.FlowRecordsSent < 6 || ps.BucketTablesSent < 3 {
		t.Fatalf("primary counters: %+v", ps)
	}

	// The standby goes; a new one (empty flow director but the static
	// entry, no tables) joins late and gets everything by snapshot,
	// including an entry added while no standby was there.
	sb.Close()
	waitFor(t, 5*time.Second, "chain c0 unprotected", func() bool { return repStats(pm).Status == manager.RepUnprotected })
	e5 := exactFlow("c0", "10.7.0.5", "10.1.0.1", 1005, 53)
	add(e5.msg)
	present = append(present, e5)
	sb, _ = repManagerWith(t, config.RepStandby, sAddr, relay.addrB(), 1000, edit)
	waitFor(t, 10*time.Second, "chain c0 protected again", func() bool {
		return repStats(pm).Status == manager.RepProtected && repStats(sb).Status == manager.RepProtected
	})
	check("the late standby's c0 state equal to the primary's", sb)
	if s := repStats(sb); s.SnapshotsApplied != 1 || s.FlowRecordsApplied == 0 || s.BucketTablesApplied < 2 || s.FlowRecordsFailed != 0 {
		t.Fatalf("late standby: %+v", s)
	}

	// Later changes reach it by rounds: instance 9 leaves, a rule and an
	// entry are added.
	extra.Close()
	extraOpen = false
	waitFor(t, 10*time.Second, "instance 9 gone from service 2's table", func() bool {
		tbl := pm.BucketsForTest(2)
		return !slices.Contains(tbl[:], 9)
	})
	e6 := exactFlow("c0", "10.7.0.6", "10.1.0.6", 1006, 80)
	add(e6.msg)
	present = append(present, e6)
	add(ctlmsg.FlowAdd{Chain: "c0", Src: "10.4.0.0/16", SrcPorts: [2]uint16{1, 1023}})
	wantRules = append(wantRules, flowdir.Rule{SrcPrefix: netip.MustParsePrefix("10.4.0.0/16"), SrcPorts: flowdir.PortRange{Lo: 1, Hi: 1023}})
	feed(100)
	check("the late standby's state after more changes", sb)
	converged(t, pm, sb)
	if s := repStats(sb); s.SnapshotsApplied != 1 || s.FlowRecordsFailed != 0 {
		t.Fatalf("late standby at the end: %+v", s)
	}
	ps = repStats(pm)
	t.Logf("primary: %d flow records, %d bucket tables sent in %d rounds; standby: %d flow records, %d tables applied",
		ps.FlowRecordsSent, ps.BucketTablesSent, ps.Rounds, repStats(sb).FlowRecordsApplied, repStats(sb).BucketTablesApplied)
}
