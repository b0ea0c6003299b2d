package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/shm"
	"github.com/reinforce-nfv/reinforce/tools/testbed/lab"
)

// The test binary plays a role in a child process when roleEnv is set.
const (
	roleEnv    = "REINFORCE_E2E_ROLE"
	binEnv     = "REINFORCE_E2E_BIN"
	regionPath = "/dev/shm/lab.region" // the manager's region inside its server (name "lab")
)

func harnessRole() string { return os.Getenv(roleEnv) }

// harnessReport is what the killed harness tells its parent.
type harnessReport struct {
	Run     string   `json:"run"`
	Holders []int    `json:"holders"`
	NS      []string `json:"ns"`      // the servers' net and mnt namespaces
	Escaped int      `json:"escaped"` // a process without a death signal
	Manager int      `json:"manager"`
}

// runHarness plays a role and returns the exit status.
func runHarness() int {
	switch harnessRole() {
	case "attach": // try to open the manager's region from wherever we run
		r, err := shm.Attach(regionPath)
		if err != nil {
			fmt.Println("attach:", err)
			if errors.Is(err, os.ErrNotExist) {
				return 10
			}
			return 11
		}
		r.Close()
		fmt.Println("attached")
		return 0
	case "harness":
		if err := harness(); err != nil {
			fmt.Fprintln(os.Stderr, "harness:", err)
			return 1
		}
		return 0
	}
	fmt.Fprintln(os.Stderr, "unknown role", harnessRole())
	return 2
}

// harness builds a lab with a manager holding a region, starts a process
// that escapes the death signal, reports, and waits to be killed.
func harness() error {
	bin := os.Getenv(binEnv)
	cfg := chainTopo(0)
	cfg.Mgmt = &lab.MgmtConfig{Subnet: "10.250.0.0/24"}
	l, err := lab.Up(cfg, lab.Options{})
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "reinforce-e2e-harness-")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, "mgr.toml")
	if err := os.WriteFile(path, []byte(mgrConfig(bin, "/run/reinforce/lab.sock", "")), 0o644); err != nil {
		return err
	}
	mgr := l.Server("mgr").Command(filepath.Join(bin, "reinforce-mgr"), "--config", path)
	mgr.Dir = dir
	if err := mgr.Start(); err != nil {
		return err
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if l.Server("mgr").Command("test", "-e", regionPath).Run() == nil {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("no region after 15 s")
		}
	}
	esc := l.Server("gen").Command("sleep", "600")
	esc.SysProcAttr.Pdeathsig = 0 // what a daemonised process would do
	esc.SysProcAttr.Setsid = true
	if err := esc.Start(); err != nil {
		return err
	}
	rep := harnessReport{Run: l.Run(), Escaped: esc.Process.Pid, Manager: mgr.Process.Pid}
	for _, s := range l.Servers() {
		rep.Holders = append(rep.Holders, s.PID())
		for _, k := range []string{"net", "mnt"} {
			ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", s.PID(), k))
			if err != nil {
				return err
			}
			rep.NS = append(rep.NS, ns)
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(rep); err != nil {
		return err
	}
	select {} // until SIGKILL
}

// hostState is what a run must not leave behind in the host.
type hostState struct {
	links  []string
	mounts []string
}

func snapshotHost(t *testing.T) hostState {
	t.Helper()
	var h hostState
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range ifs {
		h.links = append(h.links, i.Name)
	}
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 {
			h.mounts = append(h.mounts, f[4])
		}
	}
	slices.Sort(h.links)
	slices.Sort(h.mounts)
	return h
}

