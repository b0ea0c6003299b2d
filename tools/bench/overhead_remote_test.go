package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/internal/testenv"
	"github.com/reinforce-nfv/reinforce/manager"
	"github.com/reinforce-nfv/reinforce/manager/config"
	"github.com/reinforce-nfv/reinforce/replicator"
	"github.com/reinforce-nfv/reinforce/tools/sink/check"
)

func TestRemoteRequested(t *testing.T) {
	for _, c := range []struct {
		args []string
		want bool
	}{
		{nil, false},
		{[]string{"-runs", "2"}, false},
		{[]string{"-remote"}, true},
		{[]string{"--remote"}, true},
		{[]string{"-runs", "2", "--remote", "-json", "-"}, true},
		{[]string{"-remote=true"}, true},
		{[]string{"--remote=1"}, true},
		{[]string{"-remote=false"}, false},
		{[]string{"-remote=maybe"}, false},
		{[]string{"--", "-remote"}, false},
		{[]string{"-remotely"}, false},
	} {
		if got := remoteRequested(c.args); got != c.want {
			t.Errorf("remoteRequested(%q) = %v, want %v", c.args, got, c.want)
		}
	}
}

func TestParseRemoteFlags(t *testing.T) {
	f, err := parseRemoteFlags([]string{"--remote"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if f.runs != 3 || f.window != 3*time.Second || f.maxWindow != 2*time.Second || f.warmup != time.Second ||
		f.flows != 64 || f.size != 128 || f.pings != 1000 || f.roundUS != 0 || f.repWindow != 0 || !f.standbyNFs {
		t.Errorf("defaults: %+v", f)
	}
	f, err = parseRemoteFlags([]string{"-remote", "-runs", "3", "-window", "500ms", "-round-us", "200", "-json", "-"}, io.Discard)
	if err != nil || f.runs != 3 || f.window != 500*time.Millisecond || f.roundUS != 200 || f.jsonPath != "-" {
		t.Errorf("flags: %+v, %v", f, err)
	}
	var out bytes.Buffer
	if _, err := parseRemoteFlags([]string{"-remote", "-h"}, &out); !errors.Is(err, flag.ErrHelp) || !strings.Contains(out.String(), "-round-us") {
		t.Errorf("-h: %v, %q", err, out.String())
	}
	for _, bad := range [][]string{
		{"-runs", "2"}, // without -remote
		{"-remote", "-runs", "0"},
		{"-remote", "-size", "60"},
		{"-remote", "-flows", "0"},
		{"-remote", "-pings", "3"},
		{"-remote", "-round-us", "-1"},
		{"-remote", "extra"},
		{"-remote", "-nosuchflag"},
	} {
		out.Reset()
		if _, err := parseRemoteFlags(bad, &out); err == nil {
			t.Errorf("%q: accepted", bad)
		} else if out.Len() == 0 {
			t.Errorf("%q: no message", bad)
		}
	}
}

// Without root, -remote says so and fails instead of half-starting a lab.
func TestOverheadRemoteNeedsRoot(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("runs only without root")
	}
	var out, errb bytes.Buffer
	if code := dispatch(context.Background(), []string{"overhead", "--remote"}, &out, &errb); code != exitError {
		t.Fatalf("exit %d, want %d", code, exitError)
	}
	if !strings.Contains(errb.String(), "needs root") {
		t.Errorf("message: %q", errb.String())
	}
}

// The three manager configurations are valid for the manager's own parser,
// and only the replicated ones carry [replication] with the right roles.
func TestRemoteMgrConfigParses(t *testing.T) {
	for _, role := range []string{"", "primary", "standby"} {
		text := remoteMgrConfig("pri1", "/tmp/x.sock", "/bin", role, 200, 4, false)
		cfg, _, err := config.Parse("remote.toml", []byte(text))
		if err != nil {
			t.Fatalf("role %q: %v\n%s", role, err, text)
		}
		switch role {
		case "":
			if len(cfg.Replication.Chains) != 0 || len(cfg.NFs) != 2 {
				t.Errorf("baseline: %d replicated chains, %d NFs", len(cfg.Replication.Chains), len(cfg.NFs))
			}
		case "primary", "standby":
			rc := cfg.Replication.Chains
			if len(rc) != 1 || string(rc[0].Role) != role || cfg.Replication.Window != 4 || cfg.Replication.RoundEvery != 200*time.Microsecond {
				t.Fatalf("%s: %+v", role, cfg.Replication)
			}
			local, peer := remotePrimaryIP, remoteStandbyIP
			if role == "standby" {
				local, peer = peer, local
				if len(cfg.NFs) != 0 {
					t.Errorf("standby runs %d NFs without standbyNFs", len(cfg.NFs))
				}
				cfg, _, err := config.Parse("remote.toml", []byte(remoteMgrConfig("sb1", "/tmp/x.sock", "/bin", role, 0, 0, true)))
				if err != nil || len(cfg.NFs) != 2 || cfg.NFs[0].Instance != 1 || cfg.NFs[1].Instance != 2 {
					t.Errorf("standby with NFs: %v, %+v", err, cfg.NFs)
				}
			}
			if rc[0].Local.Addr().String() != local || rc[0].Peer.Addr().String() != peer {
				t.Errorf("%s: local %v peer %v", role, rc[0].Local, rc[0].Peer)
			}
		}
	}
}

func TestRepFiguresLittlesLaw(t *testing.T) {
	r0 := manager.RepStats{Rounds: 100, PayloadBytes: 10_000, RXLatchDrops: 1}
	r1 := manager.RepStats{Rounds: 1100, PayloadBytes: 810_000, RXLatchDrops: 1, Status: manager.RepProtected}
	r0.Node.Replicator = replicator.Counters{Retransmits: 2, TxSent: 50}
	r1.Node.Replicator = replicator.Counters{Retransmits: 5, TxSent: 1000}
	samples := []repSample{{latched: 100, inFlight: 0, protected: true}, {latched: 300, inFlight: 1}, {latched: 200, inFlight: 2, protected: true}, {latched: 200, inFlight: 1, protected: true}}
	f := repFigures(r0, r1, samples, 100_000, 2)
	// 1000 rounds in 2 s: 500/s; mean in flight 1 → 2000 µs from proposal
	// to release. Mean latch 200 packets at 100 kpps → 2000 µs.
	if f.Rounds != 1000 || f.RoundsPerSec != 500 || f.BytesPerTxn != 800 || f.InFlightMean != 1 || f.InFlightMax != 2 ||
		f.LatchMean != 200 || f.LatchMax != 300 || f.ProposalToReleaseUs != 2000 || f.LatchResidenceUs != 2000 ||
		f.Retransmits != 3 || f.TxSent != 950 || f.RXLatchDrops != 0 || f.Status != manager.RepProtected || f.Samples != 4 || f.Unprotected != 1 {
		t.Errorf("figures: %+v", f)
	}
	// In flight from a snapshot: rounds proposed − latch released.
	var s manager.Snapshot
	s.Replication = []manager.RepStats{{Rounds: 10, Latched: 7, Status: manager.RepProtected}}
	s.Replication[0].Node.Replicator.Released = 8
	if _, sm, ok := repSampleOf(s); !ok || sm.inFlight != 2 || sm.latched != 7 || !sm.protected {
		t.Errorf("sample %+v %v", sm, ok)
	}
	if _, _, ok := repSampleOf(manager.Snapshot{}); ok {
		t.Error("a snapshot without replication gave a sample")
	}
	if f := repFigures(r0, r0, nil, 0, 0); f.ProposalToReleaseUs != 0 || f.BytesPerTxn != 0 || f.LatchResidenceUs != 0 {
		t.Errorf("empty window: %+v", f)
	}
}

func TestStampErrorsExcuseSkipsOnlyWithLoss(t *testing.T) {
	cr := check.Report{Flows: []check.FlowReport{
		{Flow: 0, Stamps: []check.StampViolations{{Skipped: 3}}},                        // nothing lost: a violation
		{Flow: 1, Lost: 2, Stamps: []check.StampViolations{{Skipped: 2, Repeated: 1}}},  // skips explained, the repeat is not
		{Flow: 2, Lost: 1, Stamps: []check.StampViolations{{Skipped: 1, Regressed: 1}}}, // same
		{Flow: 3, Stamps: []check.StampViolations{{}}},
	}}
	bad, skips := stampErrors(cr)
	if bad != 5 || skips != 3 {
		t.Errorf("bad %d skips %d, want 5 and 3", bad, skips)
	}
}

// remoteRuns is a synthetic report: one session per configuration.
func remoteRuns(cpuOn, meanOn, p99On float64, lostOn uint64) *remoteReport {
	cpu := func(primary, standby float64) []ProcCPU {
		c := []ProcCPU{{Name: "primary manager", CPUPercent: primary}, {Name: "stamp", CPUPercent: 5}, {Name: "mutate", CPUPercent: 5}}
		if standby > 0 {
			c = append(c, ProcCPU{Name: "standby manager", CPUPercent: standby})
		}
		return c
	}
	rep := &remoteReport{Host: map[string]string{}, RTT: Latency{Count: 1000, Mean: 20_000, P99: 50_000}}
	rep.Runs = []*RemoteRun{
		{Phase: phaseMax, DeliveredPPS: 300_000},
		{Phase: phaseMax, Replication: true, DeliveredPPS: 240_000},
		{Phase: phaseT5, OfferedPPS: 75_000, DeliveredPPS: 75_000, Sent: 300_000, CPUNsPerPkt: 4000, CPU: cpu(20, 0)},
		{Phase: phaseT6, OfferedPPS: 150_000, DeliveredPPS: 150_000, Sent: 600_000, Latency: Latency{Count: 450_000, Mean: 1_000_000, P99: 3_000_000}},
		{Phase: phaseT5, Replication: true, OfferedPPS: 75_000, DeliveredPPS: 75_000, Sent: 300_000, Lost: lostOn,
			CPUNsPerPkt: cpuOn, PrimaryNsPerPkt: cpuOn - 500, StandbyNsPerPkt: 500, CPU: cpu(30, 4),
			Rep: &RepFigures{LatchMean: 40, LatchMax: 300, InFlightMean: 0.5, InFlightMax: 3, BytesPerTxn: 900, RoundsPerSec: 2000, ProposalToReleaseUs: 250, LatchResidenceUs: 530}},
		{Phase: phaseT6, Replication: true, OfferedPPS: 150_000, DeliveredPPS: 150_000, Sent: 600_000,
			Latency: Latency{Count: 450_000, Mean: meanOn, P99: uint64(p99On)}, Rep: &RepFigures{ProposalToReleaseUs: 260, LatchResidenceUs: 600}},
	}
	rep.Runs[2].IdleCPU = []ProcCPU{{Name: "primary manager", CPUPercent: 4}}
	rep.Runs[4].IdleCPU = []ProcCPU{{Name: "primary manager", CPUPercent: 6}, {Name: "standby manager", CPUPercent: 2}}
	return rep
}

func rowNamed(t *testing.T, rows []Row, prefix string) Row {
	t.Helper()
	for _, r := range rows {
		if strings.HasPrefix(r.Benchmark, prefix) {
			return r
		}
	}
	t.Fatalf("no row %q in %+v", prefix, rows)
	return Row{}
}

func TestRemoteJudgeMet(t *testing.T) {
	// 5800 / 4000 = 1.45 ≤ 1.5; mean +300 µs − 20 µs RTT = 280 µs ≤ 300;
	// p99 +2040 µs − 50 µs = 1990 µs ≤ 2000.
	rep := remoteRuns(5800, 1_300_000, 5_040_000, 0)
	rep.judge()
	if len(rep.Misses) != 0 {
		t.Fatalf("misses: %q", rep.Misses)
	}
	for prefix, want := range map[string]struct {
		figure, ratio float64
	}{
		"T5 remote: loss":                                {0, -1},
		"T5 remote: CPU per packet":                      {5800, 1.45},
		"T6 remote: added mean":                          {280, 0.9333},
		"T6 remote: added p99":                           {1990, 0.995},
		"replication, maximum rate":                      {240, 0.8},
		"ref: baseline (no [replication]), maximum rate": {300, -1},
	} {
		r := rowNamed(t, rep.Rows, prefix)
		if r.Figure != want.figure || (want.ratio >= 0 && (r.Ratio == nil || *r.Ratio != want.ratio)) {
			t.Errorf("%s: figure %v ratio %v, want %v %v", prefix, r.Figure, r.Ratio, want.figure, want.ratio)
		}
		if strings.HasPrefix(prefix, "T") && r.Status != "met" {
			t.Errorf("%s: %q", prefix, r.Status)
		}
	}
	if r := rowNamed(t, rep.Rows, "replication, maximum rate"); r.Status != "" {
		t.Errorf("the maximum rate is information, not a target: %q", r.Status)
	}
	if r := rowNamed(t, rep.Rows, "primary at 25 %: bytes per transaction"); r.Figure != 900 {
		t.Errorf("bytes per transaction %v", r.Figure)
	}
	if r := rowNamed(t, rep.Rows, "primary at 25 %: proposal → release"); r.Figure != 250 {
		t.Errorf("proposal → release %v", r.Figure)
	}
}

func TestRemoteJudgeMissed(t *testing.T) {
	// 6100 / 4000 = 1.525 > 1.5; mean +320 − 20 = 300 µs: met exactly at
	// the bound; p99 +2100 − 50 = 2050 µs > 2000; one packet lost.
	rep := remoteRuns(6100, 1_320_000, 5_100_000, 1)
	rep.judge()
	for prefix, want := range map[string]string{
		"T5 remote: loss":           "missed",
		"T5 remote: CPU per packet": "missed",
		"T6 remote: added mean":     "met",
		"T6 remote: added p99":      "missed",
	} {
		if r := rowNamed(t, rep.Rows, prefix); r.Status != want {
			t.Errorf("%s: %q, want %q", prefix, r.Status, want)
		}
	}
	if len(rep.Misses) != 3 {
		t.Fatalf("misses: %q", rep.Misses)
	}
	for _, m := range rep.Misses {
		if !strings.Contains(m, "%") && !strings.Contains(m, "µs") {
			t.Errorf("a miss without its figures: %q", m)
		}
	}
	// The CPU miss splits the extra 2100 ns: (8 % − 4 %) of a CPU with no
	// traffic over 75 kpps is 533 ns of fixed cost.
	if !strings.Contains(rep.Misses[1], "of the 2100 ns more per packet, about 533 ns is the replication's fixed cost") ||
		!strings.Contains(rep.Misses[1], "1567 ns grows with the traffic") {
		t.Errorf("CPU miss: %q", rep.Misses[1])
	}

	// A failed replicated 25 % run cannot show "no loss"; missing latency
	// cannot meet T6.
	rep = remoteRuns(5000, 1_000_000, 3_000_000, 0)
	rep.Runs[4].Error = "manager exited"
	rep.Runs[5].Latency = Latency{}
	rep.judge()
	if r := rowNamed(t, rep.Rows, "T5 remote: loss"); r.Status != "missed" {
		t.Errorf("loss with a failed run: %q", r.Status)
	}
	if r := rowNamed(t, rep.Rows, "T6 remote: added mean"); r.Status != "missed" {
		t.Errorf("T6 without latencies: %q", r.Status)
	}
	if r := rowNamed(t, rep.Rows, "sink at 25 % and 50 %"); r.Status != "missed" {
		t.Errorf("checks row with a failed run: %q", r.Status)
	}
}

// TestOverheadRemoteSmoke runs the whole subcommand in the lab with short
// windows: every phase must complete (the chain ran, the standby protected
// it, pktgen and the sink worked) and the report must carry every row. It
// judges nothing about the figures, which short windows on a shared
// machine do not support.
func TestOverheadRemoteSmoke(t *testing.T) {
	testenv.RequireRoot(t, "the lab (namespaces, veth, AF_PACKET)")
	if testing.Short() {
		t.Skip("-short: the lab run takes about 20 s")
	}
	path := filepath.Join(t.TempDir(), "remote.json")
	var out, errb bytes.Buffer
	code := dispatch(context.Background(), []string{"overhead", "-remote", "-runs", "1", "-window", "700ms", "-max-window", "500ms",
		"-warmup", "300ms", "-pings", "50", "-json", path}, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rep remoteReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Runs) != 6 || rep.RTT.Count != 50 {
		t.Fatalf("%d runs, %d pings", len(rep.Runs), rep.RTT.Count)
	}
	for _, r := range rep.Runs {
		if r.Error != "" || r.DeliveredPPS <= 0 || r.Sent == 0 || r.Received == 0 {
			t.Errorf("run %+v", r)
		}
		if r.Replication != (r.Rep != nil) {
			t.Errorf("replication %v with figures %v", r.Replication, r.Rep)
		}
		if r.Rep != nil && (r.Rep.Rounds == 0 || r.Rep.Status != manager.RepProtected) {
			t.Errorf("replication figures %+v", r.Rep)
		}
	}
	for _, prefix := range []string{"T5 remote: loss", "T5 remote: CPU per packet", "T6 remote: added mean", "T6 remote: added p99"} {
		if r := rowNamed(t, rep.Rows, prefix); r.Status != "met" && r.Status != "missed" {
			t.Errorf("%s: status %q", prefix, r.Status)
		}
	}
	if !strings.Contains(out.String(), "T6 remote: added p99") {
		t.Errorf("table:\n%s", out.String())
	}
}
