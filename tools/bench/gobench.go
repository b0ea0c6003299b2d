package main

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Metric is one "value unit" pair of a benchmark line: ns/op, B/op,
// allocs/op, or a custom unit from b.ReportMetric (ns/elem, Melems/s,
// p50-ns). Units are kept as printed, so a benchmark can add metrics
// without a change here.
type Metric struct {
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}

// GoBenchRun is one result line of `go test -bench` output.
type GoBenchRun struct {
	// Name is the benchmark's full name without the GOMAXPROCS suffix,
	// e.g. "BenchmarkRing/burst=32".
	Name string `json:"name"`
	// Procs is the GOMAXPROCS suffix that was stripped; 0 if the line had
	// none (go test omits it when GOMAXPROCS is 1).
	Procs      int      `json:"procs,omitempty"`
	Iterations int64    `json:"iterations"`
	Metrics    []Metric `json:"metrics"` // in printed order
}

// procsSuffix matches the "-N" that go test appends to a name when
// GOMAXPROCS > 1. A sub-benchmark whose own name ends in "-digits" is
// ambiguous at GOMAXPROCS=1; this follows golang.org/x/perf/benchfmt and
// treats the suffix as GOMAXPROCS.
var procsSuffix = regexp.MustCompile(`-(\d+)$`)

// ParseGoBench extracts the result lines from go test output. A result line
// is, as specified in the Go benchmark data format proposal (golang.org/
// design/14313-benchmark-format): a name starting with "Benchmark", an
// iteration count, then any number of "value unit" pairs. Everything else
// (goos:, --- BENCH: logs, a name printed alone before a benchmark's log
// output, PASS, ok) is skipped, as are malformed lines, so output printed by
// a child process cannot inject a result.
func ParseGoBench(text string) []GoBenchRun {
	var runs []GoBenchRun
	for line := range strings.Lines(text) {
		if !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || len(f)%2 != 0 {
			continue
		}
		iters, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || iters <= 0 {
			continue
		}
		run := GoBenchRun{Name: f[0], Iterations: iters}
		if m := procsSuffix.FindStringSubmatch(run.Name); m != nil {
			run.Procs, _ = strconv.Atoi(m[1])
			run.Name = strings.TrimSuffix(run.Name, m[0])
		}
		ok := true
		for i := 2; i < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				ok = false
				break
			}
			run.Metrics = append(run.Metrics, Metric{Value: v, Unit: f[i+1]})
		}
		if ok {
			runs = append(runs, run)
		}
	}
	return runs
}

// GoBench is every run of one benchmark (-count n gives n runs) and the
// per-unit median over them. The median, not the mean or the best, because
// one descheduled run on a shared 2-vCPU VM should move the figure as
// little as possible in either direction.
type GoBench struct {
	Name   string       `json:"name"`
	Runs   []GoBenchRun `json:"runs"`
	Median []Metric     `json:"median"` // units in first-printed order
}

// Metric returns the median value for unit.
func (b GoBench) Metric(unit string) (float64, bool) {
	for _, m := range b.Median {
		if m.Unit == unit {
			return m.Value, true
		}
	}
	return 0, false
}

// AggregateGoBench groups runs by name, in first-seen order, and computes
// the median of each unit over the runs that reported it.
func AggregateGoBench(runs []GoBenchRun) []GoBench {
	var out []GoBench
	index := map[string]int{}
	for _, r := range runs {
		i, ok := index[r.Name]
		if !ok {
			i = len(out)
			index[r.Name] = i
			out = append(out, GoBench{Name: r.Name})
		}
		out[i].Runs = append(out[i].Runs, r)
	}
	for i := range out {
		var units []string
		values := map[string][]float64{}
		for _, r := range out[i].Runs {
			for _, m := range r.Metrics {
				if _, seen := values[m.Unit]; !seen {
					units = append(units, m.Unit)
				}
				values[m.Unit] = append(values[m.Unit], m.Value)
			}
		}
		for _, u := range units {
			out[i].Median = append(out[i].Median, Metric{Value: median(values[u]), Unit: u})
		}
	}
	return out
}

// median returns the middle value of vs (the mean of the two middle values
// for an even count), or 0 for none. vs is not modified.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// benchRegexp returns a -bench pattern that selects exactly the benchmark
// named name ("BenchmarkRingCrossProcess/burst=32" becomes
// "^BenchmarkRingCrossProcess$/^burst=32$"): go test splits -bench on
// unbracketed slashes and matches each level separately.
func benchRegexp(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}