// TestKilledRunLeavesNothing SIGKILLs a harness holding a lab (three
// servers, a management bridge, a manager with a region and two NFs, and a
// process that escaped the death signal) and shows the next run starts
// cleanly: no process of the dead run, no namespace, link, mount or region
// file left, and the new lab works.
func TestKilledRunLeavesNothing(t *testing.T) {
	bin := bins(t)
	before := snapshotHost(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), roleEnv+"=harness", binEnv+"="+bin)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuf
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("harness: %v\n%s", err, stderr.String())
	}
	var rep harnessReport
	if err := json.Unmarshal([]byte(line), &rep); err != nil {
		t.Fatalf("harness said %q: %v", line, err)
	}
	if _, err := os.Stat(filepath.Join(lab.StateDir, rep.Run, "state.json")); err != nil {
		t.Fatalf("the harness's run is not recorded: %v", err)
	}
	if _, err := os.Stat(regionPath); err == nil {
		t.Fatalf("%s is visible on the host", regionPath)
	}
	mid := snapshotHost(t)
	if !slices.Equal(mid.links, before.links) || !slices.Equal(mid.mounts, before.mounts) {
		t.Errorf("a live lab changed the host's links or mounts:\nlinks %v -> %v\nmounts %d -> %d", before.links, mid.links, len(before.mounts), len(mid.mounts))
	}

	// Midway: kill the harness. Nothing of it may trip the next run.
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	l := upLab(t, chainTopo(0)) // sweeps first

	if _, err := os.Stat(filepath.Join(lab.StateDir, rep.Run)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the dead run's state is still there: %v", err)
	}
	ours := map[string]bool{}
	for _, s := range l.Servers() {
		for _, k := range []string{"net", "mnt"} {
			ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", s.PID(), k))
			ours[ns] = true
		}
	}
	dead := map[string]bool{}
	for _, ns := range rep.NS {
		if !ours[ns] { // the kernel may reuse a freed namespace's inode
			dead[ns] = true
		}
	}
	marker := lab.EnvRun + "=" + rep.Run
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		for _, k := range []string{"net", "mnt"} {
			if ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, k)); dead[ns] {
				t.Errorf("process %d is still in the dead run's namespace %s", pid, ns)
			}
		}
		if env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid)); err == nil && strings.Contains(string(env), marker+"\x00") && !zombie(pid) {
			t.Errorf("process %d of the dead run is alive", pid)
		}
	}
	for _, pid := range append(rep.Holders, rep.Escaped, rep.Manager) {
		if syscall.Kill(pid, 0) == nil && !zombie(pid) {
			t.Errorf("process %d of the dead run is alive", pid)
		}
	}
	after := snapshotHost(t)
	if !slices.Equal(after.links, before.links) {
		t.Errorf("host links changed: %v -> %v", before.links, after.links)
	}
	if !slices.Equal(after.mounts, before.mounts) {
		t.Errorf("host mounts changed: %v -> %v", before.mounts, after.mounts)
	}
	if _, err := os.Stat(regionPath); err == nil {
		t.Errorf("%s left on the host", regionPath)
	}

	// The new run works: a manager (same name, same region path) and traffic.
	m := startMgr(t, l.Server("mgr"), bin, "")
	sp := startSink(t, l.Server("sink"), bin, "-i", "eth0", "-idle", "500ms", "-duration", "30s", "-count", "1000")
	pktgen(t, l.Server("gen"), bin, "", "-i", "eth0", "-flows", "4", "-count", "1000", "-rate", "20000")
	if res := sp.wait(t); !res.OK || res.Received != 1000 {
		t.Errorf("the next run's chain: received %d of 1000: %v\n%s", res.Received, res.Violations, m.out.String())
	}
}

func zombie(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(data), ')')
	return i >= 0 && i+2 < len(data) && data[i+2] == 'Z'
}

// TestServerCannotOpenOtherServersRegion runs a manager in one server and
// tries to attach to its region, by the same path, from the others: only
// the manager's server sees it; the host does not either.
func TestServerCannotOpenOtherServersRegion(t *testing.T) {
	bin := bins(t)
	l := upLab(t, chainTopo(0))
	startMgr(t, l.Server("mgr"), bin, "")
	attach := func(s *lab.Server) (int, string) {
		cmd := s.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(cmd.Env, roleEnv+"=attach")
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), string(out)
		}
		if err != nil {
			t.Fatalf("attach in %s: %v: %s", s.Name(), err, out)
		}
		return 0, string(out)
	}
	if code, out := attach(l.Server("mgr")); code != 0 {
		t.Fatalf("the manager's own server cannot attach its region: exit %d: %s", code, out)
	}
	for _, name := range []string{"gen", "sink"} {
		if code, out := attach(l.Server(name)); code != 10 {
			t.Errorf("server %s: exit %d, want 10 (region not found): %s", name, code, out)
		}
	}
	if _, err := os.Stat(regionPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("host sees %s: %v", regionPath, err)
	}
}
