package main

// The overhead subcommand measures T5's local rows (TARGETS.md): what the
// burst transactions cost the stamping chain. The chain is the manager in
// this process with a probe port (overhead_port.go: RX generates probe
// frames, TX checks and frees them) → examples/stamp → examples/mutate →
// out of the probe port. The baseline is the same binaries with
// REINFORCE_TX=off. Stages, each finishing before the next starts:
//
//	go build stamp, mutate
//	→ maximum rate: -runs pairs of runs, unpaced, baseline then
//	  transactions (alternating, so drift hits both); the median of each
//	→ 50 % of the baseline's median maximum, paced: -runs pairs again;
//	  loss over the whole run, CPU per delivered packet over the window
//	→ rows: the maximum-rate ratio (≥ 0.85), the loss at 50 % (none) and
//	  the CPU-per-packet ratio at 50 % (≤ 1.15); the sink's check of the
//	  stamps and mutations; a pprof CPU profile of the transactional burst
//	  path (BenchmarkTxStampBurst) and a sentence for each miss; JSON.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/reinforce-nfv/reinforce/manager"
	"github.com/reinforce-nfv/reinforce/manager/config"
	"github.com/reinforce-nfv/reinforce/port"
)

// T5 local targets (TARGETS.md), as ratios to the baseline measured in the
// same invocation.
const (
	t5MaxRateTarget = 0.85 // × the baseline's maximum rate, at least
	t5CPUTarget     = 1.15 // × the baseline's CPU per packet at 50 %, at most
	t5Load          = 0.5  // of the baseline's maximum rate
)

type overheadFlags struct {
	warmup, window time.Duration
	runs           int
	flows, size    int
	shared         bool
	standby        bool
	jsonPath       string
	profileDir     string
	mgrProfile     string
	verbose        bool
	stderr         io.Writer
}

func parseOverheadFlags(args []string, stderr io.Writer) (overheadFlags, error) {
	f := overheadFlags{stderr: stderr}
	fs := flag.NewFlagSet("overhead", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: go run ./tools/bench overhead [flags]")
		fmt.Fprintln(stderr)
		fmt.Fprintln(stderr, "T5 local: the stamping chain (probe port → stamp → mutate → probe port) with burst")
		fmt.Fprintln(stderr, "transactions on versus the same binaries with REINFORCE_TX=off: the maximum rate, and")
		fmt.Fprintln(stderr, "loss and CPU per packet at 50 % of the baseline's maximum rate.")
		fmt.Fprintln(stderr, "With -remote: T5/T6 remote in the lab (root); `overhead -remote -h` lists its flags.")
		fmt.Fprintln(stderr)
		fs.PrintDefaults()
	}
	fs.DurationVar(&f.warmup, "warmup", time.Second, "time each run goes before its window")
	fs.DurationVar(&f.window, "window", 3*time.Second, "measurement window of each run")
	fs.IntVar(&f.runs, "runs", 3, "runs of each configuration (the median counts)")
	fs.IntVar(&f.flows, "flows", 64, "flows the generator cycles through")
	fs.IntVar(&f.size, "size", 128, "frame size in bytes (at least 90: headers and the probe)")
	fs.BoolVar(&f.shared, "shared", false, "shared-core mode (manager -c, NFs -s)")
	fs.BoolVar(&f.standby, "standby", false, "with transactions on, give each NF a local standby (T5 local \"with a standby\"; the baseline has none)")
	fs.StringVar(&f.jsonPath, "json", "", "also write the report as JSON to `file` (- = stdout, after the table)")
	fs.StringVar(&f.profileDir, "profile", "", "`dir` for the pprof CPU profile taken after a miss (default: a new temporary directory; \"none\" takes none)")
	fs.StringVar(&f.mgrProfile, "mgrprofile", "", "write a pprof CPU profile of this process (the manager, generator and sink) during the first maximum-rate window with transactions to `file`")
	fs.BoolVar(&f.verbose, "v", false, "stream the NFs' output to stderr")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		err := fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
		fmt.Fprintln(stderr, err)
		fs.Usage()
		return f, err
	}
	if f.runs < 1 || f.window <= 0 || f.warmup < 0 {
		err := errors.New("-runs and -window must be positive, -warmup not negative")
		fmt.Fprintln(stderr, err)
		return f, err
	}
	return f, nil
}

