package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/examples/internal/chaintest"
	"github.com/reinforce-nfv/reinforce/examples/internal/counters"
	"github.com/reinforce-nfv/reinforce/examples/internal/nfapp"
	mgrconfig "github.com/reinforce-nfv/reinforce/manager/config"
	"github.com/reinforce-nfv/reinforce/shm"
	"github.com/reinforce-nfv/reinforce/shm/state"
)

// TestMain turns a child started by chaintest into the NF.
func TestMain(m *testing.M) {
	if argv, ok := chaintest.ChildArgv(); ok {
		if chaintest.IsOut(argv) {
			os.Exit(chaintest.RunOut(argv[1:]))
		}
		os.Exit(run("load_generator", argv, nfapp.Std()))
	}
	os.Exit(m.Run())
}

func TestParseArgs(t *testing.T) {
	def := config{dst: 2, printDelay: 0.1, rate: 3000000, size: 14}
	tests := []struct {
		args []string
		want config
		err  string
	}{
		{args: []string{"-d", "2"}, want: def},
		{args: []string{"-d", "0", "-o", "-p", "1.5", "-t", "1000", "-s", "64", "-m", "aa:bb:cc:dd:ee:ff"},
			want: config{dst: 0, printDelay: 1.5, rate: 1000, size: 64, out: true, dstMAC: [6]byte{0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}}},
		{args: []string{"-t", "5"}, err: "Load generator NF requires a destination NF with the -d flag."},
		{args: []string{"-d", "0"}, err: "Option -d must name a service ID from 1 to 31 (or a port, with -o)"},
		{args: []string{"-d", "1", "-s", "13"}, err: "Load generator NF requires a packet size of at least 14."},
		{args: []string{"-d", "1", "-p", "x"}, err: `Option -p needs a number of seconds, not "x"`},
	}
	for _, tt := range tests {
		got, err := parseArgs(tt.args)
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if got != tt.want || msg != tt.err {
			t.Errorf("parseArgs(%q) = %+v, %q; want %+v, %q", tt.args, got, msg, tt.want, tt.err)
		}
	}
}

func TestReceiveMeasuresAndDisplays(t *testing.T) {
	f, err := state.Open(filepath.Join(t.TempDir(), "g.state"), state.Options{DataBytes: 1 << 16, LogBytes: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctr, err := counters.OpenFile(f, "loadgen_stats", nCounters)
	if err != nil {
		t.Fatal(err)
	}
	clock := int64(1e9)
	var out bytes.Buffer
	g := newGenerator(config{dst: 2, printDelay: 1, rate: 10, size: 14}, [6]byte{2}, ctr, &out, func() int64 { return clock })
	g.setup(nil)
	pk := make([]byte, 22)
	for i, ns := range []uint64{uint64(clock - 4000), uint64(clock - 2000)} {
		binary.NativeEndian.PutUint64(pk[14:], ns)
		g.receive(&shm.Meta{Flags: loadGenBit}, pk)
		if ctr.Get(cReceived) != uint64(i+1) {
			t.Fatalf("received %d, want %d", ctr.Get(cReceived), i+1)
		}
	}
	g.receive(&shm.Meta{}, pk) // not ours
	clock += 2e9
	g.display(clock)
	for _, want := range []string{"Time elapsed: 2.00\n", "Rx total packets: 2 \n", "Rx rate (average): 1.00\n",
		"Latency (current mean): 3.00 us\n", "Tx rate (set): 10\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("display lacks %q:\n%s", want, out.String())
		}
	}
}

// At -t 2000 the generator sends about 2000 packets a second to service
// 2, which sends them out: the right frames, at about the right rate.
func TestLoadGeneratorGeneratesAtItsRate(t *testing.T) {
	const rate = 2000
	lab := chaintest.NewLab(t, mgrconfig.DeadNFReclaim, []int{1})
	lab.Start(t, nil, chaintest.OutWord, "--", "-r", "2", "--")
	lab.WaitRunning(t, 1)
	lg := lab.Start(t, nil, "--", "-r", "1", "--", "-d", "2", "-t", "2000", "-s", "60", "-m", "aa:bb:cc:dd:ee:ff", "-p", "0.2")
	lab.WaitRunning(t, 2)
	chaintest.WaitFor(t, 10*time.Second, "the first frames", func() bool { return len(lab.Port.Sent()) > 0 })
	n0, t0 := len(lab.Port.Sent()), time.Now()
	time.Sleep(time.Second)
	n1, t1 := len(lab.Port.Sent()), time.Now()
	got := float64(n1-n0) / t1.Sub(t0).Seconds()
	t.Logf("%d frames in %v: %.0f/s (set: %d/s)", n1-n0, t1.Sub(t0), got, rate)
	if got < rate*0.7 || got > rate*1.3 {
		t.Errorf("rate %.0f frames/s, want %d ±30%%", got, rate)
	}
	f := lab.Port.Sent()[0]
	if len(f) != 68 || string(f[:14]) != "\xaa\xbb\xcc\xdd\xee\xff\x02\x00\x00\x00\x00\x00\x88\xb5" {
		t.Errorf("frame % x: want 68 bytes to aa:bb:cc:dd:ee:ff, EtherType 88b5", f)
	}
	if err := lg.Stop(t, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(lg.Output(), "Tx rate (set): 2000\n") {
		t.Errorf("no display:\n%s", lg.Output())
	}
}

// Sent to itself, every packet comes back: its latency is measured.
func TestLoadGeneratorMeasuresRoundTrips(t *testing.T) {
	lab := chaintest.NewLab(t, mgrconfig.DeadNFReclaim, []int{1})
	lg := lab.Start(t, nil, "--", "-r", "1", "--", "-d", "1", "-t", "1000", "-p", "0.1")
	lab.WaitRunning(t, 1)
	chaintest.WaitFor(t, 10*time.Second, "round trips counted", func() bool {
		i := strings.LastIndex(lg.Output(), "Rx total packets: ")
		return i >= 0 && !strings.HasPrefix(lg.Output()[i:], "Rx total packets: 0 ")
	})
	if err := lg.Stop(t, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(lg.Output(), "Latency (current mean): ") || len(lab.Port.Sent()) != 0 {
		t.Errorf("%d frames left the chain; output:\n%s", len(lab.Port.Sent()), lg.Output())
	}
}
