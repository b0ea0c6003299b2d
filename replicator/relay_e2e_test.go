package replicator_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/internal/testenv"
	"github.com/reinforce-nfv/reinforce/tools/testbed/lab"
)

// The e2e test's child processes: the test binary again, with
// REINFORCE_TEST_CHILD=primary or standby, inside a lab server.
const childEnv = "REINFORCE_TEST_CHILD"

func TestMain(m *testing.M) {
	if role := os.Getenv(childEnv); role != "" {
		os.Exit(runChild(role))
	}
	os.Exit(m.Run())
}

func runChild(role string) int {
	local := netip.MustParseAddrPort(os.Getenv("REPL_LOCAL"))
	peer := netip.MustParseAddrPort(os.Getenv("REPL_PEER"))
	n, _ := strconv.Atoi(os.Getenv("REPL_N"))
	size, _ := strconv.Atoi(os.Getenv("REPL_SIZE"))
	var res any
	var err error
	switch role {
	case "primary":
		pace := pacing{every: 4, sleep: time.Millisecond}
		if pid, _ := strconv.Atoi(os.Getenv("REPL_RELAY_PID")); pid > 0 {
			// A blackout in the middle of the stream (the lab servers
			// share our PID namespace).
			pace.midway = func() { _ = syscall.Kill(pid, syscall.SIGUSR1) }
		}
		res, err = runPrimary(local, peer, n, size, pace, 40*time.Second)
	case "standby":
		// The parent closes our stdin when the primary is done.
		stop := make(chan struct{})
		go func() { _, _ = io.Copy(io.Discard, os.Stdin); close(stop) }()
		res, err = runStandby(local, peer, n, stop, 50*time.Second)
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	b, _ := json.Marshal(res)
	fmt.Printf("RESULT %s\n", b)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", role, err)
		return 1
	}
	return 0
}

// TestRelayE2E: two processes, in two lab servers, replicate a stream of
// transactions through tools/relay in a third, with 10 % loss, duplication
// and reordering, and a 200 ms blackout that the primary starts halfway. Every transaction must
// be applied exactly once and in order, and no latch released before the
// standby applied it (checkRun, from the primary's release log and counters
// and the standby's apply log).
func TestRelayE2E(t *testing.T) {
	testenv.RequireRoot(t, "network namespaces, veth pairs and AF_PACKET")
	seed := testenv.Seed(t)
	dir := t.TempDir()
	relayBin := filepath.Join(dir, "relay")
	if out, err := exec.Command("go", "build", "-o", relayBin, "../tools/relay").CombinedOutput(); err != nil {
		t.Fatalf("go build relay: %v\n%s", err, out)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	l, err := lab.Up(lab.Config{
		Servers: []lab.ServerConfig{{Name: "prim"}, {Name: "relay"}, {Name: "stby"}},
		Links: []lab.LinkConfig{
			{A: "prim:eth0", B: "relay:ra", AddrA: "10.77.0.1/24"},
			{A: "relay:rb", B: "stby:eth0", AddrB: "10.77.0.2/24"},
		},
	}, lab.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// Frames the relay copies are sent without checksum offload, so the
	// senders must compute UDP checksums themselves.
	for _, s := range []string{"prim", "stby"} {
		if out, err := l.Server(s).Command("ethtool", "-K", "eth0", "tx", "off").CombinedOutput(); err != nil {
			t.Fatalf("ethtool in %s: %v\n%s", s, err, out)
		}
	}
	relay := l.Server("relay").Command(relayBin, "-a", "ra", "-b", "rb", "-seed", fmt.Sprint(seed),
		"-loss", "0.1", "-dup", "0.1", "-reorder", "0.1", "-blackout", "200ms")
	var relayOut strings.Builder
	relay.Stdout, relay.Stderr = &relayOut, &relayOut
	if err := relay.Start(); err != nil {
		t.Fatal(err)
	}
	defer relay.Process.Kill()

	const n, size = 3000, 200
	child := func(server, role, local, peer string) *exec.Cmd {
		c := l.Server(server).Command(self, "-test.run=^$")
		c.Env = append(os.Environ(), childEnv+"="+role, "REPL_LOCAL="+local, "REPL_PEER="+peer,
			"REPL_N="+strconv.Itoa(n), "REPL_SIZE="+strconv.Itoa(size), "REPL_RELAY_PID="+strconv.Itoa(relay.Process.Pid))
		c.Stderr = os.Stderr
		return c
	}
	start := time.Now()
	stby := child("stby", "standby", "10.77.0.2:4790", "10.77.0.1:4790")
	stbyIn, err := stby.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stbyOut, err := stby.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := stby.Start(); err != nil {
		t.Fatal(err)
	}
	defer stby.Process.Kill()
	prim := child("prim", "primary", "10.77.0.1:4790", "10.77.0.2:4790")
	primOut, err := prim.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := prim.Start(); err != nil {
		t.Fatal(err)
	}
	defer prim.Process.Kill()

	var p primaryResult
	var s standbyResult
	perr := readResult(primOut, &p)
	werr := prim.Wait()
	stbyIn.Close()
	serr := readResult(stbyOut, &s)
	swerr := stby.Wait()
	elapsed := time.Since(start)
	_ = relay.Process.Signal(syscall.SIGTERM)
	_ = relay.Wait()
	t.Logf("%d transactions in %v; relay: %s", n, elapsed, strings.TrimSpace(relayOut.String()))
	t.Logf("primary: %+v", p.Stats)
	t.Logf("standby: %+v", s.Stats)
	for _, err := range []error{perr, werr, serr, swerr} {
		if err != nil {
			t.Fatal(err)
		}
	}
	checkRun(t, n, p, s)
	var rs map[string]struct{ Lost, Duplicated, Reordered, Blackholed uint64 }
	if i := strings.LastIndex(relayOut.String(), "relay: {"); i >= 0 {
		_ = json.Unmarshal([]byte(strings.TrimSpace(relayOut.String()[i+len("relay: "):])), &rs)
	}
	c := rs["ra>rb"]
	if c.Lost == 0 || c.Duplicated == 0 || c.Reordered == 0 || c.Blackholed == 0 {
		t.Fatalf("the relay did not impair the stream: %+v", rs)
	}
	if p.Stats.Replicator.Retransmits == 0 || s.Stats.Replicator.Duplicate == 0 {
		t.Fatalf("no retransmission or duplicate seen: primary %+v standby %+v", p.Stats.Replicator, s.Stats.Replicator)
	}
}

func readResult(r io.Reader, v any) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		if b, ok := strings.CutPrefix(sc.Text(), "RESULT "); ok {
			return json.Unmarshal([]byte(b), v)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return fmt.Errorf("no RESULT line")
}
