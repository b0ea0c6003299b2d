package main

// The chain subcommand measures T2–T4 (TARGETS.md) with the real binaries:
// a manager in this process (no ports), speed_tester and simple_forward as
// processes. Stages, in order, each finishing before the next starts
// (two measurements sharing the 2 vCPUs would measure each other):
//
//	go build speed_tester, simple_forward
//	→ dpdk-testpmd io forwarding on two net_null ports (the T2/T3 reference)
//	→ the two-process cache-line ping-pong (the T4 floor)
//	→ each scenario: manager + NFs, warm-up, one window: speed_tester's RX
//	  rate or its mean probe round trip, every process's CPU, a pprof CPU
//	  profile of the manager
//	→ table (stdout), notes, the profile and a sentence for each miss, JSON.

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
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/reinforce-nfv/reinforce/manager"
	"github.com/reinforce-nfv/reinforce/manager/config"
)

// Targets (TARGETS.md), as ratios to the in-run references.
const (
	t2Target       = 0.68 // × testpmd-null
	t3PollTarget   = 0.30 // × testpmd-null
	t3SharedTarget = 0.10 // × testpmd-null
	t4Target       = 3.0  // × the ping-pong round trip, at most
	// onvmRTT128 is OpenNetVM's round trip with 128 packets in flight on this
	// kind of machine (TARGETS.md); there is no in-run reference for it.
	onvmRTT128 = 4300.0 // ns
)

// pingPongChild is the hidden first argument that turns this binary into
// the ping-pong's second process.
const pingPongChild = "-pingpong-child"

// chainFlags are the chain subcommand's flags.
type chainFlags struct {
	warmup, window time.Duration
	pkts           int
	only           string
	jsonPath       string
	profileDir     string
	testpmd        string
	testpmdLcores  string
	testpmdTime    time.Duration
	pingIters      int
	verbose        bool
	stderr         io.Writer
}

func parseChainFlags(args []string, stderr io.Writer) (chainFlags, error) {
	f := chainFlags{stderr: stderr}
	fs := flag.NewFlagSet("chain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: go run ./tools/bench chain [flags]")
		fmt.Fprintln(stderr)
		fmt.Fprintln(stderr, "Runs dpdk-testpmd (io, two net_null ports) and a two-process cache-line ping-pong as")
		fmt.Fprintln(stderr, "references, then T2 (speed_tester looping to itself), T3 (speed_tester → simple_forward →")
		fmt.Fprintln(stderr, "back, poll and shared-core modes) and T4 (its round trip with 1 and 128 packets in flight).")
		fmt.Fprintln(stderr)
		fs.PrintDefaults()
	}
	fs.DurationVar(&f.warmup, "warmup", time.Second, "time each scenario runs before its window")
	fs.DurationVar(&f.window, "window", 3*time.Second, "measurement window of each scenario")
	fs.IntVar(&f.pkts, "c", 2048, "packets speed_tester circulates in the throughput rows (its -c)")
	fs.StringVar(&f.only, "run", "", "only the scenarios whose name matches this `regexp` (references always run)")
	fs.StringVar(&f.jsonPath, "json", "", "also write the report as JSON to `file` (- = stdout, after the table)")
	fs.StringVar(&f.profileDir, "profile", "", "`dir` for the pprof CPU profile of each missed row (default: a new temporary directory; \"none\" takes none)")
	fs.StringVar(&f.testpmd, "testpmd", "dpdk-testpmd", "dpdk-testpmd `binary`, looked up in PATH")
	fs.StringVar(&f.testpmdLcores, "testpmd-lcores", "0,1", "dpdk-testpmd -l `list`: main lcore and the forwarding lcore")
	fs.DurationVar(&f.testpmdTime, "testpmd-time", 7*time.Second, "how long dpdk-testpmd forwards")
	fs.IntVar(&f.pingIters, "ping-iters", 200_000, "round trips per ping-pong run (5 runs, the fastest is the floor)")
	fs.BoolVar(&f.verbose, "v", false, "stream the NFs' and dpdk-testpmd's output to stderr")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		err := fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
		fmt.Fprintln(stderr, err)
		fs.Usage()
		return f, err
	}
	if f.pkts < 1 || f.window <= 0 || f.pingIters < 1 {
		err := errors.New("-c, -window and -ping-iters must be positive")
		fmt.Fprintln(stderr, err)
		return f, err
	}
	if _, err := regexp.Compile(f.only); err != nil {
		fmt.Fprintln(stderr, "-run:", err)
		return f, err
	}
	return f, nil
}

