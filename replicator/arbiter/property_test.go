package arbiter

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/internal/testenv"
	"github.com/reinforce-nfv/reinforce/replicator"
)

var (
	propRuns  = flag.Int("arbiter.runs", 0, "runs of TestAtMostOneReleaser (0: 400, 60 with -short)")
	propInner = flag.Uint64("arbiter.inner", 0, "replay one inner seed of TestAtMostOneReleaser with a trace")
)

// simMsg is a message in flight: deliver at real time at.
type simMsg struct {
	at   time.Duration
	to   string // "arb", "a", "b"
	from MemberID
	msg  Msg
}

// simProc is a member process: its clock runs at rate from offset off.
type simProc struct {
	name      string
	id        MemberID
	m         *Member
	off       time.Duration
	rate      float64
	alive     bool
	cut       bool          // link to the arbiter cut both ways
	changed   time.Duration // when alive or cut last changed
	yieldAt   time.Duration // manager calls Yielded then (0: not yielding)
	restartAt time.Duration
	// The manager's replication, modelled: after a Demote at joinEpoch it
	// joins the primary (a snapshot) at joinAt, which succeeds only if the
	// other member is then the primary at joinEpoch; else it retries.
	joinAt    time.Duration // 0: no join under way
	joinEpoch Epoch
	inc       uint64 // the current incarnation (Msg.Inc)
}

func (p *simProc) clock(t time.Duration) time.Duration {
	return p.off + time.Duration(float64(t)*p.rate)
}

type sim struct {
	rng       *rand.Rand
	t         time.Duration
	arb       *Arbiter
	arbOff    time.Duration
	arbRate   float64
	procs     map[string]*simProc
	order     []*simProc // procs in a fixed order: map iteration would not replay
	net       []simMsg
	loss, dup float64
	maxDelay  time.Duration
	seq       uint64
	lease     time.Duration
	margin    time.Duration
	cfg       Config
	// who released each (chain, epoch), and the last releaser seen.
	releasedAt map[Epoch]string
	releases   int
	failovers  uint64
	switches   uint64
	calm       bool
	// calmReleases counts instants with a releaser in the last 100 ms.
	calmReleases int
	restarts     int
	mutation     mutation
	// joined: the epochs at which each incarnation's manager completed a
	// join (ground truth, independent of what the arbiter believes).
	joined                  map[uint64]map[Epoch]bool
	readyPromotions         int // promotions of a standby that had joined the epoch left
	returns, lostPromotions int // re-promotions of the returning primary; of which a new incarnation
	violation               error
	trace                   func(format string, args ...any)
}

// mutation breaks the protocol on purpose, for the mutation checks.
type mutation uint8

const (
	mutNone         mutation = iota
	mutNoLeaseWait           // promote without waiting out the lease bound
	mutNoReadyCheck          // fail over to a standby that is not ready
)

func (s *sim) logf(format string, args ...any) {
	if s.trace != nil {
		s.trace("%9v "+format, append([]any{s.t}, args...)...)
	}
}

func (s *sim) arbClock() time.Duration { return s.arbOff + time.Duration(float64(s.t)*s.arbRate) }

func (s *sim) newArbiter() error {
	s.restarts++
	s.cfg.EpochBase = Epoch(s.restarts) << 20
	a, err := NewArbiter(s.cfg, s.arbClock())
	if err != nil {
		return err
	}
	a.noLeaseWait = s.mutation == mutNoLeaseWait
	a.noReadyCheck = s.mutation == mutNoReadyCheck
	a.onPromote = s.checkPromotion
	s.arb = a
	// BFD starts Down in a new arbiter.
	return nil
}

func (s *sim) newMember(p *simProc) error {
	m, err := NewMember(MemberConfig{ID: p.id, Chains: []ChainID{scriptChain}, Lease: s.lease, FirstSeq: s.seq})
	p.inc = s.seq
	s.seq += 1 << 20
	p.m = m
	p.joinAt = 0
	return err
}

