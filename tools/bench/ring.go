package main

// The ring subcommand measures T1 (TARGETS.md): the shm ring between a
// producer process and a consumer process, bursts of 32, against DPDK's
// rte_ring on two cores, SP/SC bulk 32, in elements/s. Stages, in order,
// each finishing before the next starts because two benchmarks sharing
// the 2 vCPUs would measure each other:
//
//	go test -bench ./shm/ → parse, median per unit
//	→ dpdk-test ring_perf_autotest × dpdk-count → parse, median
//	→ TSC frequency → T1 ratio
//	→ table (stdout), notes, profile on a miss, JSON.

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

const (
	// defaultRingBench selects the shm benchmarks the ring report covers.
	defaultRingBench = `^Benchmark(Ring|RingCrossProcess|PoolAllocFree|MetaWriteRead|WakeupLatency)$`
	// t1Benchmark is the benchmark T1 is about: two processes, bursts of 32.
	t1Benchmark = "BenchmarkRingCrossProcess/burst=32"
	// t1Target is the ratio T1 requires: at least DPDK's elements/s.
	t1Target = 1.0
	// dpdkMissing is printed, verbatim, when dpdk-test is not installed.
	dpdkMissing = "dpdk-test not found (apt-get install dpdk-dev): T1 ratio not measured"
)

// ringFlags are the ring subcommand's flags.
type ringFlags struct {
	bench, benchtime, pkg string
	count                 int
	verbose               bool
	jsonPath, profileDir  string
	dpdk                  dpdkConfig
}

func parseRingFlags(args []string, stderr io.Writer) (ringFlags, error) {
	var f ringFlags
	fs := flag.NewFlagSet("ring", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: go run ./tools/bench ring [flags]")
		fmt.Fprintln(stderr)
		fmt.Fprintln(stderr, "Runs the shm benchmarks and DPDK's ring_perf_autotest in one invocation and")
		fmt.Fprintln(stderr, "reports T1: shm ring across processes (burst=32) vs rte_ring 2-core SP/SC bulk 32.")
		fmt.Fprintln(stderr)
		fs.PrintDefaults()
	}
	fs.StringVar(&f.bench, "bench", defaultRingBench, "go test -bench `regexp`")
	fs.StringVar(&f.benchtime, "benchtime", "1s", "go test -benchtime")
	fs.IntVar(&f.count, "count", 1, "go test -count; figures are the median over the runs")
	fs.StringVar(&f.pkg, "pkg", "./shm/", "`package` to benchmark, relative to the module root")
	fs.BoolVar(&f.verbose, "v", false, "stream raw go test and dpdk-test output to stderr")
	fs.StringVar(&f.jsonPath, "json", "", "also write the report as JSON to `file` (- = stdout, after the table)")
	fs.StringVar(&f.profileDir, "profile", "", "on a T1 miss, write cpu.pprof of "+t1Benchmark+" to `dir` and print pprof's top 10")
	fs.StringVar(&f.dpdk.path, "dpdk-test", "dpdk-test", "dpdk-test `binary`, looked up in PATH")
	fs.StringVar(&f.dpdk.lcores, "dpdk-lcores", "0,1", "dpdk-test -l `list`: the two lcores for producer and consumer")
	fs.IntVar(&f.dpdk.runs, "dpdk-count", 3, "dpdk-test runs; the reference is the median (its 2-core figure swings several-fold between runs here)")
	fs.DurationVar(&f.dpdk.timeout, "dpdk-timeout", 3*time.Minute, "timeout of each dpdk-test run")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	switch {
	case fs.NArg() > 0:
		err := fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
		fmt.Fprintln(stderr, err)
		fs.Usage()
		return f, err
	case f.count < 1 || f.dpdk.runs < 1:
		err := errors.New("-count and -dpdk-count must be at least 1")
		fmt.Fprintln(stderr, err)
		return f, err
	}
	if f.verbose {
		f.dpdk.verbose = stderr
	}
	return f, nil
}