// scenario is one measured row.
type scenario struct {
	Name   string  `json:"name"`
	Chains [][]int `json:"chains"` // the manager's chains; services 1 = speed_tester, 2 = simple_forward
	Shared bool    `json:"shared_core"`
	// Forwards are the services of the simple_forward processes, in chain
	// order; each sends to the next, the last back to speed_tester (1).
	Forwards []int `json:"simple_forwards"`
	Dst      int   `json:"speed_tester_dst"`
	Pkts     int   `json:"packets_in_flight"`
	Latency  bool  `json:"latency"`
	// Target is the required ratio to the reference: at least it for a rate,
	// at most it for a latency; 0 means an informational row.
	Target float64 `json:"target"`
	Ref    string  `json:"reference"` // "testpmd", "pingpong", "onvm128" or ""
	Note   string  `json:"note"`
}

func scenarios(pkts int) []scenario {
	return []scenario{
		{Name: "T2 speed_tester -> itself", Chains: [][]int{{1, 1}}, Dst: 1, Pkts: pkts, Target: t2Target, Ref: "testpmd",
			Note: "chain [1 1]: a direct ring from the NF to itself in the manager's region (ONVM_NF_HANDLE_TX)"},
		{Name: "T2' speed_tester -> manager -> itself", Chains: [][]int{{1}}, Dst: 1, Pkts: pkts, Ref: "testpmd",
			Note: "no direct ring: every packet through the manager's TX loop (informational)"},
		{Name: "T3 chain, poll mode", Chains: [][]int{{1, 2, 1}}, Forwards: []int{2}, Dst: 2, Pkts: pkts, Target: t3PollTarget, Ref: "testpmd",
			Note: "chain [1 2 1]: direct rings both ways"},
		{Name: "T3 chain, shared-core mode", Chains: [][]int{{1, 2, 1}}, Shared: true, Forwards: []int{2}, Dst: 2, Pkts: pkts,
			Target: t3SharedTarget, Ref: "testpmd", Note: "manager -c, NFs -s"},
		{Name: "T4 round trip, 1 in flight", Chains: [][]int{{1, 2, 1}}, Forwards: []int{2}, Dst: 2, Pkts: 1, Latency: true,
			Target: t4Target, Ref: "pingpong", Note: "speed_tester -l -c 1, poll mode"},
		{Name: "T4 round trip, 128 in flight", Chains: [][]int{{1, 2, 1}}, Forwards: []int{2}, Dst: 2, Pkts: 128, Latency: true,
			Target: 1, Ref: "onvm128", Note: "speed_tester -l -c 128; reference: OpenNetVM's 4.3 µs from TARGETS.md, not measured in this run"},
		{Name: "4-NF chain on 2 CPUs, poll mode", Chains: [][]int{{1, 2, 3, 4, 1}}, Forwards: []int{2, 3, 4}, Dst: 2, Pkts: pkts, Ref: "testpmd",
			Note: "speed_tester -> 3 simple_forwards -> back: more NFs than CPUs (informational)"},
		{Name: "4-NF chain on 2 CPUs, shared-core mode", Chains: [][]int{{1, 2, 3, 4, 1}}, Forwards: []int{2, 3, 4}, Shared: true, Dst: 2,
			Pkts: pkts, Ref: "testpmd", Note: "the same with manager -c, NFs -s (informational)"},
	}
}

