package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/reinforce-nfv/reinforce/examples/internal/chaintest"
	"github.com/reinforce-nfv/reinforce/examples/internal/counters"
	"github.com/reinforce-nfv/reinforce/examples/internal/lpm"
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
		os.Exit(run("firewall", argv, nfapp.Std()))
	}
	os.Exit(m.Run())
}

const testRules = `{
  "net":     {"ip": "10.0.0.0", "depth": 8,  "action": 0},
  "badhost": {"ip": "10.0.0.7", "depth": 32, "action": 1},
  "subnet":  {"ip": "10.9.0.0", "depth": 16, "action": 2}
}`

func TestParseArgs(t *testing.T) {
	tests := []struct {
		args []string
		want config
		err  string
	}{
		{args: []string{"-d", "2", "-f", "r.json"}, want: config{dst: 2, rulesFile: "r.json", printDelay: 10000000}},
		{args: []string{"-d2", "-fr.json", "-p", "5", "-b"}, want: config{dst: 2, rulesFile: "r.json", printDelay: 5, debug: true}},
		{args: []string{"-f", "r.json"}, err: "Firewall NF requires a destination NF with the -d flag."},
		{args: []string{"-d", "1"}, err: "Firewall NF requires a rules file with the -f flag."},
		{args: []string{"-d", "0", "-f", "x"}, err: "Option -d must name a service ID from 1 to 31"},
		{args: []string{"-d", "1", "-f", "x", "-z"}, err: "Unknown option `-z'."},
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

func TestParseRules(t *testing.T) {
	rules, err := parseRules([]byte(testRules), "r.json")
	if err != nil {
		t.Fatal(err)
	}
	want := []rule{{lpm.IPv4(10, 0, 0, 0), 8, 0}, {lpm.IPv4(10, 0, 0, 7), 32, 1}, {lpm.IPv4(10, 9, 0, 0), 16, 2}}
	if len(rules) != len(want) {
		t.Fatalf("rules %+v, want %+v", rules, want)
	}
	for i := range want {
		if rules[i] != want[i] {
			t.Fatalf("rule %d = %+v, want %+v", i, rules[i], want[i])
		}
	}
	for in, msg := range map[string]string{
		`[]`:                                                 "r.json: not a JSON object of rules",
		`{"a": {"depth": 8, "action": 0}}`:                   `r.json: rule "a": IP not found/invalid`,
		`{"a": {"ip": "1.2.3.4", "action": 0}}`:              `r.json: rule "a": Depth not found/invalid`,
		`{"a": {"ip": "1.2.3.4", "depth": 8}}`:               `r.json: rule "a": Action not found/invalid`,
		`{"a": {"ip": "1.2.3", "depth": 8, "action": 0}}`:    `r.json: rule "a": "1.2.3" is not an IPv4 address`,
		`{"a": {"ip": "1.2.3.4", "depth": 33, "action": 0}}`: `r.json: rule "a": depth 33 is not 0..32`,
	} {
		if _, err := parseRules([]byte(in), "r.json"); err == nil || err.Error() != msg {
			t.Errorf("parseRules(%s) = %v, want %q", in, err, msg)
		}
	}
}

func frameFrom(t testing.TB, src [4]byte) []byte {
	t.Helper()
	b := make([]byte, 128)
	n, err := pkt.BuildUDP4(b, pkt.MAC{2, 0, 0, 0, 0, 1}, pkt.MAC{2, 0, 0, 0, 0, 2}, src, [4]byte{192, 168, 0, 1}, 1000, 53, 16)
	if err != nil {
		t.Fatal(err)
	}
	return b[:n]
}

func newTestFirewall(t *testing.T, debug bool) (*firewall, *bytes.Buffer) {
	rules, err := parseRules([]byte(testRules), "r.json")
	if err != nil {
		t.Fatal(err)
	}
	tbl := lpm.New(maxRules)
	for _, r := range rules {
		if err := tbl.Add(r.ip, r.depth, r.action); err != nil {
			t.Fatal(err)
		}
	}
	f, err := state.Open(filepath.Join(t.TempDir(), "fw.state"), state.Options{DataBytes: 1 << 16, LogBytes: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	ctr, err := counters.OpenFile(f, "fw_stats", nCounters)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	return newFirewall(config{dst: 2, printDelay: 5, debug: debug}, tbl, ctr, &out), &out
}

func TestVerdictsAndStats(t *testing.T) {
	fw, out := newTestFirewall(t, true)
	accept := nflib.ToNF(2)
	for _, c := range []struct {
		frame []byte
		want  nflib.Action
	}{
		{frameFrom(t, [4]byte{10, 1, 2, 3}), accept},        // 10/8 action 0
		{frameFrom(t, [4]byte{10, 0, 0, 7}), nflib.Drop},    // /32 action 1 beats /8
		{frameFrom(t, [4]byte{10, 9, 1, 1}), nflib.Drop},    // /16 action 2
		{frameFrom(t, [4]byte{11, 0, 0, 1}), nflib.Drop},    // no rule
		{[]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, nflib.Drop}, // not IPv4
	} {
		if got := fw.process(c.frame); got != c.want {
			t.Errorf("frame % x: verdict %v, want %v", c.frame[:min(30, len(c.frame))], got, c.want)
		}
	}
	got := out.String()
	for _, want := range []string{
		"Packet from source IP 10.1.2.3 has been accepted\n",
		"Packet from source IP 10.0.0.7 has been dropped\n",
		"Packet from source IP 11.0.0.1 has been dropped\n",
		"Packet received not ipv4\n",
		// The 5th packet prints the stats before its own verdict.
		"\x1b[2J\x1b[1;1HPackets Dropped: 3\nPackets not IPv4: 0\nPackets Accepted: 1\nPackets Total: 4\n\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%q", want, got)
		}
	}
	if fw.ctr.Get(cDropped) != 4 || fw.ctr.Get(cNotIPv4) != 1 || fw.ctr.Get(cAccepted) != 1 || fw.ctr.Get(cTotal) != 5 {
		t.Errorf("counters dropped %d notIPv4 %d accepted %d total %d", fw.ctr.Get(cDropped), fw.ctr.Get(cNotIPv4),
			fw.ctr.Get(cAccepted), fw.ctr.Get(cTotal))
	}
	quiet, _ := newTestFirewall(t, false)
	f := frameFrom(t, [4]byte{10, 1, 2, 3})
	if n := testing.AllocsPerRun(100, func() { quiet.process(f) }); n != 0 {
		t.Errorf("process allocates %v per packet", n)
	}
}

// The firewall in a chain: service 1 filters and sends what it accepts to
// service 2, which passes it on out of the port.
func TestFirewallInAChain(t *testing.T) {
	rulesPath := filepath.Join(t.TempDir(), "rules.json")
	if err := os.WriteFile(rulesPath, []byte(testRules), 0o644); err != nil {
		t.Fatal(err)
	}
	lab := chaintest.NewLab(t, mgrconfig.DeadNFReclaim, []int{1})
	fw := lab.Start(t, nil, "--", "-r", "1", "--", "-d", "2", "-f", rulesPath, "-p", "0")
	lab.Start(t, nil, chaintest.NextWord, "--", "-r", "2", "--")
	lab.WaitRunning(t, 2)
	pass := map[string]bool{}
	var in [][]byte
	for i := 0; i < 40; i++ {
		srcs := [][4]byte{{10, 1, 0, byte(i)}, {10, 0, 0, 7}, {10, 9, 0, byte(i)}, {172, 16, 0, byte(i)}}
		for k, s := range srcs {
			f := frameFrom(t, s)
			in = append(in, f)
			if k == 0 {
				pass[string(f)] = true
			}
		}
	}
	in = append(in, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1}) // ARP
	lab.Port.Inject(in...)
	out := lab.WaitSent(t, len(pass))
	for _, f := range out {
		if !pass[string(f)] {
			t.Fatalf("frame from %v passed the firewall", f[26:30])
		}
		delete(pass, string(f))
	}
	if err := fw.Stop(t, 10e9); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"RULE 0: { ip: 10.0.0.0, depth: 8, action: 0 }\n", "RULE 1: { ip: 10.0.0.7, depth: 32, action: 1 }\n",
		"RULE 2: { ip: 10.9.0.0, depth: 16, action: 2 }\n", "NF tag: firewall\n", "RX total: 161\n", "NF sent to NF: 40\n", "NF dropped: 121\n"} {
		if !strings.Contains(fw.Output(), want) {
			t.Errorf("firewall output lacks %q:\n%s", want, fw.Output())
		}
	}
}

