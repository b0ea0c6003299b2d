// Package e2e runs the lab end to end (docs/lab.md): pktgen in one
// simulated server, a manager with two afpacket ports and a two-NF chain in
// another, the sink in a third. Every test needs root.
package e2e

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/reinforce-nfv/reinforce/tools/testbed/lab"
)

// Chain acceptance (issue 6): at least this many packets over this many
// flows, at at least rateShare of the raw veth rate measured in the same run.
const (
	chainPackets = 120_000
	chainFlows   = 64
	rateShare    = 0.56 // 0.5 is the bar; pktgen forfeits some when descheduled
	rawPackets   = 300_000
	// chainBucket bounds how far pktgen may fall behind its clock: on two
	// CPUs it is descheduled for milliseconds, and catching up at line
	// rate would test the chain's burst absorption, not its rate.
	chainBucket = 64
)

// chainExtra is added to the manager's configuration: shared-core mode
// (ONVM -c). The lab runs six busy processes (pktgen, the manager's RX and
// TX loops, two NFs, the sink) on two vCPUs, which is what shared-core mode
// is for: waiting loops yield the CPU instead of spinning on it.
const chainExtra = "shared_cpu = true\n"

// TestChainExactlyOnceInOrder measures the raw veth rate (pktgen straight
// to the sink), then sends chainPackets over chainFlows flows through the
// manager and its two NFs at rateShare of it, and demands every packet
// exactly once, in order per flow, with no kernel drop anywhere, at at
// least half the raw rate.
//
// The machine is two shared vCPUs: the raw rate and the chain's rate move
// with whatever else runs. So the measurement (raw, then chain) is made up
// to chainAttempts times and one attempt must meet every condition; a
// duplicate, a reordering or a sequence number never sent fails the test
// in any attempt, since no load explains those.
func TestChainExactlyOnceInOrder(t *testing.T) {
	bin := bins(t)
	l := upLab(t, chainTopo(0))
	m := startMgr(t, l.Server("mgr"), bin, chainExtra)
	var failures []string
	for i := range chainAttempts {
		problems := chainAttempt(t, l, m, bin, i)
		if len(problems) == 0 {
			return
		}
		failures = append(failures, fmt.Sprintf("attempt %d: %s", i+1, strings.Join(problems, "; ")))
	}
	t.Errorf("no attempt met the bar:\n%s", strings.Join(failures, "\n"))
}

// chainAttempts bounds TestChainExactlyOnceInOrder's measurements.
const chainAttempts = 3