// checkPromotion is the readiness invariant, called by the arbiter at every
// promotion: the member promoted had joined the primary's replication
// stream at the epoch left (its manager installed a snapshot then), unless
// it is the primary of that epoch itself, re-promoted (docs/arbiter.md,
// "Failover": the returning primary).
func (s *sim) checkPromotion(_ ChainID, from Epoch, fromPrimary, to MemberID, toInc uint64) {
	switch {
	case to == fromPrimary:
		s.returns++
		p := s.procs["a"]
		if p.id != to {
			p = s.procs["b"]
		}
		if p.inc != toInc {
			s.lostPromotions++
		}
	case s.joined[toInc][from]:
		s.readyPromotions++
	default:
		if s.violation == nil {
			s.violation = fmt.Errorf("t=%v: member %d (incarnation %d) promoted from epoch %d (primary %d) without having joined it (joined %v)",
				s.t, to, toInc, from, fromPrimary, s.joined[toInc])
		}
	}
}

// join runs p's manager's replication model at the end of a step.
func (s *sim) join(p *simProc) {
	if p.joinAt == 0 || s.t < p.joinAt {
		return
	}
	if r, e := p.m.Role(scriptChain); r != replicator.RoleStandby || e != p.joinEpoch {
		p.joinAt = 0 // the role moved on: a new Demote starts a new join
		return
	}
	other := s.procs["a"]
	if other == p {
		other = s.procs["b"]
	}
	if r, e := other.m.Role(scriptChain); !other.alive || r != replicator.RolePrimary || e != p.joinEpoch {
		p.joinAt = s.t + 2*time.Millisecond // no primary at that epoch to join: retry
		return
	}
	p.joinAt = 0
	if s.joined[p.inc] == nil {
		s.joined[p.inc] = map[Epoch]bool{}
	}
	s.joined[p.inc][p.joinEpoch] = true
	s.logf("%s joined at epoch %d", p.name, p.joinEpoch)
	p.m.SetStandbyReady(scriptChain, p.joinEpoch, true)
}

func (s *sim) send(to string, from MemberID, m Msg) {
	if s.rng.Float64() < s.loss {
		return
	}
	n := 1
	if s.rng.Float64() < s.dup {
		n = 2
	}
	for range n {
		d := time.Duration(s.rng.Int64N(int64(s.maxDelay))) + 10*time.Microsecond
		if !s.calm && s.rng.IntN(50) == 0 {
			d += time.Duration(s.rng.Int64N(int64(20 * time.Millisecond))) // a straggler
		}
		s.net = append(s.net, simMsg{at: s.t + d, to: to, from: from, msg: m})
	}
}

func (s *sim) flushReady() {
	for s.arb.HasReady() {
		rd := s.arb.Ready()
		for _, r := range rd.Redirects {
			s.logf("arb redirect %+v", r)
		}
		for _, ev := range rd.Events {
			s.logf("arb event %v member=%d epoch=%d %s", ev.Kind, ev.Member, ev.Epoch, ev.Detail)
		}
		for _, e := range rd.Messages {
			s.logf("arb -> %d: %v (arb clock %v)", e.To, e.Msg, s.arbClock())
			to := "a"
			if e.To == s.procs["b"].id {
				to = "b"
			}
			if !s.procs[to].cut {
				s.send(to, ArbiterID, e.Msg)
			}
		}
		s.arb.Advance(rd)
	}
	for _, p := range s.order {
		if !p.alive {
			continue
		}
		for p.m.HasReady() {
			rd := p.m.Ready()
			for _, a := range rd.Actions {
				s.logf("%s action %v epoch=%d", p.name, a.Kind, a.Epoch)
				switch a.Kind {
				case ActYield:
					if s.rng.IntN(4) != 0 {
						p.yieldAt = s.t + time.Duration(s.rng.Int64N(int64(40*time.Millisecond)))
					}
				case ActDemote:
					// Discard the state, join the new primary: a snapshot
					// takes 1-16 ms.
					p.joinEpoch = a.Epoch
					p.joinAt = s.t + time.Millisecond + time.Duration(s.rng.Int64N(int64(15*time.Millisecond)))
				case ActFence, ActPromote:
					p.joinAt = 0
					if a.Kind == ActFence && s.rng.IntN(2) == 0 {
						// Some managers say so; the member ignores readiness
						// when not a standby anyway.
						p.m.SetStandbyReady(scriptChain, p.joinEpoch, false)
					}
				}
			}
			for _, m := range rd.Messages {
				s.logf("%s -> arb: %v (clock %v)", p.name, m, p.clock(s.t))
				if !p.cut {
					s.send("arb", p.id, m)
				}
			}
			p.m.Advance(rd)
		}
	}
}

