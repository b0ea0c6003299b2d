package remotelab

import (
	"fmt"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// StallProbe measures how long the machine keeps a real-time thread off
// each CPU: one thread pinned to each CPU, under SCHED_FIFO (the priority
// the managers' BFD threads run at), wakes on a timerfd every Period and
// records every gap between two wake-ups longer than Threshold. BFD with a 2 ms × 3 profile
// declares a peer down after 6 ms of silence, so a stall that long on the
// machine that runs every "server" of the lab makes a live member look dead
// however the managers are written (docs/lab.md, "Platform stalls"). The
// fault loops report stalls next to the failovers they did not cause.
type StallProbe struct {
	Period, Threshold time.Duration
	Sched             string // the probe threads' scheduling

	mu     sync.Mutex
	stalls []Stall // guarded by mu
	wakes  uint64  // guarded by mu
	stop   chan struct{}
	wg     sync.WaitGroup
	tfds   []int
}

// Stall is one gap between two wake-ups of the probe on CPU.
type Stall struct {
	CPU int
	End time.Time // the wake-up after the gap
	Gap time.Duration
}

// StartStallProbe starts a probe thread per CPU at rtPrio (0: normal
// scheduling).
func StartStallProbe(period, threshold time.Duration, rtPrio int) (*StallProbe, error) {
	p := &StallProbe{Period: period, Threshold: threshold, stop: make(chan struct{})}
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("stall probe: %w", err)
	}
	// Each probe thread needs a P after every wake-up: with GOMAXPROCS at
	// the CPU count and the sink's loop busy, waiting for one would count
	// as a stall of the machine.
	if want := runtime.NumCPU() + set.Count() + 2; runtime.GOMAXPROCS(0) < want {
		runtime.GOMAXPROCS(want)
	}
	scheds := make([]string, 0, set.Count())
	for cpu := range 1024 {
		if !set.IsSet(cpu) {
			continue
		}
		tfd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_CLOEXEC)
		if err == nil {
			ts := unix.NsecToTimespec(period.Nanoseconds())
			err = unix.TimerfdSettime(tfd, 0, &unix.ItimerSpec{Interval: ts, Value: ts}, nil)
		}
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("stall probe: timerfd: %w", err)
		}
		p.tfds = append(p.tfds, tfd)
		ready := make(chan string)
		p.wg.Add(1)
		go p.run(cpu, tfd, rtPrio, ready)
		scheds = append(scheds, <-ready)
	}
	p.Sched = strings.Join(scheds, ", ")
	return p, nil
}

func (p *StallProbe) run(cpu, tfd, rtPrio int, ready chan<- string) {
	defer p.wg.Done()
	runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
	var one unix.CPUSet
	one.Set(cpu)
	sched := fmt.Sprintf("cpu %d: normal", cpu)
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		sched = fmt.Sprintf("cpu %d: not pinned (%v)", cpu, err)
	}
	if rtPrio > 0 {
		attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: uint32(rtPrio), Flags: unix.SCHED_FLAG_RESET_ON_FORK}
		if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
			sched += fmt.Sprintf(" (SCHED_FIFO refused: %v)", err)
		} else {
			sched = fmt.Sprintf("cpu %d: SCHED_FIFO %d", cpu, rtPrio)
		}
	}
	if rtPrio > 0 {
		// The main thread is parked, not ended, when a goroutine locked
		// to it exits: put the policy back.
		defer func() {
			attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_NORMAL}
			_ = unix.SchedSetAttr(0, &attr, 0)
		}()
	}
	ready <- sched
	var b [8]byte
	last := time.Now()
	for {
		select {
		case <-p.stop:
			return
		default:
		}
		if _, err := unix.Read(tfd, b[:]); err != nil {
			if err == unix.EINTR {
				continue
			}
			return
		}
		now := time.Now()
		gap := now.Sub(last)
		last = now
		p.mu.Lock()
		p.wakes++
		if gap > p.Threshold {
			p.stalls = append(p.stalls, Stall{CPU: cpu, End: now, Gap: gap})
		}
		p.mu.Unlock()
	}
}

// Close stops the probe (within a period).
func (p *StallProbe) Close() {
	select {
	case <-p.stop:
		return
	default:
	}
	close(p.stop)
	p.wg.Wait()
	for _, fd := range p.tfds {
		unix.Close(fd)
	}
}

// Stalls returns the stalls recorded so far.
func (p *StallProbe) Stalls() []Stall {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Stall(nil), p.stalls...)
}