// OverheadRun is one run of the chain as measured.
type OverheadRun struct {
	Transactions bool      `json:"transactions"`
	OfferedPPS   uint64    `json:"offered_pps"` // 0: unpaced (maximum rate)
	Mpps         float64   `json:"delivered_mpps"`
	CPUNsPerPkt  float64   `json:"cpu_ns_per_pkt"`    // every process's CPU time per packet delivered in the window
	NFNsPerPkt   float64   `json:"nf_cpu_ns_per_pkt"` // the same for stamp and mutate only
	Window       float64   `json:"window_s"`
	CPU          []ProcCPU `json:"cpu"`
	// Over the whole run (paced runs generate only once the NFs run, and
	// the chain drains before counting): frames generated, dropped at the
	// generator because the manager did not poll in time, delivered, lost.
	Generated uint64 `json:"generated"`
	NICDrops  uint64 `json:"generator_drops"`
	Delivered uint64 `json:"delivered"`
	Lost      int64  `json:"lost"`
	MgrDrops  uint64 `json:"manager_drops"`
	// Drops are the manager's drops by reason (RXRingFull: an NF's input
	// ring was full when RX had a packet for it).
	Drops manager.ManagerDrops `json:"manager_drops_by_reason"`
	// The sink's checks: frames that were not our probe or were mutated
	// other than once, and stamps that did not count up by one per flow.
	Bad       uint64 `json:"bad_frames"`
	StampGaps uint64 `json:"stamp_gaps"`
	FirstBad  string `json:"first_bad,omitempty"`
	Error     string `json:"error,omitempty"`
}

type overheadReport struct {
	Subcommand string            `json:"subcommand"`
	Started    time.Time         `json:"started"`
	Host       map[string]string `json:"host"`
	Flags      map[string]string `json:"flags"`
	MaxRuns    []*OverheadRun    `json:"max_rate_runs"`
	LoadRuns   []*OverheadRun    `json:"load_runs"`
	Rows       []Row             `json:"rows"`
	Notes      []string          `json:"notes"`
	Misses     []string          `json:"misses,omitempty"`
	Profile    *ProfileResult    `json:"profile,omitempty"`
}