// check is the property: at this instant at most one member may release
// the chain, and each epoch has at most one releaser ever.
func (s *sim) check() error {
	var who []string
	for _, n := range []string{"a", "b"} {
		p := s.procs[n]
		if p.alive && p.m.CanRelease(scriptChain, p.clock(s.t)) {
			if _, until := p.m.ReleaseUntil(scriptChain); s.trace != nil && s.rng != nil {
				s.logf("%s can release until %v (clock %v)", n, until, p.clock(s.t))
			}
			who = append(who, n)
			_, e := p.m.Role(scriptChain)
			if w, ok := s.releasedAt[e]; ok && w != n {
				return fmt.Errorf("t=%v: epoch %d released by %s and %s", s.t, e, w, n)
			}
			s.releasedAt[e] = n
		}
	}
	if len(who) > 1 {
		return fmt.Errorf("t=%v: both members may release (epochs %v)", s.t, s.releasedAt)
	}
	if len(who) == 1 {
		s.releases++
		if s.calm {
			s.calmReleases++
		}
	}
	return nil
}

// liveness simulates BFD at the arbiter: a member is declared down 3 ms
// after it died or its link was cut, up 1 ms after it is reachable again;
// plus rare spurious verdicts either way (safety must not depend on BFD
// being right).
func (s *sim) liveness(p *simProc) {
	reachable := p.alive && !p.cut
	since := s.t - p.changed
	now := s.arbClock()
	switch {
	case !s.calm && s.rng.IntN(20000) == 0:
		up := s.rng.IntN(2) == 0
		s.logf("spurious BFD verdict %s up=%v", p.name, up)
		s.arb.SetLive(now, p.id, up)
	case reachable && since >= time.Millisecond:
		s.arb.SetLive(now, p.id, true)
	case !reachable && since >= 3*time.Millisecond:
		s.arb.SetLive(now, p.id, false)
	}
}

