package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/internal/testenv"
	"github.com/reinforce-nfv/reinforce/manager"
	"github.com/reinforce-nfv/reinforce/manager/config"
	"github.com/reinforce-nfv/reinforce/replicator/arbiter"
	"github.com/reinforce-nfv/reinforce/tools/testbed/remotelab"
)

// Fault loops of chain-level failover between servers (issue 11 item 4;
// docs/lab.md, "Failover between servers"), in tools/testbed/remotelab:
// pktgen → ingress (the arbiter) → primary member → sink, with a standby
// member, traffic flowing the whole time. Each round starts only once the
// chain is protected again and fails it over from whichever member leads
// (so the primary alternates), by
//
//   - kill: SIGKILL of the primary manager's whole process group at a
//     random moment; the standby is promoted, the ingress redirected, and
//     the killed member, restarted with its unchanged configuration and
//     empty /dev/shm, rejoins as the standby (demoted by the arbiter if
//     its configuration says primary);
//   - cut: the primary's links set down (management; management and
//     replication; or all); the arbiter fails over; the cut primary must
//     stop releasing (its lease ran out): its released count stays put;
//     restored, it is demoted and rejoins as the standby.
//
// Between rounds, some of the time: the replication link lossy,
// duplicating and reordering, or blacked out, with traffic flowing; the
// standby killed and restarted. Neither may cause a failover.
//
// The sink (in the test process, both interfaces) must show no duplicate,
// no reordering, the mutation applied exactly once, no stamp repeated or
// regressed, and per flow, between two consecutive packets, a member-stamp
// gap no larger than the ingress-stamp gap: the ingress (stamp field 3)
// numbers each flow's packets as they leave it, so the ingress gap is
// exactly that flow's packets lost in flight between the two (killed with
// a server, discarded by a demotion, dropped at a member's RX or latch
// quota, lost on a cut link); the members' stamp (field 0) counts what the
// chain's replicated state counted. The counters must show every failover
// (one ingress redirect and one member promotion each; a demotion for a
// cut primary and a restarted configured primary) and nothing more.

// envFailovers sets the number of failovers (the long tier).
const envFailovers = "REINFORCE_FAILOVER_REMOTE_N"

// envQuiet runs TestFailoverRemoteNoSpurious for this long (long tier).
const envQuiet = "REINFORCE_FAILOVER_REMOTE_QUIET"

// envStrict makes a spurious failover in the loops fail the test.
const envStrict = "REINFORCE_FAILOVER_REMOTE_STRICT"

// envProfile overrides the loops' BFD profile ("default" or "loaded").
const envProfile = "REINFORCE_FAILOVER_REMOTE_PROFILE"

const (
	foFlows = 32
	foRate  = 15000
	// foCIFailovers is the CI tier's count (issue 11: at least 20).
	foCIFailovers = 20
	// foQuietDefault is TestFailoverRemoteNoSpurious's length (issue 11: a
	// 60 s loaded run).
	foQuietDefault = 60 * time.Second
)

var (
	foBuildOnce sync.Once
	foBuildErr  error
)

// foBins adds remotelab's binaries to bins' directory (TestMain removes
// it).
func foBins(t *testing.T) string {
	t.Helper()
	bin := bins(t)
	foBuildOnce.Do(func() { foBuildErr = remotelab.Build(bin) })
	if foBuildErr != nil {
		t.Fatal(foBuildErr)
	}
	return bin
}

// foLab brings the remote lab up and dumps every manager's output if the
// test fails.
func foLab(t *testing.T, o remotelab.Options) *remotelab.Lab {
	t.Helper()
	o.Bin = foBins(t)
	l, err := remotelab.Up(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() && os.Getenv("REINFORCE_FAILOVER_REMOTE_DUMP") != "" {
			// Goroutine dumps of the managers (SIGQUIT), to debug a hang.
			for _, m := range []*remotelab.Manager{l.Ing, l.Member(remotelab.A), l.Member(remotelab.B)} {
				if m != nil && m.PID() > 0 {
					syscall.Kill(m.PID(), syscall.SIGQUIT)
				}
			}
			time.Sleep(500 * time.Millisecond)
		}
		if t.Failed() {
			for _, n := range []string{"ing", remotelab.A, remotelab.B} {
				m := l.Ing
				if n != "ing" {
					m = l.Member(n)
				}
				path := fmt.Sprintf("%s/failover-remote-%s.log", os.TempDir(), n)
				os.WriteFile(path, []byte(m.Output()), 0o644)
				t.Logf("manager %s (whole output in %s):\n%s", n, path, remotelab.Tail(m.Output(), 5000))
			}
		}
		l.Close()
	})
	return l
}