func runOverhead(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if remoteRequested(args) {
		return runOverheadRemote(ctx, args, stdout, stderr) // overhead_remote.go: T5/T6 remote, in the lab
	}
	f, err := parseOverheadFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return exitUsage
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "bench overhead: %v\n", err)
		return exitError
	}
	rep := &overheadReport{Subcommand: "overhead", Started: time.Now().UTC(),
		Host: map[string]string{"toolchain": runtime.Version(), "cpus": strconv.Itoa(runtime.NumCPU())},
		Flags: map[string]string{"warmup": f.warmup.String(), "window": f.window.String(), "runs": strconv.Itoa(f.runs),
			"flows": strconv.Itoa(f.flows), "size": strconv.Itoa(f.size), "shared": strconv.FormatBool(f.shared),
			"standby": strconv.FormatBool(f.standby)}}
	rep.Host["loadavg_start"] = loadAvg()
	if _, err := newProbePort(0, f.flows, f.size, 0); err != nil {
		fmt.Fprintln(stderr, "bench overhead:", err)
		return exitUsage
	}
	ws, err := buildNFs(ctx, "overhead", stderr, "./examples/stamp", "./examples/mutate")
	if err != nil {
		return fail(err)
	}
	defer ws.Remove()
	goBin, modRoot, work, bin := ws.goBin, ws.modRoot, ws.dir, ws.bin

	progress := func(r *OverheadRun) {
		fmt.Fprintf(stderr, "bench overhead: tx=%s offered=%s: %.3f Mpps, %.0f ns CPU/pkt, lost %d (%d at the generator, %d in RX: input ring full), bad %d, stamp gaps %d %s\n",
			onOff(r.Transactions), rateName(r.OfferedPPS), r.Mpps, r.CPUNsPerPkt, r.Lost, r.NICDrops, r.Drops.RXRingFull, r.Bad, r.StampGaps, r.Error)
	}
	for i := 0; i < f.runs; i++ {
		for _, on := range []bool{false, true} {
			r := measureOverhead(ctx, f, bin, work, on, 0)
			progress(r)
			rep.MaxRuns = append(rep.MaxRuns, r)
			if ctx.Err() != nil {
				return fail(ctx.Err())
			}
		}
	}
	baseMax := medianOf(rep.MaxRuns, false, func(r *OverheadRun) float64 { return r.Mpps })
	if baseMax <= 0 {
		return fail(errors.New("the baseline delivered nothing at maximum rate: " + firstError(rep.MaxRuns)))
	}
	rate := uint64(t5Load * baseMax * 1e6)
	for i := 0; i < f.runs; i++ {
		for _, on := range []bool{false, true} {
			r := measureOverhead(ctx, f, bin, work, on, rate)
			progress(r)
			rep.LoadRuns = append(rep.LoadRuns, r)
			if ctx.Err() != nil {
				return fail(ctx.Err())
			}
		}
	}
	rep.Host["loadavg_end"] = loadAvg()
	rep.judge(baseMax, rate)
	if f.standby {
		rep.Notes = append(rep.Notes, "-standby: every transactional run has a local standby per NF, attached and idle (T5 local \"with a standby\"); the baseline has none")
	}
	if err := writeTable(stdout, rep.Rows); err != nil {
		return fail(err)
	}
	for _, n := range rep.Notes {
		fmt.Fprintln(stdout, n)
	}
	for _, m := range rep.Misses {
		fmt.Fprintf(stdout, "\nmissed: %s\n", m)
	}
	if len(rep.Misses) > 0 && f.profileDir != "none" {
		dir := f.profileDir
		if dir == "" {
			if dir, err = os.MkdirTemp("", "reinforce-overhead-profile-"); err != nil {
				return fail(err)
			}
		}
		p, err := runProfile(ctx, goBin, modRoot, "./nflib", "BenchmarkTxStampBurst/tx=on", "2s", dir)
		rep.Profile = p
		if err != nil {
			fmt.Fprintf(stderr, "bench overhead: %v\n", err)
		} else {
			fmt.Fprintf(stdout, "\nprofile of the transactional burst path (%s): %s\n%s",
				shellQuote(p.Command), filepath.Join(p.Dir, "cpu.pprof"), p.Top)
		}
	}
	if f.jsonPath != "" {
		if err := writeJSON(f.jsonPath, stdout, rep); err != nil {
			return fail(err)
		}
	}
	return exitOK
}

// loadAvg is the 1-minute load average, "?" if unknown.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

func rateName(pps uint64) string {
	if pps == 0 {
		return "max"
	}
	return fmt.Sprintf("%.3fMpps", float64(pps)/1e6)
}

// medianOf is the median of v over the runs with transactions on (or off)
// that did not fail; 0 if none.
func medianOf(runs []*OverheadRun, on bool, v func(*OverheadRun) float64) float64 {
	var xs []float64
	for _, r := range runs {
		if r.Transactions == on && r.Error == "" {
			xs = append(xs, v(r))
		}
	}
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	if len(xs)%2 == 1 {
		return xs[len(xs)/2]
	}
	return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
}

func firstError(runs []*OverheadRun) string {
	for _, r := range runs {
		if r.Error != "" {
			return r.Error
		}
	}
	return "no error recorded"
}