func runSim(seed uint64, steps int, mut mutation, trace func(string, ...any)) (*sim, error) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	lease := time.Duration(2+rng.IntN(10)) * time.Millisecond
	// Clocks run up to 2 % apart; the margin covers 5 % of the lease.
	margin := lease/20 + time.Duration(rng.IntN(500))*time.Microsecond
	s := &sim{
		rng: rng, lease: lease, margin: margin, seq: 1, mutation: mut, trace: trace,
		joined: map[uint64]map[Epoch]bool{},
		arbOff: time.Duration(rng.Int64N(int64(time.Hour))), arbRate: 1 + (rng.Float64()-0.5)*0.02,
		loss: rng.Float64() * 0.3, dup: rng.Float64() * 0.2,
		maxDelay:   time.Duration(50+rng.IntN(3000)) * time.Microsecond,
		releasedAt: map[Epoch]string{},
		procs:      map[string]*simProc{},
	}
	s.cfg = Config{
		Chains: []ChainConfig{{ID: scriptChain, Name: "c", Members: [2]MemberID{1, 2}, Primary: MemberID(1 + rng.IntN(2)), Epoch: 1}},
		Lease:  lease, Margin: margin, Retry: time.Duration(1+rng.IntN(3)) * time.Millisecond,
		YieldTimeout: time.Duration(5+rng.IntN(50)) * time.Millisecond,
	}
	if err := s.newArbiter(); err != nil {
		return s, err
	}
	for i, n := range []string{"a", "b"} {
		p := &simProc{name: n, id: MemberID(i + 1), alive: true,
			off: time.Duration(rng.Int64N(int64(time.Hour))), rate: 1 + (rng.Float64()-0.5)*0.02}
		if err := s.newMember(p); err != nil {
			return s, err
		}
		s.procs[n] = p
		s.order = append(s.order, p)
	}
	step := 50 * time.Microsecond
	for i := range steps + calmSteps {
		s.t += step
		calm := i >= steps
		if i == steps+calmSteps-2000 {
			s.calmReleases = 0
		}
		if i == steps {
			// The calm phase: faults stop and links heal, so the protocol
			// must settle on one primary holding a lease (liveness).
			s.logf("calm")
			s.calm, s.loss = true, 0
			for _, p := range s.order {
				if p.cut {
					p.cut, p.changed = false, s.t
				}
				p.restartAt = min(p.restartAt, s.t)
			}
		}
		// Faults.
		for _, p := range s.order {
			switch r := rng.IntN(4000); {
			case calm:
			case r == 0 && p.alive:
				s.logf("%s crashes", p.name)
				p.alive, p.changed = false, s.t
				p.restartAt = s.t + time.Duration(rng.Int64N(int64(60*time.Millisecond)))
			case r == 1:
				p.cut, p.changed = !p.cut, s.t
				s.logf("%s cut=%v", p.name, p.cut)
			}
			if !p.alive && s.t >= p.restartAt {
				if err := s.newMember(p); err != nil {
					return s, err
				}
				p.alive, p.changed, p.yieldAt = true, s.t, 0
				s.logf("%s restarts", p.name)
			}
		}
		if !calm && rng.IntN(40000) == 0 {
			s.failovers += s.arb.Counters().Failovers
			s.switches += s.arb.Counters().Switchovers
			s.logf("arbiter restarts")
			if err := s.newArbiter(); err != nil {
				return s, err
			}
		}
		if !calm && rng.IntN(3000) == 0 {
			s.logf("switchover: %v", s.arb.Switchover(s.arbClock(), scriptChain))
		}
		// Delivery, in random order among those due.
		rng.Shuffle(len(s.net), func(i, j int) { s.net[i], s.net[j] = s.net[j], s.net[i] })
		keep := s.net[:0]
		var due []simMsg
		for _, m := range s.net {
			if m.at <= s.t {
				due = append(due, m)
			} else {
				keep = append(keep, m)
			}
		}
		s.net = keep
		for _, m := range due {
			var err error
			if m.to == "arb" {
				err = s.arb.Step(s.arbClock(), m.from, m.msg)
			} else if p := s.procs[m.to]; p.alive {
				err = p.m.Step(p.clock(s.t), m.msg)
			}
			s.logf("deliver to %s from %d: %v: %v", m.to, m.from, m.msg, err)
			s.flushReady()
			if err := s.check(); err != nil {
				return s, err
			}
			if s.violation != nil {
				return s, s.violation
			}
		}
		// Time.
		for _, p := range s.order {
			s.liveness(p)
			if p.alive {
				p.m.Tick(p.clock(s.t))
				if p.yieldAt != 0 && s.t >= p.yieldAt {
					p.yieldAt = 0
					s.logf("%s yielded: %v", p.name, p.m.Yielded(scriptChain))
				}
				s.join(p)
				if !calm && rng.IntN(20000) == 0 && p.m.StandbyReady(scriptChain) {
					// The primary's stream breaks: not ready; it rejoins.
					_, e := p.m.Role(scriptChain)
					s.logf("%s loses the primary's stream", p.name)
					p.m.SetStandbyReady(scriptChain, e, false)
					p.joinEpoch, p.joinAt = e, s.t+time.Duration(1+rng.IntN(10))*time.Millisecond
				}
				if !calm && rng.IntN(5000) == 0 {
					// The manager repeats its last report (harmless).
					_, e := p.m.Role(scriptChain)
					p.m.SetStandbyReady(scriptChain, e, p.m.StandbyReady(scriptChain))
				}
				if !calm && rng.IntN(20000) == 0 {
					// A replication frame from the other member: its epoch.
					other := s.procs["a"]
					if other == p {
						other = s.procs["b"]
					}
					_, e := other.m.Role(scriptChain)
					s.logf("%s observes epoch %d: %v", p.name, e, p.m.ObserveEpoch(scriptChain, e))
				}
			}
		}
		s.arb.Tick(s.arbClock())
		s.flushReady()
		if err := s.check(); err != nil {
			return s, err
		}
		if s.violation != nil {
			return s, s.violation
		}
	}
	s.failovers += s.arb.Counters().Failovers
	s.switches += s.arb.Counters().Switchovers
	// Liveness: by the end of the calm phase both members know their roles
	// and the primary held a lease during its last 100 ms (not at every
	// instant: with delays near the lease, some grants arrive too late).
	// A lease can only be held if a grant can arrive before it ends: when
	// the round trip may exceed it, releases are not required.
	canHold := 2*s.maxDelay+20*time.Microsecond < s.lease
	// The standby must have joined the primary and said so: the chain is
	// protected again.
	if st := s.arb.Status()[0]; canHold && s.calmReleases == 0 || st.Phase != PhaseNormal || !st.PrimaryAcked || !st.StandbyAcked || !st.StandbyReady {
		return s, fmt.Errorf("not settled %v after the faults stopped (%d instants with a releaser in the last 100 ms): %+v",
			calmSteps*step, s.calmReleases, st)
	}
	return s, nil
}

