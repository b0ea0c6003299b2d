package main

// bench failover-remote: T7 remote (TARGETS.md) — kill -9 of the primary
// server's manager and everything it started → the standby server's first
// commit, and → the first output at the sink from the standby's interface,
// for both BFD profiles ("default" 1 ms × 3, "loaded" 2 ms × 3), with a
// plot of throughput and latency around one failover per profile.
//
// The lab is the three-role testbed (failover_remote_lab.go):
//
//	gen (pktgen) → ing (ingress manager = the arbiter) → a | b (member managers,
//	stamp → mutate → flow_tracker, replicated, arbiter members) → sink
//
// Per profile: bring the lab up, start the traffic, and -kills times: wait
// until the chain is protected (both members up, the standby confirmed),
// wait a random moment, read CLOCK_MONOTONIC and SIGKILL the primary's
// process group, then wait for the standby's takeover and restart the
// killed member (it rejoins as the standby). Every promoted NF records in
// its state file (in the standby server's private /dev/shm, reached through
// /proc/PID/root) when it saw its promotion and when it first committed,
// on the same clock; the sink records the first frame from the new
// primary's interface; the ingress manager's log says when the arbiter
// started the promotion and when it redirected the traffic (timed as the
// lines reach this process).

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// TARGETS.md T7, remote rows: p99 of kill → the standby's first commit.
const (
	t7RemoteDefaultP99 = 5 * time.Millisecond  // 1 ms × 3 heartbeats, unloaded
	t7RemoteLoadedP99  = 10 * time.Millisecond // 2 ms × 3, the loaded profile
)

// foProfile is a BFD profile as the [arbiter] table names it, with its
// T7 remote budget.
type foProfile struct {
	name   string // [arbiter] profile
	label  string // for the table
	target time.Duration
}

var foProfiles = []foProfile{
	{name: "default", label: "default 1 ms × 3", target: t7RemoteDefaultP99},
	{name: "loaded", label: "loaded 2 ms × 3", target: t7RemoteLoadedP99},
}

func profileNamed(name string) (foProfile, bool) {
	for _, p := range foProfiles {
		if p.name == name {
			return p, true
		}
	}
	return foProfile{}, false
}

type foRemoteFlags struct {
	kills    int
	profiles []foProfile
	rate     uint64
	flows    int
	size     int
	seed     uint64
	// gapMin and gapMax bound the random wait between the chain being
	// protected again (plus settle) and the next kill.
	settle         time.Duration
	gapMin, gapMax time.Duration
	// timeout bounds each failover's takeover and each rejoin.
	timeout  time.Duration
	nice     int
	labs     int
	jsonPath string
	plot     string
	verbose  bool
}

