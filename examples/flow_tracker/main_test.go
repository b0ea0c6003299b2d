package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/examples/internal/chaintest"
	"github.com/reinforce-nfv/reinforce/examples/internal/nfapp"
	mgrconfig "github.com/reinforce-nfv/reinforce/manager/config"
	"github.com/reinforce-nfv/reinforce/pkt"
	"github.com/reinforce-nfv/reinforce/shm/state"
)

// TestMain turns a child started by chaintest into the NF.
func TestMain(m *testing.M) {
	if argv, ok := chaintest.ChildArgv(); ok {
		os.Exit(run("flow_tracker", argv, nfapp.Std()))
	}
	os.Exit(m.Run())
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want config
		err  string
	}{
		{name: "destination only", args: []string{"-d", "2"}, want: config{dst: 2, printDelay: 5}},
		{name: "print delay", args: []string{"-d2", "-p", "1"}, want: config{dst: 2, printDelay: 1}},
		{name: "print delay 0 never prints", args: []string{"-p", "0", "-d", "31"}, want: config{dst: 31}},
		{name: "no destination", args: []string{"-p", "5"}, err: "Flow Tracker NF requires a destination NF service ID with the -d flag "},
		{name: "destination 0", args: []string{"-d", "0"}, err: "Option -d must name a service ID from 1 to 31"},
		{name: "print delay not a number", args: []string{"-d", "1", "-p", "x"}, err: `Option -p needs a decimal number, not "x"`},
		{name: "unknown option", args: []string{"-d", "1", "-s"}, err: "Unknown option `-s'."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseArgs(tt.args)
			msg := ""
			if err != nil {
				msg = err.Error()
			}
			if got != tt.want || msg != tt.err {
				t.Errorf("parseArgs(%q) = %+v, %q; want %+v, %q", tt.args, got, msg, tt.want, tt.err)
			}
		})
	}
}