// foRound is one completed failover.
type foRound struct {
	kind           string
	from, to       string
	promoted       time.Duration // fault → the new primary leads (polled)
	redirected     time.Duration // fault → the ingress's redirect counted (polled)
	firstOut       time.Duration // fault → first output from the new primary at the sink (policy hold: after the rejoin)
	protected      time.Duration // fault → protected again
	gap, inFlight  uint64        // member stamps skipped, ingress stamps skipped, during the round
	releasedFrozen bool          // cut: the cut primary's released count stayed put
}

func TestFailoverRemoteLab(t *testing.T) {
	// The CI tier: foCIFailovers failovers; REINFORCE_FAILOVER_REMOTE_N
	// sets more (the long tier, tools/e2e/failover_remote.sh).
	n := foCIFailovers
	if s := os.Getenv(envFailovers); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			t.Fatalf("%s=%q: want a positive count", envFailovers, s)
		}
		n = v
	}
	profile := "loaded"
	if s := os.Getenv(envProfile); s != "" {
		profile = s
	}
	nice := foNice(t)
	start := time.Now()
	rng := testenv.Rand(t)
	l := foLab(t, remotelab.Options{Profile: profile, Policy: "hold", Flows: foFlows, LatchQuota: 4096, Nice: nice, RTPrio: foRT(t)})
	setup := time.Since(start)
	prof, err := arbiter.ProfileNamed(profile)
	if err != nil {
		t.Fatal(err)
	}
	probe := foStalls(t)
	// faults are the windows in which the arbiter's primary-down events
	// are the test's doing (foClassify).
	var faults [][2]time.Time
	var events []string
	t0 := time.Now()
	event := func(format string, args ...any) {
		events = append(events, fmt.Sprintf("+%.3fs ", time.Since(t0).Seconds())+fmt.Sprintf(format, args...))
	}
	defer func() {
		if t.Failed() {
			t.Logf("events:\n%s", strings.Join(events, "\n"))
		}
	}()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	sink, err := l.StartSink()
	must(err)
	_, err = l.StartPktgen(foRateOf(t))
	must(err)
	must(sink.WaitFlowing(uint64(foRateOf(t)/4), 10*time.Second))
	base, err := l.Counters()
	must(err)
	event("traffic flowing; ingress redirects %d", base.Redirects)
	spuriousInRound := false

	var (
		rounds       []foRound
		reprotects   int
		impairs      int
		standbyKills int
		redirects    = base.Redirects
	)
	// protectedAgain waits for the chain to be protected again with the
	// expected primary, and traffic through it.
	// A failover the test did not cause may leave the other member
	// primary: accepted, and counted, when the ingress's redirects show it.
	protectedAgain := func(what, want string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		p, ok := "", false
		for !ok {
			must(l.WaitProtected(time.Until(deadline)))
			// Protected again may end at once (a failover nobody caused
			// between the two looks): wait for it again.
			p, ok = l.Protected()
		}
		if want != "" && p != want {
			// The ingress counts the redirect after the member leads: give
			// it a moment before calling this a wrong primary.
			var c remotelab.Counters
			for end := time.Now().Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				var err error
				c, err = l.Counters()
				must(err)
				if c.Redirects > redirects || time.Now().After(end) {
					break
				}
			}
			if c.Redirects <= redirects {
				t.Fatalf("%s: protected with primary %q, want %q, and no failover the test did not cause (redirects %d)", what, p, want, c.Redirects)
			}
			spuriousInRound = true
			event("%s: protected with primary %s after a failover the test did not cause (redirects %d → %d)", what, p, redirects, c.Redirects)
		}
		reprotects++
		must(sink.WaitFlowing(500, 10*time.Second))
	}
	// A failover the test did not cause (the arbiter declared a live
	// primary down: BFD starved of CPU) is counted and reported, not
	// hidden: the sink's verdict still covers it, and the strict mode
	// (envStrict) and TestFailoverRemoteNoSpurious fail on it.
	var spurious []string
	if base.Redirects > 1 {
		spurious = append(spurious, fmt.Sprintf("before any fault: %d redirects", base.Redirects))
	}
	noFailover := func(what string) {
		t.Helper()
		c, err := l.Counters()
		must(err)
		if c.Redirects != redirects {
			spurious = append(spurious, fmt.Sprintf("%s: redirects %d → %d", what, redirects, c.Redirects))
			event("SPURIOUS failover (%s): redirects %d → %d", what, redirects, c.Redirects)
			redirects = c.Redirects
		}
	}

	for i := 0; len(rounds) < n; i++ {
		if i > 3*n {
			t.Fatalf("%d rounds for %d failovers", i, len(rounds))
		}
		noFailover(fmt.Sprintf("before round %d", i))
		must(l.WaitProtected(30 * time.Second))
		pri, ok := l.Protected()
		if !ok {
			// A failover the test did not cause between the two looks:
			// counted by noFailover at the top of the next round.
			continue
		}
		sb := remotelab.Other(pri)

		// Between failovers: impair the replication link, or kill the
		// standby; neither may fail the chain over.
		switch {
		case i%4 == 1:
			impairs++
			must(l.Relay.Impair(0.05, 0.05, 0.05))
			time.Sleep(300 * time.Millisecond)
			must(l.Relay.Blackout(200 * time.Millisecond))
			time.Sleep(250 * time.Millisecond)
			must(l.Relay.Impair(0, 0, 0))
			event("round %d: replication link lossy/dup/reorder 300 ms, then blacked out 200 ms", i)
			protectedAgain("after the impairment", "")
			noFailover("replication link impaired")
		case i%5 == 3:
			standbyKills++
			time.Sleep(time.Duration(rng.IntN(50)) * time.Millisecond)
			must(l.Member(sb).Kill())
			event("round %d: standby %s killed", i, sb)
			time.Sleep(50 * time.Millisecond)
			must(l.Member(sb).Restart())
			protectedAgain("after the standby's restart", "")
			noFailover("standby killed")
			event("round %d: standby %s rejoined", i, sb)
		}

		// The failover, if the chain is still led by pri (a failover the
		// test did not cause may have moved it meanwhile: counted, and the
		// next round starts from the new primary).
		if p, ok := l.Protected(); !ok || p != pri {
			noFailover(fmt.Sprintf("round %d, before the fault", i))
			continue
		}
		before, err := l.Counters()
		must(err)
		if before.Redirects != redirects {
			noFailover(fmt.Sprintf("round %d, before the fault", i))
			continue
		}
		g0, g3 := sink.Gaps()
		r := foRound{from: pri, to: sb}
		spuriousInRound = false
		var cut remotelab.Links
		if i%3 == 1 {
			cut = []remotelab.Links{remotelab.Mgmt, remotelab.Mgmt | remotelab.Rep, remotelab.All}[(i/3)%3]
			r.kind = "cut " + linksName(cut)
		} else {
			r.kind = "kill"
		}
		time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond) // a random moment
		fault := time.Now()
		sink.SetMark(fault)
		var killed <-chan error
		if cut != 0 {
			must(l.Cut(pri, cut))
		} else {
			killed = l.Member(pri).KillAsync()
		}
		event("round %d: %s of primary %s", i, r.kind, pri)
		// The standby leads and the ingress moved.
		deadline := time.Now().Add(10 * time.Second)
		for r.promoted == 0 || r.redirected == 0 {
			if r.promoted == 0 {
				if m := l.Member(sb); m != nil {
					if rs, err := m.Rep(); err == nil {
						if ok, _ := remotelab.Leads(rs); ok {
							r.promoted = time.Since(fault)
						}
					}
				}
			}
			if r.redirected == 0 {
				if s, err := l.Ing.Stats(); err == nil && s.Drops.Redirects > redirects {
					r.redirected = time.Since(fault)
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d (%s of %s): promoted after %v, redirected after %v; not both 10 s after the fault", i, r.kind, pri, r.promoted, r.redirected)
			}
			time.Sleep(2 * time.Millisecond)
		}
		redirects++
		faults = append(faults, [2]time.Time{fault.Add(-5 * time.Millisecond), fault.Add(max(r.promoted, r.redirected) + 50*time.Millisecond)})
		event("round %d: %s leads after %v, ingress redirected after %v", i, sb, r.promoted, r.redirected)
		if cut != 0 {
			// The cut primary's lease has run out (the arbiter waited it
			// out before promoting): it must release nothing more.
			time.Sleep(20 * time.Millisecond)
			r1, err := l.Member(pri).Rep()
			must(err)
			time.Sleep(200 * time.Millisecond)
			r2, err := l.Member(pri).Rep()
			must(err)
			r.releasedFrozen = r1.Released == r2.Released
			if !r.releasedFrozen {
				t.Fatalf("round %d: the cut primary %s released %d packets after the arbiter promoted %s (released %d → %d, role %s, node %v)",
					i, pri, r2.Released-r1.Released, sb, r1.Released, r2.Released, r2.Role, r2.Node.Role)
			}
			demBefore := uint64(0)
			if s, err := l.Member(pri).Stats(); err == nil {
				demBefore = s.Drops.Demotions
			}
			must(l.Restore(pri, cut))
			event("round %d: %s restored (released frozen at %d)", i, pri, r2.Released)
			must(l.Member(pri).WaitStats(20*time.Second, "demoted after the restore", func(s manager.Snapshot) bool {
				return s.Drops.Demotions > demBefore
			}))
		} else {
			must(<-killed)
			time.Sleep(time.Duration(rng.IntN(100)) * time.Millisecond)
			must(l.Member(pri).Restart())
			event("round %d: %s restarted", i, pri)
		}
		protectedAgain(fmt.Sprintf("round %d", i), sb)
		r.protected = time.Since(fault)
		if ft, ok := sink.FirstAfterMark(remotelab.IfaceOf(sb)); ok {
			r.firstOut = ft.Sub(fault)
		} else if !spuriousInRound {
			t.Fatalf("round %d: no output from the new primary %s at the sink, though protected again", i, sb)
		}
		after, err := l.Counters()
		must(err)
		if after.Redirects < before.Redirects+1 {
			t.Fatalf("round %d: ingress redirects %d → %d, want one more", i, before.Redirects, after.Redirects)
		}
		if after.Redirects > before.Redirects+1 {
			spurious = append(spurious, fmt.Sprintf("round %d: redirects %d → %d", i, before.Redirects, after.Redirects))
			event("SPURIOUS failover during round %d: redirects %d → %d", i, before.Redirects, after.Redirects)
			redirects = after.Redirects
		}
		if after.Promotions[sb] < before.Promotions[sb]+1 {
			t.Fatalf("round %d: %s's promotions %d → %d, want one more", i, sb, before.Promotions[sb], after.Promotions[sb])
		}
		a0, a3 := sink.Gaps()
		r.gap, r.inFlight = a0-g0, a3-g3
		if v := sink.Violations(); v != 0 {
			t.Fatalf("round %d: the sink saw %d stamp violations:\n%s", i, v, strings.Join(sink.ViolationExamples(), "\n"))
		}
		rounds = append(rounds, r)
		event("round %d: protected again with %s primary after %v; first output %v; member stamps skipped %d, lost in flight %d",
			i, sb, r.protected, r.firstOut, r.gap, r.inFlight)
	}

	// Verdict.
	rep, err := l.StopPktgen()
	must(err)
	var last uint64
	for quiet := time.Now(); time.Since(quiet) < 300*time.Millisecond; time.Sleep(10 * time.Millisecond) {
		if got, _, _ := sink.Got(); got != last {
			last, quiet = got, time.Now()
		}
	}
	final, err := l.Counters()
	must(err)
	res := sink.Result(&rep)
	relay, _ := l.Relay.Stats()
	elapsed := time.Since(t0)

	var kills, cuts int
	var promoted, redirected, firstOut, protected []time.Duration
	var maxGap, sumGap, sumInFlight uint64
	for _, r := range rounds {
		if r.kind == "kill" {
			kills++
		} else {
			cuts++
		}
		promoted = append(promoted, r.promoted)
		redirected = append(redirected, r.redirected)
		firstOut = append(firstOut, r.firstOut)
		protected = append(protected, r.protected)
		maxGap = max(maxGap, r.gap)
		sumGap += r.gap
		sumInFlight += r.inFlight
	}
	t.Logf("setup %v; loops %v; %d failovers (%d kills, %d cuts), %d re-protections, %d impairments, %d standby kills; profile %s",
		setup.Round(time.Millisecond), elapsed.Round(time.Millisecond), len(rounds), kills, cuts, reprotects, impairs, standbyKills, profile)
	t.Logf("fault → promoted: %s; → redirected: %s; → first output (policy hold: after the rejoin): %s; → protected again: %s",
		durStats(promoted), durStats(redirected), durStats(firstOut), durStats(protected))
	t.Logf("pktgen sent %d (%.0f pps); sink received %d (from a %d, from b %d), lost %d (%.2f%%), duplicated %d, reordered %d, unexpected %d, mutate violations %d, stamp violations %d, other %d, port drops %+v",
		rep.Sent, rep.PPS, res.Received, res.FromA, res.FromB, res.Lost, 100*float64(res.Lost)/float64(max(rep.Sent, 1)), res.Duplicated, res.Reordered, res.Unexpected, res.MutateErrors, res.NStampViolations, res.Other, res.Ports)
	t.Logf("member stamps skipped %d in all (%d during failovers, at most %d in one), packets lost in flight %d in all (%d during failovers); counters: redirects %d, promotions %v, demotions %v; relay %+v",
		res.GapTotal, sumGap, maxGap, res.InFlightTotal, sumInFlight, final.Redirects, final.Promotions, final.Demotions, relay)
	if testing.Verbose() {
		t.Logf("events:\n%s", strings.Join(events, "\n"))
	}

	if res.Duplicated != 0 || res.Reordered != 0 || res.Unexpected != 0 || res.Untracked != 0 || res.MutateErrors != 0 || res.NStampViolations != 0 {
		t.Errorf("sink verdict: duplicated %d, reordered %d, unexpected %d, untracked %d, mutate violations %d, stamp violations %d: %v %v",
			res.Duplicated, res.Reordered, res.Unexpected, res.Untracked, res.MutateErrors, res.NStampViolations, res.StampViolations, res.Violations)
	}
	for f := range foFlows {
		if res.Gap[f] > res.InFlight[f] {
			t.Errorf("flow %d: member stamps skipped %d, more than its %d packets lost in flight", f, res.Gap[f], res.InFlight[f])
		}
	}
	if res.Expected != rep.Sent {
		t.Errorf("the sink expected %d packets, pktgen sent %d", res.Expected, rep.Sent)
	}
	noFailover("at the end")
	if want := uint64(1 + len(rounds) + len(spurious)); final.Redirects < want {
		t.Errorf("ingress redirects %d, want %d (%d at start, %d failovers, %d spurious)", final.Redirects, want, base.Redirects, len(rounds), len(spurious))
	}
	if len(spurious) > 0 {
		t.Logf("SPURIOUS failovers (the arbiter declared a live primary down): %d: %v", len(spurious), spurious)
		if os.Getenv(envStrict) != "" {
			t.Errorf("%d spurious failovers (%s set)", len(spurious), envStrict)
		}
	}
	foVerdictSpurious(t, l, probe, prof, faults)
	if len(rounds) < n {
		t.Errorf("%d failovers completed, want %d", len(rounds), n)
	}
	if relay.Lost == 0 || relay.Duplicated == 0 || relay.Reordered == 0 || relay.Blackholed == 0 {
		if impairs > 0 {
			t.Errorf("the relay did not impair the replication link: %+v", relay)
		}
	}
}