// ProcCPU is one process's CPU use over a window.
type ProcCPU struct {
	Name       string  `json:"name"`
	PID        int     `json:"pid"`
	CPUPercent float64 `json:"cpu_percent"` // 100 = one CPU
	// Sleeps is voluntary context switches per second: how often it slept.
	Sleeps float64 `json:"sleeps_per_s"`
}

// ChainResult is one scenario as measured.
type ChainResult struct {
	Scenario scenario  `json:"scenario"`
	Mpps     float64   `json:"mpps,omitempty"`
	RTTns    float64   `json:"rtt_ns,omitempty"`
	Samples  []float64 `json:"rtt_samples_ns,omitempty"`
	Window   float64   `json:"window_s"`
	CPU      []ProcCPU `json:"cpu"`
	// Others is what every other process on the machine used over the
	// window, in % of one CPU: the machine is shared, so a low figure with a
	// high Others says more about the neighbours than about us.
	Others  float64  `json:"others_cpu_percent"`
	Drops   uint64   `json:"manager_drops"`
	Ratio   *float64 `json:"ratio,omitempty"`
	Met     *bool    `json:"met,omitempty"`
	Explain string   `json:"explanation,omitempty"`
	// Profiles are pprof's top 10 of the manager (this process) and of
	// speed_tester over the run, for a missed row.
	Profiles []*ProfileResult  `json:"profiles,omitempty"`
	Error    string            `json:"error,omitempty"`
	prof     map[string][]byte // process name → pprof CPU profile
}

// chainReport is the JSON form of one chain invocation.
type chainReport struct {
	Subcommand string            `json:"subcommand"`
	Started    time.Time         `json:"started"`
	Host       map[string]string `json:"host"`
	TestPMD    *TestPMDResult    `json:"testpmd,omitempty"`
	PingPong   *PingPongResult   `json:"pingpong,omitempty"`
	Results    []*ChainResult    `json:"results"`
	Rows       []Row             `json:"rows"`
	Notes      []string          `json:"notes"`
}

