package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGoBenchRowsFlagAllocs(t *testing.T) {
	rows := goBenchRows(AggregateGoBench(ParseGoBench(readTestdata(t, "gobench_standin_count2.txt"))))
	// 3 metrics (ns/op, Melems/s, ns/elem) × 6 ring benchmarks, 1 for the
	// pool, 1 for meta, 3 for wake-up latency.
	if len(rows) != 23 {
		t.Fatalf("got %d rows, want 23", len(rows))
	}
	for _, r := range rows {
		if r.Unit == "B/op" || r.Unit == "allocs/op" {
			t.Errorf("row for %s %s: allocations belong in the allocs/op column", r.Benchmark, r.Unit)
		}
		if r.Allocs == nil {
			t.Errorf("%s %s: allocs/op missing", r.Benchmark, r.Unit)
			continue
		}
		wantFlag := r.Benchmark == "PoolAllocFree/burst=32"
		if (r.Status == statusAllocs) != wantFlag {
			t.Errorf("%s: status %q, allocs %v", r.Benchmark, r.Status, *r.Allocs)
		}
	}
}

func TestWriteTableAligned(t *testing.T) {
	one, half := 1.0, 0.897
	ref := 2.345
	rows := []Row{
		{Benchmark: "MetaWriteRead", Figure: 0.2434, Unit: "ns/op", Allocs: new(float64)},
		{Benchmark: "PoolAllocFree/burst=32", Figure: 16.945, Unit: "ns/op", Allocs: &one, Status: statusAllocs},
		{Benchmark: "rte_ring SP/SC bulk 32 [two physical cores, legacy API]", Figure: 4.69, Unit: "cycles/elem enq+deq"},
		{Benchmark: "T1 RingCrossProcess/burst=32", Figure: 2.613, Unit: "cycles/elem", Allocs: new(float64),
			Reference: &ref, Ratio: &half, Status: "missed"},
	}
	var buf bytes.Buffer
	if err := writeTable(&buf, rows); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("got %d lines:\n%s", len(lines), buf.String())
	}
	// Every column starts at the same offset on every line.
	col := strings.Index(lines[0], "figure")
	for _, l := range lines[1:] {
		if l[col-2:col] != "  " || l[col] == ' ' {
			t.Errorf("figure column not aligned at %d:\n%s", col, buf.String())
		}
	}
	for _, want := range []string{"0.243", "16.9", "ALLOCS", "2.61", "2.35", "0.897", "missed"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, buf.String())
		}
	}
	if f := strings.Fields(lines[3]); f[len(f)-4] != "-" || f[len(f)-1] != "-" {
		t.Errorf("DPDK row should have no allocs/op and no status: %q", lines[3])
	}
}

func TestFormatFigure(t *testing.T) {
	tests := []struct {
		v    float64
		want string
	}{
		{0, "0"}, {1, "1"}, {950000, "950000"}, {1137.25, "1137.2"}, {0.2434, "0.243"}, {4.69, "4.69"}, {23.834, "23.8"},
	}
	for _, tt := range tests {
		if got := formatFigure(tt.v); got != tt.want {
			t.Errorf("formatFigure(%v) = %q, want %q", tt.v, got, tt.want)
		}
	}
}

func TestWriteJSONFileAndStdout(t *testing.T) {
	rows := []Row{{Benchmark: "MetaWriteRead", Figure: 0.25, Unit: "ns/op", Allocs: new(float64)}}
	path := filepath.Join(t.TempDir(), "r.json")
	var stdout bytes.Buffer
	if err := writeJSON(path, &stdout, rows); err != nil {
		t.Fatal(err)
	}
	if stdout.Len() != 0 {
		t.Errorf("file output also went to stdout: %q", stdout.String())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var back []map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	// allocs_per_op 0 must be present (measured zero), reference absent.
	if v, ok := back[0]["allocs_per_op"]; !ok || v != 0.0 {
		t.Errorf("allocs_per_op = %v, %v", v, ok)
	}
	if _, ok := back[0]["reference"]; ok {
		t.Error("reference present on a row without one")
	}
	if err := writeJSON("-", &stdout, rows); err != nil || !bytes.Equal(stdout.Bytes(), b) {
		t.Errorf("-json - wrote %q, err %v; want the file's bytes", stdout.String(), err)
	}
}

func TestShellQuoteAndProfileCommand(t *testing.T) {
	got := shellQuote(profileCommand("./shm/", t1Benchmark, "1s", ""))
	want := `go test -run '^$' -bench '^BenchmarkRingCrossProcess$/^burst=32$' -benchtime 1s -cpuprofile cpu.pprof ./shm/`
	if got != want {
		t.Errorf("hint command\n got  %s\n want %s", got, want)
	}
	got = shellQuote(profileCommand("./shm/", t1Benchmark, "1s", "/tmp/p"))
	if !strings.HasSuffix(got, "-cpuprofile /tmp/p/cpu.pprof -o /tmp/p/shm.test ./shm/") {
		t.Errorf("profile command %s", got)
	}
	if got := shellQuote([]string{"it's", ""}); got != `'it'\''s' ''` {
		t.Errorf("shellQuote = %s", got)
	}
	if got := testBinaryName("."); got != "pkg.test" {
		t.Errorf("testBinaryName(.) = %q", got)
	}
}