// TestFailoverRemoteNoSpurious: 60 s of moderate traffic with the loaded
// BFD profile (2 ms × 3) and nothing killed: no failover the machine does
// not explain (foVerdictSpurious; REINFORCE_FAILOVER_REMOTE_STRICT: none
// at all), the sink's verdict clean, and without a failover every packet
// through with no stamp skipped.
func TestFailoverRemoteNoSpurious(t *testing.T) {
	// 60 s in CI; REINFORCE_FAILOVER_REMOTE_QUIET sets another length.
	d := foQuietDefault
	if s := os.Getenv(envQuiet); s != "" {
		v, err := time.ParseDuration(s)
		if err != nil || v <= 0 {
			t.Fatalf("%s=%q: want a duration", envQuiet, s)
		}
		d = v
	}
	l := foLab(t, remotelab.Options{Profile: "loaded", Policy: "hold", Flows: foFlows, Nice: foNice(t), RTPrio: foRT(t)})
	probe := foStalls(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	sink, err := l.StartSink()
	must(err)
	_, err = l.StartPktgen(foRateOf(t))
	must(err)
	must(sink.WaitFlowing(uint64(foRateOf(t)/4), 10*time.Second))
	pri, err := l.Primary()
	must(err)
	start := time.Now()
	var unprotected int
	for time.Since(start) < d {
		time.Sleep(100 * time.Millisecond)
		if _, ok := l.Protected(); !ok {
			unprotected++
		}
	}
	rep, err := l.StopPktgen()
	must(err)
	time.Sleep(500 * time.Millisecond)
	final, err := l.Counters()
	must(err)
	res := sink.Result(&rep)
	t.Logf("%v with profile loaded, primary %s: sent %d (%.0f pps), received %d, lost %d, stamps skipped %d, lost in flight %d; redirects %d, promotions %v, demotions %v; unprotected in %d of %d samples",
		d, pri, rep.Sent, rep.PPS, res.Received, res.Lost, res.GapTotal, res.InFlightTotal, final.Redirects, final.Promotions, final.Demotions, unprotected, int(d/(100*time.Millisecond)))
	// Every failover here is spurious; 1 redirect is the arbiter
	// confirming the configured primary.
	spurious := final.Redirects != 1 || final.Promotions[remotelab.Other(pri)] != 0 || final.Demotions[pri] != 0
	if spurious {
		t.Logf("SPURIOUS failovers: redirects %d (1 expected), promotions %v, demotions %v", final.Redirects, final.Promotions, final.Demotions)
		if os.Getenv(envStrict) != "" {
			t.Errorf("spurious failovers (%s set)", envStrict)
		}
	}
	foVerdictSpurious(t, l, probe, arbiter.ProfileLoaded, nil)
	if res.Duplicated != 0 || res.Reordered != 0 || res.MutateErrors != 0 || res.NStampViolations != 0 {
		t.Errorf("sink verdict: duplicated %d, reordered %d, mutate violations %d, stamp violations %d %v",
			res.Duplicated, res.Reordered, res.MutateErrors, res.NStampViolations, res.StampViolations)
	}
	// Without a failover nothing is lost to one: no member stamp skipped.
	if !spurious && res.GapTotal != 0 {
		t.Errorf("no failover, yet %d member stamps skipped", res.GapTotal)
	}
	for f := range foFlows {
		if res.Gap[f] > res.InFlight[f] {
			t.Errorf("flow %d: member stamps skipped %d, more than its %d packets lost in flight", f, res.Gap[f], res.InFlight[f])
		}
	}
}

// overlap is how long [a0, a1] and [b0, b1] share.
func overlap(a0, a1, b0, b1 time.Time) time.Duration {
	lo, hi := a0, a1
	if b0.After(lo) {
		lo = b0
	}
	if b1.Before(hi) {
		hi = b1
	}
	return max(0, hi.Sub(lo))
}

// foStalls starts the platform stall probe for the test (a SCHED_FIFO
// thread per CPU at the managers' BFD priority; remotelab.StallProbe).
func foStalls(t *testing.T) *remotelab.StallProbe {
	t.Helper()
	p, err := remotelab.StartStallProbe(250*time.Microsecond, 2*time.Millisecond, config.DefaultArbiterRTPriority)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		t.Log(p.Summary(6*time.Millisecond, 20*time.Millisecond, 100*time.Millisecond))
		p.Close()
	})
	return p
}

