package main

// overhead -remote measures T5's and T6's remote rows (TARGETS.md): what
// replicating the stamping chain to a standby manager on another server
// costs in CPU and in latency. Everything runs in the lab
// (tools/testbed/lab, docs/lab.md), root only:
//
//	gen (pktgen) ─eth0/p0─ pri (reinforce-mgr: afpacket p0 → stamp → mutate → p1) ─p1/eth0─ sink
//	                        pri:rep0 10.77.0.1 ─── sb:rep0 10.77.0.2 (standby reinforce-mgr)
//
// The baseline is the same configuration on pri without [replication] and
// no standby. Stages, each finishing before the next starts:
//
//	go build reinforce-mgr, stamp, mutate, pktgen
//	→ maximum rate: -runs pairs of sessions (baseline, replication), pktgen
//	  unpaced; the median of what reached the sink per second
//	→ the UDP echo round trip pri ↔ sb over rep0 (Go sockets in the
//	  servers' network namespaces), -pings pings
//	→ -runs pairs of sessions at 25 % (T5: loss, CPU per packet over both
//	  servers) then 50 % (T6: latency probe send → sink receive) of the
//	  baseline's median maximum
//	→ rows, met/missed, the primary's replication figures; JSON.
//
// The sink runs in this process (overhead_remote_lab.go) so it can report
// the mean latency, which tools/sink does not.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reinforce-nfv/reinforce/manager"
)

// TARGETS.md T5 and T6, remote rows.
const (
	t5RemoteLoad = 0.25 // of the baseline's maximum rate
	t5RemoteCPU  = 1.5  // × the baseline's CPU per packet, at most
	t6RemoteLoad = 0.5
	t6RemoteMean = 300 * time.Microsecond // added mean latency above the UDP round trip, at most
	t6RemoteP99  = 2 * time.Millisecond   // added p99 above the UDP round trip's p99, at most
)

// Phases of a session.
const (
	phaseMax = "max"
	phaseT5  = "t5"
	phaseT6  = "t6"
)

type remoteFlags struct {
	runs                      int
	warmup, window, maxWindow time.Duration
	flows, size               int
	pings                     int
	roundUS                   int
	repWindow                 int
	standbyNFs                bool
	jsonPath                  string
	verbose                   bool
}

// remoteRequested reports whether args ask for the remote measurement
// (-remote, --remote, -remote=true) before any "--".
func remoteRequested(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name != "remote" {
			continue
		}
		if !hasVal {
			return true
		}
		on, err := strconv.ParseBool(val)
		return err == nil && on
	}
	return false
}

func parseRemoteFlags(args []string, stderr io.Writer) (remoteFlags, error) {
	var f remoteFlags
	var remote bool
	fs := flag.NewFlagSet("overhead -remote", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: go run ./tools/bench overhead -remote [flags]   (root: the lab)")
		fmt.Fprintln(stderr)
		fmt.Fprintln(stderr, "T5 and T6 remote: pktgen → primary manager (stamp → mutate) → sink, replicated over a veth")
		fmt.Fprintln(stderr, "to a standby manager, versus the same chain without [replication]: the maximum rate, loss")
		fmt.Fprintln(stderr, "and CPU per packet (both servers) at 25 %, added latency at 50 % above the UDP round trip.")
		fmt.Fprintln(stderr)
		fs.PrintDefaults()
	}
	fs.BoolVar(&remote, "remote", false, "measure the remote rows (this mode)")
	fs.IntVar(&f.runs, "runs", 3, "sessions of each configuration per stage (the median counts)")
	fs.DurationVar(&f.warmup, "warmup", time.Second, "traffic before each measurement window")
	fs.DurationVar(&f.window, "window", 3*time.Second, "measurement window at 25 % and 50 %")
	fs.DurationVar(&f.maxWindow, "max-window", 2*time.Second, "measurement window at maximum rate")
	fs.IntVar(&f.flows, "flows", 64, "flows pktgen cycles through")
	fs.IntVar(&f.size, "size", 128, "frame size in bytes (at least 90: headers and the probe)")
	fs.IntVar(&f.pings, "pings", 1000, "UDP echo round trips pri ↔ sb over the replication link")
	fs.IntVar(&f.roundUS, "round-us", 0, "[replication] round_us (0: the manager's default)")
	fs.IntVar(&f.repWindow, "rep-window", 0, "[replication] window, transactions in flight (0: the default)")
	fs.BoolVar(&f.standbyNFs, "standby-nfs", true, "run the chain's NFs on the standby server too, held by its manager (their CPU counts with the standby's)")
	fs.StringVar(&f.jsonPath, "json", "", "also write the report as JSON to `file` (- = stdout, after the table)")
	fs.BoolVar(&f.verbose, "v", false, "stream the managers' output to stderr")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	var bad []string
	if fs.NArg() > 0 {
		bad = append(bad, "unexpected arguments: "+strings.Join(fs.Args(), " "))
	}
	if !remote {
		bad = append(bad, "-remote is required in this mode")
	}
	if f.runs < 1 || f.window <= 0 || f.maxWindow <= 0 || f.warmup < 0 {
		bad = append(bad, "-runs, -window and -max-window must be positive, -warmup not negative")
	}
	if f.flows < 1 || f.flows > 65536 {
		bad = append(bad, fmt.Sprintf("-flows %d: want 1..65536", f.flows))
	}
	if f.size < probeAt+48 || f.size > 1514 {
		bad = append(bad, fmt.Sprintf("-size %d: want %d..1514", f.size, probeAt+48))
	}
	if f.pings < 10 {
		bad = append(bad, fmt.Sprintf("-pings %d: want at least 10", f.pings))
	}
	if f.roundUS < 0 || f.repWindow < 0 {
		bad = append(bad, "-round-us and -rep-window must not be negative")
	}
	if len(bad) > 0 {
		err := errors.New(strings.Join(bad, "; "))
		fmt.Fprintln(stderr, err)
		return f, err
	}
	return f, nil
}

