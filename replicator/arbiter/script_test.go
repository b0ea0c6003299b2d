package arbiter

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/replicator/reptest"
)

// scriptEnv is an arbiter "arb" and two members "a" (ID 1) and "b" (ID 2)
// of chain 7, whose initial primary is a. Every process has its own clock:
// the global time plus its offset. Messages wait in per-destination queues
// until the script delivers them.
type scriptEnv struct {
	t     *testing.T
	now   time.Duration
	off   map[string]time.Duration
	arb   *Arbiter
	mem   map[string]*Member
	down  map[string]bool // crashed: processes nothing, receives nothing
	cut   map[string]bool // link to the arbiter cut both ways
	queue map[string][]Envelope
	from  map[string][]MemberID // sender of each queued message (arb queue)
	seq   uint64
	lease time.Duration
}

const scriptChain ChainID = 7

var scriptIDs = map[string]MemberID{"a": 1, "b": 2}

func scriptName(id MemberID) string {
	for n, i := range scriptIDs {
		if i == id {
			return n
		}
	}
	if id == ArbiterID {
		return "arb"
	}
	return fmt.Sprint(id)
}

func (e *scriptEnv) clock(n string) time.Duration { return e.now + e.off[n] }

func dur(t testing.TB, c *reptest.Cmd, key string, def time.Duration) time.Duration {
	s := c.Str(key, "")
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("%s: %s=%q: %v", c.Pos, key, s, err)
	}
	return d
}

func (e *scriptEnv) newMember(n string) {
	m, err := NewMember(MemberConfig{ID: scriptIDs[n], Chains: []ChainID{scriptChain}, Lease: e.lease, FirstSeq: e.seq})
	if err != nil {
		e.t.Fatal(err)
	}
	e.seq += 100
	e.mem[n] = m
}

// collect takes every Ready and prints it; messages join the queues unless
// their link is cut.
func (e *scriptEnv) collect(sb *strings.Builder) {
	if e.arb != nil && e.arb.HasReady() {
		rd := e.arb.Ready()
		for _, r := range rd.Redirects {
			fmt.Fprintf(sb, "arb: redirect chain=%d to=%s epoch=%d\n", r.Chain, scriptName(r.To), r.Epoch)
		}
		for _, ev := range rd.Events {
			fmt.Fprintf(sb, "arb: event %v %s epoch=%d", ev.Kind, scriptName(ev.Member), ev.Epoch)
			if ev.Detail != "" {
				fmt.Fprintf(sb, " (%s)", ev.Detail)
			}
			sb.WriteString("\n")
		}
		for _, m := range rd.Messages {
			to := scriptName(m.To)
			fmt.Fprintf(sb, "arb -> %s: %v", to, m.Msg)
			if e.cut[to] {
				sb.WriteString(" (cut)")
			} else {
				e.queue[to] = append(e.queue[to], m)
			}
			sb.WriteString("\n")
		}
		e.arb.Advance(rd)
	}
	for _, n := range []string{"a", "b"} {
		m := e.mem[n]
		if m == nil || e.down[n] || !m.HasReady() {
			continue
		}
		rd := m.Ready()
		for _, a := range rd.Actions {
			fmt.Fprintf(sb, "%s: action %v epoch=%d", n, a.Kind, a.Epoch)
			if a.Kind == ActDemote {
				fmt.Fprintf(sb, " primary=%s", scriptName(a.Primary))
			}
			sb.WriteString("\n")
		}
		for _, msg := range rd.Messages {
			fmt.Fprintf(sb, "%s -> arb: %v", n, msg)
			if e.cut[n] {
				sb.WriteString(" (cut)")
			} else {
				e.queue["arb"] = append(e.queue["arb"], Envelope{To: ArbiterID, Msg: msg})
				e.from["arb"] = append(e.from["arb"], scriptIDs[n])
			}
			sb.WriteString("\n")
		}
		m.Advance(rd)
	}
}