func parseFailoverRemoteFlags(args []string, stderr io.Writer) (foRemoteFlags, error) {
	var f foRemoteFlags
	var profiles string
	fs := flag.NewFlagSet("bench failover-remote", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: go run ./tools/bench failover-remote [flags]   (root: the lab)")
		fmt.Fprintln(stderr)
		fmt.Fprintln(stderr, "T7 remote: gen → ingress (arbiter) → a | b (stamp → mutate → flow_tracker, replicated) → sink;")
		fmt.Fprintln(stderr, "kill -9 of the primary's process group → the standby's first commit and → the first output at")
		fmt.Fprintln(stderr, "the sink, per BFD profile; the killed server restarts and rejoins before the next kill.")
		fmt.Fprintln(stderr)
		fs.PrintDefaults()
	}
	fs.IntVar(&f.kills, "kills", 10, "failovers per profile")
	fs.StringVar(&profiles, "profiles", "default,loaded", "BFD profiles to measure, comma separated (default: 1 ms × 3; loaded: 2 ms × 3)")
	fs.Uint64Var(&f.rate, "rate", 20_000, "offered load in packets per second")
	fs.IntVar(&f.flows, "flows", 64, "flows pktgen cycles through")
	fs.IntVar(&f.size, "size", 128, "frame size in bytes")
	fs.Uint64Var(&f.seed, "seed", 0, "seed for the kill moments (0: random, printed)")
	fs.DurationVar(&f.settle, "settle", 300*time.Millisecond, "traffic through the protected chain before each kill's random wait")
	fs.DurationVar(&f.gapMin, "gap-min", 20*time.Millisecond, "shortest random wait before a kill")
	fs.DurationVar(&f.gapMax, "gap-max", 200*time.Millisecond, "longest random wait before a kill")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "bound on each takeover and each rejoin")
	fs.IntVar(&f.labs, "labs", 0, "labs per profile at most: a lab whose chain does not become protected again is replaced by a fresh one (0: -kills)")
	fs.IntVar(&f.nice, "nice", 0, "run the managers and their NFs at this nice value (-20..19; 0: unchanged); a negative one stands for the servers' own CPUs on a shared machine")
	fs.StringVar(&f.jsonPath, "json", "", "also write the report as JSON to `file` (- = stdout, after the table)")
	fs.StringVar(&f.plot, "plot", "failover-remote.png", "write throughput and latency around the first failover of each profile to this PNG `file` (none: skip)")
	fs.BoolVar(&f.verbose, "v", false, "stream the managers' output to stderr")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	var bad []string
	if fs.NArg() > 0 {
		bad = append(bad, "unexpected arguments: "+strings.Join(fs.Args(), " "))
	}
	seen := map[string]bool{}
	for _, n := range strings.Split(profiles, ",") {
		n = strings.TrimSpace(n)
		p, ok := profileNamed(n)
		switch {
		case !ok:
			bad = append(bad, fmt.Sprintf("-profiles: unknown profile %q (want default, loaded)", n))
		case seen[n]:
			bad = append(bad, fmt.Sprintf("-profiles: %q twice", n))
		default:
			seen[n] = true
			f.profiles = append(f.profiles, p)
		}
	}
	if f.kills < 1 {
		bad = append(bad, fmt.Sprintf("-kills %d: want at least 1", f.kills))
	}
	if f.rate < 1000 || f.rate > 1_000_000 {
		bad = append(bad, fmt.Sprintf("-rate %d: want 1000..1000000", f.rate))
	}
	if f.flows < 1 || f.flows > 65536 {
		bad = append(bad, fmt.Sprintf("-flows %d: want 1..65536", f.flows))
	}
	if f.size < probeAt+48 || f.size > 1514 {
		bad = append(bad, fmt.Sprintf("-size %d: want %d..1514", f.size, probeAt+48))
	}
	if f.settle < 0 || f.gapMin < 0 || f.gapMax < f.gapMin {
		bad = append(bad, "-settle and -gap-min must not be negative, -gap-max not below -gap-min")
	}
	if f.labs == 0 {
		f.labs = f.kills
	}
	if f.labs < 1 {
		bad = append(bad, fmt.Sprintf("-labs %d: want at least 1", f.labs))
	}
	if f.nice < -20 || f.nice > 19 {
		bad = append(bad, fmt.Sprintf("-nice %d: want -20..19", f.nice))
	}
	if f.timeout < time.Second {
		bad = append(bad, fmt.Sprintf("-timeout %v: want at least 1s", f.timeout))
	}
	if len(bad) > 0 {
		err := errors.New(strings.Join(bad, "; "))
		fmt.Fprintln(stderr, "bench failover-remote:", err)
		return f, err
	}
	return f, nil
}

// NFTakeover is one promoted NF's takeover, from its state file: µs after
// the kill.
type NFTakeover struct {
	NF          string  `json:"nf"`
	Instance    uint16  `json:"instance"`
	PromotedUs  float64 `json:"promoted_us"`     // the NF saw its Promote (state.Stats.WokeNs)
	FirstCommit float64 `json:"first_commit_us"` // its first commit (FirstCommitNs)
}

