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
	"github.com/reinforce-nfv/reinforce/pkt"
	"github.com/reinforce-nfv/reinforce/shm/state"
)

// TestMain turns a child started by chaintest into the NF.
func TestMain(m *testing.M) {
	if argv, ok := chaintest.ChildArgv(); ok {
		if chaintest.IsNext(argv) {
			os.Exit(chaintest.RunNext(argv[1:]))
		}
		os.Exit(run("payload_scan", argv, nfapp.Std()))
	}
	os.Exit(m.Run())
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		args []string
		want config
		err  string
	}{
		{args: []string{"-d", "2", "-s", "evil"}, want: config{dst: 2, term: "evil", printDelay: 10000000}},
		{args: []string{"-d2", "-s", "a b", "-i", "-p", "3"}, want: config{dst: 2, term: "a b", printDelay: 3, inverse: true}},
		{args: []string{"-s", "x"}, err: "Payload NF requires a destination NF with the -d flag."},
		{args: []string{"-d", "1"}, err: "Payload NF requires a search term string with the -s flag."},
		{args: []string{"-d", "1", "-s", ""}, err: "Payload NF requires a search term string with the -s flag."},
		{args: []string{"-d", "1", "-s", "x", "-q"}, err: "Unknown option `-q'."},
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

// frame builds a UDP (tcp false) or TCP frame carrying payload.
func frame(t testing.TB, tcp bool, payload string) []byte {
	t.Helper()
	b := make([]byte, 256)
	build := pkt.BuildUDP4
	if tcp {
		build = pkt.BuildTCP4
	}
	n, err := build(b, pkt.MAC{2, 0, 0, 0, 0, 1}, pkt.MAC{2, 0, 0, 0, 0, 2}, [4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 1000, 80, len(payload))
	if err != nil {
		t.Fatal(err)
	}
	copy(b[n-len(payload):], payload)
	var h pkt.Headers
	if err := h.Decode(b[:n]); err != nil {
		t.Fatal(err)
	}
	h.SetL4Checksum(b[:n])
	return b[:n]
}

func newTestScanner(t *testing.T, cfg config) (*scanner, *bytes.Buffer) {
	f, err := state.Open(filepath.Join(t.TempDir(), "s.state"), state.Options{DataBytes: 1 << 16, LogBytes: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	ctr, err := counters.OpenFile(f, "scan_stats", nCounters)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	return newScanner(cfg, ctr, &out), &out
}

func TestVerdicts(t *testing.T) {
	icmp := make([]byte, 64)
	if _, err := pkt.BuildICMP4Echo(icmp, pkt.MAC{1}, pkt.MAC{2}, [4]byte{1, 1, 1, 1}, [4]byte{2, 2, 2, 2}, 1, 1, 10); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		f        []byte
		fwd, inv bool // forwarded normally, with -i
	}{
		{frame(t, false, "GET /evil HTTP/1.1"), true, false},
		{frame(t, true, "xx\x00evil"), true, false}, // past a zero byte too
		{frame(t, false, "benign"), false, true},
		{frame(t, true, "evi"), false, true},
		{icmp[:42+10], false, false},
		{[]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x86, 0xdd}, false, false},
	}
	for _, inverse := range []bool{false, true} {
		s, out := newTestScanner(t, config{dst: 3, term: "evil", printDelay: 6, inverse: inverse})
		for i, c := range cases {
			want := nflib.Drop
			if c.fwd && !inverse || c.inv && inverse {
				want = nflib.ToNF(3)
			}
			if got := s.process(c.f); got != want {
				t.Errorf("inverse %v, case %d: verdict %v, want %v", inverse, i, got, want)
			}
		}
		wantStats := "\x1b[2J\x1b[1;1HSearch term: evil\nPackets accepted: 2\nPackets dropped: 2\nPackets not IPv4: 0\n" +
			"Packets not UDP/TCP: 1\nPackets total: 5\n\n"
		if out.String() != wantStats {
			t.Errorf("inverse %v: stats %q, want %q", inverse, out.String(), wantStats)
		}
		if s.ctr.Get(cNotIPv4) != 1 {
			t.Errorf("not IPv4 counted %d times, want 1", s.ctr.Get(cNotIPv4))
		}
	}
	s, _ := newTestScanner(t, config{dst: 3, term: "evil"})
	f := frame(t, false, "GET /evil HTTP/1.1")
	if n := testing.AllocsPerRun(100, func() { s.process(f) }); n != 0 {
		t.Errorf("process allocates %v per packet", n)
	}
}

// In a chain: service 1 scans and sends matches to service 2, which
// passes them out of the port.
func TestPayloadScanInAChain(t *testing.T) {
	for _, inverse := range []bool{false, true} {
		lab := chaintest.NewLab(t, mgrconfig.DeadNFReclaim, []int{1})
		args := []string{"--", "-r", "1", "--", "-d", "2", "-s", "attack"}
		if inverse {
			args = append(args, "-i")
		}
		nf := lab.Start(t, nil, args...)
		lab.Start(t, nil, chaintest.NextWord, "--", "-r", "2", "--")
		lab.WaitRunning(t, 2)
		want := map[string]bool{}
		var in [][]byte
		for i := 0; i < 30; i++ {
			hit := frame(t, i%2 == 0, strings.Repeat("z", i)+"attack"+strings.Repeat("z", i))
			miss := frame(t, i%2 == 1, strings.Repeat("a", i)+"attac")
			in = append(in, hit, miss)
			if inverse {
				want[string(miss)] = true
			} else {
				want[string(hit)] = true
			}
		}
		lab.Port.Inject(in...)
		for _, f := range lab.WaitSent(t, len(want)) {
			if !want[string(f)] {
				t.Fatalf("inverse %v: frame with payload %q passed", inverse, f[42:])
			}
		}
		if err := nf.Stop(t, 10e9); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(nf.Output(), "Search term: attack\n") {
			t.Errorf("output lacks the search term:\n%s", nf.Output())
		}
	}
}