// Commands (each with an example):
//
//	new lease=6ms margin=1ms retry=2ms yield=20ms offa=0 offb=0
//	live a up            the arbiter's BFD verdict on a (up or down)
//	tick 500us           time passes for everyone (step=100us by default)
//	deliver arb          deliver the queue of arb, a or b; drop=0,2 dup=1 order=2,0,1
//	flush                deliver everything everywhere until quiet (no time passes)
//	crash a              a's process dies: it sends, receives, ticks nothing
//	restart a            a new incarnation of a (standby at epoch 0)
//	cut a / heal a       the a <-> arbiter link loses everything / works again
//	switchover           the arbiter starts a planned switchover
//	yielded a            a's manager says it drained (Member.Yielded)
//	observe a epoch=3    a's manager saw epoch 3 in a replication frame
//	hello a inc=1        the arbiter receives a Hello from a (a stale copy, say)
//	ready b epoch=1      b's manager joined the primary at epoch 1 (SetStandbyReady)
//	notready b           b's manager lost the primary's stream (SetStandbyReady false)
//	can                  CanRelease of a and b at their clocks
//	status               the arbiter's chain status and counters
func (e *scriptEnv) do(c *reptest.Cmd) string {
	t := e.t
	var sb strings.Builder
	arg := ""
	if len(c.Args) > 0 {
		arg = c.Args[0].Key
	}
	switch c.Name {
	case "new":
		e.lease = dur(t, c, "lease", 6*time.Millisecond)
		e.off = map[string]time.Duration{"arb": 0, "a": dur(t, c, "offa", 0), "b": dur(t, c, "offb", 0)}
		e.now = 0
		e.seq = 1
		var err error
		e.arb, err = NewArbiter(Config{
			Chains: []ChainConfig{{ID: scriptChain, Name: "c", Members: [2]MemberID{1, 2}, Primary: 1, Epoch: 1}},
			Lease:  e.lease, Margin: dur(t, c, "margin", time.Millisecond), Retry: dur(t, c, "retry", 2*time.Millisecond),
			YieldTimeout: dur(t, c, "yield", 20*time.Millisecond),
		}, e.clock("arb"))
		if err != nil {
			t.Fatal(err)
		}
		e.mem = map[string]*Member{}
		e.newMember("a")
		e.newMember("b")
		e.down, e.cut = map[string]bool{}, map[string]bool{}
		e.queue, e.from = map[string][]Envelope{}, map[string][]MemberID{}
	case "live":
		e.arb.SetLive(e.clock("arb"), scriptIDs[arg], c.Has("up"))
	case "tick":
		d, err := time.ParseDuration(arg)
		if err != nil {
			t.Fatalf("%s: %v", c.Pos, err)
		}
		step := dur(t, c, "step", 100*time.Microsecond)
		for end := e.now + d; e.now < end; {
			e.now += min(step, end-e.now)
			e.arb.Tick(e.clock("arb"))
			for n, m := range e.mem {
				if !e.down[n] {
					m.Tick(e.clock(n))
				}
			}
			e.collect(&sb)
		}
		return sb.String()
	case "deliver":
		e.deliver(&sb, arg, c.Ints(t, "order"), c.Ints(t, "drop"), c.Ints(t, "dup"))
	case "flush":
		for range 20 {
			if len(e.queue["arb"])+len(e.queue["a"])+len(e.queue["b"]) == 0 {
				break
			}
			for _, n := range []string{"arb", "a", "b"} {
				e.deliver(&sb, n, nil, nil, nil)
				e.collect(&sb)
			}
		}
	case "crash":
		e.down[arg] = true
		e.queue[arg] = nil
	case "restart":
		e.down[arg] = false
		e.newMember(arg)
	case "cut":
		e.cut[arg] = true
	case "heal":
		e.cut[arg] = false
	case "switchover":
		if err := e.arb.Switchover(e.clock("arb"), scriptChain); err != nil {
			fmt.Fprintf(&sb, "error: %v\n", err)
		}
	case "yielded":
		if err := e.mem[arg].Yielded(scriptChain); err != nil {
			fmt.Fprintf(&sb, "error: %v\n", err)
		}
	case "observe":
		if err := e.mem[arg].ObserveEpoch(scriptChain, Epoch(c.Int(t, "epoch", 0))); err != nil {
			fmt.Fprintf(&sb, "error: %v\n", err)
		}
	case "ready", "notready":
		if err := e.mem[arg].SetStandbyReady(scriptChain, Epoch(c.Int(t, "epoch", 0)), c.Name == "ready"); err != nil {
			fmt.Fprintf(&sb, "error: %v\n", err)
		}
	case "hello":
		err := e.arb.Step(e.clock("arb"), scriptIDs[arg], Msg{Type: MsgHello, Chain: scriptChain, Inc: uint64(c.Int(t, "inc", 1))})
		if err != nil {
			fmt.Fprintf(&sb, "error: %v\n", err)
		}
	case "can":
		for _, n := range []string{"a", "b"} {
			r, ep := e.mem[n].Role(scriptChain)
			fmt.Fprintf(&sb, "%s: %v epoch=%d can-release=%v\n", n, r, ep, !e.down[n] && e.mem[n].CanRelease(scriptChain, e.clock(n)))
		}
		return sb.String()
	case "status":
		s := e.arb.Status()[0]
		fmt.Fprintf(&sb, "epoch=%d primary=%s phase=%v bound=%v acked=%v/%v live=%v/%v standby-ready=%v\n", s.Epoch, scriptName(s.Primary), s.Phase,
			s.LeaseBound-e.clock("arb"), s.PrimaryAcked, s.StandbyAcked, s.PrimaryLive, s.StandbyLive, s.StandbyReady)
		fmt.Fprintf(&sb, "%+v\n", e.arb.Counters())
		return sb.String()
	default:
		t.Fatalf("%s: unknown command %q", c.Pos, c.Name)
	}
	e.collect(&sb)
	return sb.String()
}

func (e *scriptEnv) deliver(sb *strings.Builder, to string, order, drop, dup []int) {
	q, from := e.queue[to], e.from[to]
	e.queue[to], e.from[to] = nil, nil
	if order == nil {
		for i := range q {
			order = append(order, i)
		}
	}
	for _, i := range order {
		if i >= len(q) {
			fmt.Fprintf(sb, "error: no message %d\n", i)
			continue
		}
		if slices.Contains(drop, i) {
			fmt.Fprintf(sb, "%s: dropped %v\n", to, q[i].Msg)
			continue
		}
		k := 1
		if slices.Contains(dup, i) {
			k = 2
		}
		for range k {
			var err error
			if to == "arb" {
				err = e.arb.Step(e.clock("arb"), from[i], q[i].Msg)
			} else if !e.down[to] {
				err = e.mem[to].Step(e.clock(to), q[i].Msg)
			}
			if err != nil {
				fmt.Fprintf(sb, "%s <- %v: %v\n", to, q[i].Msg, err)
			}
		}
	}
}

func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			e := &scriptEnv{t: t}
			reptest.RunFile(t, f, func(c *reptest.Cmd) string { return e.do(c) })
		})
	}
}
