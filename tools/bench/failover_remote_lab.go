package main

// The lab side of failover-remote: tools/testbed/remotelab (the
// three-role lab) per profile, the kills, and reading when each part of
// the failover happened.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/reinforce-nfv/reinforce/shm/state"
	"github.com/reinforce-nfv/reinforce/tools/testbed/remotelab"
)

// foRepLeaseMs is the members' [replication] lease_ms: with
// on_standby_lost = "continue", how long a promoted primary whose standby
// died releases unprotected. It must outlast the killed server's restart
// and rejoin, so the sink sees the failover's own outage, not the
// restart's.
const foRepLeaseMs = 60_000

// foWatchEvery is how often the watcher looks at the ingress's log (and
// at the sink's counters, for a first frame the sink's mark missed)
// during a failover: the resolution of those figures, plus this process's
// scheduling delays.
const foWatchEvery = 100 * time.Microsecond

// foPlotBefore and foPlotAfter frame each plotted failover.
const (
	foPlotBefore = 50 * time.Millisecond
	foPlotAfter  = 150 * time.Millisecond
)

// foNFs are the members' chain, in order, with their instances.
var foNFs = []struct {
	name string
	inst uint16
}{
	{"flow_tracker", remotelab.InstFlowTracker},
	{"mutate", remotelab.InstMutate},
	{"stamp", remotelab.InstStamp},
}

// ingressMarks are the ingress manager's log lines that time the
// arbiter's view: it starts the promotion (arbiter event "promoting"),
// and it moved the traffic.
var ingressMarks = [2]string{"event=promoting", "ARBITER: traffic redirected"}

// stateFileOf is a member's NF state file in its server's private
// /dev/shm, seen through its holder process's root.
func stateFileOf(l *remotelab.Lab, member string, inst uint16) string {
	root := fmt.Sprintf("/proc/%d/root/dev/shm", l.L.Server(member).PID())
	return filepath.Join(root, member+".region.nf"+strconv.Itoa(int(inst))+".state")
}

// foWatch records, from the kill on, when the sink first received a frame
// on the taker's interface and when the ingress logged each of
// ingressMarks, all on CLOCK_MONOTONIC.
type foWatch struct {
	sinkNs int64
	ingNs  [2]int64
}

func watchFailover(ctx context.Context, l *remotelab.Lab, snk *remotelab.Sink, taker string, logFrom int, stop <-chan struct{}) foWatch {
	var w foWatch
	_, a0, b0 := snk.Got()
	base := [2]uint64{a0, b0}[remotelab.IfaceOf(taker)]
	for {
		now := int64(state.MonoNs())
		if w.sinkNs == 0 {
			_, a, b := snk.Got()
			if [2]uint64{a, b}[remotelab.IfaceOf(taker)] > base {
				w.sinkNs = now
			}
		}
		if w.ingNs[0] == 0 || w.ingNs[1] == 0 {
			out := l.Ing.Output()
			if len(out) > logFrom {
				for i, mk := range ingressMarks {
					if w.ingNs[i] == 0 && strings.Contains(out[logFrom:], mk) {
						w.ingNs[i] = now
					}
				}
			}
		}
		if w.sinkNs != 0 && w.ingNs[0] != 0 && w.ingNs[1] != 0 {
			return w
		}
		select {
		case <-stop:
			return w
		case <-ctx.Done():
			return w
		case <-time.After(foWatchEvery):
		}
	}
}

// logLineTime is the time of the first line of out containing mark, from
// the manager's console timestamp (remotelab.LogClock) nearest to ref.
func logLineTime(out, mark string, ref time.Time) (time.Time, bool) {
	i := strings.Index(out, mark)
	if i < 0 {
		return time.Time{}, false
	}
	return remotelab.LogClock(out[strings.LastIndexByte(out[:i], '\n')+1:], ref)
}

// usSince is ns − t0 in µs, -1 for an event not seen (0).
func usSince(ns, t0 int64) float64 {
	if ns == 0 {
		return -1
	}
	return round3(float64(ns-t0) / 1e3)
}

