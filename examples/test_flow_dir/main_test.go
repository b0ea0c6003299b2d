package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/ctlmsg"
	"github.com/reinforce-nfv/reinforce/examples/internal/chaintest"
	"github.com/reinforce-nfv/reinforce/examples/internal/nfapp"
	mgrconfig "github.com/reinforce-nfv/reinforce/manager/config"
)

// TestMain turns a child started by chaintest into the NF or chaintest's
// forwarder.
func TestMain(m *testing.M) {
	if argv, ok := chaintest.ChildArgv(); ok {
		if chaintest.IsNext(argv) {
			os.Exit(chaintest.RunNext(argv[1:]))
		}
		os.Exit(run("test_flow_dir", argv, nfapp.Std()))
	}
	os.Exit(m.Run())
}

func TestParseArgs(t *testing.T) {
	cfg, err := parseArgs([]string{"-d", "2"})
	if err != nil || cfg != (config{dst: 2, printDelay: 1000000, chain: "test_flow_dir"}) {
		t.Fatalf("parseArgs = %+v, %v", cfg, err)
	}
	if cfg, err := parseArgs([]string{"-d", "2", "-c", "c1", "-p", "5"}); err != nil || cfg.chain != "c1" || cfg.printDelay != 5 {
		t.Fatalf("parseArgs = %+v, %v", cfg, err)
	}
	if _, err := parseArgs([]string{"-p", "5"}); err == nil || err.Error() != "Test Flow Dir NF requires destination flag -d." {
		t.Fatalf("no -d: %v", err)
	}
}

// The first packet of each flow reaches test_flow_dir, which installs a
// rule; the flow's later packets go from the port straight to service 2.
func TestRulesSteerFlows(t *testing.T) {
	lab := chaintest.NewLab(t, mgrconfig.DeadNFReclaim, []int{1}, []int{2}) // chains c0 (default), c1
	tfd := lab.Start(t, nil, "--", "-r", "1", "--", "-d", "2", "-c", "c1")
	lab.Start(t, nil, chaintest.NextWord, "--", "-r", "2")
	lab.WaitRunning(t, 2)
	rx := func() (tfdRX, dstRX uint64) {
		for _, s := range lab.M.Snapshot().NFs {
			if s.Service == 1 {
				tfdRX = s.RX
			} else {
				dstRX = s.RX
			}
		}
		return
	}
	const flows, more = 4, 10
	var first [][]byte
	for f := uint32(0); f < flows; f++ {
		first = append(first, chaintest.ProbeFrame(t, f, 0, 0))
	}
	first = append(first, chaintest.ProbeFrame(t, 0, 1, 0)) // a second packet right behind: may beat the rule
	lab.Port.Inject(first...)
	lab.WaitSent(t, len(first))
	a, _ := rx()
	var rest [][]byte
	for k := uint64(2); k < more+2; k++ {
		for f := uint32(0); f < flows; f++ {
			rest = append(rest, chaintest.ProbeFrame(t, f, k, 0))
		}
	}
	lab.Port.Inject(rest...)
	out := lab.WaitSent(t, len(first)+len(rest))
	b, dst := rx()
	if b != a || a < flows {
		t.Fatalf("test_flow_dir received %d packets, then %d: the rules did not steer the flows past it", a, b)
	}
	if dst != uint64(len(first)+len(rest)) {
		t.Fatalf("service 2 received %d packets, want %d", dst, len(first)+len(rest))
	}
	for _, f := range out {
		chaintest.ReadProbe(t, f) // intact, checksum valid
	}
	if err := tfd.Stop(t, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(tfd.Output(), "not installed") {
		t.Fatalf("a rule was refused:\n%s", tfd.Output())
	}
}

// A chain the manager does not have: the NF says so and still forwards.
func TestUnknownChainIsReported(t *testing.T) {
	lab := chaintest.NewLab(t, mgrconfig.DeadNFReclaim, []int{1})
	tfd := lab.Start(t, nil, "--", "-r", "1", "--", "-d", "2", "-c", "nope")
	lab.Start(t, nil, chaintest.NextWord, "--", "-r", "2")
	lab.WaitRunning(t, 2)
	lab.Port.Inject(chaintest.ProbeFrame(t, 1, 0, 0), chaintest.ProbeFrame(t, 1, 1, 0))
	lab.WaitSent(t, 2)
	if err := tfd.Stop(t, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(tfd.Output(), `Flow rule not installed: add flow: flow rule: unknown chain "nope"`); n != 1 {
		t.Fatalf("refusal reported %d times, want once:\n%s", n, tfd.Output())
	}
}

func TestRuleIsExactForTCPAndUDP(t *testing.T) {
	r := rule(flowKey{Src: [4]byte{10, 0, 0, 1}, Dst: [4]byte{10, 1, 0, 1}, SrcPort: 1000, DstPort: 5000, Proto: 17}, "c1")
	want := ctlmsg.FlowAdd{Chain: "c1", Src: "10.0.0.1", Dst: "10.1.0.1", SrcPorts: [2]uint16{1000, 1000}, DstPorts: [2]uint16{5000, 5000}, Proto: 17}
	if r != want {
		t.Fatalf("UDP rule %+v, want %+v", r, want)
	}
	r = rule(flowKey{Src: [4]byte{10, 0, 0, 1}, Dst: [4]byte{10, 1, 0, 1}, Proto: 1}, "c1")
	want = ctlmsg.FlowAdd{Chain: "c1", Src: "10.0.0.1", Dst: "10.1.0.1", SrcPorts: [2]uint16{0, 0xFFFF}, DstPorts: [2]uint16{0, 0xFFFF}, Proto: 1}
	if r != want {
		t.Fatalf("ICMP rule %+v, want %+v", r, want)
	}
}