// chainAttempt is one measurement; it returns what failed the bar.
func chainAttempt(t *testing.T, l *lab.Lab, m *mgrProc, bin string, attempt int) (problems []string) {
	t.Helper()
	gen, snk := l.Server("gen"), l.Server("sink")
	dir := t.TempDir()
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	// The raw rate: as fast as pktgen sends, over one veth.
	sp := startSink(t, snk, bin, "-i", "raw0", "-idle", "500ms", "-duration", "60s", "-sent", filepath.Join(dir, "raw.json"))
	rawGen := pktgen(t, gen, bin, filepath.Join(dir, "raw.json"), "-i", "raw0", "-flows", strconv.Itoa(chainFlows), "-count", strconv.Itoa(rawPackets))
	raw := sp.wait(t)
	if raw.Duplicated+raw.Reordered+raw.Unexpected != 0 {
		t.Fatalf("raw veth run: duplicated %d, reordered %d, unexpected %d: %v", raw.Duplicated, raw.Reordered, raw.Unexpected, raw.Violations)
	}
	if !raw.OK || raw.KernelDrops != 0 || raw.Received != rawPackets {
		fail("raw veth run not clean: received %d of %d, lost %d, kernel drops %d", raw.Received, rawPackets, raw.Lost, raw.KernelDrops)
		return problems
	}
	rawPPS := min(raw.PPS, rawGen.PPS)

	before, err := m.stats()
	if err != nil {
		t.Fatalf("manager stats: %v\n%s", err, m.out.String())
	}
	rate := rateShare * rawPPS
	sp = startSink(t, snk, bin, "-i", "eth0", "-idle", "1s", "-duration", "60s", "-sent", filepath.Join(dir, "chain.json"))
	// pktgen runs at nice 10: the two CPUs are shared by the generator,
	// the manager, two NFs and the sink, and in a real lab the generator
	// has a machine of its own, so the system under test goes first.
	g := pktgenNice(t, gen, bin, filepath.Join(dir, "chain.json"), "-i", "eth0", "-flows", strconv.Itoa(chainFlows),
		"-count", strconv.Itoa(chainPackets), "-rate", fmt.Sprintf("%.0f", rate), "-bucket", strconv.Itoa(chainBucket))
	res := sp.wait(t)
	after, err := m.stats()
	if err != nil {
		t.Fatalf("manager stats: %v\n%s", err, m.out.String())
	}
	t.Logf("attempt %d: raw veth rate %.0f pps (pktgen %.0f, sink %.0f); chain: pktgen sent %d at %.0f pps (asked %.0f = %.0f%% of raw, %d forfeited), sink received %d at %.0f pps (%.1f%% of raw), lost %d",
		attempt+1, rawPPS, rawGen.PPS, raw.PPS, g.Sent, g.PPS, rate, 100*rateShare, g.Forfeited, res.Received, res.PPS, 100*res.PPS/rawPPS, res.Lost)
	t.Logf("attempt %d: chain latency µs: p50 %.0f p99 %.0f max %.0f", attempt+1, float64(res.Latency.P50)/1e3, float64(res.Latency.P99)/1e3, float64(res.Latency.Max)/1e3)
	if res.Duplicated+res.Reordered+res.Unexpected != 0 {
		t.Fatalf("chain: duplicated %d, reordered %d, unexpected %d: %v", res.Duplicated, res.Reordered, res.Unexpected, res.Violations)
	}
	if g.Sent != chainPackets {
		fail("pktgen sent %d, want %d", g.Sent, chainPackets)
	}
	if len(res.Flows) != chainFlows || res.Expected != chainPackets {
		fail("sink saw %d flows expecting %d packets, want %d flows, %d packets", len(res.Flows), res.Expected, chainFlows, chainPackets)
	}
	if !res.OK || res.Received != chainPackets || res.Other != 0 {
		fail("chain not exactly-once: received %d, lost %d, other %d: %v", res.Received, res.Lost, res.Other, res.Violations)
	}
	if res.KernelDrops != 0 || res.RxDrops != 0 {
		fail("sink: kernel drops %d, rx drops %d", res.KernelDrops, res.RxDrops)
	}
	for i, p := range after.Ports {
		if i >= len(before.Ports) {
			break
		}
		if rx, tx := p.RxDrops-before.Ports[i].RxDrops, p.TxDrops-before.Ports[i].TxDrops; rx != 0 || tx != 0 {
			fail("manager port %s: rx drops %d (kernel drops included), tx drops %d", p.Name, rx, tx)
		}
	}
	if d := after.Drops.RXRingFull - before.Drops.RXRingFull + after.Drops.TXRingFull - before.Drops.TXRingFull; d != 0 {
		fail("manager: %d ring-full drops", d)
	}
	if res.PPS < 0.5*rawPPS {
		fail("chain rate %.0f pps is below half the raw veth rate %.0f pps", res.PPS, rawPPS)
	}
	return problems
}

// TestChainCarriesEveryKindOfFlow sends IPv4 and IPv6 flows, tagged and
// untagged, in several frame sizes through the chain, each exactly once
// and in order.
func TestChainCarriesEveryKindOfFlow(t *testing.T) {
	bin := bins(t)
	l := upLab(t, chainTopo(0))
	startMgr(t, l.Server("mgr"), bin, "")
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"ipv4 sizes", []string{"-size", "90,128,512,1514"}},
		{"ipv6 vlan", []string{"-ipv6", "-vlan", "42", "-size", "114,700,1518"}},
		{"ipv4 vlan", []string{"-vlan", "4094"}},
		{"ipv6", []string{"-ipv6", "-src", "fd00::ffff:ffff:fff0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 20_000
			rep := filepath.Join(dir, "sent.json")
			sp := startSink(t, l.Server("sink"), bin, "-i", "eth0", "-idle", "500ms", "-duration", "30s", "-sent", rep)
			pktgen(t, l.Server("gen"), bin, rep, append([]string{"-i", "eth0", "-flows", "16", "-count", strconv.Itoa(n), "-rate", "30000"}, tc.args...)...)
			res := sp.wait(t)
			if !res.OK || res.Received != n || res.Other != 0 || res.KernelDrops != 0 {
				t.Errorf("received %d of %d (other %d, kernel drops %d): lost %d, duplicated %d, reordered %d: %v",
					res.Received, n, res.Other, res.KernelDrops, res.Lost, res.Duplicated, res.Reordered, res.Violations)
			}
		})
	}
}