// Around returns the longest stall on any CPU that overlaps [from, to]
// (a stall spans [End-Gap, End]); zero if none.
func (p *StallProbe) Around(from, to time.Time) Stall {
	var worst Stall
	for _, s := range p.Stalls() {
		if s.End.After(from) && s.End.Add(-s.Gap).Before(to) && s.Gap > worst.Gap {
			worst = s
		}
	}
	return worst
}

// Summary is one line: the stalls longer than the threshold, how many
// were at least each of the given lengths, and the longest.
func (p *StallProbe) Summary(marks ...time.Duration) string {
	st := p.Stalls()
	p.mu.Lock()
	wakes := p.wakes
	p.mu.Unlock()
	gaps := make([]time.Duration, len(st))
	for i, s := range st {
		gaps[i] = s.Gap
	}
	sort.Slice(gaps, func(i, j int) bool { return gaps[i] > gaps[j] })
	var b strings.Builder
	fmt.Fprintf(&b, "stall probe (%s, every %v): %d wake-ups, %d gaps over %v", p.Sched, p.Period, wakes, len(gaps), p.Threshold)
	for _, m := range marks {
		n := sort.Search(len(gaps), func(i int) bool { return gaps[i] < m })
		fmt.Fprintf(&b, ", %d of %v or more", n, m)
	}
	if len(gaps) > 0 {
		fmt.Fprintf(&b, "; longest %v", gaps[0].Round(10*time.Microsecond))
	}
	return b.String()
}

// ArbiterEvent is one event the arbiter logged (the ingress's output).
type ArbiterEvent struct {
	At     time.Time
	Kind   string // "primary-down", "promoting", ...
	Member string
	Line   string
}

// ArbiterEvents returns the arbiter's events of kind from the ingress's
// output, in order (their times are the log's, this machine's clock).
func (l *Lab) ArbiterEvents(kind string) []ArbiterEvent {
	var out []ArbiterEvent
	for _, line := range strings.Split(l.Ing.Output(), "\n") {
		if !strings.Contains(line, " event="+kind+" ") && !strings.HasSuffix(line, " event="+kind) {
			continue
		}
		at, ok := logTime(line)
		if !ok {
			continue
		}
		ev := ArbiterEvent{At: at, Kind: kind, Line: line}
		if v, ok := logField(line, "member"); ok {
			ev.Member = v
		}
		out = append(out, ev)
	}
	return out
}

// Pause is a member's BFD thread held off the CPU, as its manager logged
// it (arbiter.ClientConfig.OnPause): the member sent nothing for Held,
// ending at End.
type Pause struct {
	Member string
	End    time.Time
	Held   time.Duration
}

// MemberPauses returns the pauses both members' managers logged, over all
// their runs.
func (l *Lab) MemberPauses() []Pause {
	var out []Pause
	for _, n := range []string{A, B} {
		m := l.Member(n)
		if m == nil {
			continue
		}
		for _, line := range strings.Split(m.Output(), "\n") {
			if !strings.Contains(line, "BFD thread held off the CPU") {
				continue
			}
			at, ok := logTime(line)
			v, ok2 := logField(line, "held_off")
			ms, err := strconv.ParseFloat(v, 64)
			if !ok || !ok2 || err != nil {
				continue
			}
			out = append(out, Pause{Member: n, End: at, Held: time.Duration(ms * float64(time.Millisecond))})
		}
	}
	return out
}

// logTime is LogClock of line at the current time.
func logTime(line string) (time.Time, bool) { return LogClock(line, time.Now()) }

// LogClock is the time of a manager's console log line (its leading
// "15:04:05.000", ref's zone) on the day that puts it nearest to ref
// (around midnight the line may be on the previous or the next day).
func LogClock(line string, ref time.Time) (time.Time, bool) {
	if len(line) < 12 {
		return time.Time{}, false
	}
	clock, err := time.ParseInLocation("15:04:05.000", line[:12], ref.Location())
	if err != nil {
		return time.Time{}, false
	}
	y, mo, d := ref.Date()
	at := time.Date(y, mo, d, clock.Hour(), clock.Minute(), clock.Second(), clock.Nanosecond(), ref.Location())
	switch {
	case at.Sub(ref) > 12*time.Hour:
		at = at.AddDate(0, 0, -1)
	case ref.Sub(at) > 12*time.Hour:
		at = at.AddDate(0, 0, 1)
	}
	return at, true
}

// logField returns the value of key=value in a manager log line.
func logField(line, key string) (string, bool) {
	for _, kv := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v, true
		}
	}
	return "", false
}
