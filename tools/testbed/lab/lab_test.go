package lab

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/internal/testenv"
)

const topo = `
[mgmt]
subnet = "10.251.0.0/24"

[[server]]
name = "a"

[[server]]
name = "b"

[[link]]
a = "a:eth0"
b = "b:eth1"
mtu = 9000
addr_a = "10.9.0.1/30"
addr_b = "10.9.0.2/30"
`

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig("topo.toml", []byte(topo))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Servers) != 2 || len(c.Links) != 1 || c.Links[0].MTU != 9000 || c.Mgmt.Subnet != "10.251.0.0/24" {
		t.Fatalf("parsed %+v", c)
	}
	if got := c.mgmtAddr(1).String(); got != "10.251.0.2/24" {
		t.Errorf("server 1's management address %s", got)
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct{ toml, want string }{
		{``, "no [[server]]"},
		{`[[server]]` + "\nname = \"A\"", `server[0].name "A"`},
		{"[[server]]\nname = \"a\"\n[[server]]\nname = \"a\"", "duplicate"},
		{"[[server]]\nname = \"a\"\n[[link]]\na = \"a:x\"\nb = \"c:y\"", `no server "c"`},
		{"[[server]]\nname = \"a\"\n[[link]]\na = \"a\"\nb = \"a:y\"", "want server:iface"},
		{"[[server]]\nname = \"a\"\n[[link]]\na = \"a:x\"\nb = \"a:x\"", "used twice"},
		{"[[server]]\nname = \"a\"\n[[link]]\na = \"a:x\"\nb = \"a:y\"\nmtu = 10", "mtu 10"},
		{"[[server]]\nname = \"a\"\n[[link]]\na = \"a:x\"\nb = \"a:y\"\naddr_a = \"nope\"", `address "nope"`},
		{"[[server]]\nname = \"a\"\n[mgmt]\nsubnet = \"fd00::/64\"", "IPv4 prefix"},
		{"[[server]]\nname = \"a\"\ncolour = 1", "unknown keys: server.colour"},
	} {
		_, err := ParseConfig("t.toml", []byte(tc.toml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to mention %q", tc.toml, err, tc.want)
		}
	}
}

func up(t *testing.T, c Config) *Lab {
	t.Helper()
	testenv.RequireRoot(t, "namespaces")
	l, err := Up(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// TestLabServers checks a lab's shape from inside: interfaces, MTU,
// addresses, private /dev/shm and /run, and the management network
// (a TCP connection from one server to another, since there is no ping).
func TestLabServers(t *testing.T) {
	c, err := ParseConfig("topo.toml", []byte(topo))
	if err != nil {
		t.Fatal(err)
	}
	l := up(t, c)
	a, b := l.Server("a"), l.Server("b")
	if a == nil || b == nil || l.Server("_hub") != nil || len(l.Servers()) != 2 {
		t.Fatalf("servers %v", l.Servers())
	}
	ifs, err := a.Interfaces()
	if err != nil || strings.Join(ifs, ",") != "lo,eth0,mgmt0" {
		t.Errorf("a's interfaces %v (%v)", ifs, err)
	}
	out, err := b.Command("cat", "/sys/class/net/eth1/mtu", "/proc/sys/net/ipv6/conf/eth1/disable_ipv6").CombinedOutput()
	if err != nil || string(out) != "9000\n1\n" {
		t.Errorf("b's eth1: mtu, disable_ipv6 = %q (%v)", out, err)
	}
	// The working directory is the caller's, or cmd.Dir.
	dir := t.TempDir()
	pwd := a.Command("pwd")
	pwd.Dir = dir
	if out, err := pwd.Output(); err != nil || strings.TrimSpace(string(out)) != dir {
		t.Errorf("pwd with Dir %s: %q (%v)", dir, out, err)
	}
	wd, _ := os.Getwd()
	if out, err := a.Command("pwd").Output(); err != nil || strings.TrimSpace(string(out)) != wd {
		t.Errorf("pwd: %q (%v), want %s", out, err, wd)
	}
	// Private /dev/shm and /run: a file made in a is not in b nor on the host.
	name := "lab-test-" + l.Run()
	if out, err := a.Command("sh", "-c", "touch /dev/shm/"+name+" /run/"+name+" && ls /dev/shm /run").CombinedOutput(); err != nil || !strings.Contains(string(out), name) {
		t.Fatalf("a: %v: %s", err, out)
	}
	if b.Command("sh", "-c", "test -e /dev/shm/"+name+" || test -e /run/"+name).Run() == nil {
		t.Error("b sees a's /dev/shm or /run")
	}
	for _, p := range []string{"/dev/shm/" + name, "/run/" + name} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("host sees %s: %v", p, err)
		}
	}
	// The data link carries traffic between the addresses, and the
	// management network between the servers.
	for _, tc := range []struct{ listen, dial string }{
		{"10.9.0.2:7000", "10.9.0.2:7000"},
		{strings.TrimSuffix(b.MgmtAddr(), "/24") + ":7001", strings.TrimSuffix(b.MgmtAddr(), "/24") + ":7001"},
	} {
		var ln net.Listener
		if err := b.Do(func() (err error) { ln, err = net.Listen("tcp4", tc.listen); return err }); err != nil {
			t.Fatal(err)
		}
		go func() {
			c, err := ln.Accept()
			if err == nil {
				c.Write([]byte("hello"))
				c.Close()
			}
		}()
		var got []byte
		err := a.Do(func() error {
			c, err := net.DialTimeout("tcp4", tc.dial, 5*time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			got, err = io.ReadAll(c)
			return err
		})
		ln.Close()
		if err != nil || string(got) != "hello" {
			t.Errorf("a → b %s: %q, %v", tc.dial, got, err)
		}
	}
	// The addresses are the servers', not the host's.
	addrs, _ := net.InterfaceAddrs()
	for _, ad := range addrs {
		if strings.HasPrefix(ad.String(), "10.9.0.") || strings.HasPrefix(ad.String(), "10.251.0.") {
			t.Errorf("host has the lab's address %s", ad)
		}
	}
	if a.MgmtAddr() != "10.251.0.1/24" || b.MgmtAddr() != "10.251.0.2/24" {
		t.Errorf("management addresses %s, %s", a.MgmtAddr(), b.MgmtAddr())
	}
}

// TestCloseLeavesNothing closes a lab with a command still running in it.
func TestCloseLeavesNothing(t *testing.T) {
	l := up(t, Config{Servers: []ServerConfig{{Name: "x"}}, Mgmt: &MgmtConfig{Subnet: "10.252.0.0/24"}})
	cmd := l.Server("x").Command("sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	holders := append([]serverState(nil), l.st.Servers...)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the command outlived its lab")
	}
	for _, h := range holders {
		if alive(h.PID, h.Start) && !zombie(h.PID) {
			t.Errorf("holder of %s (%d) alive", h.Name, h.PID)
		}
	}
	if _, err := os.Stat(filepath.Join(StateDir, l.Run())); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state left: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestSweepRemovesDeadRuns records a run whose owner is dead and whose
// holder is a live process of ours in our own namespaces: Sweep removes
// the state but kills nothing that is not the run's (the holder's start
// time does not match).
func TestSweepRemovesDeadRuns(t *testing.T) {
	testenv.RequireRoot(t, "the state directory")
	run := RunPrefix + "deadbeef"
	st := state{Run: run, OwnerPID: 1 << 22, OwnerStart: 1, Created: time.Now(),
		Servers: []serverState{{Name: "x", PID: os.Getpid(), Start: 12345}}}
	data, _ := json.Marshal(st)
	if err := os.MkdirAll(filepath.Join(StateDir, run), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(StateDir, run, "state.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	removed, err := Sweep()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range removed {
		found = found || r == run
	}
	if !found {
		t.Fatalf("Sweep removed %v, not %s", removed, run)
	}
	if _, err := os.Stat(filepath.Join(StateDir, run)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state left: %v", err)
	}
}

func TestUpNeedsValidConfig(t *testing.T) {
	if _, err := Up(Config{}, Options{}); err == nil {
		t.Fatal("empty topology accepted")
	}
}
