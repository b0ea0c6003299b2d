package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reinforce-nfv/reinforce/examples/internal/chaintest"
	"github.com/reinforce-nfv/reinforce/examples/internal/counters"
	"github.com/reinforce-nfv/reinforce/examples/internal/nfapp"
	mgrconfig "github.com/reinforce-nfv/reinforce/manager/config"
	"github.com/reinforce-nfv/reinforce/nflib"
	"github.com/reinforce-nfv/reinforce/shm"
	"github.com/reinforce-nfv/reinforce/shm/state"
)

// TestMain turns a child started by chaintest into the NF.
func TestMain(m *testing.M) {
	if argv, ok := chaintest.ChildArgv(); ok {
		os.Exit(run("l2fwd", argv, nfapp.Std()))
	}
	os.Exit(m.Run())
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		args []string
		want config
		err  string
	}{
		{args: nil, want: config{printDelay: 1000000}},
		{args: []string{"-nm", "-p", "7"}, want: config{printDelay: 7, noMAC: true, printMAC: true}},
		{args: []string{"-d", "1"}, err: "Unknown option `-d'."},
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

func newTestSwitch(t *testing.T, cfg config, ports string) (*l2switch, *bytes.Buffer) {
	f, err := state.Open(filepath.Join(t.TempDir(), "s.state"), state.Options{DataBytes: 1 << 16, LogBytes: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	ctr, err := counters.OpenFile(f, "l2fwd_stats", 2*maxPorts+1)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := nflib.ParsePorts(ports)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	return newSwitch(cfg, ps, ctr, &out), &out
}

func TestPairing(t *testing.T) {
	s, out := newTestSwitch(t, config{printDelay: 5, printMAC: true}, "0,1,4,2,3")
	for _, c := range []struct {
		in   uint16
		want nflib.Action
	}{{0, nflib.Out(1)}, {1, nflib.Out(0)}, {4, nflib.Out(2)}, {2, nflib.Out(4)}, {3, nflib.Out(3)}, {5, nflib.Drop}} {
		if got, _, _ := s.forward(&shm.Meta{Port: c.in}); got != c.want {
			t.Errorf("from port %d: %v, want %v", c.in, got, c.want)
		}
	}
	got := out.String()
	for _, want := range []string{"Port 4, MAC address: 02:00:00:00:00:04\n", "Port 3 forwards to port 3\n",
		"\nStatistics for port 0 ------------------------------\nPackets sent:                        1\nPackets received:                    1\nForwarding to port:                  1",
		"\nTotal packets sent:                  4\nTotal packets received:              4\nTotal packets dropped:               0\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}

// In a chain with three ports: 0 and 1 are paired, 2 forwards to itself.
func TestL2fwdForwardsByPortPairInAChain(t *testing.T) {
	lab := chaintest.NewMultiLab(t, 3, mgrconfig.DeadNFReclaim, []int{1})
	lab.Lab().Start(t, []string{nflib.PortsEnv + "=0,1,2"}, "--", "-r", "1", "--", "-p", "0")
	lab.Lab().WaitRunning(t, 1)
	mk := func(i int, port byte) []byte {
		f := chaintest.PlainFrame(t, uint32(i), 20)
		f[20] = port // a mark in the IPv4 ID: where it came from
		return f
	}
	for i := 0; i < 20; i++ {
		for p := 0; p < 3; p++ {
			lab.Ports[p].Inject(mk(i, byte(p)))
		}
	}
	chaintest.WaitFor(t, 10e9, "60 frames out", func() bool {
		return len(lab.Ports[0].Sent())+len(lab.Ports[1].Sent())+len(lab.Ports[2].Sent()) >= 60
	})
	from := map[int]byte{0: 1, 1: 0, 2: 2}
	for p := 0; p < 3; p++ {
		sent := lab.Ports[p].Sent()
		if len(sent) != 20 {
			t.Errorf("port %d sent %d frames, want 20", p, len(sent))
		}
		for _, f := range sent {
			if f[20] != from[p] {
				t.Fatalf("port %d sent a frame from port %d, want only from %d", p, f[20], from[p])
			}
			if want := "\x02\x00\x00\x00\x00" + string(rune(p)) + "\x02\x00\x00\x00\x00" + string(rune(p)); string(f[:12]) != want {
				t.Fatalf("port %d frame MACs % x, want % x", p, f[:12], want)
			}
		}
	}
}