// RemoteFailover is one failover, in µs after the kill (CLOCK_MONOTONIC,
// read just before kill(2)); -1 where the event was not seen.
type RemoteFailover struct {
	Profile string `json:"profile"`
	Victim  string `json:"victim"` // the killed server
	Taker   string `json:"taker"`  // the standby that took over
	// CommitUs is the earliest first commit over the chain's promoted NFs
	// (T7's "the standby's first commit"), CommitNF names that NF.
	CommitUs float64 `json:"first_commit_us"`
	CommitNF string  `json:"first_commit_nf"`
	// PromotedUs is the earliest NF to see its promotion.
	PromotedUs float64      `json:"promoted_us"`
	NFs        []NFTakeover `json:"nfs"`
	// SinkUs: the first frame at the sink from the taker's interface.
	SinkUs float64 `json:"sink_first_output_us"`
	// The arbiter's view: the ingress manager logged that it starts the
	// promotion (event "promoting") and that it redirected the traffic.
	ArbiterPromotingUs float64 `json:"arbiter_promoting_us"`
	ArbiterRedirectUs  float64 `json:"arbiter_redirect_us"`
	// RejoinMs: the restart of the killed member → the chain protected
	// again (it rejoined as the standby).
	RejoinMs float64 `json:"rejoin_ms"`
	Error    string  `json:"error,omitempty"`
}

type failoverRemoteReport struct {
	Subcommand string            `json:"subcommand"`
	Command    string            `json:"command"`
	Started    time.Time         `json:"started"`
	Host       map[string]string `json:"host"`
	Flags      map[string]string `json:"flags"`
	Samples    []RemoteFailover  `json:"samples"`
	// Sink is the sink's verdict per profile over the whole run.
	Sink  []SinkVerdict `json:"sink"`
	Rows  []Row         `json:"rows"`
	Notes []string      `json:"notes"`
	// Misses explains each missed row.
	Misses []string `json:"misses,omitempty"`
}

// SinkVerdict is the sink's check of one profile's traffic: output once,
// stamps never regress, mutated at most once, and per flow no stamp gap
// beyond that flow's lost packets.
type SinkVerdict struct {
	Profile     string `json:"profile"`
	Sent        uint64 `json:"sent"`
	Received    uint64 `json:"received"`
	Lost        uint64 `json:"lost"`
	Duplicated  uint64 `json:"duplicated"`
	StampErrors uint64 `json:"stamp_violations"`
	MutateErr   uint64 `json:"mutate_violations"`
	FirstBad    string `json:"first_violation,omitempty"`
}

// OK: nothing the sink saw contradicts exactly-once processing.
func (v SinkVerdict) OK() bool {
	return v.Duplicated == 0 && v.StampErrors == 0 && v.MutateErr == 0
}

// quantile is the nearest-rank quantile of sorted v (q in [0, 1]): with
// ten samples p50 is the 6th smallest and p99 the largest.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

// seen returns the samples' values that were observed (≥ 0), sorted: a
// failover whose rejoin failed still timed its takeover.
func seen(samples []RemoteFailover, get func(*RemoteFailover) float64) []float64 {
	var v []float64
	for i := range samples {
		if x := get(&samples[i]); x >= 0 {
			v = append(v, x)
		}
	}
	slices.Sort(v)
	return v
}

