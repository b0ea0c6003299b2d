package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reinforce-nfv/reinforce/examples/internal/chaintest"
	"github.com/reinforce-nfv/reinforce/examples/internal/nfapp"
	mgrconfig "github.com/reinforce-nfv/reinforce/manager/config"
	"github.com/reinforce-nfv/reinforce/nflib"
	"github.com/reinforce-nfv/reinforce/pkt"
	"github.com/reinforce-nfv/reinforce/shm"
)

// TestMain turns a child started by chaintest into the NF.
func TestMain(m *testing.M) {
	if argv, ok := chaintest.ChildArgv(); ok {
		if chaintest.IsNext(argv) {
			os.Exit(chaintest.RunNext(argv[1:]))
		}
		os.Exit(run("nf_router", argv, nfapp.Std()))
	}
	os.Exit(m.Run())
}

// routeConf is ONVM's examples/nf_router/route.conf layout.
const routeConf = "LIST_SIZE 3\n10.0.0.1 2\n10.0.0.2 3\n10.0.0.1 3\n"

func TestParseRoutes(t *testing.T) {
	rs, err := parseRoutes([]byte(routeConf))
	if err != nil {
		t.Fatal(err)
	}
	want := []route{{[4]byte{10, 0, 0, 1}, 2}, {[4]byte{10, 0, 0, 2}, 3}, {[4]byte{10, 0, 0, 1}, 3}}
	if len(rs) != 3 || rs[0] != want[0] || rs[1] != want[1] || rs[2] != want[2] {
		t.Fatalf("routes %+v, want %+v", rs, want)
	}
	for in, msg := range map[string]string{
		"":                       "Error parsing config, need at least one forward NF configuration",
		"LIST_SIZE 0":            "Error parsing config, need at least one forward NF configuration",
		"LIST_SIZE 2\n1.2.3.4 2": "Invalid backend config structure: 2 routes announced, 1 found",
		"LIST_SIZE 1\n1.2.3 2":   `Error parsing config IP address #0: "1.2.3"`,
		"LIST_SIZE 1\n1.2.3.4 0": `Error parsing config dest #0: "0" is not a service ID from 1 to 31`,
	} {
		if _, err := parseRoutes([]byte(in)); err == nil || err.Error() != msg {
			t.Errorf("parseRoutes(%q) = %v, want %q", in, err, msg)
		}
	}
	if _, err := parseArgs([]string{"-p", "1"}); err == nil || err.Error() != "Router NF requires a router config file with the -f flag." {
		t.Errorf("no -f: %v", err)
	}
}

func udpTo(t testing.TB, dst [4]byte) []byte {
	b := make([]byte, 128)
	n, err := pkt.BuildUDP4(b, pkt.MAC{2, 0, 0, 0, 0, 1}, pkt.MAC{2, 0, 0, 0, 0, 2}, [4]byte{192, 168, 1, 1}, dst, 1, 2, 10)
	if err != nil {
		t.Fatal(err)
	}
	return b[:n]
}

func arpFor(target [4]byte) []byte {
	f := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06,
		0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 192, 168, 1, 1, 0, 0, 0, 0, 0, 0}
	return append(f, target[:]...)
}

func TestProcess(t *testing.T) {
	rs, _ := parseRoutes([]byte(routeConf))
	var out bytes.Buffer
	r := newRouter(config{printDelay: 2}, rs, &out)
	m := &shm.Meta{Port: 0, Len: 52}
	for i, c := range []struct {
		f    []byte
		want nflib.Action
	}{
		{udpTo(t, [4]byte{10, 0, 0, 1}), nflib.ToNF(2)}, // the first of two routes wins
		{udpTo(t, [4]byte{10, 0, 0, 2}), nflib.ToNF(3)},
		{udpTo(t, [4]byte{10, 0, 0, 3}), nflib.Drop},
		{arpFor([4]byte{10, 0, 0, 2}), nflib.ToNF(3)},
		{arpFor([4]byte{10, 0, 0, 9}), nflib.Drop},
		{[]byte{1, 2, 3}, nflib.Drop},
	} {
		if got := r.process(m, c.f); got != c.want {
			t.Errorf("case %d: %v, want %v", i, got, c.want)
		}
	}
	if !strings.Contains(out.String(), "PACKETS\n-----\nPort : 0\nSize : 52\nN°   : 2\n") || strings.Count(out.String(), "PACKETS") != 1 {
		t.Errorf("std print: %q", out.String())
	}
}

// In a chain: 10.0.0.1 goes to service 2, 10.0.0.2 to service 3, both of
// which pass packets on to the end of the chain (port 0); the manager's
// counters say which service saw what.
func TestRouterRoutesPerItsFileInAChain(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "route.conf")
	if err := os.WriteFile(conf, []byte(routeConf), 0o644); err != nil {
		t.Fatal(err)
	}
	lab := chaintest.NewLab(t, mgrconfig.DeadNFReclaim, []int{1})
	rt := lab.Start(t, nil, "--", "-r", "1", "--", "-f", conf, "-p", "0")
	n2 := lab.Start(t, nil, chaintest.NextWord, "--", "-r", "2", "--")
	n3 := lab.Start(t, nil, chaintest.NextWord, "--", "-r", "3", "--")
	lab.WaitRunning(t, 3)
	var in [][]byte
	for i := 0; i < 25; i++ {
		in = append(in, udpTo(t, [4]byte{10, 0, 0, 1}), udpTo(t, [4]byte{10, 0, 0, 2}), udpTo(t, [4]byte{10, 0, 0, 2}),
			udpTo(t, [4]byte{10, 0, 0, 7}))
	}
	in = append(in, arpFor([4]byte{10, 0, 0, 1}), arpFor([4]byte{10, 9, 9, 9}))
	lab.Port.Inject(in...)
	// 10.0.0.1 and its ARP via service 2; 10.0.0.2 via 3.
	out := lab.WaitSent(t, 25+1+50)
	rx := map[uint16]uint64{}
	for _, s := range lab.M.Snapshot().NFs {
		rx[s.Instance] = s.RX
	}
	if got := rx[lab.Instance(t, n2)]; got != 26 {
		t.Errorf("service 2 received %d packets, want 26", got)
	}
	if got := rx[lab.Instance(t, n3)]; got != 50 {
		t.Errorf("service 3 received %d packets, want 50", got)
	}
	for _, f := range out {
		if len(f) > 33 && f[12] == 8 && f[13] == 0 && f[33] != 1 && f[33] != 2 {
			t.Fatalf("a frame to %v left the chain", f[30:34])
		}
	}
	if err := rt.Stop(t, 10e9); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rt.Output(), "\nDest config (3):\n10.0.0.1  2\n10.0.0.2  3\n10.0.0.1  3\n") {
		t.Errorf("output lacks the dest config:\n%s", rt.Output())
	}
}