// calmSteps is the fault-free end of each run: 300 ms of 50 µs steps,
// more than a yield timeout (≤ 55 ms) and a lease wait.
const calmSteps = 6000

// TestAtMostOneReleaser is RESILIENCY.md guarantee 5 as a property: an
// arbiter and two members with their own drifting clocks, over a network
// that loses, duplicates, delays and reorders every message, with crashes,
// restarts, partitions, wrong BFD verdicts, switchovers whose drain may
// never finish, managers seeing random epochs and arbiter restarts. At no
// simulated instant (50 µs steps, and after every delivery) may both members
// have CanRelease true, and no epoch may have two releasers.
func TestAtMostOneReleaser(t *testing.T) {
	runs := *propRuns
	if runs == 0 {
		runs = 400
		if testing.Short() || raceEnabled {
			runs = 60
		}
	}
	if *propInner != 0 {
		_, err := runSim(*propInner, 20000, mutNone, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	rng := testenv.Rand(t)
	var releases, failovers, switches, promotions uint64
	var readyPromotions, returns, lost int
	for run := range runs {
		seed := rng.Uint64()
		s, err := runSim(seed, 20000, mutNone, nil)
		if err != nil {
			t.Fatalf("run %d (inner seed %d): %v", run, seed, err)
		}
		releases += uint64(s.releases)
		failovers += s.failovers
		switches += s.switches
		promotions += uint64(len(s.releasedAt))
		readyPromotions += s.readyPromotions
		returns += s.returns
		lost += s.lostPromotions
	}
	t.Logf("%d runs of 1 s simulated: %d instants with a releaser, %d failovers, %d switchovers by Yielded, %d epochs that released",
		runs, releases, failovers, switches, promotions)
	t.Logf("promotions of a standby that had joined: %d; re-promotions of the primary (no ready standby, or above a learnt epoch): %d, of which to an incarnation other than the running one (restarted): %d",
		readyPromotions, returns, lost)
	if releases == 0 || failovers == 0 || switches == 0 || promotions < uint64(runs) || readyPromotions == 0 || returns == 0 || lost == 0 {
		t.Fatal("the simulation exercised too little: no releases, failovers, promotions of a ready standby or returning primaries")
	}
}

// TestAtMostOneReleaserCatchesNoLeaseWait breaks the protocol on purpose
// (promotion without waiting out the lease bound) and expects the property
// test to notice: it keeps the property test honest.
func TestAtMostOneReleaserCatchesNoLeaseWait(t *testing.T) {
	rng := testenv.Rand(t)
	for run := range 200 {
		seed := rng.Uint64()
		if _, err := runSim(seed, 20000, mutNoLeaseWait, nil); err != nil {
			t.Logf("run %d (inner seed %d) caught it: %v", run, seed, err)
			return
		}
	}
	t.Fatal("200 runs without a lease wait found no double releaser")
}

// TestAtMostOneReleaserCatchesUnreadyPromotion breaks the failover rule on
// purpose (fail over to a live standby whether or not it is ready) and
// expects the readiness invariant to notice.
func TestAtMostOneReleaserCatchesUnreadyPromotion(t *testing.T) {
	rng := testenv.Rand(t)
	for run := range 200 {
		seed := rng.Uint64()
		if _, err := runSim(seed, 20000, mutNoReadyCheck, nil); err != nil {
			t.Logf("run %d (inner seed %d) caught it: %v", run, seed, err)
			return
		}
	}
	t.Fatal("200 runs failing over to unready standbys found no violation")
}
