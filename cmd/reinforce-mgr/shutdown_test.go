package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds the manager and the demo's NFs once per test run.
func binaries(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds binaries")
	}
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "reinforce-bin-")
		if buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", binDir+"/", "../../cmd/reinforce-mgr",
			"../../examples/simple_forward", "../../examples/basic_monitor").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// startDemo starts the manager with a two-NF chain in a fresh directory and
// returns its command, its output buffer and the paths it must clean up.
func startDemo(t *testing.T, args ...string) (cmd *exec.Cmd, out *syncBuf, region, sock string) {
	bin := binaries(t)
	dir := t.TempDir()
	name := fmt.Sprintf("shut-%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)
	sock = filepath.Join(dir, "ctl.sock")
	cfg := fmt.Sprintf(`[manager]
name = %q
region_dir = "/dev/shm"
control_socket = %q
stats_interval_s = 1

[[port]]
id = 0
driver = "null"

[[chain]]
name = "default"
services = [1, 2]
out_port = 0

[[nf]]
tag = "simple_forward"
service = 1
command = [%q, "-d", "2", "-p", "0"]

[[nf]]
tag = "basic_monitor"
service = 2
command = [%q, "-p", "0"]
`, name, sock, filepath.Join(bin, "simple_forward"), filepath.Join(bin, "basic_monitor"))
	path := filepath.Join(dir, "mgr.toml")
	os.WriteFile(path, []byte(cfg), 0o600)
	out = &syncBuf{}
	cmd = exec.Command(filepath.Join(bin, "reinforce-mgr"), append([]string{"--config", path}, args...)...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd, out, "/dev/shm/" + name + ".region", sock
}

// launchedPIDs reads the NF PIDs the manager logged when it launched them.
func launchedPIDs(out string) []int {
	var pids []int
	for _, line := range strings.Split(out, "\n") {
		if !strings.Contains(line, "launched NF") {
			continue
		}
		if i := strings.Index(line, "pid="); i >= 0 {
			var pid int
			fmt.Sscanf(strings.TrimLeft(line[i+4:], "\x1b[0m"), "%d", &pid)
			if pid > 0 {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// checkNothingLeft fails if any launched NF still runs or the region or
// control socket still exists.
func checkNothingLeft(t *testing.T, out, region, sock string) {
	t.Helper()
	pids := launchedPIDs(out)
	if len(pids) != 2 {
		t.Fatalf("found %d launched NF PIDs in the log, want 2:\n%s", len(pids), out)
	}
	for _, pid := range pids {
		if syscall.Kill(pid, 0) == nil {
			if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); !strings.Contains(string(b), ") Z ") {
				t.Errorf("NF process %d still running after the manager exited", pid)
			}
		}
	}
	for _, p := range []string{region, sock} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left behind", p)
		}
	}
}

func waitExit(t *testing.T, cmd *exec.Cmd, d time.Duration, out *syncBuf) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("manager exited with %v:\n%s", err, out.String())
		}
	case <-time.After(d):
		t.Fatalf("manager still running after %v:\n%s", d, out.String())
	}
}

func waitTraffic(t *testing.T, out *syncBuf) {
	t.Helper()
	row := regexp.MustCompile(`(?m)^basic_monitor\s+\d+\s+/\s+2\s+/\s+\d+\s+[1-9]\d*`) // ONVM's NF row with rx_pps > 0
	for deadline := time.Now().Add(15 * time.Second); !row.MatchString(out.String()); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no stats with both NFs:\n%s", out.String())
		}
	}
}

func TestTTLShutdownLeavesNothingBehind(t *testing.T) {
	cmd, out, region, sock := startDemo(t, "-t", "2")
	waitExit(t, cmd, 20*time.Second, out)
	if !strings.Contains(out.String(), "Time to live exceeded, shutting down") {
		t.Fatalf("no TTL message:\n%s", out.String())
	}
	checkNothingLeft(t, out.String(), region, sock)
}

func TestPacketLimitShutdownLeavesNothingBehind(t *testing.T) {
	cmd, out, region, sock := startDemo(t, "-l", "1")
	waitExit(t, cmd, 60*time.Second, out)
	if !strings.Contains(out.String(), "Packet limit exceeded, shutting down") {
		t.Fatalf("no packet-limit message:\n%s", out.String())
	}
	checkNothingLeft(t, out.String(), region, sock)
}

func TestSIGTERMMidTrafficExitsCleanly(t *testing.T) {
	cmd, out, region, sock := startDemo(t)
	waitTraffic(t, out)
	cmd.Process.Signal(syscall.SIGTERM)
	waitExit(t, cmd, 20*time.Second, out)
	if !strings.Contains(out.String(), "Reinforce summary") {
		t.Fatalf("no summary after SIGTERM:\n%s", out.String())
	}
	checkNothingLeft(t, out.String(), region, sock)
}
