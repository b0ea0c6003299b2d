package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// idleWindow is how long the idle test measures; idleBudget is the share of
// one CPU the manager and each NF may use over it (issue 5: ≤ 1 %).
const (
	idleWindow = 10 * time.Second
	idleBudget = 0.01
)

// cpuTicks reads utime+stime of pid from /proc/<pid>/stat, in clock ticks.
func cpuTicks(t *testing.T, pid int) uint64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatalf("read /proc/%d/stat: %v", pid, err)
	}
	// The command name (field 2) may hold spaces: count from its ')'.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		t.Fatalf("/proc/%d/stat: too few fields: %q", pid, b)
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64) // field 14, utime
	s, err2 := strconv.ParseUint(f[12], 10, 64) // field 15, stime
	if err1 != nil || err2 != nil {
		t.Fatalf("/proc/%d/stat: utime %q stime %q", pid, f[11], f[12])
	}
	return u + s
}

// clkTck is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on every
// Linux architecture Go supports (getconf CLK_TCK).
const clkTck = 100

// TestIdleManagerAndNFsCostNothing starts the manager with no ports and two
// NFs in a chain, lets it settle, and reads from /proc how much CPU each
// process used over idleWindow: an idle platform sleeps on futexes instead
// of polling. It runs in poll mode and in shared-core mode (-c, NFs -s).
func TestIdleManagerAndNFsCostNothing(t *testing.T) {
	bin := binaries(t)
	for _, mode := range []struct {
		name    string
		mgrArgs []string
		nfArgs  []string
	}{
		{"poll", nil, nil},
		{"shared-core", []string{"-c"}, []string{"-s"}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			dir := t.TempDir()
			name := fmt.Sprintf("idle-%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)
			sock := filepath.Join(dir, "ctl.sock")
			cfg := fmt.Sprintf(`port = []

[manager]
name = %q
region_dir = "/dev/shm"
control_socket = %q
stats_interval_s = 1

[[chain]]
name = "default"
services = [1, 2]
out_port = -1
`, name, sock)
			path := filepath.Join(dir, "mgr.toml")
			if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			out := &syncBuf{}
			mgr := exec.Command(filepath.Join(bin, "reinforce-mgr"), append([]string{"--config", path}, mode.mgrArgs...)...)
			mgr.Dir = dir
			mgr.Stdout, mgr.Stderr = out, out
			if err := mgr.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				mgr.Process.Signal(os.Interrupt)
				waitExit(t, mgr, 10*time.Second, out)
			})
			for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), "manager started"); time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("manager did not start:\n%s", out.String())
				}
			}
			procs := map[string]int{"manager": mgr.Process.Pid}
			for _, nf := range []struct{ tag, svc, app string }{
				{"simple_forward", "1", "-d 2"},
				{"basic_monitor", "2", ""},
			} {
				argv := append(append([]string{"--", "-r", nf.svc}, mode.nfArgs...), "--")
				argv = append(argv, strings.Fields(nf.app)...)
				c := exec.Command(filepath.Join(bin, nf.tag), argv...)
				c.Dir = dir // the NFs write <tag>_stats.csv on exit
				c.Env = append(os.Environ(), "REINFORCE_SOCKET="+sock)
				nfOut := &syncBuf{}
				c.Stdout, c.Stderr = nfOut, nfOut
				if err := c.Start(); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Process.Kill(); c.Wait() })
				procs[nf.tag] = c.Process.Pid
			}
			for deadline := time.Now().Add(10 * time.Second); strings.Count(out.String(), "NF running") < 2; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("the NFs did not register:\n%s", out.String())
				}
			}
			time.Sleep(500 * time.Millisecond) // past start-up: GC, first stats
			before := map[string]uint64{}
			for who, pid := range procs {
				before[who] = cpuTicks(t, pid)
			}
			start := time.Now()
			time.Sleep(idleWindow)
			elapsed := time.Since(start).Seconds()
			for who, pid := range procs {
				used := float64(cpuTicks(t, pid)-before[who]) / clkTck
				share := used / elapsed
				t.Logf("%-14s pid %d: %.2f s CPU over %.1f s = %.2f %% of one CPU", who, pid, used, elapsed, 100*share)
				if share > idleBudget {
					t.Errorf("%s used %.2f %% of one CPU while idle, budget %.0f %%", who, 100*share, 100*idleBudget)
				}
			}
		})
	}
}