func runChain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == pingPongChild {
		if err := pingPongChildMain(args[1:]); err != nil {
			fmt.Fprintf(stderr, "bench chain: ping-pong child: %v\n", err)
			return exitError
		}
		return exitOK
	}
	f, err := parseChainFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return exitUsage
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "bench chain: %v\n", err)
		return exitError
	}
	rep := &chainReport{Subcommand: "chain", Started: time.Now().UTC(),
		Host: map[string]string{"toolchain": runtime.Version(), "cpus": strconv.Itoa(runtime.NumCPU())}}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fail(fmt.Errorf("find go: %w", err))
	}
	modRoot, err := moduleRoot(ctx, goBin)
	if err != nil {
		return fail(err)
	}
	work, err := os.MkdirTemp("", "reinforce-bench-chain-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(work)
	if f.profileDir == "" {
		if f.profileDir, err = os.MkdirTemp("", "reinforce-chain-profiles-"); err != nil {
			return fail(err)
		}
	}

	// Stage 1: the binaries.
	bin := filepath.Join(work, "bin")
	if out, err := runLogged(ctx, modRoot, goBin, []string{"build", "-o", bin + "/", "./examples/speed_tester", "./examples/simple_forward"},
		false, stderr); err != nil {
		return fail(fmt.Errorf("go build: %w\n%s", err, out))
	}

	// Stage 2: the references.
	if path, err := exec.LookPath(f.testpmd); err != nil {
		rep.Notes = append(rep.Notes, "dpdk-testpmd not found (apt-get install dpdk): T2 and T3 ratios not measured")
	} else {
		rep.TestPMD, err = runTestPMD(ctx, path, f)
		if err != nil {
			rep.Notes = append(rep.Notes, "dpdk-testpmd: "+err.Error())
			rep.TestPMD = nil
		}
	}
	if rep.PingPong, err = runPingPong(ctx, f.pingIters); err != nil {
		rep.Notes = append(rep.Notes, "ping-pong: "+err.Error())
		rep.PingPong = nil
	}

	// Stage 3: the scenarios.
	only := regexp.MustCompile(f.only)
	for _, sc := range scenarios(f.pkts) {
		if !only.MatchString(sc.Name) {
			continue
		}
		res := runScenario(ctx, sc, f, bin, work)
		rep.Results = append(rep.Results, res)
		if ctx.Err() != nil {
			return fail(ctx.Err())
		}
	}

	// Stage 4: the verdicts, the table, the profiles of the misses.
	rep.judge()
	if err := writeTable(stdout, rep.Rows); err != nil {
		return fail(err)
	}
	for _, n := range rep.Notes {
		fmt.Fprintln(stdout, n)
	}
	for _, r := range rep.Results {
		if r.Met == nil || *r.Met {
			continue
		}
		fmt.Fprintf(stdout, "\nmissed: %s: %s\n", r.Scenario.Name, r.Explain)
		if f.profileDir == "none" {
			continue
		}
		for _, who := range []string{"speed_tester", "manager"} {
			if r.prof[who] == nil {
				continue
			}
			p, err := writeProfile(ctx, goBin, f.profileDir, slug(r.Scenario.Name)+"."+who+".pprof", r.prof[who])
			r.Profiles = append(r.Profiles, p)
			if err != nil {
				fmt.Fprintf(stderr, "bench chain: %v\n", err)
				continue
			}
			fmt.Fprintf(stdout, "profile of %s: %s\n%s", who, p.Command[len(p.Command)-1], p.Top)
		}
	}
	if f.jsonPath != "" {
		if err := writeJSON(f.jsonPath, stdout, rep); err != nil {
			return fail(err)
		}
	}
	return exitOK
}

// judge computes every ratio and verdict and builds the rows.
func (rep *chainReport) judge() {
	if t := rep.TestPMD; t != nil {
		rep.Rows = append(rep.Rows, Row{Benchmark: "ref: dpdk-testpmd io, 2 net_null, 1 core", Figure: round3(t.Mpps), Unit: "Mpps"})
	}
	if p := rep.PingPong; p != nil {
		rep.Rows = append(rep.Rows, Row{Benchmark: "ref: 2-process cache-line ping-pong", Figure: round3(p.RTTns), Unit: "ns round trip"})
	}
	for _, r := range rep.Results {
		sc := r.Scenario
		row := Row{Benchmark: sc.Name}
		if r.Error != "" {
			row.Benchmark += " (failed: " + r.Error + ")"
			row.Figure, row.Unit = 0, "-"
			rep.Rows = append(rep.Rows, row)
			continue
		}
		var ref float64
		switch sc.Ref {
		case "testpmd":
			if rep.TestPMD != nil {
				ref = rep.TestPMD.Mpps
			}
		case "pingpong":
			if rep.PingPong != nil {
				ref = rep.PingPong.RTTns
			}
		case "onvm128":
			ref = onvmRTT128
		}
		if sc.Latency {
			row.Figure, row.Unit = round3(r.RTTns), "ns round trip"
		} else {
			row.Figure, row.Unit = round3(r.Mpps), "Mpps"
		}
		if ref > 0 {
			ratio := round3(row.Figure / ref)
			r.Ratio = &ratio
			row.Reference, row.Ratio = &ref, &ratio
			if sc.Target > 0 {
				met := ratio >= sc.Target
				word := "≥"
				if sc.Latency {
					met, word = ratio <= sc.Target, "≤"
				}
				r.Met = &met
				row.Status = metWord(met)
				row.Benchmark += fmt.Sprintf(" [%s %g×]", word, sc.Target)
			}
		} else if sc.Target > 0 {
			row.Status = "not measured"
		}
		if r.Met != nil && !*r.Met {
			r.Explain = explain(r)
		}
		rep.Rows = append(rep.Rows, row)
	}
	for _, r := range rep.Results {
		if r.Error == "" {
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s: %s; CPU %s; other processes %.0f%%",
				r.Scenario.Name, r.Scenario.Note, cpuSummary(r.CPU), r.Others))
		}
	}
}

