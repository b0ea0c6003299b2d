package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/internal/testenv"
	"github.com/reinforce-nfv/reinforce/manager"
	"github.com/reinforce-nfv/reinforce/tools/pktgen/gen"
	"github.com/reinforce-nfv/reinforce/tools/sink/check"
	"github.com/reinforce-nfv/reinforce/tools/testbed/lab"
)

// sinkResult mirrors tools/sink's JSON output.
type sinkResult struct {
	check.Report
	Frames      uint64  `json:"frames"`
	KernelDrops uint64  `json:"kernel_drops"`
	RxDrops     uint64  `json:"rx_drops"`
	PPS         float64 `json:"pps"`
	StopReason  string  `json:"stop_reason"`
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// bins builds the lab's binaries once per test binary and returns their
// directory. Tests that call it need root: it skips without.
func bins(t *testing.T) string {
	t.Helper()
	testenv.RequireRoot(t, "the lab (namespaces, veth, AF_PACKET)")
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "reinforce-e2e-bin-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", binDir+"/",
			"../../cmd/reinforce-mgr", "../../examples/simple_forward", "../../examples/bridge",
			"../pktgen", "../sink")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

func TestMain(m *testing.M) {
	if harnessRole() != "" {
		os.Exit(runHarness())
	}
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// upLab builds cfg and closes it when the test ends.
func upLab(t *testing.T, cfg lab.Config) *lab.Lab {
	t.Helper()
	l, err := lab.Up(cfg, lab.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("close lab: %v", err)
		}
	})
	return l
}

// chainTopo is generator → manager (two ports) → sink, plus a direct
// generator → sink link for the raw rate.
func chainTopo(mtu int) lab.Config {
	return lab.Config{
		Servers: []lab.ServerConfig{{Name: "gen"}, {Name: "mgr"}, {Name: "sink"}},
		Links: []lab.LinkConfig{
			{A: "gen:eth0", B: "mgr:p0", MTU: mtu},
			{A: "mgr:p1", B: "sink:eth0", MTU: mtu},
			{A: "gen:raw0", B: "sink:raw0", MTU: mtu},
		},
	}
}

// mgrConfig is the manager's TOML: afpacket ports p0 and p1, the chain
// simple_forward (service 1) → bridge (service 2), which sends what came in
// on port 0 out of port 1. extra goes into [manager].
func mgrConfig(bin, sock, extra string) string {
	return fmt.Sprintf(`[manager]
name = "lab"
region_dir = "/dev/shm"
control_socket = %q
stats_out = "none"
stats_interval_s = 1
%s
[[port]]
id = 0
driver = "afpacket"
iface = "p0"

[[port]]
id = 1
driver = "afpacket"
iface = "p1"

[[chain]]
name = "default"
services = [1, 2]
out_port = 1

[[nf]]
tag = "simple_forward"
service = 1
instance = 1
command = [%q, "-d", "2", "-p", "0"]

[[nf]]
tag = "bridge"
service = 2
instance = 2
command = [%q, "-p", "0"]
`, sock, extra, filepath.Join(bin, "simple_forward"), filepath.Join(bin, "bridge"))
}

// syncBuf collects a child's output while it runs.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// mgrProc is a manager running in a server.
type mgrProc struct {
	cmd  *exec.Cmd
	sock string
	out  *syncBuf
}

// startMgr runs reinforce-mgr in srv with config text cfg and waits for
// both NFs to run.
func startMgr(t *testing.T, srv *lab.Server, bin, extra string) *mgrProc {
	t.Helper()
	dir := t.TempDir()
	sock := filepath.Join(dir, "ctl.sock") // /tmp is shared: the test reaches it from the host
	path := filepath.Join(dir, "mgr.toml")
	if err := os.WriteFile(path, []byte(mgrConfig(bin, sock, extra)), 0o644); err != nil {
		t.Fatal(err)
	}
	m := &mgrProc{sock: sock, out: &syncBuf{}}
	m.cmd = srv.Command(filepath.Join(bin, "reinforce-mgr"), "--config", path)
	m.cmd.Dir = dir // the NFs write their stats CSV files on exit
	m.cmd.Stdout, m.cmd.Stderr = m.out, m.out
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.cmd.Process.Kill()
		m.cmd.Wait()
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		s, err := m.stats()
		if err == nil && len(s.NFs) == 2 && s.NFs[0].Running && s.NFs[1].Running {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("manager and NFs not running after 15 s (last error %v):\n%s", err, m.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stats asks the manager for its counters over the control socket.
func (m *mgrProc) stats() (manager.Snapshot, error) {
	return manager.FetchSnapshot(m.sock, 5*time.Second)
}

// sinkProc is a sink running in a server.
type sinkProc struct {
	cmd      *exec.Cmd
	out, err *syncBuf
}

// startSink runs the sink with args in srv and waits until it listens.
func startSink(t *testing.T, srv *lab.Server, bin string, args ...string) *sinkProc {
	t.Helper()
	p := &sinkProc{out: &syncBuf{}, err: &syncBuf{}}
	p.cmd = srv.Command(filepath.Join(bin, "sink"), append([]string{"-json"}, args...)...)
	p.cmd.Stdout = p.out
	rd, wr := io.Pipe()
	p.cmd.Stderr = wr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		p.cmd.Wait()
		wr.Close()
	})
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(rd)
		for sc.Scan() {
			p.err.Write([]byte(sc.Text() + "\n"))
			if strings.Contains(sc.Text(), "listening on") {
				ready <- true
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatalf("sink did not start listening: %s", p.err.String())
	}
	return p
}

// wait returns the sink's verdict; it exits 0 or 3 (verdict not clean).
func (p *sinkProc) wait(t *testing.T) sinkResult {
	t.Helper()
	err := p.cmd.Wait()
	if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() != 3) {
		t.Fatalf("sink: %v\n%s", err, p.err.String())
	}
	var r sinkResult
	if err := json.Unmarshal([]byte(p.out.String()), &r); err != nil {
		t.Fatalf("sink output: %v\n%s\n%s", err, p.out.String(), p.err.String())
	}
	return r
}

// pktgen runs the generator in srv to completion and returns its report,
// also written to a file for the sink's -sent.
func pktgen(t *testing.T, srv *lab.Server, bin, reportPath string, args ...string) gen.Report {
	t.Helper()
	return runPktgen(t, srv.Command(filepath.Join(bin, "pktgen"), append([]string{"-json"}, args...)...), reportPath, args)
}

// pktgenNice is pktgen at nice 10.
func pktgenNice(t *testing.T, srv *lab.Server, bin, reportPath string, args ...string) gen.Report {
	t.Helper()
	return runPktgen(t, srv.Command("nice", append([]string{"-n", "10", filepath.Join(bin, "pktgen"), "-json"}, args...)...), reportPath, args)
}

func runPktgen(t *testing.T, cmd *exec.Cmd, reportPath string, args []string) gen.Report {
	t.Helper()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pktgen %v: %v\n%s", args, err, stderr.String())
	}
	if reportPath != "" {
		if err := os.WriteFile(reportPath, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var r gen.Report
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("pktgen output: %v\n%s", err, out)
	}
	return r
}