// foVerdictSpurious judges the arbiter's primary-down events outside the
// test's faults (windows in which they are the test's doing). One is
// explained when, within the two detection times and one interval before
// it (detection, and the Server's grace for a member's own down signal),
// the member was silent for at least the profile's detection time less one
// transmit interval:
// the probe saw a CPU held off that long, or the member's manager logged
// its BFD thread held off for half a detection time or more (what the
// driver logs at all; its process stopped: a garbage
// collector's stop-the-world that waited on a starved thread). That is a
// member rightly declared down by a machine that stalls, and is reported.
// One without either fails the test: BFD, the lease or the arbiter
// misjudged a member that was sending.
func foVerdictSpurious(t *testing.T, l *remotelab.Lab, probe *remotelab.StallProbe, prof arbiter.Profile, faults [][2]time.Time) {
	t.Helper()
	need := prof.Detect() - prof.TxInterval
	// A member's own logged pause is at least half a detection time (the
	// driver logs nothing shorter); with the interval it had not yet sent
	// in and the scheduling delays too short to log, that silences it for
	// a detection time: seen in CI, a 3.25 ms pause ending in the very
	// millisecond of the down (2 ms × 3).
	pauseNeed := prof.Detect() / 2
	pauses := l.MemberPauses()
	var explained, unexplained []string
	for _, ev := range l.ArbiterEvents("primary-down") {
		caused := false
		for _, w := range faults {
			if !ev.At.Before(w[0]) && !ev.At.After(w[1]) {
				caused = true
				break
			}
		}
		if caused {
			continue
		}
		// The silence that can cause the event lies within detection plus
		// the Server's grace for a member-signalled down, one interval and
		// the logs' millisecond resolution before it.
		from, to := ev.At.Add(-2*prof.Detect()-prof.TxInterval-2*time.Millisecond), ev.At.Add(time.Millisecond)
		what := fmt.Sprintf("%s primary-down of %s", ev.At.Format("15:04:05.000"), ev.Member)
		s := probe.Around(from, to)
		if overlap(s.End.Add(-s.Gap), s.End, from, to) >= need {
			explained = append(explained, fmt.Sprintf("%s (cpu %d held off %v, until %s)", what, s.CPU, s.Gap.Round(time.Microsecond), s.End.Format("15:04:05.000")))
			continue
		}
		var own remotelab.Pause
		for _, p := range pauses {
			// The log has milliseconds: a pause that ended in the same
			// millisecond as the event counts.
			if p.Member == ev.Member && overlap(p.End.Add(-p.Held), p.End, from, to) >= pauseNeed && p.Held > own.Held {
				own = p
			}
		}
		if own.Held > 0 {
			explained = append(explained, fmt.Sprintf("%s (its BFD thread held off %v, until %s)", what, own.Held.Round(time.Microsecond), own.End.Format("15:04:05.000")))
			continue
		}
		unexplained = append(unexplained, fmt.Sprintf("%s (longest CPU stall near it %v)", what, s.Gap.Round(time.Microsecond)))
	}
	if len(explained) > 0 {
		t.Logf("%d spurious failovers explained by the member being silent for %v or more (the %s profile's detection less one interval):\n%s",
			len(explained), need, prof.Name, strings.Join(explained, "\n"))
	}
	if len(unexplained) > 0 {
		t.Errorf("%d spurious failovers with no stall of the machine or the member to explain them:\n%s", len(unexplained), strings.Join(unexplained, "\n"))
	}
}