func round3(v float64) float64 {
	s := strconv.FormatFloat(v, 'g', 4, 64)
	out, _ := strconv.ParseFloat(s, 64)
	return out
}

func cpuSummary(cs []ProcCPU) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = fmt.Sprintf("%s %.0f%% (%.0f sleeps/s)", c.Name, c.CPUPercent, c.Sleeps)
	}
	return strings.Join(parts, ", ")
}

// explain says, from the window's measurements, where the time went: one
// sentence for the report, which the profiles printed under it back up.
func explain(r *ChainResult) string {
	busy, total, sleeps, starved := 0, 0.0, 0.0, false
	for _, c := range r.CPU {
		total += c.CPUPercent
		sleeps += c.Sleeps
		if c.CPUPercent >= 50 {
			busy++
		}
		// An NF of a loaded chain that got well under a CPU waited for one.
		starved = starved || c.Name != "manager" && c.CPUPercent >= 20 && c.CPUPercent < 90
	}
	cpus := benchCPUs
	switch {
	case r.Others > 30 && starved:
		return fmt.Sprintf("other processes used %.0f%% of the %d CPUs' %d%% during the window, leaving ours %.0f%% (%s): the figure is limited by the shared machine; rerun when it is quiet",
			r.Others, cpus, 100*cpus, total, cpuSummary(r.CPU))
	case sleeps > 10000:
		return fmt.Sprintf("the processes slept %.0f times a second and used %.0f%% of the %d CPUs' %d%%: the time goes in futex sleeps and wake-ups between the stages (%s)",
			sleeps, total, cpus, 100*cpus, cpuSummary(r.CPU))
	case busy > cpus:
		return fmt.Sprintf("%d busy processes share %d CPUs (%s): the stages take turns on the CPUs, so the time goes in waiting for the scheduler",
			busy, cpus, cpuSummary(r.CPU))
	default:
		return fmt.Sprintf("the processes do not sleep, nothing else competes for the CPUs and none waits for one (%s): the time goes in the NFs' per-packet work, which speed_tester's profile below breaks down",
			cpuSummary(r.CPU))
	}
}

func slug(s string) string {
	return strings.Trim(regexp.MustCompile(`[^a-zA-Z0-9]+`).ReplaceAllString(strings.ToLower(s), "-"), "-")
}

// writeProfile writes prof to dir/name and returns pprof's top 10.
func writeProfile(ctx context.Context, goBin, dir, name string, prof []byte) (*ProfileResult, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, prof, 0o644); err != nil {
		return nil, err
	}
	argv := []string{"go", "tool", "pprof", "-top", "-nodecount=10", path}
	res := &ProfileResult{Command: argv, Dir: dir}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, goBin, argv[1:]...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return res, fmt.Errorf("pprof top: %w\n%s", err, out.String())
	}
	res.Top = out.String()
	return res, nil
}

// lockedBuf collects a process's output while it runs.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
	w  io.Writer // also copied here when verbose
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w != nil {
		l.w.Write(p)
	}
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// procTimes reads utime+stime (seconds) and voluntary context switches of pid.
func procTimes(pid int) (cpu float64, vcs uint64) {
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		if i := bytes.LastIndexByte(b, ')'); i >= 0 {
			f := strings.Fields(string(b[i+1:]))
			if len(f) > 12 {
				u, _ := strconv.ParseUint(f[11], 10, 64)
				s, _ := strconv.ParseUint(f[12], 10, 64)
				cpu = float64(u+s) / 100 // USER_HZ
			}
		}
	}
	// Threads' switches are summed in /proc/<pid>/status only for the main
	// thread; the task directory has every thread's.
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, t.Name()))
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
				n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
				vcs += n
			}
		}
	}
	return cpu, vcs
}