// T1Result is T1 as measured in one invocation.
type T1Result struct {
	Benchmark string  `json:"benchmark"`
	NsPerElem float64 `json:"ns_per_elem"`
	// NsSource says which metric NsPerElem came from: "ns/elem", or
	// "1000/Melems/s" when the benchmark reports only throughput.
	NsSource      string  `json:"ns_source"`
	CyclesPerElem float64 `json:"cycles_per_elem"` // NsPerElem in TSC cycles
	// DPDKWallCycles is rte_ring's wall cycles per element, the reference.
	DPDKWallCycles float64 `json:"dpdk_wall_cycles_per_elem"`
	OursMelemsPerS float64 `json:"ours_melems_per_s"`
	DPDKMelemsPerS float64 `json:"dpdk_melems_per_s"`
	// Ratio is ours over DPDK's in elements/s, i.e. DPDKWallCycles /
	// CyclesPerElem; T1 is met at ≥ 1.0.
	Ratio float64 `json:"ratio"`
	Met   bool    `json:"met"`
}

// computeT1 compares b, which must report ns/elem or Melems/s measured in
// wall time, with DPDK's wall cycles per element.
func computeT1(b GoBench, tscHz, dpdkWallCycles float64) (T1Result, error) {
	r := T1Result{Benchmark: b.Name, DPDKWallCycles: dpdkWallCycles}
	if ns, ok := b.Metric("ns/elem"); ok && ns > 0 {
		r.NsPerElem, r.NsSource = ns, "ns/elem"
	} else if m, ok := b.Metric("Melems/s"); ok && m > 0 {
		r.NsPerElem, r.NsSource = 1e3/m, "1000/Melems/s"
	} else {
		return r, fmt.Errorf("%s reports neither ns/elem nor Melems/s", b.Name)
	}
	if tscHz <= 0 || dpdkWallCycles <= 0 {
		return r, fmt.Errorf("t1: need a positive TSC frequency and DPDK figure, have %g Hz and %g cycles", tscHz, dpdkWallCycles)
	}
	r.CyclesPerElem = r.NsPerElem * tscHz / 1e9
	r.OursMelemsPerS = 1e3 / r.NsPerElem
	r.DPDKMelemsPerS = tscHz / dpdkWallCycles / 1e6
	r.Ratio = dpdkWallCycles / r.CyclesPerElem
	r.Met = r.Ratio >= t1Target
	return r, nil
}

// ringReport is the JSON form of one ring invocation: the table rows and
// the notes printed under them, plus every raw input they came from.
type ringReport struct {
	Subcommand string            `json:"subcommand"`
	Started    time.Time         `json:"started"`
	Host       map[string]string `json:"host"` // go test's goos/goarch/pkg/cpu lines, plus the toolchain
	GoTest     struct {
		Command []string `json:"command"`
		Output  string   `json:"output"`
	} `json:"go_test"`
	Benchmarks []GoBench      `json:"benchmarks"`
	DPDK       *DPDKResult    `json:"dpdk,omitempty"` // nil when dpdk-test is not installed
	TSC        *TSC           `json:"tsc,omitempty"`
	T1         *T1Result      `json:"t1,omitempty"`
	Rows       []Row          `json:"rows"`
	Notes      []string       `json:"notes"`
	Profile    *ProfileResult `json:"profile,omitempty"`
}