// judge builds the rows and verdicts from the runs.
func (rep *overheadReport) judge(baseMax float64, rate uint64) {
	onMax := medianOf(rep.MaxRuns, true, func(r *OverheadRun) float64 { return r.Mpps })
	baseCPU := medianOf(rep.LoadRuns, false, func(r *OverheadRun) float64 { return r.CPUNsPerPkt })
	onCPU := medianOf(rep.LoadRuns, true, func(r *OverheadRun) float64 { return r.CPUNsPerPkt })
	baseMaxCPU := medianOf(rep.MaxRuns, false, func(r *OverheadRun) float64 { return r.CPUNsPerPkt })
	onMaxCPU := medianOf(rep.MaxRuns, true, func(r *OverheadRun) float64 { return r.CPUNsPerPkt })
	baseNF := medianOf(rep.LoadRuns, false, func(r *OverheadRun) float64 { return r.NFNsPerPkt })
	onNF := medianOf(rep.LoadRuns, true, func(r *OverheadRun) float64 { return r.NFNsPerPkt })
	var lostOn, lostOff, genOn int64
	var checks []string
	for _, r := range append(slices.Clone(rep.MaxRuns), rep.LoadRuns...) {
		if r.Error != "" {
			rep.Notes = append(rep.Notes, fmt.Sprintf("run tx=%s offered=%s failed: %s", onOff(r.Transactions), rateName(r.OfferedPPS), r.Error))
		}
		if r.Bad > 0 || r.StampGaps > 0 {
			checks = append(checks, fmt.Sprintf("tx=%s offered=%s: %d bad frames, %d stamp gaps (first: %s)",
				onOff(r.Transactions), rateName(r.OfferedPPS), r.Bad, r.StampGaps, r.FirstBad))
		}
	}
	for _, r := range rep.LoadRuns {
		if r.Error != "" {
			continue
		}
		if r.Transactions {
			lostOn += r.Lost
			genOn += int64(r.Generated + r.NICDrops)
		} else {
			lostOff += r.Lost
		}
	}

	ref := func(v float64) *float64 { return &v }
	rep.Rows = append(rep.Rows,
		Row{Benchmark: "ref: baseline (REINFORCE_TX=off), maximum rate", Figure: round3(baseMax), Unit: "Mpps"},
		Row{Benchmark: "ref: baseline, CPU per packet at maximum rate", Figure: round3(baseMaxCPU), Unit: "ns CPU/pkt"},
		Row{Benchmark: "ref: baseline, CPU per packet at 50 %", Figure: round3(baseCPU), Unit: "ns CPU/pkt"},
		Row{Benchmark: "ref: baseline, loss at 50 %", Figure: float64(lostOff), Unit: "packets"},
		Row{Benchmark: "transactions, CPU per packet at maximum rate", Figure: round3(onMaxCPU), Unit: "ns CPU/pkt",
			Reference: ref(round3(baseMaxCPU)), Ratio: ref(ratioOf(onMaxCPU, baseMaxCPU))},
		Row{Benchmark: "transactions, CPU per packet at 50 %, stamp + mutate only", Figure: round3(onNF), Unit: "ns CPU/pkt",
			Reference: ref(round3(baseNF)), Ratio: ref(ratioOf(onNF, baseNF))},
	)
	maxRow := Row{Benchmark: fmt.Sprintf("T5 local: maximum rate [≥ %g×]", t5MaxRateTarget), Figure: round3(onMax), Unit: "Mpps",
		Reference: ref(round3(baseMax)), Ratio: ref(ratioOf(onMax, baseMax))}
	met := onMax > 0 && *maxRow.Ratio >= t5MaxRateTarget
	maxRow.Status = metWord(met)
	if !met {
		rep.Misses = append(rep.Misses, fmt.Sprintf("maximum rate %.3f Mpps is %.3f × the baseline's %.3f Mpps (target ≥ %g): %s",
			onMax, *maxRow.Ratio, baseMax, t5MaxRateTarget, rep.where(true)))
	}
	lossRow := Row{Benchmark: fmt.Sprintf("T5 local: loss at 50 %% (%.3f Mpps offered) [none]", float64(rate)/1e6),
		Figure: float64(lostOn), Unit: "packets", Reference: ref(0)}
	met = lostOn == 0 && genOn > 0
	lossRow.Status = metWord(met)
	if !met {
		rep.Misses = append(rep.Misses, fmt.Sprintf("%d of %d packets lost at 50 %% load with transactions (baseline: %d): %s; %s",
			lostOn, genOn, lostOff, rep.lossWhere(), rep.where(false)))
	}
	cpuRow := Row{Benchmark: fmt.Sprintf("T5 local: CPU per packet at 50 %% [≤ %g×]", t5CPUTarget), Figure: round3(onCPU),
		Unit: "ns CPU/pkt", Reference: ref(round3(baseCPU)), Ratio: ref(ratioOf(onCPU, baseCPU))}
	met = onCPU > 0 && baseCPU > 0 && *cpuRow.Ratio <= t5CPUTarget
	cpuRow.Status = metWord(met)
	if !met {
		rep.Misses = append(rep.Misses, fmt.Sprintf("CPU per packet at 50 %% load is %.0f ns, %.3f × the baseline's %.0f ns (target ≤ %g): %s",
			onCPU, *cpuRow.Ratio, baseCPU, t5CPUTarget, rep.where(false)))
	}
	checkRow := Row{Benchmark: "sink: stamps consecutive per flow, mutated once", Figure: float64(len(checks)), Unit: "runs with errors"}
	checkRow.Status = metWord(len(checks) == 0)
	rep.Rows = append(rep.Rows, maxRow, lossRow, cpuRow, checkRow)
	rep.Notes = append(rep.Notes, checks...)
	rep.Notes = append(rep.Notes,
		"chain: probe port (in the manager) → stamp (service 1, -f 0) → mutate (service 2) → probe port; baseline: the same binaries with REINFORCE_TX=off",
		fmt.Sprintf("medians of %d runs each; CPU per packet is the manager's, stamp's and mutate's CPU time over the window divided by the packets delivered in it", len(rep.MaxRuns)/2),
		"the manager's share includes its RX loop polling the generator and the sink's checks, the same with transactions on or off; the stamp + mutate row shows the transactions' own cost",
		"maximum-rate CPU: "+rep.cpuLine(rep.MaxRuns), "50 % CPU: "+rep.cpuLine(rep.LoadRuns),
		fmt.Sprintf("1-minute load average %s at the start, %s at the end (this benchmark alone adds about 1-2): more means other work shared the CPUs and the figures are noise",
			rep.Host["loadavg_start"], rep.Host["loadavg_end"]))
}

