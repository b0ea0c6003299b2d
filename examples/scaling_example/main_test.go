package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/examples/internal/chaintest"
	"github.com/reinforce-nfv/reinforce/examples/internal/nfapp"
	mgrconfig "github.com/reinforce-nfv/reinforce/manager/config"
)

// childArgvEnv carries a child's command line when the test binary runs
// itself as a child (selfCommand below).
const childArgvEnv = "SCALING_TEST_CHILD_ARGV"

// TestMain turns a child started by chaintest, or by the NF under test,
// into the NF (or chaintest's forwarder).
func TestMain(m *testing.M) {
	selfCommand = func(argv []string) (*exec.Cmd, error) {
		cmd := exec.Command(os.Args[0], "-test.run", "^$", "-test.count=1")
		cmd.Env = append(os.Environ(), childArgvEnv+"="+strings.Join(argv, "\x1f"))
		return cmd, nil
	}
	if v, ok := os.LookupEnv(childArgvEnv); ok {
		os.Exit(run("scaling_example", strings.Split(v, "\x1f"), nfapp.Std()))
	}
	if argv, ok := chaintest.ChildArgv(); ok {
		if chaintest.IsNext(argv) {
			os.Exit(chaintest.RunNext(argv[1:]))
		}
		os.Exit(run("scaling_example", argv, nfapp.Std()))
	}
	os.Exit(m.Run())
}

func TestParseArgs(t *testing.T) {
	cfg, err := parseArgs([]string{"-d", "2", "-n", "3", "-c", "-a"})
	if err != nil || cfg != (config{dst: 2, children: 3, share: true, advanced: true}) {
		t.Fatalf("parseArgs = %+v, %v", cfg, err)
	}
	if _, err := parseArgs([]string{"-d", "2", "-n", "0"}); err == nil || err.Error() != "The number of children should be more or equal than 1" {
		t.Fatalf("-n 0: %v", err)
	}
	if _, err := parseArgs([]string{"-n", "2"}); err == nil {
		t.Fatal("no -d accepted")
	}
}

// ppid is the parent process of pid, from /proc.
func ppid(t *testing.T, pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	n, err := strconv.Atoi(f[1])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// The first packet makes the NF start -n children: processes of its own,
// registered with the manager under the parent's service ID with their own
// instance IDs, each sending its 128 packets on to -d. Stopping the parent
// stops them.
func TestChildrenRegisterWithTheServiceID(t *testing.T) {
	lab := chaintest.NewLab(t, mgrconfig.DeadNFReclaim, []int{1})
	parent := lab.Start(t, nil, "--", "-r", "1", "--", "-d", "2", "-n", "2")
	lab.Start(t, nil, chaintest.NextWord, "--", "-r", "2")
	lab.WaitRunning(t, 2)
	lab.Port.Inject(chaintest.ProbeFrame(t, 1, 0, 0))
	lab.WaitRunning(t, 4)
	pp := parent.Cmd.Process.Pid
	ids := map[uint16]bool{}
	kids := 0
	for _, s := range lab.M.Snapshot().NFs {
		if s.Service != 1 {
			continue
		}
		ids[s.Instance] = true
		if s.PID == pp {
			continue
		}
		if s.Tag != "scaling" || ppid(t, s.PID) != pp {
			t.Fatalf("NF %+v: not the parent's child (its parent is %d, want %d)", s, ppid(t, s.PID), pp)
		}
		kids++
	}
	if kids != 2 || len(ids) != 3 {
		t.Fatalf("%d children and %d instance IDs of service 1; want 2 and 3:\n%+v", kids, len(ids), lab.M.Snapshot().NFs)
	}
	lab.WaitSent(t, 1+2*packetNumber)
	if err := parent.Stop(t, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	chaintest.WaitFor(t, 5*time.Second, "the children to stop with the parent", func() bool {
		for _, s := range lab.M.Snapshot().NFs {
			if s.Service == 1 {
				return false
			}
		}
		return true
	})
	if n := strings.Count(parent.Output(), "Spawning child SID 1; with packet_handler_fwd packet function\n"); n != 2 {
		t.Fatalf("%d spawn lines, want 2:\n%s", n, parent.Output())
	}
}

// With -a the children start at once, before any packet.
func TestAdvancedModeStartsChildrenAtOnce(t *testing.T) {
	lab := chaintest.NewLab(t, mgrconfig.DeadNFReclaim, []int{1})
	parent := lab.Start(t, nil, "--", "-r", "1", "--", "-d", "2", "-n", "3", "-a", "-c")
	lab.WaitRunning(t, 4)
	for _, s := range lab.M.Snapshot().NFs {
		if s.Service != 1 {
			t.Fatalf("NF %+v: not service 1", s)
		}
	}
	if err := parent.Stop(t, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	chaintest.WaitFor(t, 5*time.Second, "the children to stop with the parent", func() bool { return len(lab.M.Snapshot().NFs) == 0 })
}
