package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/internal/testenv"
)

// TestDemoShowsTrafficAndExitsZero runs the README's first command in its
// in-memory form (built binaries, a manager launching a two-NF chain on a
// null port, simple_forward with a local standby) for 3 s: traffic flows,
// the active is killed mid-run and its standby takes over.
func TestDemoShowsTrafficAndExitsZero(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries and runs for seconds")
	}
	cmd := exec.Command("bash", "tools/demo.sh", "3", "--name", fmt.Sprintf("demo-test-%d", os.Getpid()))
	cmd.Env = append(os.Environ(), "REINFORCE_DEMO=memory")
	cmd.Dir = "../.."
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	s := string(out)
	t.Logf("demo took %v", time.Since(t0))
	if n := strings.Count(s, "NF running"); n != 2 {
		t.Errorf("%d NF registrations in the demo, want 2 (the standbys attach, they do not register as NFs)", n)
	}
	if n := strings.Count(s, "standby attached"); n != 2 {
		t.Errorf("%d standbys attached, want 2 (the first, and its replacement after the failover)", n)
	}
	for _, want := range []string{"Time to live exceeded, shutting down", "Reinforce summary", "NF 1 simple_forward", "NF 2 basic_monitor",
		"demo: kill -9 simple_forward", "its standby takes over", "failover: the standby takes over", "launched NF exited: restarting it"} {
		if !strings.Contains(s, want) {
			t.Fatalf("demo output lacks %q:\n%s", want, s)
		}
	}
	m := regexp.MustCompile(`Port 0 \(null0\): rx (\d+)\s+tx (\d+)`).FindAllStringSubmatch(s, -1)
	if len(m) == 0 {
		t.Fatalf("no port stats in:\n%s", s)
	}
	last := m[len(m)-1]
	rx, _ := strconv.Atoi(last[1])
	tx, _ := strconv.Atoi(last[2])
	if rx == 0 || tx == 0 {
		t.Fatalf("no traffic through the chain: rx %d tx %d\n%s", rx, tx, s)
	}
}

// TestLabDemo runs the README's first command as root: the namespace lab
// (pktgen → manager → sink), the failover to the standby, and the sink's
// verdict, which must be exactly once; then part 2, the two-server demo: the
// primary server's manager killed, the standby server leading, the old
// primary rejoined as the standby, and the sink's verdict.
func TestLabDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries and runs for seconds")
	}
	testenv.RequireRoot(t, "the lab demo needs namespaces, veth pairs and AF_PACKET")
	cmd := exec.Command("bash", "tools/demo.sh", "8")
	cmd.Dir = "../.."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	s := string(out)
	for _, want := range []string{"its standby takes over", "failover: the standby takes over", "the sink says",
		"every packet arrived exactly once and in order, through the failover",
		"part 2: the chain on two servers", "leads: first output at the sink", "chain c0 protected again",
		"VERDICT: no packet twice"} {
		if !strings.Contains(s, want) {
			t.Fatalf("demo output lacks %q:\n%s", want, s)
		}
	}
}

func TestBadConfigAndFlagsGiveClearErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[manager]\nring_size = 1000\n\n[[chain]]\nname = \"default\"\nservices = [1, 99]\n"), 0o600)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--config", bad}, []string{"bad.toml:2: manager.ring_size", "bad.toml:6: chain[0].services[1]"}},
		{[]string{"--config", filepath.Join(dir, "missing.toml")}, []string{"missing.toml"}},
		{[]string{"-t", "-5"}, []string{"positive"}},
		{[]string{"--bogus"}, []string{"bogus"}},
		{[]string{"extra"}, []string{"unexpected argument"}},
	} {
		out, code := runCapture(t, tc.args)
		if code == 0 {
			t.Fatalf("%v: exit 0", tc.args)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Fatalf("%v: error output lacks %q:\n%s", tc.args, w, out)
			}
		}
	}
}

// runCapture runs run() with stderr captured.
func runCapture(t *testing.T, args []string) (string, int) {
	t.Helper()
	r, w, _ := os.Pipe()
	old := os.Stderr
	os.Stderr = w
	code := run(args)
	os.Stderr = old
	w.Close()
	b := make([]byte, 1<<16)
	n, _ := r.Read(b)
	return string(b[:n]), code
}
