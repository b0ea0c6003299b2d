package main

import (
	"bytes"
	"context"
	"reflect"
	"strings"
	"testing"
)

func TestParseTestPMDSumsPortsPerBlock(t *testing.T) {
	got := ParseTestPMD(readTestdata(t, "testpmd_null_22.11.txt"), 2)
	want := []float64{0, 59.963056}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("blocks %v, want %v", got, want)
	}
	if got := ParseTestPMD("Rx-pps: 5\n", 2); got != nil {
		t.Fatalf("half a block: %v, want none", got)
	}
}

func TestParseChainFlags(t *testing.T) {
	f, err := parseChainFlags(nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if f.pkts != 2048 || f.window <= 0 || f.testpmd != "dpdk-testpmd" || f.testpmdLcores != "0,1" {
		t.Fatalf("defaults: %+v", f)
	}
	var errb bytes.Buffer
	for _, args := range [][]string{{"-c", "0"}, {"-run", "("}, {"extra"}} {
		if _, err := parseChainFlags(args, &errb); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
	var out bytes.Buffer
	if code := dispatch(context.Background(), []string{"chain", "-h"}, &out, &errb); code != exitOK ||
		!strings.Contains(errb.String(), "-testpmd") {
		t.Fatalf("chain -h: exit %d, stderr %q", code, errb.String())
	}
}

// TestJudgeRatiosAndVerdicts feeds made-up measurements through the
// verdicts: rates are met at or above their target ratio, latencies at or
// below, and a missing reference leaves a target row "not measured".
func TestJudgeRatiosAndVerdicts(t *testing.T) {
	sc := scenarios(2048)
	byName := map[string]scenario{}
	for _, s := range sc {
		byName[s.Name] = s
	}
	rep := &chainReport{
		TestPMD:  &TestPMDResult{Mpps: 60},
		PingPong: &PingPongResult{RTTns: 100},
		Results: []*ChainResult{
			{Scenario: byName["T2 speed_tester -> itself"], Mpps: 30},       // 0.5 < 0.68
			{Scenario: byName["T3 chain, poll mode"], Mpps: 18},             // 0.3 = 0.3
			{Scenario: byName["T4 round trip, 1 in flight"], RTTns: 250},    // 2.5 ≤ 3
			{Scenario: byName["T4 round trip, 128 in flight"], RTTns: 5000}, // > 4300
			{Scenario: byName["T3 chain, shared-core mode"], Error: "boom"},
		},
	}
	rep.judge()
	status := map[string]string{}
	for _, r := range rep.Rows {
		status[r.Benchmark] = r.Status
	}
	want := map[string]string{
		"T2 speed_tester -> itself [≥ 0.68×]":       "missed",
		"T3 chain, poll mode [≥ 0.3×]":              "met",
		"T4 round trip, 1 in flight [≤ 3×]":         "met",
		"T4 round trip, 128 in flight [≤ 1×]":       "missed",
		"T3 chain, shared-core mode (failed: boom)": "",
	}
	for k, v := range want {
		if got, ok := status[k]; !ok || got != v {
			t.Errorf("%s: status %q (present %v), want %q; rows %+v", k, got, ok, v, rep.Rows)
		}
	}
	if r := rep.Results[0]; r.Explain == "" || r.Met == nil || *r.Met {
		t.Errorf("a miss needs a verdict and an explanation: %+v", r)
	}

	rep = &chainReport{Results: []*ChainResult{{Scenario: byName["T2 speed_tester -> itself"], Mpps: 30}}}
	rep.judge()
	if len(rep.Rows) != 1 || rep.Rows[0].Status != "not measured" || rep.Rows[0].Ratio != nil {
		t.Fatalf("without testpmd: %+v", rep.Rows)
	}
}

func TestExplainNamesWhereTheTimeGoes(t *testing.T) {
	defer func(n int) { benchCPUs = n }(benchCPUs)
	benchCPUs = 2
	tests := []struct {
		cpu    []ProcCPU
		others float64
		want   string
	}{
		{[]ProcCPU{{Name: "speed_tester", CPUPercent: 48}, {Name: "simple_forward", CPUPercent: 48}}, 95, "shared machine"},
		{[]ProcCPU{{Name: "manager", CPUPercent: 1}, {Name: "speed_tester", CPUPercent: 98}}, 40, "per-packet work"}, // busy neighbours, a full CPU anyway
		{[]ProcCPU{{Name: "speed_tester", CPUPercent: 40, Sleeps: 30000}}, 0, "futex sleeps"},
		{[]ProcCPU{{Name: "a", CPUPercent: 90}, {Name: "b", CPUPercent: 90}, {Name: "c", CPUPercent: 90}}, 0, "scheduler"},
		{[]ProcCPU{{Name: "manager", CPUPercent: 1}, {Name: "speed_tester", CPUPercent: 99}}, 0, "speed_tester's profile"},
	}
	for _, tt := range tests {
		if got := explain(&ChainResult{CPU: tt.cpu, Others: tt.others}); !strings.Contains(got, tt.want) {
			t.Errorf("explain(%+v) = %q, want it to mention %q", tt.cpu, got, tt.want)
		}
	}
}

func TestSlug(t *testing.T) {
	if got := slug("T4 round trip, 1 in flight"); got != "t4-round-trip-1-in-flight" {
		t.Fatalf("slug: %q", got)
	}
}
