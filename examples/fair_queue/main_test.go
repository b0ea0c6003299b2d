package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/examples/internal/chaintest"
	"github.com/reinforce-nfv/reinforce/examples/internal/nfapp"
	mgrconfig "github.com/reinforce-nfv/reinforce/manager/config"
	"github.com/reinforce-nfv/reinforce/nflib"
	"github.com/reinforce-nfv/reinforce/pkt"
)

// First NF arguments of a child that runs outNF: slowly, or at full speed.
const (
	slowWord = "fq-slow"
	outWord  = "fq-out"
)

// TestMain turns a child started by chaintest into the NF or a slow
// forwarder.
func TestMain(m *testing.M) {
	if argv, ok := chaintest.ChildArgv(); ok {
		if len(argv) > 0 && (argv[0] == slowWord || argv[0] == outWord) {
			os.Exit(outNF(argv[1:], argv[0] == slowWord))
		}
		os.Exit(run("fair_queue", argv, nfapp.Std()))
	}
	os.Exit(m.Run())
}

// outNF sends every packet out of port 0; slowly, at about 10 000 packets
// a second, it is a bottleneck behind the fair queue.
func outNF(argv []string, slow bool) int {
	nf, err := nflib.Init("slow", argv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	nf.SetSummary(false)
	err = nf.Run(func(nflib.Packet) nflib.Action {
		for t := time.Now(); slow && time.Since(t) < 100*time.Microsecond; {
			time.Sleep(50 * time.Microsecond)
		}
		return nflib.Out(0)
	})
	nf.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func TestParseArgs(t *testing.T) {
	cfg, err := parseArgs([]string{"-d", "2", "-n", "4", "-p"})
	if err != nil || cfg != (config{dst: 2, queues: 4, queuesGiven: true, print: true}) {
		t.Fatalf("parseArgs = %+v, %v", cfg, err)
	}
	if cfg, _ := parseArgs([]string{"-d", "2"}); cfg.queues != 2 || cfg.queuesGiven {
		t.Fatalf("default queues: %+v", cfg)
	}
	for _, tt := range []struct {
		args []string
		err  string
	}{
		{[]string{"-n", "2"}, "Fair Queue NF requires destination flag -d."},
		{[]string{"-d", "2", "-n", "0"}, "Option -n must be at least 1"},
		{[]string{"-d", "2", "-n", "33"}, "Option -n must be at most 32, not 33"},
	} {
		if _, err := parseArgs(tt.args); err == nil || err.Error() != tt.err {
			t.Errorf("parseArgs(%q) = %v, want %q", tt.args, err, tt.err)
		}
	}
}

// fakeQ is a queue of packets told apart by their slot number.
type fakeQ []nflib.Packet

func (q *fakeQ) Pop() (nflib.Packet, bool) {
	if len(*q) == 0 {
		return nflib.Packet{}, false
	}
	p := (*q)[0]
	*q = (*q)[1:]
	return p, true
}

// With backlogs in every queue, the round robin takes one packet from each
// in turn, skips empty queues, resumes where it stopped, and never takes
// more than the room.
func TestScheduleIsRoundRobin(t *testing.T) {
	var a, b, c fakeQ
	for i := 0; i < 10; i++ {
		a = append(a, nflib.Packet{})
	}
	for i := 0; i < 3; i++ {
		c = append(c, nflib.Packet{})
	}
	qs := []popper{&a, &b, &c}
	var order []int
	send := func(i int, _ nflib.Packet) { order = append(order, i) }
	next := schedule(qs, 0, 5, send)
	if want := []int{0, 2, 0, 2, 0}; fmt.Sprint(order) != fmt.Sprint(want) || next != 1 {
		t.Fatalf("first round: order %v next %d; want %v next 1", order, next, want)
	}
	order = nil
	schedule(qs, next, 100, send)
	if want := []int{2, 0, 0, 0, 0, 0, 0, 0}; fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("second round: order %v, want %v", order, want)
	}
	if a.Len() != 0 || c.Len() != 0 {
		t.Fatal("packets left")
	}
	if n := testing.AllocsPerRun(100, func() { schedule(qs, 0, 32, send) }); n != 0 {
		t.Fatalf("an empty round allocates %v times", n)
	}
}

func (q fakeQ) Len() int { return len(q) }

// Every packet goes through the queues to the destination, each flow's in
// order, counted per queue in the -p stats.
func TestForwardsThroughQueues(t *testing.T) {
	lab := chaintest.NewLab(t, mgrconfig.DeadNFReclaim, []int{1, 2})
	nf := lab.Start(t, nil, "--", "-r", "1", "--", "-d", "2", "-n", "3", "-p")
	lab.Start(t, nil, outWord, "--", "-r", "2")
	lab.WaitRunning(t, 2)
	var in [][]byte
	for i := 0; i < 600; i++ {
		f := chaintest.ProbeFrame(t, uint32(i%6), uint64(i/6), 0)
		in = append(in, f)
	}
	lab.Port.Inject(in...)
	out := lab.WaitSent(t, len(in))
	last := map[uint32]uint64{}
	for _, f := range out {
		r := chaintest.ReadProbe(t, f)
		if s, ok := last[r.Flow]; ok && r.Seq != s+1 {
			t.Fatalf("flow %d: seq %d after %d", r.Flow, r.Seq, s)
		}
		last[r.Flow] = r.Seq
	}
	chaintest.WaitFor(t, 5*time.Second, "a stats print with every packet", func() bool {
		return strings.Contains(nf.Output(), "QUEUE ID         rx_pps  /  tx_pps") && statsTotal(nf.Output()) == len(in)
	})
	if err := nf.Stop(t, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

// statsTotal sums the rx column of the last stats print in out.
func statsTotal(out string) int {
	i := strings.LastIndex(out, "QUEUE ID")
	if i < 0 {
		return -1
	}
	total := 0
	lines := strings.Split(out[i:], "\n")
	for k := 3; k+1 < len(lines); k += 3 {
		var id, pps, ppsTx, rx, tx int
		if _, err := fmt.Sscanf(lines[k], "%d %d / %d %d / %d", &id, &pps, &ppsTx, &rx, &tx); err != nil {
			break
		}
		total += rx
	}
	return total
}

// A heavy flow backs up behind a slow destination; a light flow that
// arrives after it, in another queue, is not stuck behind the backlog: its
// packets leave interleaved one for one with the heavy flow's (round
// robin), while the heavy flow's backlog is still draining. A FIFO would
// send them after every heavy packet. Nothing is lost.
func TestSharesFairlyUnderBacklog(t *testing.T) {
	// fair_queue runs with Callbacks.QueuesInput: its bursts are not
	// limited by the output ring's room, so the backlog forms in its queues.
	// Service 2 follows in the chain: the fair queue has a ring straight to
	// it, whose room it sees (through the manager, a full ring drops).
	lab := chaintest.NewLab(t, mgrconfig.DeadNFReclaim, []int{1, 2})
	nf := lab.Start(t, nil, "--", "-r", "1", "--", "-d", "2", "-n", "2", "-p")
	lab.Start(t, nil, slowWord, "--", "-r", "2")
	lab.WaitRunning(t, 2)

	// Two flows in different queues.
	var h pkt.Headers
	var key [13]byte
	heavyFlow, lightFlow := uint32(1), uint32(2)
	for classify(&h, &key, chaintest.PlainFrame(t, lightFlow, 18), 2) == classify(&h, &key, chaintest.PlainFrame(t, heavyFlow, 18), 2) {
		lightFlow++
	}
	const heavy, light, chunk = 6000, 300, 500
	rx := func() uint64 {
		for _, s := range lab.M.Snapshot().NFs {
			if s.PID == nf.Cmd.Process.Pid {
				return s.RX
			}
		}
		return 0
	}
	// In chunks the NF takes at once: none is dropped at its input ring.
	for sent := 0; sent < heavy; sent += chunk {
		var in [][]byte
		for i := 0; i < chunk; i++ {
			in = append(in, chaintest.PlainFrame(t, heavyFlow, 18))
		}
		lab.Port.Inject(in...)
		chaintest.WaitFor(t, 10*time.Second, "the fair queue to take a chunk", func() bool { return rx() >= uint64(sent+chunk) })
	}
	var in [][]byte
	for i := 0; i < light; i++ {
		in = append(in, chaintest.PlainFrame(t, lightFlow, 18))
	}
	lab.Port.Inject(in...)
	out := lab.WaitSent(t, heavy+light)

	isLight := func(f []byte) bool { return f[pkt.OffIPv4Src+3] == byte(lightFlow) }
	first, last := -1, -1
	for i, f := range out {
		if isLight(f) {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	lightIn := 0
	for _, f := range out[first : last+1] {
		if isLight(f) {
			lightIn++
		}
	}
	span := last - first + 1
	t.Logf("light flow out at positions %d..%d of %d: %d of %d there are light; %d heavy after it", first, last, len(out), lightIn, span, len(out)-1-last)
	if lightIn != light {
		t.Fatalf("%d light packets out, want %d", lightIn, light)
	}
	if len(out)-1-last < 500 {
		t.Fatalf("only %d heavy packets left after the light flow's last: it waited behind the backlog", len(out)-1-last)
	}
	if span > 2*light+2 {
		t.Fatalf("the light flow's %d packets are spread over %d: not one for one with the heavy flow", light, span)
	}
	if err := nf.Stop(t, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}