// runRing is the ring subcommand. It returns exitOK whenever it could
// measure, met or missed; exitError when go test, dpdk-test or the
// profile failed; exitUsage on bad flags.
func runRing(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, err := parseRingFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return exitUsage
	}
	rep := &ringReport{Subcommand: "ring", Started: time.Now().UTC()}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "bench ring: %v\n", err)
		return exitError
	}

	goBin, err := exec.LookPath("go")
	if err != nil {
		return fail(fmt.Errorf("find go: %w", err))
	}
	modRoot, err := moduleRoot(ctx, goBin)
	if err != nil {
		return fail(err)
	}

	// Stage 1: our benchmarks.
	rep.GoTest.Command = []string{"go", "test", "-run", "^$", "-bench", f.bench, "-benchmem",
		"-benchtime", f.benchtime, "-count", strconv.Itoa(f.count), f.pkg}
	out, err := runLogged(ctx, modRoot, goBin, rep.GoTest.Command[1:], f.verbose, stderr)
	rep.GoTest.Output = out
	if err != nil {
		fmt.Fprint(stderr, out)
		return fail(fmt.Errorf("%s: %w", shellQuote(rep.GoTest.Command), err))
	}
	rep.Benchmarks = AggregateGoBench(ParseGoBench(out))
	if len(rep.Benchmarks) == 0 {
		fmt.Fprint(stderr, out)
		return fail(fmt.Errorf("%s: no benchmark matched -bench %q", shellQuote(rep.GoTest.Command), f.bench))
	}
	rep.Host = parseGoBenchHeader(out)
	rep.Host["toolchain"] = runtime.Version()
	rep.Rows = goBenchRows(rep.Benchmarks)

	// Stage 2: the reference, unless it is not installed.
	var dpdkErr error
	dpdkOut := ""
	if path, err := exec.LookPath(f.dpdk.path); err != nil {
		rep.Notes = append(rep.Notes, dpdkMissing)
	} else {
		f.dpdk.path = path
		rep.DPDK, dpdkErr = runDPDK(ctx, f.dpdk)
		if rep.DPDK != nil && len(rep.DPDK.Runs) > 0 {
			dpdkOut = rep.DPDK.Runs[0].Output
		}
	}

	// Stage 3: the clock DPDK counts in, and the ratio.
	if tsc, err := detectTSC(ctx, dpdkOut); err != nil {
		rep.Notes = append(rep.Notes, "TSC: "+err.Error())
	} else {
		rep.TSC = &tsc
		rep.Notes = append(rep.Notes, fmt.Sprintf("TSC: %.3f MHz from %s", tsc.Hz/1e6, tsc.Source))
	}
	if rep.DPDK != nil && dpdkErr == nil {
		rep.Notes = append(rep.Notes, dpdkNote(rep.DPDK))
		rep.Rows = append(rep.Rows, Row{
			Benchmark: fmt.Sprintf("rte_ring SP/SC bulk 32 [%s, %s]", rep.DPDK.Section, apiLabel(rep.DPDK.API)),
			Figure:    rep.DPDK.SummedCycles,
			Unit:      "cycles/elem enq+deq",
		})
		rep.addT1()
	}
	rep.addAllocsNote(f)

	// Stage 4: report. The table goes out before a profile is taken so a
	// long profile run does not hide the result.
	if err := writeTable(stdout, rep.Rows); err != nil {
		return fail(err)
	}
	for _, n := range rep.Notes {
		fmt.Fprintln(stdout, n)
	}
	code := exitOK
	if dpdkErr != nil {
		fmt.Fprintf(stderr, "bench ring: %v\n", dpdkErr)
		code = exitError
	}
	if rep.T1 != nil && !rep.T1.Met {
		hint := profileCommand(f.pkg, t1Benchmark, f.benchtime, "")
		line := fmt.Sprintf("hint: profile the miss: %s && go tool pprof -top -nodecount=10 cpu.pprof (or rerun with -profile DIR)", shellQuote(hint))
		fmt.Fprintln(stdout, line)
		rep.Notes = append(rep.Notes, line)
		if f.profileDir != "" {
			p, err := runProfile(ctx, goBin, modRoot, f.pkg, t1Benchmark, f.benchtime, f.profileDir)
			rep.Profile = p
			if err != nil {
				fmt.Fprintf(stderr, "bench ring: %v\n", err)
				code = exitError
			} else {
				fmt.Fprintf(stdout, "profile: %s (parent process only)\n%s", filepath.Join(p.Dir, "cpu.pprof"), p.Top)
			}
		}
	}
	if f.jsonPath != "" {
		if err := writeJSON(f.jsonPath, stdout, rep); err != nil {
			return fail(err)
		}
	}
	return code
}

// addT1 adds the T1 row and note, or a note saying why T1 was not
// measured. It needs rep.DPDK and rep.TSC.
func (rep *ringReport) addT1() {
	var bench *GoBench
	for i := range rep.Benchmarks {
		if rep.Benchmarks[i].Name == t1Benchmark {
			bench = &rep.Benchmarks[i]
		}
	}
	switch {
	case bench == nil:
		rep.Notes = append(rep.Notes, "T1 not measured: no "+t1Benchmark+" result (check -bench)")
		return
	case rep.TSC == nil:
		rep.Notes = append(rep.Notes, "T1 not measured: TSC frequency unknown")
		return
	}
	t1, err := computeT1(*bench, rep.TSC.Hz, rep.DPDK.WallCycles)
	if err != nil {
		rep.Notes = append(rep.Notes, "T1 not measured: "+err.Error())
		return
	}
	rep.T1 = &t1
	row := Row{
		Benchmark: "T1 " + displayName(t1.Benchmark),
		Figure:    t1.CyclesPerElem,
		Unit:      "cycles/elem",
		Reference: &t1.DPDKWallCycles,
		Ratio:     &t1.Ratio,
		Status:    metWord(t1.Met),
	}
	if v, ok := bench.Metric("allocs/op"); ok {
		row.Allocs = &v
		if v > 0 {
			row.Status += " " + statusAllocs
		}
	}
	rep.Rows = append(rep.Rows, row)
	rep.Notes = append(rep.Notes, fmt.Sprintf(
		"T1: %s %.2f cycles/elem (%.3g ns/elem via %s, %.0f Melems/s) vs rte_ring %.2f cycles/elem (%.0f Melems/s): ratio %.2f, target ≥ %.1f: %s",
		displayName(t1.Benchmark), t1.CyclesPerElem, t1.NsPerElem, t1.NsSource, t1.OursMelemsPerS,
		t1.DPDKWallCycles, t1.DPDKMelemsPerS, t1.Ratio, t1Target, metWord(t1.Met)))
}