// t7RemoteRows are one profile's rows: kill → first commit and → first
// output at the sink (p50, p99 with the target and met/missed, max), the
// arbiter's and the NFs' view, and the failovers completed. misses explain
// each missed row.
func t7RemoteRows(p foProfile, kills int, samples []RemoteFailover) (rows []Row, misses []string) {
	var mine []RemoteFailover
	for _, s := range samples {
		if s.Profile == p.name {
			mine = append(mine, s)
		}
	}
	tgt := float64(p.target) / 1e6 // ms
	ms := func(us float64) float64 { return round3(us / 1e3) }
	// A failover is done when the standby took over (its first commit
	// was seen); a rejoin that failed afterwards is in errs but did not
	// undo it.
	done := 0
	var errs []string
	for _, s := range mine {
		if s.CommitUs >= 0 {
			done++
		}
		if s.Error != "" {
			errs = append(errs, s.Error)
		}
	}
	target := func(what string, v []float64) []Row {
		if len(v) == 0 {
			r := Row{Benchmark: fmt.Sprintf("T7 remote, %s: kill → %s, p99 [≤ %g ms]", p.label, what, tgt),
				Figure: 0, Unit: "ms", Reference: &tgt, Status: "missed"}
			misses = append(misses, fmt.Sprintf("%s: kill → %s: no failover measured (%s)", p.label, what, strings.Join(errs, "; ")))
			return []Row{r}
		}
		p50, p99, mx := ms(quantile(v, 0.5)), ms(quantile(v, 0.99)), ms(v[len(v)-1])
		ratio := ratioOf(p99, tgt)
		r99 := Row{Benchmark: fmt.Sprintf("T7 remote, %s: kill → %s, p99 [≤ %g ms]", p.label, what, tgt),
			Figure: p99, Unit: "ms", Reference: &tgt, Ratio: &ratio}
		r99.Status = metWord(p99 <= tgt && done == kills)
		if r99.Status != "met" {
			why := fmt.Sprintf("p99 %.2f ms over %d failover(s) (p50 %.2f, max %.2f)", p99, len(v), p50, mx)
			if done < kills {
				why += fmt.Sprintf("; only %d of %d failovers completed: %s", done, kills, strings.Join(errs, "; "))
			}
			misses = append(misses, fmt.Sprintf("%s: kill → %s: %s", p.label, what, why))
		}
		return []Row{
			{Benchmark: fmt.Sprintf("T7 remote, %s: kill → %s, p50", p.label, what), Figure: p50, Unit: "ms"},
			r99,
			{Benchmark: fmt.Sprintf("T7 remote, %s: kill → %s, max", p.label, what), Figure: mx, Unit: "ms"},
		}
	}
	info := func(what string, v []float64) []Row {
		if len(v) == 0 {
			return nil
		}
		return []Row{
			{Benchmark: fmt.Sprintf("  %s: kill → %s, p50", p.label, what), Figure: ms(quantile(v, 0.5)), Unit: "ms"},
			{Benchmark: fmt.Sprintf("  %s: kill → %s, max", p.label, what), Figure: ms(v[len(v)-1]), Unit: "ms"},
		}
	}
	rows = append(rows, target("standby's first commit", seen(mine, func(s *RemoteFailover) float64 { return s.CommitUs }))...)
	rows = append(rows, target("first output at the sink", seen(mine, func(s *RemoteFailover) float64 { return s.SinkUs }))...)
	rows = append(rows, info("arbiter starts the promotion (ingress log)", seen(mine, func(s *RemoteFailover) float64 { return s.ArbiterPromotingUs }))...)
	rows = append(rows, info("ingress redirected (ingress log)", seen(mine, func(s *RemoteFailover) float64 { return s.ArbiterRedirectUs }))...)
	rows = append(rows, info("first standby NF saw its promotion", seen(mine, func(s *RemoteFailover) float64 { return s.PromotedUs }))...)
	if rj := seen(mine, func(s *RemoteFailover) float64 { return s.RejoinMs * 1e3 }); len(rj) > 0 {
		rows = append(rows, Row{Benchmark: fmt.Sprintf("  %s: restart → protected again, p50", p.label), Figure: ms(quantile(rj, 0.5)), Unit: "ms"})
	}
	doneRow := Row{Benchmark: fmt.Sprintf("%s: failovers completed (the standby committed)", p.label), Figure: float64(done), Unit: "failovers",
		Reference: ref(float64(kills))}
	doneRow.Status = metWord(done == kills)
	rows = append(rows, doneRow)
	return rows, misses
}

func ref(v float64) *float64 { return &v }

// sinkRow is the exactly-once check over every profile's traffic.
func sinkRow(vs []SinkVerdict) (Row, []string) {
	var bad uint64
	var misses []string
	for _, v := range vs {
		bad += v.Duplicated + v.StampErrors + v.MutateErr
		if !v.OK() {
			misses = append(misses, fmt.Sprintf("sink, %s profile: %d duplicated, %d stamp violations, %d mutated twice (first: %s)",
				v.Profile, v.Duplicated, v.StampErrors, v.MutateErr, v.FirstBad))
		}
	}
	r := Row{Benchmark: "sink through every failover: duplicates + stamp violations + double mutations", Figure: float64(bad), Unit: "packets",
		Reference: ref(0)}
	r.Status = metWord(bad == 0 && len(vs) > 0)
	return r, misses
}