// The counters are the NF's state: the NF restarted with the same
// instance ID after a SIGKILL counts on from its predecessor's totals.
func TestFirewallCountersSurviveSIGKILL(t *testing.T) {
	rulesPath := filepath.Join(t.TempDir(), "rules.json")
	if err := os.WriteFile(rulesPath, []byte(testRules), 0o644); err != nil {
		t.Fatal(err)
	}
	lab := chaintest.NewLab(t, mgrconfig.DeadNFRetain, []int{1})
	lab.Start(t, nil, chaintest.NextWord, "--", "-r", "2", "--")
	args := []string{"-d", "2", "-f", rulesPath, "-p", "50"}
	first := lab.Start(t, nil, append([]string{"--", "-r", "1", "--"}, args...)...)
	lab.WaitRunning(t, 2)
	id := lab.Instance(t, first)
	send := func() {
		var in [][]byte
		for i := 0; i < 100; i++ {
			in = append(in, frameFrom(t, [4]byte{10, 1, 0, byte(i)}))
		}
		lab.Port.Inject(in...)
	}
	send()
	chaintest.WaitFor(t, 10e9, "the second stats print", func() bool { return strings.Contains(first.Output(), "Packets Total: 99\n") })
	first.Kill(t)
	heir := lab.Start(t, nil, append([]string{"--", "-r", "1", "-n", strconv.Itoa(int(id)), "--"}, args...)...)
	lab.WaitRunning(t, 2)
	send()
	// Printed before the 200th packet's verdict is counted.
	chaintest.WaitFor(t, 10e9, "the heir's stats to count on", func() bool {
		return strings.Contains(heir.Output(), "Packets Accepted: 199\nPackets Total: 199\n")
	})
	lab.WaitSent(t, 200)
}