var benchSeq atomic.Int32

// benchCPUs is the machine's CPU count, a variable so tests can fix it.
var benchCPUs = runtime.NumCPU()

// machineBusy is the seconds all CPUs have spent busy (not idle or
// waiting for I/O) since boot, from /proc/stat.
func machineBusy() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0
	}
	busy := 0.0
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 8 { // guest time is already in user
			break
		}
		n, _ := strconv.ParseFloat(v, 64)
		busy += n
	}
	return busy / 100 // USER_HZ
}

var latencyLine = regexp.MustCompile(`Avg latency nanoseconds:\s+(\d+)`)

// runScenario runs one scenario and returns what it measured; a failure is
// recorded in the result, not returned, so the other rows still run.
func runScenario(ctx context.Context, sc scenario, f chainFlags, bin, work string) *ChainResult {
	res := &ChainResult{Scenario: sc}
	if err := measure(ctx, sc, f, bin, work, res); err != nil {
		res.Error, _, _ = strings.Cut(strings.TrimSpace(err.Error()), "\n")
	}
	return res
}

func measure(ctx context.Context, sc scenario, f chainFlags, bin, work string, res *ChainResult) error {
	cfg := config.DefaultConfig()
	cfg.Manager.Name = fmt.Sprintf("bench%d-%d", os.Getpid(), benchSeq.Add(1))
	// /dev/shm, not hugetlbfs: nflib keeps files beside the region that
	// hugetlbfs cannot hold.
	cfg.Manager.RegionDir = "/dev/shm"
	cfg.Manager.StatsOut = config.StatsNone
	cfg.Manager.SharedCPU = sc.Shared
	cfg.Ports = nil
	cfg.Chains = nil
	for i, c := range sc.Chains {
		cfg.Chains = append(cfg.Chains, config.Chain{Name: fmt.Sprintf("c%d", i), Services: c, OutPort: -1})
	}
	cfg.Manager.DefaultChain = "c0"
	sock := filepath.Join(work, slug(sc.Name)+".sock")
	m, err := manager.New(cfg, manager.Options{Log: zerolog.Nop(), SocketPath: sock})
	if err != nil {
		return err
	}
	if err := m.Start(); err != nil {
		m.Close()
		return err
	}
	var cmds []*exec.Cmd
	stProf := filepath.Join(work, slug(sc.Name)+".speed_tester.pprof")
	res.prof = map[string][]byte{}
	defer func() {
		if b, err := os.ReadFile(stProf); err == nil && len(b) > 0 {
			res.prof["speed_tester"] = b
		}
	}()
	defer func() {
		m.Close() // stops the NFs
		for _, c := range cmds {
			done := make(chan struct{})
			go func() { c.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(3 * time.Second):
				c.Process.Kill()
				<-done
			}
		}
	}()
	var verbose io.Writer
	if f.verbose {
		verbose = f.stderr
	}
	start := func(name string, env []string, args ...string) (*exec.Cmd, *lockedBuf, error) {
		c := exec.CommandContext(ctx, filepath.Join(bin, name), args...)
		c.Env = append(append(os.Environ(), "REINFORCE_SOCKET="+sock), env...)
		c.Dir = work // the NFs write <tag>_stats.csv on exit
		out := &lockedBuf{w: verbose}
		c.Stdout, c.Stderr = out, out
		if err := c.Start(); err != nil {
			return nil, nil, err
		}
		cmds = append(cmds, c)
		return c, out, nil
	}
	onvm := func(svc string) []string {
		a := []string{"--", "-r", svc}
		if sc.Shared {
			a = append(a, "-s")
		}
		return append(a, "--")
	}
	waitNFs := func(n int, out *lockedBuf) error {
		for deadline := time.Now().Add(10 * time.Second); len(m.Snapshot().NFs) < n; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				return fmt.Errorf("NF did not register: %s", out.String())
			}
		}
		return nil
	}
	procs := []ProcCPU{{Name: "manager", PID: os.Getpid()}}
	for i, svc := range sc.Forwards {
		next := 1
		if i+1 < len(sc.Forwards) {
			next = sc.Forwards[i+1]
		}
		c, out, err := start("simple_forward", nil, append(onvm(strconv.Itoa(svc)), "-d", strconv.Itoa(next), "-p", "0")...)
		if err != nil {
			return err
		}
		if err := waitNFs(i+1, out); err != nil {
			return err
		}
		name := "simple_forward"
		if len(sc.Forwards) > 1 {
			name += strconv.Itoa(svc)
		}
		procs = append(procs, ProcCPU{Name: name, PID: c.Process.Pid})
	}
	stArgs := append(onvm("1"), "-d", strconv.Itoa(sc.Dst), "-c", strconv.Itoa(sc.Pkts), "-p", "0")
	if sc.Latency {
		stArgs[len(stArgs)-1] = "20000" // a display, and so a latency sample, every 20000 round trips
		stArgs = append(stArgs, "-l")
	}
	st, stOut, err := start("speed_tester", []string{"REINFORCE_CPUPROFILE=" + stProf}, stArgs...)
	if err != nil {
		return err
	}
	procs = append(procs, ProcCPU{Name: "speed_tester", PID: st.Process.Pid})
	if err := waitNFs(len(sc.Forwards)+1, stOut); err != nil {
		return err
	}
	stRX := func() uint64 {
		for _, n := range m.Snapshot().NFs {
			if n.Service == 1 {
				return n.RX
			}
		}
		return 0
	}
	select {
	case <-time.After(f.warmup):
	case <-ctx.Done():
		return ctx.Err()
	}
	if stRX() == 0 {
		return fmt.Errorf("no packet came back to speed_tester: %s", stOut.String())
	}

	// The window.
	cpu0 := make([]float64, len(procs))
	vcs0 := make([]uint64, len(procs))
	for i, p := range procs {
		cpu0[i], vcs0[i] = procTimes(p.PID)
	}
	busy0 := machineBusy()
	outMark := len(stOut.String())
	var prof bytes.Buffer
	profiling := pprof.StartCPUProfile(&prof) == nil
	rx0, t0 := stRX(), time.Now()
	select {
	case <-time.After(f.window):
	case <-ctx.Done():
	}
	rx1, dt := stRX(), time.Since(t0).Seconds()
	if profiling {
		pprof.StopCPUProfile()
		res.prof["manager"] = prof.Bytes()
	}
	for i, p := range procs {
		c, v := procTimes(p.PID)
		procs[i].CPUPercent = 100 * (c - cpu0[i]) / dt
		procs[i].Sleeps = float64(v-vcs0[i]) / dt
	}
	res.CPU, res.Window = procs, dt
	ours := 0.0
	for _, p := range procs {
		ours += p.CPUPercent
	}
	res.Others = max(0, 100*(machineBusy()-busy0)/dt-ours)
	res.Mpps = float64(rx1-rx0) / dt / 1e6
	d := m.Snapshot().Drops
	res.Drops = d.TXNoNF + d.TXRingFull + d.TXBadMeta + d.RXNoNF + d.RXRingFull
	if sc.Latency {
		for _, mm := range latencyLine.FindAllStringSubmatch(stOut.String()[outMark:], -1) {
			v, _ := strconv.ParseFloat(mm[1], 64)
			res.Samples = append(res.Samples, v)
		}
		if len(res.Samples) == 0 {
			return fmt.Errorf("speed_tester printed no latency within the window (%.2f Mpps)", res.Mpps)
		}
		s := slices.Clone(res.Samples)
		slices.Sort(s)
		res.RTTns = s[len(s)/2]
	}
	return ctx.Err()
}
