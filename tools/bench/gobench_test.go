package main

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseGoBenchLines(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []GoBenchRun
	}{
		{
			name: "standard metrics with procs suffix",
			text: "BenchmarkMetaWriteRead-2   \t100000000\t         0.2434 ns/op\t       0 B/op\t       0 allocs/op\n",
			want: []GoBenchRun{{Name: "BenchmarkMetaWriteRead", Procs: 2, Iterations: 100000000,
				Metrics: []Metric{{0.2434, "ns/op"}, {0, "B/op"}, {0, "allocs/op"}}}},
		},
		{
			name: "custom metrics on a sub-benchmark",
			text: "BenchmarkRingCrossProcess/burst=32-16 \t  752551\t  32.14 ns/op\t 995.7 Melems/s\t 1.004 ns/elem\t 0 B/op\t 0 allocs/op\n",
			want: []GoBenchRun{{Name: "BenchmarkRingCrossProcess/burst=32", Procs: 16, Iterations: 752551,
				Metrics: []Metric{{32.14, "ns/op"}, {995.7, "Melems/s"}, {1.004, "ns/elem"}, {0, "B/op"}, {0, "allocs/op"}}}},
		},
		{
			name: "latency percentiles without benchmem",
			text: "BenchmarkWakeupLatency-2 \t 993\t 23021 ns/op\t 55000 p50-ns\t 950000 p99-ns\n",
			want: []GoBenchRun{{Name: "BenchmarkWakeupLatency", Procs: 2, Iterations: 993,
				Metrics: []Metric{{23021, "ns/op"}, {55000, "p50-ns"}, {950000, "p99-ns"}}}},
		},
		{
			name: "GOMAXPROCS=1 has no suffix",
			text: "BenchmarkRing/burst=8 \t10036569\t 2.402 ns/op\n",
			want: []GoBenchRun{{Name: "BenchmarkRing/burst=8", Iterations: 10036569, Metrics: []Metric{{2.402, "ns/op"}}}},
		},
		{
			name: "exponent and CRLF",
			text: "BenchmarkX-2 \t 5\t 1.5e+09 ns/op\r\n",
			want: []GoBenchRun{{Name: "BenchmarkX", Procs: 2, Iterations: 5, Metrics: []Metric{{1.5e9, "ns/op"}}}},
		},
		{
			name: "everything that is not a result line is skipped",
			text: "goos: linux\ncpu: AMD EPYC\n" +
				"BenchmarkMetaWriteRead\n" + // name printed alone before log output
				"--- BENCH: BenchmarkMetaWriteRead-2\n    x_test.go:1: BenchmarkY 1 2 ns/op\n" +
				"BenchmarkOdd-2 \t 10\t 5 ns/op\t 7\n" + // dangling value
				"BenchmarkBadValue-2 \t 10\t fast ns/op\n" +
				"BenchmarkBadIters-2 \t ten\t 5 ns/op\n" +
				"BenchmarkZeroIters-2 \t 0\t 5 ns/op\n" +
				"Benchmarks are fun, said the child process\n" +
				"PASS\nok  \tx\t0.1s\n",
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ParseGoBench(tt.text)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseGoBench:\n got  %+v\n want %+v", got, tt.want)
			}
		})
	}
}