// udp builds a UDP frame from a:sp to b:dp.
func udp(t *testing.T, a, b [4]byte, sp, dp uint16) []byte {
	t.Helper()
	buf := make([]byte, 128)
	n, err := pkt.BuildUDP4(buf, pkt.MAC{2}, pkt.MAC{4}, a, b, sp, dp, 10)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

// newTestTracker is a tracker on a state map in a file of its own (no NF:
// each write commits by itself) with a clock the test sets.
func newTestTracker(t *testing.T, printDelay uint64) (*tracker, *int64, *bytes.Buffer) {
	f, err := state.Open(filepath.Join(t.TempDir(), "ft.state"), state.Options{DataBytes: 1 << 20, LogBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	flows, err := state.NewMap[flowKey, flowStats](f, "flows", tblSize)
	if err != nil {
		t.Fatal(err)
	}
	clock := int64(1e12)
	var out bytes.Buffer
	tr := newTracker(config{dst: 2, printDelay: printDelay}, flows, &out, func() int64 { return clock })
	return tr, &clock, &out
}

func TestTrackerTableAndDisplay(t *testing.T) {
	tr, clock, out := newTestTracker(t, 5)
	a, b := [4]byte{10, 0, 0, 1}, [4]byte{10, 1, 0, 1}
	tr.track(udp(t, a, b, 1000, 53), *clock)
	tr.track(udp(t, b, a, 53, 1000), *clock) // the reply: same flow
	tr.track(udp(t, a, b, 1000, 53), *clock)
	tr.track([]byte{1, 2, 3}, *clock) // not IP: not tracked
	*clock += 3e9
	tr.track(udp(t, a, [4]byte{192, 168, 1, 2}, 7, 9), *clock)
	tr.idle(nil)
	if out.Len() != 0 {
		t.Fatalf("printed before -p seconds: %q", out.String())
	}
	*clock += 2e9 // flow 1 idle 5 s: expired; flow 2 idle 2 s
	tr.idle(nil)
	got := out.String()
	for _, want := range []string{
		"------------------------------\n     Flow Table Contents\n------------------------------\nCurrent capacity: 2 / 100\n\n",
		". Status: Expired\nKey information:\nIP: 10.1.0.1-10.0.0.1 Port: 1000 53 Proto: 17\nPacket count: 3\n\n",
		". Status: Active\nKey information:\nIP: 192.168.1.2-10.0.0.1 Port: 9 7 Proto: 17\nPacket count: 1\n\n",
	} {
		if !strings.Contains(got, want) {
			t.Fatalf("display lacks %q:\n%s", want, got)
		}
	}
	out.Reset()
	*clock += 4e9
	tr.idle(nil)
	if out.Len() != 0 {
		t.Fatalf("printed again after 4 s with -p 5: %q", out.String())
	}
}

// A new flow in a full table clears the expired flows first (and only
// them); with none expired, it is not tracked.
func TestTrackerClearsExpiredWhenFull(t *testing.T) {
	tr, clock, out := newTestTracker(t, 0)
	dst := [4]byte{10, 1, 0, 1}
	src := func(i int) [4]byte { return [4]byte{10, 0, byte(i >> 8), byte(i)} }
	for i := 0; i < tblSize/2; i++ {
		tr.track(udp(t, src(i), dst, 1000, 53), *clock)
	}
	*clock += 6e9
	for i := tblSize / 2; i < tblSize; i++ {
		tr.track(udp(t, src(i), dst, 1000, 53), *clock)
	}
	if n := tr.flows.Len(); n != tblSize || out.Len() != 0 {
		t.Fatalf("%d flows, output %q; want a full table, silently", n, out.String())
	}
	tr.track(udp(t, src(500), dst, 1000, 53), *clock)
	if n := tr.flows.Len(); n != tblSize/2+1 || out.String() != "Clearing expired entries\n" {
		t.Fatalf("after clearing: %d flows, output %q; want %d and the clearing notice", n, out.String(), tblSize/2+1)
	}
	for i := tblSize / 2; i < tblSize; i++ {
		k, _ := tr.key(udp(t, src(i), dst, 1000, 53))
		if _, ok := tr.flows.Get(k); !ok {
			t.Fatalf("active flow %d was cleared", i)
		}
	}
	for i := 1000; tr.flows.Len() < tblSize; i++ {
		tr.track(udp(t, src(i), dst, 1000, 53), *clock)
	}
	out.Reset()
	tr.track(udp(t, src(2000), dst, 1000, 53), *clock)
	if want := "Clearing expired entries\nPacket could not be identified or processed\n"; out.String() != want {
		t.Fatalf("full table, nothing expired: output %q, want %q", out.String(), want)
	}
}

func TestTrackerDoesNotAllocatePerPacket(t *testing.T) {
	tr, clock, _ := newTestTracker(t, 0)
	f := udp(t, [4]byte{10, 0, 0, 1}, [4]byte{10, 1, 0, 1}, 1000, 53)
	tr.track(f, *clock)
	if n := testing.AllocsPerRun(1000, func() { tr.track(f, *clock) }); n != 0 {
		t.Fatalf("track allocates %v times per packet", n)
	}
}

// tableCounts parses the last complete table print in out: each flow's
// key line → its packet count, and the capacity line's count.
func tableCounts(out string) (map[string]uint64, int, bool) {
	i := strings.LastIndex(out, "     Flow Table Contents\n")
	if i < 0 {
		return nil, 0, false
	}
	block := out[i:]
	var stored int
	if _, err := fmt.Sscanf(block[strings.Index(block, "Current capacity:"):], "Current capacity: %d / 100", &stored); err != nil {
		return nil, 0, false
	}
	counts := map[string]uint64{}
	var key string
	for _, line := range strings.Split(block, "\n") {
		if strings.HasPrefix(line, "IP: ") {
			key = line
		}
		if v, ok := strings.CutPrefix(line, "Packet count: "); ok {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return nil, 0, false
			}
			counts[key] = n
		}
	}
	return counts, stored, len(counts) == stored
}

// The flow table is the NF's state: after a SIGKILL, the NF restarted with
// the same instance ID prints the table its predecessor committed and goes
// on counting from it.
func TestFlowTrackerSurvivesSIGKILL(t *testing.T) {
	lab := chaintest.NewLab(t, mgrconfig.DeadNFRetain, []int{1})
	argv := []string{"--", "-r", "1", "--", "-d", "2", "-p", "1"}
	first := lab.Start(t, nil, argv...)
	lab.WaitRunning(t, 1)
	id := lab.Instance(t, first)
	const flows = 6
	send := func() {
		var in [][]byte
		for f := 0; f < flows; f++ {
			for k := 0; k <= f; k++ { // flow f: f+1 packets, half of them replies
				a, b := [4]byte{10, 0, 0, byte(f)}, [4]byte{10, 1, 0, 1}
				if k%2 == 1 {
					in = append(in, udp(t, b, a, 5000, uint16(1000+f)))
				} else {
					in = append(in, udp(t, a, b, uint16(1000+f), 5000))
				}
			}
		}
		lab.Port.Inject(in...)
	}
	send()
	check := func(nf *chaintest.NF, from int, rounds uint64, what string) int {
		t.Helper()
		var off int
		var counts map[string]uint64
		chaintest.WaitFor(t, 10*time.Second, what, func() bool {
			out := nf.Output()
			if from > len(out) {
				return false
			}
			var ok bool
			var stored int
			counts, stored, ok = tableCounts(out[from:])
			if !ok || stored != flows {
				return false
			}
			for f := 0; f < flows; f++ {
				key := fmt.Sprintf("IP: 10.1.0.1-10.0.0.%d Port: 5000 %d Proto: 17", f, 1000+f)
				if counts[key] != rounds*uint64(f+1) {
					return false
				}
			}
			off = len(out)
			return true
		})
		return off
	}
	check(first, 0, 1, "the first NF's table to show every flow")
	first.Kill(t)
	chaintest.WaitFor(t, 10*time.Second, "the manager to see the death", func() bool {
		s := lab.M.Snapshot().NFs
		return len(s) == 0 || len(s) == 1 && s[0].Dead // retained for a restart
	})

	heir := lab.Start(t, nil, append([]string{"--", "-r", "1", "-n", strconv.Itoa(int(id))}, argv[3:]...)...)
	lab.WaitRunning(t, 1)
	if got := lab.Instance(t, heir); got != id {
		t.Fatalf("heir has instance %d, want %d", got, id)
	}
	// Its first print, before any new packet: the table as it was.
	off := check(heir, 0, 1, "the restarted NF's table to show the flows it inherited")
	send()
	check(heir, off, 2, "the restarted NF to count on from the inherited table")
	if err := heir.Stop(t, 10*time.Second); err != nil {
		t.Fatalf("heir: %v\n%s", err, heir.Output())
	}
}

// A SIGKILL in the middle of a stream of packets: whatever burst the NF was
// in is rolled back or forward by its successor, so every packet is
// counted exactly once.
func TestFlowTrackerCountsExactlyOnceAcrossAKillMidStream(t *testing.T) {
	lab := chaintest.NewLab(t, mgrconfig.DeadNFRetain, []int{1})
	argv := []string{"--", "-r", "1", "--", "-d", "2", "-p", "1"}
	first := lab.Start(t, nil, argv...)
	lab.WaitRunning(t, 1)
	id := lab.Instance(t, first)
	const flows, perFlow = 4, 200
	var in [][]byte
	for k := 0; k < perFlow; k++ {
		for f := 0; f < flows; f++ {
			in = append(in, udp(t, [4]byte{10, 0, 0, byte(f)}, [4]byte{10, 1, 0, 1}, uint16(1000+f), 5000))
		}
	}
	lab.Port.Inject(in...)
	chaintest.WaitFor(t, 10*time.Second, "the NF to start on the frames", func() bool {
		s := lab.M.Snapshot().NFs
		return len(s) == 1 && s[0].RX > 0
	})
	first.Kill(t)
	rx := lab.M.Snapshot().NFs[0].RX
	chaintest.WaitFor(t, 10*time.Second, "the manager to see the death", func() bool {
		s := lab.M.Snapshot().NFs
		return len(s) == 0 || len(s) == 1 && s[0].Dead
	})
	heir := lab.Start(t, nil, append([]string{"--", "-r", "1", "-n", strconv.Itoa(int(id))}, argv[3:]...)...)
	chaintest.WaitFor(t, 10*time.Second, "every flow counted exactly once", func() bool {
		counts, stored, ok := tableCounts(heir.Output())
		if !ok || stored != flows {
			return false
		}
		for f := 0; f < flows; f++ {
			if counts[fmt.Sprintf("IP: 10.1.0.1-10.0.0.%d Port: 5000 %d Proto: 17", f, 1000+f)] != perFlow {
				return false
			}
		}
		return true
	})
	t.Logf("killed after the NF had taken %d of %d frames", rx, len(in))
}
