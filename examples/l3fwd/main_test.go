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
	"github.com/reinforce-nfv/reinforce/shm"
	"github.com/reinforce-nfv/reinforce/shm/state"
)

// TestMain turns a child started by chaintest into the NF.
func TestMain(m *testing.M) {
	if argv, ok := chaintest.ChildArgv(); ok {
		os.Exit(run("l3fwd", argv, nfapp.Std()))
	}
	os.Exit(m.Run())
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		args []string
		want config
		err  string
	}{
		{args: nil, want: config{printDelay: 1000000, hashEntries: 4}},
		{args: []string{"-e", "-h", "64", "-p", "2"}, want: config{printDelay: 2, exact: true, hashEntries: 64}},
		{args: []string{"-h", "99999999"}, err: "Option -h must be at most 16777216, not 99999999"},
		{args: []string{"-l"}, err: "Unknown option `-l'."}, // in ONVM's usage, not its getopt string
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

func tcpFrame(t testing.TB, src, dst [4]byte, sp, dp uint16) []byte {
	t.Helper()
	b := make([]byte, 128)
	n, err := pkt.BuildTCP4(b, pkt.MAC{2, 0, 0, 0, 0, 0xa}, pkt.MAC{2, 0, 0, 0, 0, 0xb}, src, dst, sp, dp, 8)
	if err != nil {
		t.Fatal(err)
	}
	return b[:n]
}

func newTestRouter(t *testing.T, cfg config, ports string) (*router, *bytes.Buffer) {
	f, err := state.Open(filepath.Join(t.TempDir(), "r.state"), state.Options{DataBytes: 1 << 16, LogBytes: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	ctr, err := counters.OpenFile(f, "l3fwd_stats", maxPorts+1)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := nflib.ParsePorts(ports)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	return newRouter(cfg, ps, ctr, &out), &out
}

func TestLPMRoutes(t *testing.T) {
	r, out := newTestRouter(t, config{printDelay: 6, hashEntries: 4}, "0,1,2,3=aa:bb:cc:dd:ee:ff")
	for _, c := range []struct {
		dst  [4]byte
		in   uint16
		want nflib.Action
	}{
		{[4]byte{1, 1, 1, 9}, 2, nflib.Out(0)},
		{[4]byte{2, 1, 1, 200}, 0, nflib.Out(1)},
		{[4]byte{4, 1, 1, 1}, 0, nflib.Out(3)},
		{[4]byte{5, 1, 1, 1}, 2, nflib.Out(2)}, // port 4 not present: back out of the input port
		{[4]byte{9, 9, 9, 9}, 1, nflib.Out(1)}, // no route: back out of the input port
		{[4]byte{1, 1, 2, 1}, 3, nflib.Out(3)}, // 1.1.2.1 is not in 1.1.1.0/24
	} {
		m := &shm.Meta{Port: c.in}
		if got, _, _ := r.route(tcpFrame(t, [4]byte{10, 0, 0, 1}, c.dst, 1, 2), m); got != c.want {
			t.Errorf("to %v from port %d: %v, want %v", c.dst, c.in, got, c.want)
		}
	}
	if got, _, _ := r.route([]byte{1, 2, 3}, &shm.Meta{}); got != nflib.Drop {
		t.Errorf("non-IPv4: %v, want drop", got)
	}
	want := "\nPort statistics ====================================" +
		"\nStatistics for port 0 ------------------------------\nPackets forwarded to:                    1" +
		"\nStatistics for port 1 ------------------------------\nPackets forwarded to:                    2" +
		"\nStatistics for port 2 ------------------------------\nPackets forwarded to:                    1" +
		"\nStatistics for port 3 ------------------------------\nPackets forwarded to:                    1" +
		"\nAggregate statistics ===============================\nTotal packets forwarded:                 5" +
		"\nPackets dropped:                  0\n====================================================\n\n\n"
	if !strings.HasSuffix(out.String(), want) || !strings.Contains(out.String(), "Port 3, MAC address: AA:BB:CC:DD:EE:FF\n") ||
		!strings.Contains(out.String(), "Longest prefix match enabled.") {
		t.Errorf("output %q\nwant it to end with %q", out.String(), want)
	}
	f := tcpFrame(t, [4]byte{10, 0, 0, 1}, [4]byte{2, 1, 1, 1}, 1, 2)
	if n := testing.AllocsPerRun(100, func() { r.route(f, &shm.Meta{}) }); n != 0 {
		t.Errorf("route allocates %v", n)
	}
}

func TestExactMatchRoutes(t *testing.T) {
	r, _ := newTestRouter(t, config{exact: true, hashEntries: 4}, "0,1,2,3")
	m := &shm.Meta{Port: 2}
	for _, c := range []struct {
		src, dst [4]byte
		sp, dp   uint16
		want     nflib.Action
	}{
		{[4]byte{101, 0, 0, 0}, [4]byte{100, 10, 0, 1}, 0, 1, nflib.Out(0)},
		{[4]byte{201, 0, 0, 0}, [4]byte{200, 20, 0, 1}, 1, 0, nflib.Out(1)},
		{[4]byte{211, 0, 0, 0}, [4]byte{200, 40, 0, 1}, 2, 0, nflib.Out(3)},
		{[4]byte{211, 0, 0, 0}, [4]byte{200, 40, 0, 1}, 2, 9, nflib.Out(1)}, // a miss: port 1
	} {
		if got, _, _ := r.route(tcpFrame(t, c.src, c.dst, c.sp, c.dp), m); got != c.want {
			t.Errorf("%v:%d → %v:%d: %v, want %v", c.src, c.sp, c.dst, c.dp, got, c.want)
		}
	}
	many := emTable(8)
	// Flow i: route i%4 with destination <route's first byte>.0.0.<i/4>.
	if p, ok := many[emKey{lpm4(101, 0, 0, 0), lpm4(101, 0, 0, 1), 0, 1, 6}]; len(many) != 8 || !ok || p != 0 {
		t.Errorf("generated table %v lacks flow 4 to port 0", many)
	}
	if p, ok := many[emKey{lpm4(211, 0, 0, 0), lpm4(211, 0, 0, 1), 2, 0, 6}]; !ok || p != 3 {
		t.Errorf("generated table %v lacks flow 7 to port 3", many)
	}
}

func lpm4(a, b, c, d byte) uint32 { return uint32(a)<<24 | uint32(b)<<16 | uint32(c)<<8 | uint32(d) }

// In a chain with three ports: every frame leaves through the port its
// destination's prefix names, with the MACs rewritten for that port.
func TestL3fwdRoutesByPrefixInAChain(t *testing.T) {
	lab := chaintest.NewMultiLab(t, 3, mgrconfig.DeadNFReclaim, []int{1})
	lab.Lab().Start(t, []string{nflib.PortsEnv + "=0,1,2=aa:bb:cc:00:00:02"}, "--", "-r", "1", "--", "-p", "0")
	lab.Lab().WaitRunning(t, 1)
	want := [3]int{}
	var in [][]byte
	for i := 0; i < 30; i++ {
		dsts := [][4]byte{{1, 1, 1, byte(i)}, {2, 1, 1, byte(i)}, {3, 1, 1, byte(i)}, {7, 1, 1, byte(i)}, {10, 0, 0, byte(i)}}
		for _, d := range dsts {
			in = append(in, tcpFrame(t, [4]byte{192, 168, 0, 1}, d, 1000, 80))
		}
		want[0] += 3 // 1.1.1/24, 7.1.1/24 (port 6 absent) and the miss go back out of port 0
		want[1]++
		want[2]++
	}
	in = append(in, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06, 0, 1}) // not IPv4: dropped
	lab.Ports[0].Inject(in...)
	chaintest.WaitFor(t, 10e9, "every routed frame out", func() bool {
		return len(lab.Ports[0].Sent())+len(lab.Ports[1].Sent())+len(lab.Ports[2].Sent()) >= 150
	})
	srcMAC := [3]string{"\x02\x00\x00\x00\x00\x00", "\x02\x00\x00\x00\x00\x01", "\xaa\xbb\xcc\x00\x00\x02"}
	for p := 0; p < 3; p++ {
		sent := lab.Ports[p].Sent()
		if len(sent) != want[p] {
			t.Errorf("port %d sent %d frames, want %d", p, len(sent), want[p])
		}
		for _, f := range sent {
			d := f[30]
			ok := p == 1 && d == 2 || p == 2 && d == 3 || p == 0 && (d == 1 || d == 7 || d == 10)
			if !ok {
				t.Fatalf("frame to %v left through port %d", f[30:34], p)
			}
			if string(f[0:6]) != "\x02\x00\x00\x00\x00"+string(rune(p)) || string(f[6:12]) != srcMAC[p] {
				t.Fatalf("port %d frame MACs % x → % x", p, f[6:12], f[0:6])
			}
		}
	}
}

// Exact-match mode in a chain: DPDK's four example flows leave through
// their ports 0..3, any other flow through port 1.
func TestL3fwdExactMatchInAChain(t *testing.T) {
	lab := chaintest.NewMultiLab(t, 4, mgrconfig.DeadNFReclaim, []int{1})
	lab.Lab().Start(t, []string{nflib.PortsEnv + "=0,1,2,3"}, "--", "-r", "1", "--", "-e", "-p", "0")
	lab.Lab().WaitRunning(t, 1)
	var in [][]byte
	for i := 0; i < 10; i++ {
		in = append(in,
			tcpFrame(t, [4]byte{101, 0, 0, 0}, [4]byte{100, 10, 0, 1}, 0, 1),
			tcpFrame(t, [4]byte{201, 0, 0, 0}, [4]byte{200, 20, 0, 1}, 1, 0),
			tcpFrame(t, [4]byte{111, 0, 0, 0}, [4]byte{100, 30, 0, 1}, 0, 2),
			tcpFrame(t, [4]byte{211, 0, 0, 0}, [4]byte{200, 40, 0, 1}, 2, 0),
			tcpFrame(t, [4]byte{211, 0, 0, 0}, [4]byte{200, 40, 0, 1}, 2, 7)) // a miss
	}
	lab.Ports[0].Inject(in...)
	chaintest.WaitFor(t, 10e9, "50 frames out", func() bool {
		n := 0
		for _, p := range lab.Ports {
			n += len(p.Sent())
		}
		return n >= 50
	})
	for p, want := range []int{10, 20, 10, 10} {
		sent := lab.Ports[p].Sent()
		if len(sent) != want {
			t.Errorf("port %d sent %d frames, want %d", p, len(sent), want)
		}
		for _, f := range sent {
			if f[26] != []byte{101, 201, 111, 211}[p] && !(p == 1 && f[37] == 7) {
				t.Errorf("port %d sent a frame from %v to port %d", p, f[26:30], int(f[36])<<8|int(f[37]))
			}
		}
	}
}