func TestParseGoBenchCapturedOutput(t *testing.T) {
	tests := []struct {
		file      string
		runs      int
		names     []string // distinct, in order
		procs     int
		lastUnits []string
	}{
		{
			file: "gobench_standin_count2.txt", runs: 18, procs: 2,
			names: []string{
				"BenchmarkRing/burst=1", "BenchmarkRing/burst=8", "BenchmarkRing/burst=32",
				"BenchmarkRingCrossProcess/burst=1", "BenchmarkRingCrossProcess/burst=8", "BenchmarkRingCrossProcess/burst=32",
				"BenchmarkPoolAllocFree/burst=32", "BenchmarkMetaWriteRead", "BenchmarkWakeupLatency",
			},
			lastUnits: []string{"ns/op", "p50-ns", "p99-ns", "B/op", "allocs/op"},
		},
		{
			file: "gobench_standin_cpu1.txt", runs: 4, procs: 0,
			names:     []string{"BenchmarkRing/burst=1", "BenchmarkRing/burst=8", "BenchmarkRing/burst=32", "BenchmarkMetaWriteRead"},
			lastUnits: []string{"ns/op", "B/op", "allocs/op"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			runs := ParseGoBench(readTestdata(t, tt.file))
			if len(runs) != tt.runs {
				t.Fatalf("got %d runs, want %d", len(runs), tt.runs)
			}
			var names []string
			for _, b := range AggregateGoBench(runs) {
				names = append(names, b.Name)
			}
			if !reflect.DeepEqual(names, tt.names) {
				t.Errorf("names %q, want %q", names, tt.names)
			}
			for _, r := range runs {
				if r.Procs != tt.procs {
					t.Errorf("%s: procs %d, want %d", r.Name, r.Procs, tt.procs)
				}
			}
			var units []string
			for _, m := range runs[len(runs)-1].Metrics {
				units = append(units, m.Unit)
			}
			if !reflect.DeepEqual(units, tt.lastUnits) {
				t.Errorf("last run's units %q, want %q", units, tt.lastUnits)
			}
		})
	}
}

func TestAggregateGoBenchMedianPerUnit(t *testing.T) {
	runs := ParseGoBench(readTestdata(t, "gobench_standin_count2.txt"))
	var cross GoBench
	for _, b := range AggregateGoBench(runs) {
		if b.Name == t1Benchmark {
			cross = b
		}
	}
	if len(cross.Runs) != 2 {
		t.Fatalf("%s: %d runs, want 2", t1Benchmark, len(cross.Runs))
	}
	// The file's two runs report 1.004 and 1.006 ns/elem.
	if got, ok := cross.Metric("ns/elem"); !ok || got != 1.005 {
		t.Errorf("median ns/elem = %v, %v; want 1.005", got, ok)
	}
	if got, ok := cross.Metric("allocs/op"); !ok || got != 0 {
		t.Errorf("allocs/op = %v, %v; want 0", got, ok)
	}
	if _, ok := cross.Metric("p99-ns"); ok {
		t.Error("p99-ns reported for a benchmark that has none")
	}
}

func TestAggregateGoBenchUnitsReportedByOnlySomeRuns(t *testing.T) {
	runs := []GoBenchRun{
		{Name: "BenchmarkA", Iterations: 1, Metrics: []Metric{{3, "ns/op"}}},
		{Name: "BenchmarkB", Iterations: 1, Metrics: []Metric{{9, "ns/op"}}},
		{Name: "BenchmarkA", Iterations: 1, Metrics: []Metric{{1, "ns/op"}, {7, "x/op"}}},
		{Name: "BenchmarkA", Iterations: 1, Metrics: []Metric{{2, "ns/op"}}},
	}
	got := AggregateGoBench(runs)
	want := []Metric{{2, "ns/op"}, {7, "x/op"}}
	if len(got) != 2 || got[0].Name != "BenchmarkA" || !reflect.DeepEqual(got[0].Median, want) {
		t.Errorf("AggregateGoBench = %+v, want BenchmarkA first with median %v", got, want)
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{4}, 4},
		{[]float64{23.83, 4.59, 13.74}, 13.74},
		{[]float64{4, 1, 3, 2}, 2.5},
	}
	for _, tt := range tests {
		in := append([]float64(nil), tt.in...)
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
		if !reflect.DeepEqual(in, tt.in) {
			t.Errorf("median modified its input: %v", tt.in)
		}
	}
}

func TestBenchRegexp(t *testing.T) {
	tests := []struct{ name, want string }{
		{"BenchmarkRingCrossProcess/burst=32", "^BenchmarkRingCrossProcess$/^burst=32$"},
		{"BenchmarkMetaWriteRead", "^BenchmarkMetaWriteRead$"},
		{"BenchmarkX/a.b+c", `^BenchmarkX$/^a\.b\+c$`},
	}
	for _, tt := range tests {
		if got := benchRegexp(tt.name); got != tt.want {
			t.Errorf("benchRegexp(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}
