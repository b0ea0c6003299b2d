package main

import (
	"bytes"
	"encoding/binary"
	"io"
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
		os.Exit(run("load_balancer", argv, nfapp.Std()))
	}
	os.Exit(m.Run())
}

const (
	ifacesConf = "LIST_SIZE 2\n# name port ip [mac]\ndpdk0 0 10.0.0.37 02:1b:00:00:00:00\ndpdk1 1 11.0.0.37\n"
	serverConf = "LIST_SIZE 3\n11.0.0.1 02:5e:00:00:00:01\n11.0.0.2 02:5e:00:00:00:02\n11.0.0.3 02:5e:00:00:00:03\n"
)

var (
	lbClientIP  = [4]byte{10, 0, 0, 37}
	lbClientMAC = pkt.MAC{0x02, 0x1b, 0, 0, 0, 0}
	lbServerMAC = pkt.MAC{0x02, 0, 0, 0, 0, 1} // port 1's default
	backends    = map[[4]byte]pkt.MAC{
		{11, 0, 0, 1}: {0x02, 0x5e, 0, 0, 0, 1}, {11, 0, 0, 2}: {0x02, 0x5e, 0, 0, 0, 2}, {11, 0, 0, 3}: {0x02, 0x5e, 0, 0, 0, 3},
	}
)