func measureFailoverRemote(ctx context.Context, f foRemoteFlags, rep *failoverRemoteReport, stderr io.Writer) error {
	ws, err := buildNFs(ctx, "failover-remote", stderr, remotelab.Binaries...)
	if err != nil {
		return err
	}
	defer ws.Remove()
	rng := rand.New(rand.NewPCG(f.seed, f.seed^0x9e3779b97f4a7c15))
	var panels []failoverPanel
	var names []string
	var runErr error
	for _, p := range f.profiles {
		panel, err := failoverProfile(ctx, f, p, ws.bin, rng, rep, stderr)
		if panel != nil {
			panels = append(panels, *panel)
			names = append(names, p.name)
		}
		if err != nil {
			// The next profile's lab is a new one: a profile that could
			// not finish does not stop the other from being measured.
			runErr = errors.Join(runErr, fmt.Errorf("%s profile: %w", p.name, err))
			if ctx.Err() != nil {
				break
			}
		}
	}
	if f.plot != "none" && len(panels) > 0 {
		if err := writeFailoverPlots(f.plot, foPlotBefore, foPlotAfter, panels); err != nil {
			fmt.Fprintf(stderr, "bench failover-remote: plot: %v\n", err)
		} else {
			rep.Notes = append(rep.Notes, fmt.Sprintf("plot: %s — one panel per profile, top to bottom (%s), each the first failover of its run, %v before the kill to %v after: "+
				"probes received at the sink per ms (blue bars, top half) and their mean send → sink latency per ms (dots, bottom half, log scale 1 µs … 100 ms, a light line per decade); "+
				"red: the kill, orange: the arbiter starts the promotion, green: the standby's first commit, blue: the first output from the new primary; grey ticks every 10 ms",
				f.plot, strings.Join(names, ", "), foPlotBefore, foPlotAfter))
		}
	}
	return runErr
}

// foRun is one profile's lab while it runs.
type foRun struct {
	ctx    context.Context
	f      foRemoteFlags
	p      foProfile
	l      *remotelab.Lab
	snk    *remotelab.Sink
	stderr io.Writer
}

func (r *foRun) logf(format string, args ...any) {
	fmt.Fprintf(r.stderr, "bench failover-remote: %s: "+format+"\n", append([]any{r.p.name}, args...)...)
}

// dump adds the managers' recent output to err with -v.
func (r *foRun) dump(err error) error {
	if !r.f.verbose || err == nil {
		return err
	}
	for _, n := range []string{"ing", remotelab.A, remotelab.B} {
		m := r.l.Ing
		if n != "ing" {
			m = r.l.Member(n)
		}
		fmt.Fprintf(r.stderr, "---- %s:\n%s\n", n, remotelab.Tail(m.Output(), 4000))
	}
	return err
}

// failoverProfile measures one profile's -kills failovers; it returns the
// plot panel of its first. When the chain does not become protected again
// (the killed member did not rejoin, or the arbiter no longer counts the
// standby as ready), that lab is closed and a fresh one comes up, with the
// other member as its configured primary so that the killed servers keep
// alternating; at most -labs labs per profile.
func failoverProfile(ctx context.Context, f foRemoteFlags, p foProfile, bin string, rng *rand.Rand, rep *failoverRemoteReport, stderr io.Writer) (*failoverPanel, error) {
	var (
		panel   *failoverPanel
		verdict = SinkVerdict{Profile: p.name}
		labErrs []string
		labs    int
		k       int
		primary = remotelab.A
		runErr  error
	)
	for k < f.kills && labs < f.labs && ctx.Err() == nil {
		labs++
		n, pn, v, last, err := failoverLab(ctx, f, p, bin, primary, k, rng, rep, stderr)
		k += n
		if panel == nil {
			panel = pn
		}
		verdict.add(v)
		if last != "" {
			primary = remotelab.Other(last)
		}
		if err != nil {
			fmt.Fprintf(stderr, "bench failover-remote: %s: lab %d: %v\n", p.name, labs, err)
			labErrs = append(labErrs, firstLine(err.Error()))
			runErr = err
		}
	}
	if labs > 0 {
		rep.Sink = append(rep.Sink, verdict)
	}
	if labs > 1 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%s: %d labs for %d failovers; a lab was replaced when the chain did not become protected again: %s",
			p.label, labs, k, strings.Join(labErrs, "; ")))
	}
	if k < f.kills {
		return panel, fmt.Errorf("%d of %d failovers in %d labs: %w", k, f.kills, labs, runErr)
	}
	return panel, nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// add sums another lab's sink verdict into v.