// Latency is a latency summary in nanoseconds.
type Latency struct {
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean_ns"`
	P50   uint64  `json:"p50_ns"`
	P90   uint64  `json:"p90_ns"`
	P99   uint64  `json:"p99_ns"`
	P999  uint64  `json:"p999_ns"`
	Max   uint64  `json:"max_ns"`
}

// RepFigures are the primary's replication figures over a window, from
// its RepStats sampled every remoteSampleEvery.
type RepFigures struct {
	Samples int    `json:"samples"`
	Status  string `json:"status_at_end"`
	// Unprotected counts samples in which the chain was not protected
	// (the standby lost, e.g. BFD timing out on a starved CPU).
	Unprotected int `json:"unprotected_samples"`
	// Latch occupancy (packets held).
	LatchMean float64 `json:"latch_mean"`
	LatchMax  uint64  `json:"latch_max"`
	// Rounds in flight: latch IDs proposed and not yet released by an
	// acknowledgement (RepStats.Rounds − Node.Replicator.Released; every
	// proposed round carries the next latch ID).
	InFlightMean float64 `json:"in_flight_mean"`
	InFlightMax  uint64  `json:"in_flight_max"`
	Rounds       uint64  `json:"rounds"`
	RoundsPerSec float64 `json:"rounds_per_s"`
	BytesPerTxn  float64 `json:"bytes_per_txn"` // payload_bytes / rounds over the window
	// Little's law: mean rounds in flight / rounds per second is the mean
	// time from a round's proposal to its release; mean latch occupancy /
	// packets per second the mean time a packet waits in the latch.
	ProposalToReleaseUs float64 `json:"proposal_to_release_us"`
	LatchResidenceUs    float64 `json:"latch_residence_us"`
	Retransmits         uint64  `json:"retransmits"`
	Backpressure        uint64  `json:"backpressure"`
	RXLatchDrops        uint64  `json:"rx_latch_drops"`
	TxSent              uint64  `json:"tx_sent"`
	Acks                uint64  `json:"acks"`
}

// RemoteRun is one phase of one session as measured.
type RemoteRun struct {
	Replication bool    `json:"replication"`
	Phase       string  `json:"phase"`       // max, t5 (25 %), t6 (50 %)
	OfferedPPS  uint64  `json:"offered_pps"` // 0: unpaced
	Window      float64 `json:"window_s"`
	// DeliveredPPS is probes the sink received in the window, per second.
	DeliveredPPS float64 `json:"delivered_pps"`
	// CPU per packet delivered in the window: every measured process
	// (primary manager, stamp, mutate, standby manager and its held NFs);
	// the primary's processes; the standby's.
	CPUNsPerPkt     float64   `json:"cpu_ns_per_pkt"`
	PrimaryNsPerPkt float64   `json:"primary_cpu_ns_per_pkt"`
	StandbyNsPerPkt float64   `json:"standby_cpu_ns_per_pkt"`
	CPU             []ProcCPU `json:"cpu"`
	// IdleCPU is the session's processes' CPU share before any traffic.
	IdleCPU []ProcCPU `json:"idle_cpu,omitempty"`
	// Over the whole phase: pktgen's report and the sink's verdict.
	Sent        uint64 `json:"sent"`
	Forfeited   uint64 `json:"forfeited"`
	Received    uint64 `json:"received"`
	Lost        uint64 `json:"lost"`
	Duplicated  uint64 `json:"duplicated"`
	Reordered   uint64 `json:"reordered"`
	KernelDrops uint64 `json:"sink_kernel_drops"`
	// StampErrors are stamps repeated or regressed, and stamps skipped in
	// a flow that lost nothing; StampSkipsLost are skips in flows that
	// lost packets (a packet lost after stamp skips its stamp).
	StampErrors    uint64 `json:"stamp_violations"`
	StampSkipsLost uint64 `json:"stamp_skips_with_loss"`
	MutateErr      uint64 `json:"mutate_violations"`
	FirstBad       string `json:"first_violation,omitempty"`
	// The primary manager's drops over the phase: the sum, by reason, and
	// its ports' RX drops (the kernel's included).
	// MgrRecv and MgrSent are what the primary received on p0 and sent
	// out of p1 during the phase.
	MgrRecv     uint64               `json:"manager_received"`
	MgrSent     uint64               `json:"manager_sent"`
	MgrDrops    uint64               `json:"manager_drops"`
	Drops       manager.ManagerDrops `json:"manager_drops_by_reason"`
	PortDrops   uint64               `json:"manager_port_rx_drops"`
	PortTxDrops uint64               `json:"manager_port_tx_drops"`
	// NFRestarts counts the primary's NF instances that changed process
	// during the phase; MgrLog is the end of the primary manager's output
	// then.
	NFRestarts int    `json:"nf_restarts,omitempty"`
	MgrLog     string `json:"manager_log,omitempty"`
	// Latency of the probes sent in the window (send → sink receive).
	Latency Latency     `json:"latency"`
	Rep     *RepFigures `json:"replication_stats,omitempty"`
	Error   string      `json:"error,omitempty"`
	// ErrorDetail is the whole error: the managers' output for a chain
	// that did not start.
	ErrorDetail string `json:"error_detail,omitempty"`
}