// killGap is the random wait before a kill.
func killGap(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
}

// alternate is the member to kill for the k-th failover: always the
// current primary, which alternates as each failover promotes the other.
// It exists so the rows can check the servers really alternated.
func victimsAlternate(samples []RemoteFailover) bool {
	for i := 1; i < len(samples); i++ {
		if samples[i].Profile == samples[i-1].Profile && samples[i].Error == "" && samples[i-1].Error == "" &&
			samples[i].Victim == samples[i-1].Victim {
			return false
		}
	}
	return true
}

func newFailoverRemoteReport(f foRemoteFlags, args []string) *failoverRemoteReport {
	names := make([]string, len(f.profiles))
	for i, p := range f.profiles {
		names[i] = p.name
	}
	return &failoverRemoteReport{Subcommand: "failover-remote", Command: "go run ./tools/bench failover-remote " + strings.Join(args, " "),
		Started: time.Now().UTC(),
		Host:    map[string]string{"toolchain": runtime.Version(), "cpus": strconv.Itoa(runtime.NumCPU()), "loadavg_start": loadAvg()},
		Flags: map[string]string{"kills": strconv.Itoa(f.kills), "profiles": strings.Join(names, ","), "rate": strconv.FormatUint(f.rate, 10),
			"flows": strconv.Itoa(f.flows), "size": strconv.Itoa(f.size), "seed": strconv.FormatUint(f.seed, 10),
			"settle": f.settle.String(), "gap": f.gapMin.String() + ".." + f.gapMax.String(), "nice": strconv.Itoa(f.nice), "labs": strconv.Itoa(f.labs)}}
}

// finish computes the rows from the samples and sink verdicts.
func (rep *failoverRemoteReport) finish(f foRemoteFlags) {
	for _, p := range f.profiles {
		rows, misses := t7RemoteRows(p, f.kills, rep.Samples)
		rep.Rows = append(rep.Rows, rows...)
		rep.Misses = append(rep.Misses, misses...)
	}
	r, misses := sinkRow(rep.Sink)
	rep.Rows = append(rep.Rows, r)
	rep.Misses = append(rep.Misses, misses...)
	if !victimsAlternate(rep.Samples) {
		rep.Notes = append(rep.Notes, "the killed server did not alternate (a failover promoted nobody, or the same member led twice)")
	}
}

func (rep *failoverRemoteReport) write(stdout io.Writer, jsonPath string) error {
	if err := writeTable(stdout, rep.Rows); err != nil {
		return err
	}
	for _, n := range rep.Notes {
		fmt.Fprintln(stdout, n)
	}
	for _, ms := range rep.Misses {
		fmt.Fprintf(stdout, "\nmissed: %s\n", ms)
	}
	if jsonPath != "" {
		return writeJSON(jsonPath, stdout, rep)
	}
	return nil
}

func runFailoverRemote(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, err := parseFailoverRemoteFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return exitUsage
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(stderr, "bench failover-remote: needs root (the lab: network and mount namespaces, veth links, AF_PACKET)")
		return exitError
	}
	if f.seed == 0 {
		f.seed = rand.Uint64()
	}
	rep := newFailoverRemoteReport(f, args)
	if err := measureFailoverRemote(ctx, f, rep, stderr); err != nil {
		fmt.Fprintf(stderr, "bench failover-remote: %v\n", err)
		if len(rep.Samples) == 0 {
			return exitError
		}
		rep.Notes = append(rep.Notes, "run ended early: "+err.Error())
	}
	rep.Host["loadavg_end"] = loadAvg()
	rep.finish(f)
	rep.Notes = append(rep.Notes, fmt.Sprintf("seed %d; 1-minute load average %s at the start, %s at the end", f.seed, rep.Host["loadavg_start"], rep.Host["loadavg_end"]))
	if err := rep.write(stdout, f.jsonPath); err != nil {
		fmt.Fprintf(stderr, "bench failover-remote: %v\n", err)
		return exitError
	}
	return exitOK
}