// envRate sets pktgen's rate (packets per second; default foRate).
const envRate = "REINFORCE_FAILOVER_REMOTE_RATE"

func foRateOf(t *testing.T) int {
	t.Helper()
	s := os.Getenv(envRate)
	if s == "" {
		return foRate
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 100 {
		t.Fatalf("%s=%q: want at least 100", envRate, s)
	}
	return v
}

// envNice sets the managers' nice value (remotelab.Options.Nice).
const envNice = "REINFORCE_FAILOVER_REMOTE_NICE"

func foNice(t *testing.T) int {
	t.Helper()
	s := os.Getenv(envNice)
	if s == "" {
		return 0
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < -20 || v > 19 {
		t.Fatalf("%s=%q: want -20..19", envNice, s)
	}
	return v
}

// envRT runs the managers under SCHED_FIFO at this priority
// (remotelab.Options.RTPrio).
const envRT = "REINFORCE_FAILOVER_REMOTE_RT"

func foRT(t *testing.T) int {
	t.Helper()
	s := os.Getenv(envRT)
	if s == "" {
		return 0
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 || v > 99 {
		t.Fatalf("%s=%q: want 1..99", envRT, s)
	}
	return v
}

func linksName(k remotelab.Links) string {
	var s []string
	for _, x := range []struct {
		l remotelab.Links
		n string
	}{{remotelab.Mgmt, "mgmt"}, {remotelab.Data, "data"}, {remotelab.Rep, "rep"}} {
		if k&x.l != 0 {
			s = append(s, x.n)
		}
	}
	return strings.Join(s, "+")
}

// durStats is "min / median / max" of ds.
func durStats(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	s := append([]time.Duration(nil), ds...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	r := func(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }
	return fmt.Sprintf("min %v / median %v / max %v", r(s[0]), r(s[len(s)/2]), r(s[len(s)-1]))
}