// Lossless reports a phase without loss: everything pktgen sent arrived,
// and the sink's kernel dropped nothing.
func (r *RemoteRun) Lossless() bool {
	return r.Error == "" && r.Sent > 0 && r.Lost == 0 && r.KernelDrops == 0
}

// Clean reports a phase whose packets arrived once each, in order, stamped
// consecutively and mutated once.
func (r *RemoteRun) Clean() bool {
	return r.Duplicated == 0 && r.Reordered == 0 && r.StampErrors == 0 && r.MutateErr == 0
}

type remoteReport struct {
	Subcommand string            `json:"subcommand"`
	Command    string            `json:"command"`
	Started    time.Time         `json:"started"`
	Host       map[string]string `json:"host"`
	Flags      map[string]string `json:"flags"`
	Runs       []*RemoteRun      `json:"runs"`
	RTT        Latency           `json:"udp_rtt"`
	Rows       []Row             `json:"rows"`
	Notes      []string          `json:"notes"`
	Misses     []string          `json:"misses,omitempty"`
}

func runOverheadRemote(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, err := parseRemoteFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return exitUsage
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(stderr, "bench overhead -remote: needs root (the lab: network and mount namespaces, veth links, AF_PACKET); run it as root, e.g. sudo go run ./tools/bench overhead -remote")
		return exitError
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "bench overhead -remote: %v\n", err)
		return exitError
	}
	rep := &remoteReport{Subcommand: "overhead -remote", Command: "go run ./tools/bench overhead " + strings.Join(args, " "),
		Started: time.Now().UTC(),
		Host:    map[string]string{"toolchain": runtime.Version(), "cpus": strconv.Itoa(runtime.NumCPU()), "loadavg_start": loadAvg()},
		Flags: map[string]string{"runs": strconv.Itoa(f.runs), "warmup": f.warmup.String(), "window": f.window.String(),
			"max_window": f.maxWindow.String(), "flows": strconv.Itoa(f.flows), "size": strconv.Itoa(f.size),
			"pings": strconv.Itoa(f.pings), "round_us": strconv.Itoa(f.roundUS), "rep_window": strconv.Itoa(f.repWindow),
			"standby_nfs": strconv.FormatBool(f.standbyNFs)}}
	ws, err := buildNFs(ctx, "overhead-remote", stderr, "./cmd/reinforce-mgr", "./examples/stamp", "./examples/mutate", "./tools/pktgen")
	if err != nil {
		return fail(err)
	}
	defer ws.Remove()
	rl, err := upRemoteLab(ws, f, stderr)
	if err != nil {
		return fail(err)
	}
	defer rl.close()

	progress := func(r *RemoteRun) {
		rs := ""
		if r.Rep != nil {
			rs = fmt.Sprintf("; latch mean %.0f max %d, in flight %.2f, %.0f B/txn, proposal→release %.0f µs, unprotected in %d of %d samples",
				r.Rep.LatchMean, r.Rep.LatchMax, r.Rep.InFlightMean, r.Rep.BytesPerTxn, r.Rep.ProposalToReleaseUs, r.Rep.Unprotected, r.Rep.Samples)
		}
		fmt.Fprintf(stderr, "bench overhead -remote: replication=%s %s offered=%s: %.0f pps delivered, %.0f ns CPU/pkt (primary %.0f, standby %.0f), sent %d lost %d (manager: %d, RX ring full %d, TX ring full %d; port RX %d), latency mean %.0f µs p99 %.0f µs%s %s\n",
			onOff(r.Replication), r.Phase, rateName(r.OfferedPPS), r.DeliveredPPS, r.CPUNsPerPkt, r.PrimaryNsPerPkt, r.StandbyNsPerPkt,
			r.Sent, r.Lost, r.MgrDrops, r.Drops.RXRingFull, r.Drops.TXRingFull, r.PortDrops, r.Latency.Mean/1e3, float64(r.Latency.P99)/1e3, rs, r.Error)
	}
	session := func(on bool, phases []phaseSpec) error {
		runs := rl.session(ctx, on, phases)
		for i, r := range runs {
			progress(r)
			if r.ErrorDetail != "" && (i == 0 || r.ErrorDetail != runs[i-1].ErrorDetail) {
				fmt.Fprintf(stderr, "bench overhead -remote: replication=%s %s: %s\n", onOff(r.Replication), r.Phase, r.ErrorDetail)
			}
			rep.Runs = append(rep.Runs, r)
		}
		return ctx.Err()
	}
	for i := 0; i < f.runs; i++ {
		for _, on := range []bool{false, true} {
			if err := session(on, []phaseSpec{{phase: phaseMax, window: f.maxWindow}}); err != nil {
				return fail(err)
			}
		}
	}
	baseMax := medianRemote(rep.Runs, false, phaseMax, func(r *RemoteRun) float64 { return r.DeliveredPPS })
	if baseMax <= 0 {
		return fail(errors.New("the baseline delivered nothing at maximum rate: " + firstRemoteError(rep.Runs)))
	}
	if rep.RTT, err = rl.udpRTT(f.pings); err != nil {
		return fail(fmt.Errorf("UDP round trip over rep0: %w", err))
	}
	fmt.Fprintf(stderr, "bench overhead -remote: UDP round trip pri ↔ sb: mean %.1f µs, p50 %.1f µs, p99 %.1f µs (%d pings)\n",
		rep.RTT.Mean/1e3, float64(rep.RTT.P50)/1e3, float64(rep.RTT.P99)/1e3, rep.RTT.Count)
	r25, r50 := uint64(t5RemoteLoad*baseMax), uint64(t6RemoteLoad*baseMax)
	for i := 0; i < f.runs; i++ {
		for _, on := range []bool{false, true} {
			if err := session(on, []phaseSpec{{phase: phaseT5, rate: r25, window: f.window}, {phase: phaseT6, rate: r50, window: f.window}}); err != nil {
				return fail(err)
			}
		}
	}
	rep.Host["loadavg_end"] = loadAvg()
	rep.judge()
	if err := writeTable(stdout, rep.Rows); err != nil {
		return fail(err)
	}
	for _, n := range rep.Notes {
		fmt.Fprintln(stdout, n)
	}
	for _, m := range rep.Misses {
		fmt.Fprintf(stdout, "\nmissed: %s\n", m)
	}
	if f.jsonPath != "" {
		if err := writeJSON(f.jsonPath, stdout, rep); err != nil {
			return fail(err)
		}
	}
	return exitOK
}