func (v *SinkVerdict) add(o SinkVerdict) {
	v.Sent += o.Sent
	v.Received += o.Received
	v.Lost += o.Lost
	v.Duplicated += o.Duplicated
	v.StampErrors += o.StampErrors
	v.MutateErr += o.MutateErr
	if v.FirstBad == "" {
		v.FirstBad = o.FirstBad
	}
}

// failoverLab brings up one lab with primary as the configured primary
// and kills until the profile has its failovers or the lab cannot go on.
// It returns the failovers it measured (samples with a takeover or
// without), the plot panel of its first, the sink's verdict, and the
// last member killed.
func failoverLab(ctx context.Context, f foRemoteFlags, p foProfile, bin, primary string, k0 int, rng *rand.Rand, rep *failoverRemoteReport, stderr io.Writer) (n int, panel *failoverPanel, v SinkVerdict, last string, err error) {
	l, err := remotelab.Up(remotelab.Options{Bin: bin, Profile: p.name, Policy: "continue", RepLeaseMs: foRepLeaseMs, Flows: f.flows,
		Nice: f.nice, Primary: primary})
	if err != nil {
		return 0, nil, v, "", fmt.Errorf("lab: %w", err)
	}
	defer l.Close()
	r := &foRun{ctx: ctx, f: f, p: p, l: l, stderr: stderr}
	if r.snk, err = l.StartSink(); err != nil {
		return 0, nil, v, "", fmt.Errorf("sink: %w", err)
	}
	if _, err := l.StartPktgen(int(f.rate), "-size", strconv.Itoa(f.size)); err != nil {
		return 0, nil, v, "", fmt.Errorf("pktgen: %w", err)
	}
	if err := r.snk.WaitFlowing(f.rate/10, 10*time.Second); err != nil {
		return 0, nil, v, "", r.dump(fmt.Errorf("no traffic through the chain: %w", err))
	}
	c0, _ := l.Counters()
	var plotKill time.Time
	var plotMarks []plotMark
	var runErr error
	for k := k0; k < f.kills; k++ {
		s, wall0, marks, err := r.failover(k, rng)
		if err != nil {
			runErr = err
			break
		}
		n++
		last = s.Victim
		if plotKill.IsZero() && s.CommitUs >= 0 {
			plotKill, plotMarks = wall0, marks
		}
		r.logf("%d/%d: %s killed, %s took over: first commit %s (%s), first output at the sink %s; arbiter: promoting %s, redirected %s; NFs promoted %s; rejoined in %.0f ms %s",
			k+1, f.kills, s.Victim, s.Taker, fmtMs(s.CommitUs), s.CommitNF, fmtMs(s.SinkUs), fmtMs(s.ArbiterPromotingUs), fmtMs(s.ArbiterRedirectUs),
			fmtMs(s.PromotedUs), s.RejoinMs, s.Error)
		rep.Samples = append(rep.Samples, s)
		if s.RejoinMs < 0 {
			runErr = r.dump(errors.New(s.Error)) // the lab is not protected again: no further kill means anything
			break
		}
	}
	c1, cerr := l.Counters()
	if cerr == nil {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%s: the ingress redirected the chain %d times for %d kills in one lab (more: failovers nobody asked for, e.g. BFD timing out on a starved CPU)",
			p.label, c1.Redirects-c0.Redirects, n))
	}
	time.Sleep(300 * time.Millisecond)
	gr, err := l.StopPktgen()
	if err != nil {
		return n, nil, v, last, errors.Join(runErr, err)
	}
	time.Sleep(500 * time.Millisecond) // what the chain still holds reaches the sink
	res := r.snk.Result(&gr)
	v = SinkVerdict{Profile: p.name, Sent: gr.Sent, Received: res.Received, Lost: res.Lost, Duplicated: res.Duplicated,
		StampErrors: res.NStampViolations, MutateErr: res.MutateErrors}
	if len(res.StampViolations) > 0 {
		v.FirstBad = res.StampViolations[0]
	} else if len(res.Violations) > 0 {
		v.FirstBad = res.Violations[0]
	}
	r.logf("sink: sent %d, received %d (from a %d, from b %d), lost %d, duplicated %d, stamp rule violations %d, mutated twice %d",
		gr.Sent, res.Received, res.FromA, res.FromB, res.Lost, res.Duplicated, res.NStampViolations, res.MutateErrors)
	if !plotKill.IsZero() {
		kill := plotKill.Sub(r.snk.Started())
		var times, lat []int64
		for _, pt := range r.snk.Timeline(kill-foPlotBefore-remotelab.TimelineBucket, kill+foPlotAfter+remotelab.TimelineBucket) {
			for range pt.Packets {
				times = append(times, int64(pt.At+remotelab.TimelineBucket/2))
				lat = append(lat, int64(pt.MeanLat))
			}
		}
		for i := range plotMarks {
			plotMarks[i].at += int64(kill)
		}
		panel = &failoverPanel{kill: int64(kill), marks: plotMarks, times: times, lat: lat}
	}
	return n, panel, v, last, runErr
}

