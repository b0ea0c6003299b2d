package main

import (
	"bytes"
	"context"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestDispatchUsage(t *testing.T) {
	tests := []struct {
		args     []string
		code     int
		inStdout string
		inStderr string
	}{
		{nil, exitUsage, "", "subcommands:"},
		{[]string{"nope"}, exitUsage, "", `unknown subcommand "nope"`},
		{[]string{"help"}, exitOK, "ring", ""},
		{[]string{"ring", "-h"}, exitOK, "", "-dpdk-count"},
		{[]string{"ring", "-nosuchflag"}, exitUsage, "", "flag provided but not defined"},
		{[]string{"ring", "extra"}, exitUsage, "", "unexpected arguments: extra"},
		{[]string{"ring", "-count", "0"}, exitUsage, "", "at least 1"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := dispatch(context.Background(), tt.args, &out, &errb)
			if code != tt.code {
				t.Errorf("exit %d, want %d", code, tt.code)
			}
			if !strings.Contains(out.String(), tt.inStdout) || !strings.Contains(errb.String(), tt.inStderr) {
				t.Errorf("stdout %q / stderr %q; want them to contain %q / %q", out.String(), errb.String(), tt.inStdout, tt.inStderr)
			}
		})
	}
}

func TestParseRingFlagsDefaults(t *testing.T) {
	f, err := parseRingFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if f.bench != defaultRingBench || f.benchtime != "1s" || f.count != 1 || f.pkg != "./shm/" ||
		f.jsonPath != "" || f.profileDir != "" || f.dpdk.lcores != "0,1" || f.dpdk.runs != 3 || f.dpdk.verbose != nil {
		t.Errorf("defaults: %+v", f)
	}
}

func TestComputeT1(t *testing.T) {
	const tsc = 2.6e9
	bench := func(ms ...Metric) GoBench { return GoBench{Name: t1Benchmark, Median: ms} }
	tests := []struct {
		name      string
		b         GoBench
		dpdkWall  float64
		wantErr   bool
		ratio     float64
		met       bool
		nsSource  string
		oursCyc   float64
		dpdkMelem float64
	}{
		{
			// 1 ns/elem = 2.6 cycles; DPDK 4.69 summed = 2.345 wall.
			name: "ns/elem, missed", b: bench(Metric{32, "ns/op"}, Metric{1, "ns/elem"}),
			dpdkWall: 4.69 / dpdkCoresSummed, ratio: 2.345 / 2.6, met: false, nsSource: "ns/elem", oursCyc: 2.6, dpdkMelem: 2.6e9 / 2.345 / 1e6,
		},
		{
			name: "exactly equal is met", b: bench(Metric{0.5, "ns/elem"}),
			dpdkWall: 1.3, ratio: 1, met: true, nsSource: "ns/elem", oursCyc: 1.3, dpdkMelem: 2000,
		},
		{
			name: "throughput only", b: bench(Metric{400, "Melems/s"}),
			dpdkWall: 13, ratio: 2, met: true, nsSource: "1000/Melems/s", oursCyc: 6.5, dpdkMelem: 200,
		},
		{name: "no per-element metric", b: bench(Metric{32, "ns/op"}), dpdkWall: 2, wantErr: true},
		{name: "zero ns/elem", b: bench(Metric{0, "ns/elem"}), dpdkWall: 2, wantErr: true},
		{name: "no reference", b: bench(Metric{1, "ns/elem"}), dpdkWall: 0, wantErr: true},
	}
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := computeT1(tt.b, tsc, tt.dpdkWall)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if !near(r.Ratio, tt.ratio) || r.Met != tt.met || r.NsSource != tt.nsSource ||
				!near(r.CyclesPerElem, tt.oursCyc) || !near(r.DPDKMelemsPerS, tt.dpdkMelem) {
				t.Errorf("computeT1 = %+v; want ratio %v met %v source %q cycles %v dpdk %v Melems/s",
					r, tt.ratio, tt.met, tt.nsSource, tt.oursCyc, tt.dpdkMelem)
			}
		})
	}
}

func TestAddT1RowFromCapturedOutputs(t *testing.T) {
	rep := &ringReport{
		Benchmarks: AggregateGoBench(ParseGoBench(readTestdata(t, "gobench_standin_count2.txt"))),
		TSC:        &TSC{Hz: 2.6e9},
	}
	ref, ok := PickReference(ParseRingPerf(readTestdata(t, "ring_perf_22.11_info.txt")), 32)
	if !ok {
		t.Fatal("no reference in captured output")
	}
	rep.DPDK = &DPDKResult{Section: ref.Section, API: ref.API, Figures: []float64{ref.Cycles},
		SummedCycles: ref.Cycles, WallCycles: ref.Cycles / dpdkCoresSummed}
	rep.addT1()
	if rep.T1 == nil || len(rep.Rows) != 1 {
		t.Fatalf("no T1 row: notes %q", rep.Notes)
	}
	row := rep.Rows[0]
	// Stand-in median 1.005 ns/elem × 2.6 GHz = 2.613 cycles; reference
	// 4.69 / 2 = 2.345 cycles; ratio 0.897.
	if row.Benchmark != "T1 RingCrossProcess/burst=32" || row.Status != "missed" ||
		math.Abs(row.Figure-2.613) > 1e-9 || math.Abs(*row.Reference-2.345) > 1e-9 ||
		math.Abs(*row.Ratio-2.345/2.613) > 1e-9 || row.Allocs == nil || *row.Allocs != 0 {
		t.Errorf("T1 row %+v (reference %v ratio %v)", row, *row.Reference, *row.Ratio)
	}
	if !strings.Contains(rep.Notes[0], "ratio 0.90, target ≥ 1.0: missed") {
		t.Errorf("T1 note %q", rep.Notes[0])
	}
}

func TestAddT1NotMeasuredWithoutBenchmark(t *testing.T) {
	rep := &ringReport{TSC: &TSC{Hz: 2.6e9}, DPDK: &DPDKResult{WallCycles: 2}}
	rep.addT1()
	if rep.T1 != nil || len(rep.Rows) != 0 || len(rep.Notes) != 1 || !strings.HasPrefix(rep.Notes[0], "T1 not measured") {
		t.Errorf("T1 %+v rows %+v notes %q", rep.T1, rep.Rows, rep.Notes)
	}
}

func TestDPDKNoteSaysWhichSection(t *testing.T) {
	d := &DPDKResult{Section: "two hyperthreads", API: "legacy", Figures: []float64{4.59, 23.83, 13.74},
		SummedCycles: 13.74, WallCycles: 6.87}
	got := dpdkNote(d)
	for _, want := range []string{"[two hyperthreads, legacy API]", "median 13.74", "(4.59 23.83 13.74)",
		"every 6.87 cycles", `NOTE: no "two physical cores" section in the output, used "two hyperthreads"`} {
		if !strings.Contains(got, want) {
			t.Errorf("dpdkNote = %q; missing %q", got, want)
		}
	}
}

func TestParseGoBenchHeader(t *testing.T) {
	got := parseGoBenchHeader(readTestdata(t, "gobench_standin_count2.txt"))
	want := map[string]string{"goos": "linux", "goarch": "amd64", "pkg": "fakeshm", "cpu": "AMD EPYC"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseGoBenchHeader = %v, want %v", got, want)
	}
}