func ratioOf(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return round3(a / b)
}

// cpuLine is each process's median CPU share, baseline → transactions.
func (rep *overheadReport) cpuLine(runs []*OverheadRun) string {
	var parts []string
	for _, name := range []string{"manager", "stamp", "mutate"} {
		get := func(r *OverheadRun) float64 {
			for _, c := range r.CPU {
				if c.Name == name {
					return c.CPUPercent
				}
			}
			return 0
		}
		parts = append(parts, fmt.Sprintf("%s %.0f%% → %.0f%%", name, medianOf(runs, false, get), medianOf(runs, true, get)))
	}
	return strings.Join(parts, ", ")
}

// lossWhere says where the 50 % runs lost packets.
func (rep *overheadReport) lossWhere() string {
	var ring, gen, other [2]int64
	for _, r := range rep.LoadRuns {
		if r.Error != "" {
			continue
		}
		i := 0
		if r.Transactions {
			i = 1
		}
		ring[i] += int64(r.Drops.RXRingFull)
		gen[i] += int64(r.NICDrops)
		other[i] += r.Lost - int64(r.Drops.RXRingFull) - int64(r.NICDrops)
	}
	return fmt.Sprintf("with transactions %d were dropped by RX because stamp's input ring was full, %d at the generator because RX did not poll in time, %d elsewhere (baseline: %d, %d, %d) — an NF that falls asleep (futex wake-ups here take 50 µs to ms) lets its ring overflow",
		ring[1], gen[1], other[1], ring[0], gen[0], other[0])
}