// addAllocsNote adds a note naming the benchmarks that allocate, with the
// command that shows where.
func (rep *ringReport) addAllocsNote(f ringFlags) {
	var names []string
	for _, b := range rep.Benchmarks {
		if v, ok := b.Metric("allocs/op"); ok && v > 0 {
			names = append(names, displayName(b.Name))
		}
	}
	if len(names) == 0 {
		return
	}
	hint := []string{"go", "test", "-run", "^$", "-bench", benchRegexp(rep.firstAllocating()), "-benchtime", f.benchtime, "-memprofile", "mem.pprof", f.pkg}
	rep.Notes = append(rep.Notes, fmt.Sprintf("ALLOCS: %s allocate; targets require 0 allocs/op (T8). See where: %s && go tool pprof -sample_index=alloc_objects -top mem.pprof",
		strings.Join(names, ", "), shellQuote(hint)))
}

func (rep *ringReport) firstAllocating() string {
	for _, b := range rep.Benchmarks {
		if v, ok := b.Metric("allocs/op"); ok && v > 0 {
			return b.Name
		}
	}
	return ""
}

// dpdkNote explains the reference figure: which section it came from,
// how it varied, and why the table compares half of it.
func dpdkNote(d *DPDKResult) string {
	figs := make([]string, len(d.Figures))
	for i, v := range d.Figures {
		figs[i] = strconv.FormatFloat(v, 'f', 2, 64)
	}
	s := fmt.Sprintf("DPDK: ring_perf_autotest [%s, %s] SP/SC bulk 32: median %.2f cycles/elem over %d run(s) (%s); "+
		"that is enqueue-core + dequeue-core cycles, so one element passes every %.2f cycles of wall time, the T1 reference",
		d.Section, apiLabel(d.API), d.SummedCycles, len(d.Figures), strings.Join(figs, " "), d.WallCycles)
	if d.Section != twoCoreSections[0] {
		s += fmt.Sprintf("; NOTE: no %q section in the output, used %q", twoCoreSections[0], d.Section)
	}
	return s
}

func apiLabel(api string) string {
	if api == "" {
		return "pre-20.02 API"
	}
	return api + " API"
}

func metWord(met bool) string {
	if met {
		return "met"
	}
	return "missed"
}

// moduleRoot returns the directory of the main module's go.mod, so go
// test runs the same package whatever directory bench was started from.
func moduleRoot(ctx context.Context, goBin string) (string, error) {
	out, err := exec.CommandContext(ctx, goBin, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside a Go module: run from the reinforce checkout")
	}
	return filepath.Dir(gomod), nil
}

// runLogged runs name args in dir and returns its combined output, also
// streamed to logw when verbose.
func runLogged(ctx context.Context, dir, name string, args []string, verbose bool, logw io.Writer) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var buf bytes.Buffer
	cmd.Stdout = &buf
	if verbose {
		cmd.Stdout = io.MultiWriter(&buf, logw)
	}
	cmd.Stderr = cmd.Stdout
	err := cmd.Run()
	return buf.String(), err
}

// parseGoBenchHeader returns the "key: value" configuration lines go test
// prints before its results (goos, goarch, pkg, cpu); the first value of a
// key wins.
func parseGoBenchHeader(text string) map[string]string {
	h := map[string]string{}
	for line := range strings.Lines(text) {
		k, v, ok := strings.Cut(strings.TrimRight(line, "\r\n"), ": ")
		if !ok || k == "" || strings.ContainsAny(k, " \t") || strings.ToLower(k) != k {
			continue
		}
		if _, dup := h[k]; !dup {
			h[k] = strings.TrimSpace(v)
		}
	}
	return h
}