// failover waits until the chain is protected, kills its primary at a
// random moment, times the takeover, and restarts the killed member until
// the chain is protected again. It returns the sample, the kill's wall
// time and the plot marks (ns after the kill); err only when the lab
// cannot go on (s.RejoinMs < 0 says the same with s.Error).
func (r *foRun) failover(k int, rng *rand.Rand) (s RemoteFailover, wall0 time.Time, marks []plotMark, err error) {
	f, l := r.f, r.l
	var primary string
	for {
		if err := l.WaitProtected(f.timeout); err != nil {
			return s, wall0, nil, r.dump(err)
		}
		var ok bool
		primary, ok = l.Protected()
		select {
		case <-r.ctx.Done():
			return s, wall0, nil, r.ctx.Err()
		case <-time.After(f.settle + killGap(rng, f.gapMin, f.gapMax)):
		}
		// Still protected by the same primary: no failover of its own
		// came in between.
		if p, still := l.Protected(); ok && still && p == primary {
			break
		}
	}
	taker := remotelab.Other(primary)
	s = RemoteFailover{Profile: r.p.name, Victim: primary, Taker: taker, CommitUs: -1, PromotedUs: -1, SinkUs: -1,
		ArbiterPromotingUs: -1, ArbiterRedirectUs: -1, RejoinMs: -1}
	var before [3]state.Stats
	for i, nf := range foNFs {
		before[i], _ = state.ReadStats(stateFileOf(l, taker, nf.inst))
	}
	logFrom := len(l.Ing.Output())
	stop := make(chan struct{})
	watched := make(chan foWatch, 1)
	go func() { watched <- watchFailover(r.ctx, l, r.snk, taker, logFrom, stop) }()
	// The sink's own record of the taker's first frame after the kill is
	// exact to its poll (the watcher's is a fallback).
	wall0 = time.Now()
	r.snk.SetMark(wall0)
	t0 := int64(state.MonoNs())
	if err := l.Member(primary).Kill(); err != nil {
		close(stop)
		<-watched
		return s, wall0, nil, r.dump(err)
	}
	// Every NF of the taker's chain records its takeover in its state file.
	var after [3]state.Stats
	for deadline := time.Now().Add(f.timeout); ; time.Sleep(time.Millisecond) {
		done := 0
		for i, nf := range foNFs {
			st, err := state.ReadStats(stateFileOf(l, taker, nf.inst))
			if err == nil && st.Takeovers > before[i].Takeovers && st.FirstCommitNs != 0 {
				after[i] = st
				done++
			}
		}
		if done == len(foNFs) || time.Now().After(deadline) || r.ctx.Err() != nil {
			break
		}
	}
	// The watcher returns once it saw everything; an event that never
	// comes (no output, a log line missing) must not stall the run.
	var w foWatch
	select {
	case w = <-watched:
	case <-time.After(2 * time.Second):
		close(stop)
		w = <-watched
	}
	for i, nf := range foNFs {
		st := after[i]
		if st.FirstCommitNs == 0 {
			continue
		}
		t := NFTakeover{NF: nf.name, Instance: nf.inst, PromotedUs: usSince(int64(st.WokeNs), t0), FirstCommit: usSince(int64(st.FirstCommitNs), t0)}
		s.NFs = append(s.NFs, t)
		if s.CommitUs < 0 || t.FirstCommit < s.CommitUs {
			s.CommitUs, s.CommitNF = t.FirstCommit, nf.name
		}
		if s.PromotedUs < 0 || t.PromotedUs < s.PromotedUs {
			s.PromotedUs = t.PromotedUs
		}
	}
	s.SinkUs = usSince(w.sinkNs, t0)
	if at, ok := r.snk.FirstAfterMark(remotelab.IfaceOf(taker)); ok {
		s.SinkUs = round3(float64(at.Sub(wall0)) / 1e3)
		w.sinkNs = t0 + int64(at.Sub(wall0))
	}
	// The ingress's own timestamps (ms, truncated) beat the watcher, which
	// sees a line only after the manager's log writer, the pipe and its own
	// wake-up: the middle of the line's millisecond, the watcher's time if
	// that is earlier.
	out := l.Ing.Output()
	for i, mk := range ingressMarks {
		if at, ok := logLineTime(out[min(logFrom, len(out)):], mk, wall0); ok {
			ns := t0 + int64(at.Sub(wall0)) + int64(time.Millisecond/2)
			if w.ingNs[i] == 0 || ns < w.ingNs[i] {
				w.ingNs[i] = ns
			}
		}
	}
	s.ArbiterPromotingUs, s.ArbiterRedirectUs = usSince(w.ingNs[0], t0), usSince(w.ingNs[1], t0)
	if len(s.NFs) < len(foNFs) {
		var missing []string
		for i, nf := range foNFs {
			if after[i].FirstCommitNs == 0 {
				st, err := state.ReadStats(stateFileOf(l, taker, nf.inst))
				missing = append(missing, fmt.Sprintf("%s (takeovers %d → %d, first commit %d, commits %d, err %v)",
					nf.name, before[i].Takeovers, st.Takeovers, st.FirstCommitNs, st.Commits, err))
			}
		}
		s.Error = fmt.Sprintf("failover %d (%s killed): %d of %d NFs of %s took over within %v; not: %s",
			k+1, primary, len(s.NFs), len(foNFs), taker, f.timeout, strings.Join(missing, ", "))
	}
	if w.ingNs[0] != 0 {
		marks = append(marks, plotMark{at: w.ingNs[0] - t0, c: plotOrange})
	}
	if s.CommitUs >= 0 {
		marks = append(marks, plotMark{at: int64(s.CommitUs * 1e3), c: plotGreen})
	}
	if w.sinkNs != 0 {
		marks = append(marks, plotMark{at: w.sinkNs - t0, c: plotBlue})
	}
	// The killed server comes back and rejoins as the standby.
	tr := time.Now()
	if err := l.Member(primary).Restart(); err != nil {
		s.Error = strings.TrimPrefix(s.Error+"; restart: "+err.Error(), "; ")
		return s, wall0, marks, nil
	}
	if err := l.WaitProtected(f.timeout); err != nil {
		s.Error = strings.TrimPrefix(s.Error+"; rejoin: "+err.Error(), "; ")
		return s, wall0, marks, nil
	}
	s.RejoinMs = round3(float64(time.Since(tr)) / 1e6)
	return s, wall0, marks, nil
}

func fmtMs(us float64) string {
	if us < 0 {
		return "not seen"
	}
	return fmt.Sprintf("%.2f ms", us/1e3)
}