// where says, from the CPU measurements, where the extra time goes.
func (rep *overheadReport) where(maxRate bool) string {
	runs := rep.LoadRuns
	if maxRate {
		runs = rep.MaxRuns
	}
	share := func(name string, sleeps bool) func(r *OverheadRun) float64 {
		return func(r *OverheadRun) float64 {
			for _, c := range r.CPU {
				if c.Name == name {
					if sleeps {
						return c.Sleeps
					}
					return c.CPUPercent
				}
			}
			return 0
		}
	}
	worst, grew := "", 0.0
	for _, name := range []string{"manager", "stamp", "mutate"} {
		if d := medianOf(runs, true, share(name, false)) - medianOf(runs, false, share(name, false)); d > grew || worst == "" {
			worst, grew = name, d
		}
	}
	if grew < 2 {
		return fmt.Sprintf("no process used more CPU with transactions (%s): every process slept more and the chain moved less — the time went in waiting (wake-ups, other load on the 2 vCPUs: load average %s), not in the transactions' work",
			rep.cpuLine(runs), rep.Host["loadavg_end"])
	}
	if worst == "manager" {
		return fmt.Sprintf("the manager, which runs no transactions, grew the most (%+.0f points; %s; its sleeps %.0f/s → %.0f/s): the difference is in how its RX and TX loops spin and sleep around the NFs on 2 shared vCPUs, not in the NFs' own work (stamp + mutate CPU per packet: see its row)",
			grew, rep.cpuLine(runs), medianOf(runs, false, share("manager", true)), medianOf(runs, true, share("manager", true)))
	}
	return fmt.Sprintf("with transactions %s's CPU share grows the most (%+.0f points; %s): the time goes in its burst transactions — the state log's undo/redo records for the counter, the saved packet bytes, the commit record (profile below)",
		worst, grew, rep.cpuLine(runs))
}

// mgrProfiled is set once -mgrprofile has its profile.
var mgrProfiled atomic.Bool

// measureOverhead runs the chain once; a failure is recorded in the run,
// not returned, so the other runs still go.
func measureOverhead(ctx context.Context, f overheadFlags, bin, work string, txOn bool, rate uint64) *OverheadRun {
	r := &OverheadRun{Transactions: txOn, OfferedPPS: rate}
	if err := overheadOnce(ctx, f, bin, work, r); err != nil {
		r.Error, _, _ = strings.Cut(strings.TrimSpace(err.Error()), "\n")
	}
	return r
}