func writeConfigs(t *testing.T) string {
	dir := t.TempDir()
	for name, text := range map[string]string{"ifaces.conf": ifacesConf, "server.conf": serverConf} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestParseConfigs(t *testing.T) {
	dir := writeConfigs(t)
	cfg, err := parseArgs([]string{"-c", "dpdk0", "-s", "dpdk1", "-f", filepath.Join(dir, "server.conf"), "-i", filepath.Join(dir, "ifaces.conf")})
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.load(); err != nil {
		t.Fatal(err)
	}
	if cfg.client.port != 0 || cfg.client.ip != lbClientIP || pkt.MAC(cfg.client.mac) != lbClientMAC ||
		cfg.server.port != 1 || pkt.MAC(cfg.server.mac) != lbServerMAC || len(cfg.backends) != 3 ||
		cfg.backends[2].ip != [4]byte{11, 0, 0, 3} {
		t.Fatalf("config %+v", cfg)
	}
	for _, tt := range []struct {
		data, err string
	}{
		{"", `want "LIST_SIZE n" first`},
		{"10.0.0.1 02:00:00:00:00:01\n", "Error parsing config, need at least one server configurations"},
		{"LIST_SIZE 0\n", "Error parsing config, need at least one server configurations"},
		{"LIST_SIZE 2\n10.0.0.1 02:00:00:00:00:01\n", "LIST_SIZE says 2 entries, the file has 1"},
		{"LIST_SIZE 1\n10.0.0.x 02:00:00:00:00:01\n", `Error parsing config IP address #0: "10.0.0.x" is not an IPv4 address`},
		{"LIST_SIZE 1\n10.0.0.1 zz\n", `Error parsing config MAC address #0: "zz"`},
	} {
		if _, err := parseServers([]byte(tt.data)); err == nil || err.Error() != tt.err {
			t.Errorf("parseServers(%q) = %v, want %q", tt.data, err, tt.err)
		}
	}
	if _, err := parseArgs([]string{"-c", "a", "-s", "b"}); err == nil || err.Error() != "Load balancer NF requires a backend server config file." {
		t.Errorf("no -f: %v", err)
	}
}

// frame builds a TCP or UDP frame from (smac, src:sp) to (dmac, dst:dp).
func frame(t *testing.T, tcp bool, smac, dmac pkt.MAC, src, dst [4]byte, sp, dp uint16) []byte {
	b := make([]byte, 256)
	var n int
	var err error
	if tcp {
		n, err = pkt.BuildTCP4(b, smac, dmac, src, dst, sp, dp, 30)
	} else {
		n, err = pkt.BuildUDP4(b, smac, dmac, src, dst, sp, dp, 30)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b[:n]
}

func checkValid(t *testing.T, f []byte) {
	t.Helper()
	var h pkt.Headers
	if err := h.Decode(f); err != nil || !h.VerifyIPv4Checksum(f) || !h.VerifyL4Checksum(f) {
		t.Fatalf("frame with a bad checksum (decode %v): % x", err, f)
	}
}

func ip4(f []byte, off int) [4]byte { return [4]byte(f[off : off+4]) }

// Clients' flows on port 0 are spread round robin over the three backends
// and leave by port 1 addressed to their backend; the backends' answers
// on port 1 leave by port 0 from the balancer's address to the client's
// MAC; checksums are valid throughout; non-IP frames are dropped.
func TestSpreadsFlowsAndRewritesHeaders(t *testing.T) {
	dir := writeConfigs(t)
	lab := chaintest.NewMultiLab(t, 2, mgrconfig.DeadNFReclaim, []int{1})
	l := lab.Lab()
	nf := l.Start(t, nil, "--", "-r", "1", "--", "-c", "dpdk0", "-s", "dpdk1",
		"-f", filepath.Join(dir, "server.conf"), "-i", filepath.Join(dir, "ifaces.conf"), "-p", "1")
	l.WaitRunning(t, 1)

	const flows, perFlow = 6, 3
	clientMAC := func(i int) pkt.MAC { return pkt.MAC{0x02, 0xcc, 0, 0, 0, byte(i)} }
	clientIP := func(i int) [4]byte { return [4]byte{192, 168, 0, byte(1 + i)} }
	var in [][]byte
	for k := 0; k < perFlow; k++ {
		for i := 0; i < flows; i++ {
			in = append(in, frame(t, i%2 == 0, clientMAC(i), lbClientMAC, clientIP(i), lbClientIP, uint16(40000+i), 80))
		}
	}
	lab.Ports[0].Inject(append(in, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 9, 0x08, 0x06, 0, 0})...)
	chaintest.WaitFor(t, 10*time.Second, "every client frame out of port 1", func() bool { return len(lab.Ports[1].Sent()) >= len(in) })
	time.Sleep(20 * time.Millisecond)
	out := lab.Ports[1].Sent()
	if len(out) != len(in) || len(lab.Ports[0].Sent()) != 0 {
		t.Fatalf("%d frames out of port 1 (want %d), %d out of port 0 (want 0)", len(out), len(in), len(lab.Ports[0].Sent()))
	}
	backendOf := map[uint16][4]byte{} // client source port → backend
	perBackend := map[[4]byte]int{}
	for _, f := range out {
		checkValid(t, f)
		sp := binary.BigEndian.Uint16(f[pkt.OffSrcPort:])
		be := ip4(f, pkt.OffIPv4Dst)
		mac, ok := backends[be]
		if !ok {
			t.Fatalf("frame to %v, not a backend", be)
		}
		if pkt.MAC(f[0:6]) != mac || pkt.MAC(f[6:12]) != lbServerMAC {
			t.Fatalf("MACs %v → %v, want %v → %v", pkt.MAC(f[6:12]), pkt.MAC(f[0:6]), lbServerMAC, mac)
		}
		i := int(sp - 40000)
		if ip4(f, pkt.OffIPv4Src) != clientIP(i) {
			t.Fatalf("source address changed to %v", ip4(f, pkt.OffIPv4Src))
		}
		if prev, seen := backendOf[sp]; seen && prev != be {
			t.Fatalf("flow %d went to %v and %v", i, prev, be)
		} else if !seen {
			backendOf[sp] = be
			perBackend[be]++
		}
	}
	for be := range backends {
		if perBackend[be] != flows/len(backends) {
			t.Fatalf("flows per backend %v, want %d each (round robin)", perBackend, flows/len(backends))
		}
	}

	// The answers.
	var back [][]byte
	for i := 0; i < flows; i++ {
		be := backendOf[uint16(40000+i)]
		back = append(back, frame(t, i%2 == 0, backends[be], lbServerMAC, be, clientIP(i), 80, uint16(40000+i)))
	}
	lab.Ports[1].Inject(back...)
	chaintest.WaitFor(t, 10*time.Second, "every answer out of port 0", func() bool { return len(lab.Ports[0].Sent()) >= flows })
	for _, f := range lab.Ports[0].Sent() {
		checkValid(t, f)
		i := int(binary.BigEndian.Uint16(f[pkt.OffDstPort:]) - 40000)
		if ip4(f, pkt.OffIPv4Src) != lbClientIP || ip4(f, pkt.OffIPv4Dst) != clientIP(i) {
			t.Fatalf("answer %v → %v, want %v → %v", ip4(f, pkt.OffIPv4Src), ip4(f, pkt.OffIPv4Dst), lbClientIP, clientIP(i))
		}
		if pkt.MAC(f[6:12]) != lbClientMAC || pkt.MAC(f[0:6]) != clientMAC(i) {
			t.Fatalf("answer MACs %v → %v, want %v → %v", pkt.MAC(f[6:12]), pkt.MAC(f[0:6]), lbClientMAC, clientMAC(i))
		}
	}
	if err := nf.Stop(t, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Client iface 'dpdk0' ID: 0, IP: 620757002 (10.0.0.37), MAC: 02:1b:00:00:00:00\n",
		"\nARP config:\n11.0.0.1 02:5e:00:00:00:01\n", "Flow INFO\nDestination server: "} {
		if !strings.Contains(nf.Output(), want) {
			t.Errorf("output lacks %q:\n%s", want, nf.Output())
		}
	}
}

func TestProcessDoesNotAllocate(t *testing.T) {
	dir := writeConfigs(t)
	cfg, err := parseArgs([]string{"-c", "dpdk0", "-s", "dpdk1", "-f", filepath.Join(dir, "server.conf"), "-i", filepath.Join(dir, "ifaces.conf")})
	if err != nil || cfg.load() != nil {
		t.Fatal(err)
	}
	f, err := state.Open(filepath.Join(t.TempDir(), "lb.state"), state.Options{DataBytes: 8 << 20, LogBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	flows, err := state.NewMap[flowKey, flowInfo](f, "flows", tableSize)
	if err != nil {
		t.Fatal(err)
	}
	lb := newBalancer(cfg, flows, io.Discard, func() int64 { return 1 })
	fr := frame(t, false, pkt.MAC{2}, lbClientMAC, [4]byte{1, 2, 3, 4}, lbClientIP, 1, 2)
	orig := bytes.Clone(fr)
	lb.process(0, fr)
	if n := testing.AllocsPerRun(1000, func() { copy(fr, orig); lb.process(0, fr) }); n != 0 {
		t.Fatalf("process allocates %v times per packet", n)
	}
}

// The flow table is the NF's state: after a SIGKILL, the NF restarted with
// the same instance ID keeps every flow on the backend it had, and a new
// flow takes the next backend in the round robin.
func TestFlowsKeepTheirBackendAcrossSIGKILL(t *testing.T) {
	dir := writeConfigs(t)
	lab := chaintest.NewMultiLab(t, 2, mgrconfig.DeadNFRetain, []int{1})
	l := lab.Lab()
	args := []string{"--", "-c", "dpdk0", "-s", "dpdk1", "-f", filepath.Join(dir, "server.conf"), "-i", filepath.Join(dir, "ifaces.conf")}
	first := l.Start(t, nil, append([]string{"--", "-r", "1"}, args...)...)
	l.WaitRunning(t, 1)
	id := l.Instance(t, first)
	clientIP := func(i int) [4]byte { return [4]byte{192, 168, 1, byte(1 + i)} }
	send := func(flows int) map[[4]byte][4]byte {
		n := len(lab.Ports[1].Sent())
		var in [][]byte
		for i := 0; i < flows; i++ {
			in = append(in, frame(t, false, pkt.MAC{2, 0xcc, 0, 0, 0, byte(i)}, lbClientMAC, clientIP(i), lbClientIP, uint16(30000+i), 53))
		}
		lab.Ports[0].Inject(in...)
		chaintest.WaitFor(t, 10*time.Second, "the frames out of port 1", func() bool { return len(lab.Ports[1].Sent()) >= n+flows })
		got := map[[4]byte][4]byte{}
		for _, f := range lab.Ports[1].Sent()[n:] {
			got[ip4(f, pkt.OffIPv4Src)] = ip4(f, pkt.OffIPv4Dst)
		}
		return got
	}
	before := send(4)
	first.Kill(t)
	chaintest.WaitFor(t, 10*time.Second, "the manager to see the death", func() bool {
		s := lab.M.Snapshot().NFs
		return len(s) == 0 || len(s) == 1 && s[0].Dead
	})
	heir := l.Start(t, nil, append([]string{"--", "-r", "1", "-n", strconv.Itoa(int(id))}, args...)...)
	l.WaitRunning(t, 1)
	after := send(5) // the 4 old flows and a new one
	for c, be := range before {
		if after[c] != be {
			t.Fatalf("flow from %v went to %v before the kill and to %v after", c, be, after[c])
		}
	}
	// Round robin: flows 1..4 took backends 1,2,0,1 (stored % 3); flow 5 takes 2.
	if got, want := after[clientIP(4)], [4]byte{11, 0, 0, 3}; got != want {
		t.Fatalf("the new flow went to %v, want %v (the round robin continued from the inherited table)", got, want)
	}
	if err := heir.Stop(t, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}
