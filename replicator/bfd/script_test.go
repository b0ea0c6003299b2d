package bfd_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/reinforce-nfv/reinforce/replicator/bfd"
	"github.com/reinforce-nfv/reinforce/replicator/reptest"
)

// bfdEnv is two sessions, "a" and "b", and the packets in flight to each.
type bfdEnv struct {
	s     map[string]*bfd.Session
	queue map[string][][]byte
}

func other(n string) string {
	if n == "a" {
		return "b"
	}
	return "a"
}

func describe(b []byte) string {
	var p bfd.ControlPacket
	if err := bfd.Decode(b, &p); err != nil {
		return "undecodable: " + err.Error()
	}
	s := fmt.Sprintf("%v my=%d your=%d tx=%d rx=%d mult=%d", p.State, p.MyDisc, p.YourDisc, p.DesiredMinTx, p.RequiredMinRx, p.DetectMult)
	if p.Diag != 0 {
		s += fmt.Sprintf(" diag=%d", p.Diag)
	}
	if p.Poll {
		s += " P"
	}
	if p.Final {
		s += " F"
	}
	return s
}

// ready collects n's Ready: packets queue for the peer unless cut.
func (e *bfdEnv) ready(n string, cut bool, verbose bool) string {
	var sb strings.Builder
	rd := e.s[n].Ready()
	e.s[n].Advance(rd)
	for _, c := range rd.Changes {
		fmt.Fprintf(&sb, "%s: %v -> %v diag=%d\n", n, c.From, c.To, c.Diag)
	}
	for _, p := range rd.Packets {
		if verbose {
			fmt.Fprintf(&sb, "%s: send %s\n", n, describe(p))
		}
		if !cut {
			e.queue[other(n)] = append(e.queue[other(n)], p)
		}
	}
	return sb.String()
}

func (e *bfdEnv) deliver(to string, order []int, dup []int, verbose bool) string {
	var sb strings.Builder
	q := e.queue[to]
	e.queue[to] = nil
	if order == nil {
		for i := range q {
			order = append(order, i)
		}
	}
	for _, i := range order {
		if i >= len(q) {
			fmt.Fprintf(&sb, "error: no packet %d\n", i)
			continue
		}
		k := 1
		if slices.Contains(dup, i) {
			k = 2
		}
		for range k {
			var p bfd.ControlPacket
			err := bfd.Decode(q[i], &p)
			if err == nil {
				err = e.s[to].Step(&p, q[i])
			}
			if verbose || err != nil {
				fmt.Fprintf(&sb, "%s <- %s", to, describe(q[i]))
				if err != nil {
					fmt.Fprintf(&sb, ": %v", err)
				}
				sb.WriteString("\n")
			}
		}
	}
	return sb.String()
}

func (e *bfdEnv) do(t *testing.T, c *reptest.Cmd) string {
	n := "a"
	if len(c.Args) > 0 && c.Args[0].Vals == nil && (c.Args[0].Key == "a" || c.Args[0].Key == "b") {
		n = c.Args[0].Key
	}
	switch c.Name {
	case "new":
		auth := map[string]bfd.AuthType{"none": bfd.AuthNone, "keyed": bfd.AuthKeyedSHA1, "meticulous": bfd.AuthMeticulousSHA1}[c.Str("auth", "meticulous")]
		seed := uint64(c.Int(t, "seed", 1))
		s, err := bfd.New(bfd.Config{LocalDisc: uint32(c.Int(t, "disc", 1)), DesiredMinTxMicros: uint32(c.Int(t, "tx", 1000)),
			RequiredMinRxMicros: uint32(c.Int(t, "rx", 1000)), DetectMult: uint8(c.Int(t, "mult", 3)), TickMicros: 100,
			SlowTxMicros: uint32(c.Int(t, "slow", 2000)), AuthType: auth, Key: []byte(c.Str("key", "secret")),
			Rand: rand.New(rand.NewPCG(seed, seed))})
		if err != nil {
			return "error: " + err.Error()
		}
		e.s[n] = s
		e.queue[n] = nil
		return "ok"
	case "tick":
		for range c.Int(t, "n", 1) {
			e.s[n].Tick()
		}
		return e.ready(n, false, true)
	case "deliver":
		return e.deliver(n, c.Ints(t, "order"), c.Ints(t, "dup"), true)
	case "drop":
		e.queue[n] = nil
		return "ok"
	case "heard":
		e.s[n].Heard()
		return "ok"
	case "pause":
		// pause b: b's thread was held off the CPU (the ticks it missed are
		// not run), then one tick.
		e.s[n].Paused()
		e.s[n].Tick()
		return e.ready(n, false, true)
	case "run":
		// run n=100 [cut=a] [heard=b]: tick both, deliver everything (but
		// what the cut side sends); print the state changes only.
		var sb strings.Builder
		cut := c.Str("cut", "")
		for range c.Int(t, "n", 1) {
			for _, x := range []string{"a", "b"} {
				e.s[x].Tick()
				if c.Str("heard", "") == x {
					e.s[x].Heard()
				}
			}
			for range 3 {
				for _, x := range []string{"a", "b"} {
					sb.WriteString(e.ready(x, cut == x, false))
				}
				for _, x := range []string{"a", "b"} {
					sb.WriteString(e.deliver(x, nil, nil, false))
				}
			}
		}
		return sb.String()
	case "state":
		var sb strings.Builder
		for _, x := range []string{"a", "b"} {
			s := e.s[x]
			fmt.Fprintf(&sb, "%s: %v remote=%d tx=%dµs detect=%dµs %+v\n", x, s.State(), s.RemoteDisc(), s.TxIntervalMicros(), s.DetectMicros(), s.Counters())
		}
		return sb.String()
	}
	t.Fatalf("%s: unknown command %q", c.Pos, c.Name)
	return ""
}

// TestSessionScripts runs testdata/*.txt: bring-up with Poll/Final,
// loss, duplication, reordering and replay under meticulous keying,
// detection, data traffic as liveness, a peer restart.
func TestSessionScripts(t *testing.T) {
	for _, f := range []string{"testdata/session.txt"} {
		t.Run(f, func(t *testing.T) {
			e := &bfdEnv{s: map[string]*bfd.Session{}, queue: map[string][][]byte{}}
			reptest.RunFile(t, f, func(c *reptest.Cmd) string { return e.do(t, c) })
		})
	}
}