func overheadOnce(ctx context.Context, f overheadFlags, bin, work string, res *OverheadRun) error {
	cfg := config.DefaultConfig()
	cfg.Manager.Name = fmt.Sprintf("benchoh%d-%d", os.Getpid(), benchSeq.Add(1))
	cfg.Manager.RegionDir = "/dev/shm"
	cfg.Manager.StatsOut = config.StatsNone
	cfg.Manager.SharedCPU = f.shared
	// The default configuration's port 0 (null) is replaced by the probe
	// port given in the options.
	cfg.Chains = []config.Chain{{Name: "stamping", Services: []int{1, 2}, OutPort: 0}}
	cfg.Manager.DefaultChain = "stamping"
	p, err := newProbePort(0, f.flows, f.size, res.OfferedPPS)
	if err != nil {
		return err
	}
	// Nothing is generated before both NFs run: a paced run must deliver
	// every frame it generates.
	p.pause.Store(true)
	sock := filepath.Join(work, fmt.Sprintf("oh%d.sock", benchSeq.Load()))
	m, err := manager.New(cfg, manager.Options{Log: zerolog.Nop(), SocketPath: sock, Ports: []port.Port{p}})
	if err != nil {
		return err
	}
	if err := m.Start(); err != nil {
		m.Close()
		return err
	}
	var cmds []*exec.Cmd
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
	env := append(os.Environ(), "REINFORCE_SOCKET="+sock, "REINFORCE_STATE_DIR="+work, "REINFORCE_TX="+onOff(res.Transactions))
	var outs []*lockedBuf
	start := func(name string, args ...string) (*exec.Cmd, error) {
		c := exec.CommandContext(ctx, filepath.Join(bin, name), args...)
		c.Env = env
		c.Dir = work // the NFs write <tag>_stats.csv on exit
		out := &lockedBuf{w: verbose}
		c.Stdout, c.Stderr = out, out
		if err := c.Start(); err != nil {
			return nil, err
		}
		cmds = append(cmds, c)
		outs = append(outs, out)
		return c, nil
	}
	onvm := func(svc string, more ...string) []string {
		a := append([]string{"--", "-r", svc, "-n", svc}, more...)
		if f.shared {
			a = append(a, "-s")
		}
		return append(a, "--")
	}
	stamp, err := start("stamp", append(onvm("1"), "-f", "0")...)
	if err != nil {
		return err
	}
	mutate, err := start("mutate", onvm("2")...)
	if err != nil {
		return err
	}
	standbys := f.standby && res.Transactions
	if standbys {
		// Idle until their active dies: they cost nothing, which is what
		// this measures.
		if _, err := start("stamp", append(onvm("1", "--standby"), "-f", "0")...); err != nil {
			return err
		}
		if _, err := start("mutate", onvm("2", "--standby")...); err != nil {
			return err
		}
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		s := m.Snapshot()
		running := 0
		for _, n := range s.NFs {
			if n.Running && n.Routes == s.Routes && (n.Protected || !standbys) {
				running++
			}
		}
		if running == 2 {
			break
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, o := range outs {
				b.WriteString(o.String())
			}
			return fmt.Errorf("the NFs did not start: %s", b.String())
		}
	}
	// The NF says which mode it runs in: a run must not measure the other.
	want := "transactions on"
	if !res.Transactions {
		want = "transactions off"
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(outs[0].String(), want); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("stamp did not say %q: %s", want, outs[0].String())
		}
	}
	p.pause.Store(false)
	select {
	case <-time.After(f.warmup):
	case <-ctx.Done():
		return ctx.Err()
	}
	if p.txPkts.Load() == 0 {
		return errors.New("no packet came through the chain during the warm-up")
	}

	procs := []ProcCPU{{Name: "manager", PID: os.Getpid()}, {Name: "stamp", PID: stamp.Process.Pid},
		{Name: "mutate", PID: mutate.Process.Pid}}
	cpu0 := make([]float64, len(procs))
	vcs0 := make([]uint64, len(procs))
	for i, pr := range procs {
		cpu0[i], vcs0[i] = procTimes(pr.PID)
	}
	var prof *os.File
	if f.mgrProfile != "" && res.Transactions && res.OfferedPPS == 0 && !mgrProfiled.Load() {
		if prof, err = os.Create(f.mgrProfile); err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(prof); err != nil {
			prof.Close()
			return err
		}
		mgrProfiled.Store(true)
	}
	tx0, t0 := p.txPkts.Load(), time.Now()
	select {
	case <-time.After(f.window):
	case <-ctx.Done():
	}
	tx1, dt := p.txPkts.Load(), time.Since(t0).Seconds()
	if prof != nil {
		pprof.StopCPUProfile()
		if err := prof.Close(); err != nil {
			return err
		}
	}
	total, nfs := 0.0, 0.0
	for i, pr := range procs {
		c, v := procTimes(pr.PID)
		procs[i].CPUPercent = 100 * (c - cpu0[i]) / dt
		procs[i].Sleeps = float64(v-vcs0[i]) / dt
		total += c - cpu0[i]
		if pr.Name != "manager" {
			nfs += c - cpu0[i]
		}
	}
	res.CPU, res.Window = procs, dt
	res.Mpps = float64(tx1-tx0) / dt / 1e6
	if tx1 > tx0 {
		res.CPUNsPerPkt = total * 1e9 / float64(tx1-tx0)
		res.NFNsPerPkt = nfs * 1e9 / float64(tx1-tx0)
	}

	// Stop generating and let the chain drain, then count the whole run.
	p.pause.Store(true)
	for last, stable := p.txPkts.Load(), 0; stable < 20; time.Sleep(10 * time.Millisecond) {
		if n := p.txPkts.Load(); n != last {
			last, stable = n, 0
		} else {
			stable++
		}
	}
	d := m.Snapshot().Drops
	res.Generated, res.NICDrops, res.Delivered = p.rxPkts.Load(), p.rxDrops.Load(), p.txPkts.Load()
	res.Lost = int64(res.Generated+res.NICDrops) - int64(res.Delivered)
	res.Drops = d
	res.MgrDrops = d.TXNoNF + d.TXRingFull + d.TXBadMeta + d.RXNoNF + d.RXRingFull + d.TXPortDrop
	res.Bad, res.StampGaps = p.bad.Load(), p.stampGaps.Load()
	if s := p.firstBad.Load(); s != nil {
		res.FirstBad = *s
	}
	return ctx.Err()
}