// phaseSpec is one phase of a session: pktgen at rate (0: unpaced) for
// warmup + window.
type phaseSpec struct {
	phase  string
	rate   uint64
	window time.Duration
}

// medianRemote is the median of v over the successful runs of one phase
// with replication on (or off); 0 if none.
func medianRemote(runs []*RemoteRun, on bool, phase string, v func(*RemoteRun) float64) float64 {
	var xs []float64
	for _, r := range runs {
		if r.Replication == on && r.Phase == phase && r.Error == "" {
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

func firstRemoteError(runs []*RemoteRun) string {
	for _, r := range runs {
		if r.Error != "" {
			return r.Error
		}
	}
	return "no error recorded"
}

// judge builds the rows, notes and misses from the runs and the round trip.
func (rep *remoteReport) judge() {
	runs := rep.Runs
	med := func(on bool, phase string, v func(*RemoteRun) float64) float64 {
		return medianRemote(runs, on, phase, v)
	}
	pps := func(r *RemoteRun) float64 { return r.DeliveredPPS }
	cpu := func(r *RemoteRun) float64 { return r.CPUNsPerPkt }
	mean := func(r *RemoteRun) float64 { return r.Latency.Mean }
	p99 := func(r *RemoteRun) float64 { return float64(r.Latency.P99) }
	ref := func(v float64) *float64 { return &v }
	us := func(ns float64) float64 { return round3(ns / 1e3) }

	baseMax, onMax := med(false, phaseMax, pps), med(true, phaseMax, pps)
	baseCPU, onCPU := med(false, phaseT5, cpu), med(true, phaseT5, cpu)
	onPrimary := med(true, phaseT5, func(r *RemoteRun) float64 { return r.PrimaryNsPerPkt })
	onStandby := med(true, phaseT5, func(r *RemoteRun) float64 { return r.StandbyNsPerPkt })
	baseMean, onMean := med(false, phaseT6, mean), med(true, phaseT6, mean)
	baseP99, onP99 := med(false, phaseT6, p99), med(true, phaseT6, p99)

	var lostOn, sentOn, lostOff, failed, failedOn5 int
	var checks []string
	for _, r := range runs {
		if r.Error != "" {
			failed++
			rep.Notes = append(rep.Notes, fmt.Sprintf("run replication=%s %s failed: %s", onOff(r.Replication), r.Phase, r.Error))
			if r.Phase == phaseT5 && r.Replication {
				failedOn5++ // a failed run cannot show that nothing was lost
			}
			continue
		}
		if r.NFRestarts > 0 {
			rep.Notes = append(rep.Notes, fmt.Sprintf("replication=%s %s: %d of the primary's NFs restarted during the phase (a new PID); the primary manager's log ends: %s",
				onOff(r.Replication), r.Phase, r.NFRestarts, r.MgrLog))
		}
		if r.Phase != phaseMax && !r.Clean() {
			checks = append(checks, fmt.Sprintf("replication=%s %s: %d duplicated, %d reordered, %d stamp and %d mutation violations (first: %s)",
				onOff(r.Replication), r.Phase, r.Duplicated, r.Reordered, r.StampErrors, r.MutateErr, r.FirstBad))
		}
		if r.Phase != phaseT5 {
			continue
		}
		lost := int(r.Lost + r.KernelDrops)
		if r.Replication {
			lostOn += lost
			sentOn += int(r.Sent)
		} else {
			lostOff += lost
		}
	}

	rep.Rows = append(rep.Rows,
		Row{Benchmark: "ref: baseline (no [replication]), maximum rate", Figure: round3(baseMax / 1e3), Unit: "kpps"},
		Row{Benchmark: "replication, maximum rate (information)", Figure: round3(onMax / 1e3), Unit: "kpps",
			Reference: ref(round3(baseMax / 1e3)), Ratio: ref(ratioOf(onMax, baseMax))},
		Row{Benchmark: "ref: baseline, CPU per packet at 25 % (primary's processes)", Figure: round3(baseCPU), Unit: "ns CPU/pkt"},
		Row{Benchmark: "ref: baseline, loss at 25 %", Figure: float64(lostOff), Unit: "packets"},
	)
	lossRow := Row{Benchmark: fmt.Sprintf("T5 remote: loss at 25 %% (%.1f kpps offered) [none]", t5RemoteLoad*baseMax/1e3),
		Figure: float64(lostOn), Unit: "packets", Reference: ref(0)}
	met := lostOn == 0 && sentOn > 0 && failedOn5 == 0
	lossRow.Status = metWord(met)
	if !met {
		rep.Misses = append(rep.Misses, fmt.Sprintf("%d of %d packets lost at 25 %% load with replication (baseline: %d), %d run(s) failed: %s",
			lostOn, sentOn, lostOff, failedOn5, rep.lossWhere()))
	}
	cpuRow := Row{Benchmark: fmt.Sprintf("T5 remote: CPU per packet at 25 %%, both servers [≤ %g×]", t5RemoteCPU), Figure: round3(onCPU),
		Unit: "ns CPU/pkt", Reference: ref(round3(baseCPU)), Ratio: ref(ratioOf(onCPU, baseCPU))}
	met = onCPU > 0 && baseCPU > 0 && *cpuRow.Ratio <= t5RemoteCPU
	cpuRow.Status = metWord(met)
	if !met {
		rep.Misses = append(rep.Misses, fmt.Sprintf("CPU per packet at 25 %% load is %.0f ns over both servers (primary %.0f, standby %.0f), %.3f × the baseline's %.0f ns (target ≤ %g): %s",
			onCPU, onPrimary, onStandby, *cpuRow.Ratio, baseCPU, t5RemoteCPU, rep.cpuWhere(onCPU-baseCPU)))
	}
	rep.Rows = append(rep.Rows, lossRow, cpuRow,
		Row{Benchmark: "  of which primary's processes (replication)", Figure: round3(onPrimary), Unit: "ns CPU/pkt",
			Reference: ref(round3(baseCPU)), Ratio: ref(ratioOf(onPrimary, baseCPU))},
		Row{Benchmark: "  of which the standby's (manager, held NFs)", Figure: round3(onStandby), Unit: "ns CPU/pkt"},
	)

	rttMean, rttP99 := rep.RTT.Mean, float64(rep.RTT.P99)
	addMean, addP99 := onMean-baseMean, onP99-baseP99
	haveLat := baseMean > 0 && onMean > 0 && rep.RTT.Count > 0
	rep.Rows = append(rep.Rows,
		Row{Benchmark: "ref: UDP round trip pri ↔ sb over rep0, mean", Figure: us(rttMean), Unit: "µs"},
		Row{Benchmark: "ref: UDP round trip pri ↔ sb over rep0, p99", Figure: us(rttP99), Unit: "µs"},
		Row{Benchmark: "ref: baseline latency at 50 %, mean", Figure: us(baseMean), Unit: "µs"},
		Row{Benchmark: "ref: baseline latency at 50 %, p99", Figure: us(baseP99), Unit: "µs"},
		Row{Benchmark: "replication latency at 50 %, mean", Figure: us(onMean), Unit: "µs", Reference: ref(us(baseMean)), Ratio: ref(ratioOf(onMean, baseMean))},
		Row{Benchmark: "replication latency at 50 %, p99", Figure: us(onP99), Unit: "µs", Reference: ref(us(baseP99)), Ratio: ref(ratioOf(onP99, baseP99))},
	)
	// Latency at 25 % tells a fixed cost (the same added latency at both
	// loads) from queueing (added latency growing with the load).
	base25, on25 := med(false, phaseT5, mean), med(true, phaseT5, mean)
	base25p, on25p := med(false, phaseT5, p99), med(true, phaseT5, p99)
	rep.Rows = append(rep.Rows,
		Row{Benchmark: "replication latency at 25 %, mean (information)", Figure: us(on25), Unit: "µs", Reference: ref(us(base25)), Ratio: ref(ratioOf(on25, base25))},
		Row{Benchmark: "replication latency at 25 %, p99 (information)", Figure: us(on25p), Unit: "µs", Reference: ref(us(base25p)), Ratio: ref(ratioOf(on25p, base25p))},
	)
	var lost50 [2]uint64
	for _, r := range runs {
		if r.Phase == phaseT6 && r.Error == "" {
			lost50[b2i(r.Replication)] += r.Lost
		}
	}
	rep.Rows = append(rep.Rows, Row{Benchmark: "replication, loss at 50 % (information)", Figure: float64(lost50[1]), Unit: "packets", Reference: ref(float64(lost50[0]))})
	meanRow, p99Row := t6Row("mean", addMean-rttMean, t6RemoteMean, haveLat), t6Row("p99", addP99-rttP99, t6RemoteP99, haveLat)
	if meanRow.Status != "met" {
		rep.Misses = append(rep.Misses, fmt.Sprintf("replication adds %.0f µs to the mean latency at 50 %% load (%.0f → %.0f µs), %.0f µs above the UDP round trip's mean %.0f µs (target ≤ %.0f µs): %s",
			addMean/1e3, baseMean/1e3, onMean/1e3, (addMean-rttMean)/1e3, rttMean/1e3, float64(t6RemoteMean)/1e3, rep.latencyWhere()))
	}
	if p99Row.Status != "met" {
		rep.Misses = append(rep.Misses, fmt.Sprintf("replication adds %.0f µs to the p99 latency at 50 %% load (%.0f → %.0f µs), %.0f µs above the UDP round trip's p99 %.0f µs (target ≤ %.0f µs): %s",
			addP99/1e3, baseP99/1e3, onP99/1e3, (addP99-rttP99)/1e3, rttP99/1e3, float64(t6RemoteP99)/1e3, rep.latencyWhere()))
	}
	rep.Rows = append(rep.Rows, meanRow, p99Row)

	for _, ph := range []string{phaseT5, phaseT6} {
		load := "25 %"
		if ph == phaseT6 {
			load = "50 %"
		}
		repMed := func(v func(*RepFigures) float64) float64 {
			return med(true, ph, func(r *RemoteRun) float64 {
				if r.Rep == nil {
					return 0
				}
				return v(r.Rep)
			})
		}
		rep.Rows = append(rep.Rows,
			Row{Benchmark: "primary at " + load + ": latch occupancy, mean", Figure: round3(repMed(func(f *RepFigures) float64 { return f.LatchMean })), Unit: "packets"},
			Row{Benchmark: "primary at " + load + ": latch occupancy, max", Figure: repMed(func(f *RepFigures) float64 { return float64(f.LatchMax) }), Unit: "packets"},
			Row{Benchmark: "primary at " + load + ": transactions in flight, mean", Figure: round3(repMed(func(f *RepFigures) float64 { return f.InFlightMean })), Unit: "rounds"},
			Row{Benchmark: "primary at " + load + ": transactions in flight, max", Figure: repMed(func(f *RepFigures) float64 { return float64(f.InFlightMax) }), Unit: "rounds"},
			Row{Benchmark: "primary at " + load + ": bytes per transaction", Figure: round3(repMed(func(f *RepFigures) float64 { return f.BytesPerTxn })), Unit: "B"},
			Row{Benchmark: "primary at " + load + ": transactions per second", Figure: round3(repMed(func(f *RepFigures) float64 { return f.RoundsPerSec })), Unit: "1/s"},
			Row{Benchmark: "primary at " + load + ": proposal → release (Little's law)", Figure: round3(repMed(func(f *RepFigures) float64 { return f.ProposalToReleaseUs })), Unit: "µs"},
			Row{Benchmark: "primary at " + load + ": latch residence (Little's law)", Figure: round3(repMed(func(f *RepFigures) float64 { return f.LatchResidenceUs })), Unit: "µs"},
		)
	}
	checkRow := Row{Benchmark: "sink at 25 % and 50 %: once, in order, stamps consecutive, mutated once", Figure: float64(len(checks) + failed), Unit: "runs with errors or failed"}
	checkRow.Status = metWord(len(checks) == 0 && failed == 0)
	rep.Rows = append(rep.Rows, checkRow)
	rep.Notes = append(rep.Notes, checks...)
	rep.Notes = append(rep.Notes,
		"lab: gen (pktgen, nice 10) → pri (reinforce-mgr, afpacket p0 → stamp -f 0 → mutate → p1; instances 1, 2) → sink (in this process); pri:rep0 10.77.0.1 ↔ sb:rep0 10.77.0.2 (standby reinforce-mgr, with the chain's NFs held unless -standby-nfs=false), a direct veth; baseline: the same configuration on pri without [replication] and no standby",
		fmt.Sprintf("medians of %d session(s) per configuration; CPU per packet is utime+stime of the primary manager, stamp, mutate and (with replication) the standby manager and its held NFs over the window, over the probes the sink received in it; the baseline counts the primary's processes only", countSessions(runs, phaseMax)),
		"T6: latency is probe send (pktgen, CLOCK_MONOTONIC) → the sink's poll, for the probes sent in the window; the target's figure is (replication − baseline) − the UDP round trip (mean from mean, p99 from p99)",
		"transactions in flight are latch IDs proposed and not yet released (RepStats.Rounds − Node.Replicator.Released), sampled every 50 ms; the replicator exposes no acknowledgement round trip, so proposal → release is Little's law on that (mean in flight / transactions per second); a per-transaction ack time needs a proposal-to-ack histogram in replicator.Counters or RepStats",
		"idle CPU (no traffic): "+idleLineRemote(runs), "25 % CPU: "+cpuLineRemote(runs, phaseT5), "50 % CPU: "+cpuLineRemote(runs, phaseT6),
		fmt.Sprintf("1-minute load average %s at the start, %s at the end: the lab shares 2 vCPUs, more than the benchmark's own load means the figures are noise",
			rep.Host["loadavg_start"], rep.Host["loadavg_end"]))
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// t6Row is a T6 remote row: figure is the added latency above the round
// trip, in ns.
func t6Row(what string, figure float64, target time.Duration, have bool) Row {
	tgt := float64(target) / 1e3
	fig := round3(figure / 1e3)
	r := Row{Benchmark: fmt.Sprintf("T6 remote: added %s latency at 50 %% above the UDP RTT [≤ %g µs]", what, tgt),
		Figure: fig, Unit: "µs", Reference: &tgt}
	ratio := round3(fig / tgt)
	r.Ratio = &ratio
	r.Status = metWord(have && !math.IsNaN(figure) && fig <= tgt)
	return r
}

func countSessions(runs []*RemoteRun, phase string) int {
	n := 0
	for _, r := range runs {
		if r.Phase == phase && !r.Replication {
			n++
		}
	}
	return n
}

// cpuLineRemote is each process's median CPU share, baseline → replication.
func cpuLineRemote(runs []*RemoteRun, phase string) string {
	var parts []string
	for _, name := range remoteProcNames {
		get := func(r *RemoteRun) float64 {
			for _, c := range r.CPU {
				if c.Name == name {
					return c.CPUPercent
				}
			}
			return 0
		}
		parts = append(parts, fmt.Sprintf("%s %.0f%% → %.0f%%", name, medianRemote(runs, false, phase, get), medianRemote(runs, true, phase, get)))
	}
	return strings.Join(parts, ", ")
}

// remoteProcNames are the processes the CPU lines name.
var remoteProcNames = []string{"primary manager", "stamp", "mutate", "standby manager", "standby stamp", "standby mutate"}

// idleCPUSum is the median over the 25 % sessions of their processes'
// summed CPU share with no traffic, in CPUs.
func idleCPUSum(runs []*RemoteRun, on bool) float64 {
	return medianRemote(runs, on, phaseT5, func(r *RemoteRun) float64 {
		sum := 0.0
		for _, c := range r.IdleCPU {
			sum += c.CPUPercent / 100
		}
		return sum
	})
}

// cpuWhere splits the extra CPU per packet at 25 % into the replication's
// fixed cost (what the processes use with no traffic, spread over the
// packets) and the rest, which grows with the traffic.
func (rep *remoteReport) cpuWhere(extra float64) string {
	pps := medianRemote(rep.Runs, true, phaseT5, func(r *RemoteRun) float64 { return r.DeliveredPPS })
	fixed := 0.0
	if pps > 0 {
		fixed = (idleCPUSum(rep.Runs, true) - idleCPUSum(rep.Runs, false)) * 1e9 / pps
	}
	return fmt.Sprintf("of the %.0f ns more per packet, about %.0f ns is the replication's fixed cost — with no traffic the processes use %.0f%% of a CPU with replication against %.0f%% without (the round and replicator ticks every 100 µs and BFD on both managers: %s) — spread over %.1f kpps, and %.0f ns grows with the traffic (rounds, the standby's apply, latch handling); at 25 %% of this machine's low veth rate the fixed part weighs more than it would at a NIC's; 25 %% CPU: %s",
		extra, fixed, 100*idleCPUSum(rep.Runs, true), 100*idleCPUSum(rep.Runs, false), idleLineRemote(rep.Runs), pps/1e3, extra-fixed, cpuLineRemote(rep.Runs, phaseT5))
}

// idleLineRemote is each process's median CPU share with no traffic,
// baseline → replication, from the 25 %/50 % sessions.
func idleLineRemote(runs []*RemoteRun) string {
	var parts []string
	for _, name := range remoteProcNames {
		get := func(r *RemoteRun) float64 {
			for _, c := range r.IdleCPU {
				if c.Name == name {
					return c.CPUPercent
				}
			}
			return 0
		}
		parts = append(parts, fmt.Sprintf("%s %.0f%% → %.0f%%", name, medianRemote(runs, false, phaseT5, get), medianRemote(runs, true, phaseT5, get)))
	}
	return strings.Join(parts, ", ")
}

// lossWhere says where the 25 % runs with replication lost packets.
func (rep *remoteReport) lossWhere() string {
	var mgr, reasons, port, latch, kern, status, after, before, uncounted []string
	for _, r := range rep.Runs {
		if r.Phase != phaseT5 || !r.Replication || r.Error != "" {
			continue
		}
		mgr = append(mgr, strconv.FormatUint(r.MgrDrops, 10))
		d := r.Drops
		reasons = append(reasons, fmt.Sprintf("RX no NF %d, RX ring full %d, TX no NF %d, TX bad meta %d, TX ring full %d, TX port %d, NF deaths %d",
			d.RXNoNF, d.RXRingFull, d.TXNoNF, d.TXBadMeta, d.TXRingFull, d.TXPortDrop, d.NFDeaths))
		if r.Rep != nil {
			reasons[len(reasons)-1] += fmt.Sprintf(", back-pressured rounds %d", r.Rep.Backpressure)
		}
		port = append(port, strconv.FormatUint(r.PortDrops, 10))
		kern = append(kern, strconv.FormatUint(r.KernelDrops, 10))
		after = append(after, strconv.FormatInt(int64(r.MgrSent)-int64(r.Received), 10))
		before = append(before, strconv.FormatInt(int64(r.Sent)-int64(r.MgrRecv)-int64(r.PortDrops), 10))
		inside := int64(r.MgrRecv) - int64(r.MgrSent) - int64(r.MgrDrops)
		if r.Rep != nil {
			inside -= int64(r.Rep.RXLatchDrops)
		}
		uncounted = append(uncounted, strconv.FormatInt(inside, 10))
		if r.Rep != nil {
			latch = append(latch, strconv.FormatUint(r.Rep.RXLatchDrops, 10))
			status = append(status, fmt.Sprintf("%s (unprotected in %d of %d samples)", r.Rep.Status, r.Rep.Unprotected, r.Rep.Samples))
		}
	}
	return fmt.Sprintf("per run: manager drops %s (%s), primary port RX drops (kernel included) %s, RX drops at the latch quota %s, sink kernel drops %s; sent by pktgen and never seen by the primary's p0 (the kernel's veth backlog) %s, received by the primary and neither sent nor counted as a drop %s, sent by the primary and not received %s; chain status at the end %s",
		strings.Join(mgr, "/"), strings.Join(reasons, "; "), strings.Join(port, "/"), strings.Join(latch, "/"), strings.Join(kern, "/"),
		strings.Join(before, "/"), strings.Join(uncounted, "/"), strings.Join(after, "/"), strings.Join(status, "/"))
}

// latencyWhere relates the added latency to the replication's own figures.
func (rep *remoteReport) latencyWhere() string {
	p2r := medianRemote(rep.Runs, true, phaseT6, func(r *RemoteRun) float64 {
		if r.Rep == nil {
			return 0
		}
		return r.Rep.ProposalToReleaseUs
	})
	res := medianRemote(rep.Runs, true, phaseT6, func(r *RemoteRun) float64 {
		if r.Rep == nil {
			return 0
		}
		return r.Rep.LatchResidenceUs
	})
	return fmt.Sprintf("a packet waits %.0f µs in the latch on average (Little's law): proposal → release takes %.0f µs of it (the round's send, the standby's apply, the acknowledgement, the wake-ups on both sides; the UDP round trip alone is %.0f µs), the other %.0f µs is the wait for the round that seals it and for the TX loop to send after the release; 50 %% CPU: %s",
		res, p2r, rep.RTT.Mean/1e3, res-p2r, cpuLineRemote(rep.Runs, phaseT6))
}
