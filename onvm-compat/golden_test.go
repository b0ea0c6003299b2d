package onvmcompat

// Golden tests of the command lines ONVM-COMPAT.md quotes (install and
// example sections, §1.1, §4.2, §4.3, §5.1, §6), run verbatim against this
// ONVM_HOME: the scripts build the binaries (into a temporary REINFORCE_BIN)
// and start real managers and NFs. Each test asserts specific output lines
// and exit codes.
//
// The environment only isolates the runs from each other and from other
// managers on the machine: REINFORCE_NAME (region and socket), and the region
// in /dev/shm so hugepages are left to the tests that need them.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/internal/testenv"
)

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

// TestMain removes the shared binary directory after the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// home is this package's directory, the ONVM_HOME under test.
func home(t *testing.T) string {
	t.Helper()
	d, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// scriptEnv is the environment of a script run for manager name.
func scriptEnv(t *testing.T, name string, extra ...string) []string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds binaries and runs managers for seconds")
	}
	binOnce.Do(func() { binDir, binErr = os.MkdirTemp("", "onvm-compat-bin-") })
	if binErr != nil {
		t.Fatal(binErr)
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REINFORCE_") && !strings.HasPrefix(kv, "ONVM_HOME=") {
			env = append(env, kv)
		}
	}
	return append(env, append([]string{"ONVM_HOME=" + home(t), "REINFORCE_BIN=" + binDir,
		"REINFORCE_NAME=" + name, "REINFORCE_REGION_DIR=/dev/shm"}, extra...)...)
}

// uniqueName is a manager name no other run uses.
func uniqueName(tag string) string {
	return fmt.Sprintf("oc-%s-%d-%d", tag, os.Getpid(), time.Now().UnixNano()%1e6)
}

// result is a finished command.
type result struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

// run runs argv in dir with env and waits, up to limit.
func run(t *testing.T, dir string, env []string, limit time.Duration, argv ...string) result {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir, cmd.Env = dir, env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(limit, func() { cmd.Process.Kill() })
	defer timer.Stop()
	err := cmd.Wait()
	r := result{stdout: out.String(), stderr: errb.String(), took: time.Since(t0), code: cmd.ProcessState.ExitCode()}
	if err != nil && r.code < 0 {
		t.Fatalf("%q: %v (killed after %v?)\nstdout:\n%s\nstderr:\n%s", argv, err, limit, r.stdout, r.stderr)
	}
	return r
}

// bg is a command running in the background.
type bg struct {
	cmd      *exec.Cmd
	out, err syncBuf
	done     chan struct{}
}

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

func start(t *testing.T, dir string, env []string, argv ...string) *bg {
	t.Helper()
	b := &bg{cmd: exec.Command(argv[0], argv[1:]...), done: make(chan struct{})}
	b.cmd.Dir, b.cmd.Env = dir, env
	b.cmd.Stdout, b.cmd.Stderr = &b.out, &b.err
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { b.cmd.Wait(); close(b.done) }()
	t.Cleanup(func() {
		syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
		<-b.done
	})
	return b
}

// stop sends SIGINT and returns the exit code, failing after limit.
func (b *bg) stop(t *testing.T, limit time.Duration) int {
	t.Helper()
	b.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-b.done:
	case <-time.After(limit):
		t.Fatalf("%q did not stop within %v after SIGINT\nstdout:\n%s\nstderr:\n%s", b.cmd.Args, limit, b.out.String(), b.err.String())
	}
	return b.cmd.ProcessState.ExitCode()
}

// waitOutput waits until the command's stdout or stderr contains want.
func (b *bg) waitOutput(t *testing.T, want string, limit time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(limit); ; time.Sleep(20 * time.Millisecond) {
		if strings.Contains(b.out.String(), want) || strings.Contains(b.err.String(), want) {
			return
		}
		select {
		case <-b.done:
			t.Fatalf("%q exited (%v) before printing %q\nstdout:\n%s\nstderr:\n%s", b.cmd.Args, b.cmd.ProcessState, want, b.out.String(), b.err.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q printed no %q within %v\nstdout:\n%s\nstderr:\n%s", b.cmd.Args, want, limit, b.out.String(), b.err.String())
		}
	}
}

// wantLines fails unless every line of want is a whole line of out.
func wantLines(t *testing.T, what, out string, want ...string) {
	t.Helper()
	lines := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		lines[strings.TrimPrefix(l, "\x1b[2J\x1b[1;1H")] = true
	}
	for _, w := range want {
		if !lines[w] {
			t.Errorf("%s lacks the line %q:\n%s", what, w, out)
		}
	}
}

// nfCoresLine is the line onvm_mgr prints for -n 0xF8 on this machine.
func nfCoresLine() string {
	ncpu := runtime.NumCPU()
	var cpus []string
	for c := 3; c <= 7 && c < ncpu; c++ {
		cpus = append(cpus, strconv.Itoa(c))
	}
	if len(cpus) == 0 { // none present: all CPUs, with a notice
		for c := range ncpu {
			cpus = append(cpus, strconv.Itoa(c))
		}
	}
	return fmt.Sprintf("Registered %d cores for NFs: %s", len(cpus), strings.Join(cpus, ", "))
}

// managerLines are what a go.sh manager run prints on stdout, wherever the
// syntax.
func managerLines() []string {
	return []string{
		"Base virtual address set to default 0x7f000000000",
		"WARNING: No ports are being used.",
		nfCoresLine(),
		"Stats verbosity level = 1",
		"Manager time to live = 5",
		"PORTS",
		"-----",
		"NF TAG         IID / SID / CORE    rx_pps  /  tx_pps        rx_drop  /  tx_drop           out   /    tonf     /   drop",
		"Time to live exceeded, shutting down",
	}
}

// The acceptance's two go.sh lines: flag and legacy syntax, 5 s TTL.
func TestGoShRunsForItsTTLInBothSyntaxes(t *testing.T) {
	root := filepath.Dir(home(t))
	for _, tc := range []struct {
		name string
		argv []string
		more []string
	}{
		{"flags", strings.Fields("onvm-compat/onvm/go.sh -k 0 -n 0xF8 -s stdout -t 5"),
			[]string{"INFO: Using default CPU cores 0,1,2"}},
		{"legacy", strings.Fields("onvm-compat/onvm/go.sh 0,1,2 0 0xF8 -s stdout -t 5"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := scriptEnv(t, uniqueName(tc.name))
			// Build first, so the TTL is measured alone.
			if r := run(t, root, env, 5*time.Minute, "bash", "-c", ". onvm-compat/lib/bin.sh && reinforce_bin reinforce-mgr"); r.code != 0 {
				t.Fatalf("build: %s", r.stderr)
			}
			r := run(t, root, env, 60*time.Second, tc.argv...)
			if r.code != 0 {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
			}
			if r.took < 4500*time.Millisecond || r.took > 15*time.Second {
				t.Errorf("ran %v, want about 5 s", r.took)
			}
			wantLines(t, "stdout", r.stdout, append(managerLines(), tc.more...)...)
			for _, n := range []string{
				"reinforce-mgr: notice: ignoring EAL argument -n 4: memory channels are DPDK's concern",
				"reinforce-mgr: notice: ignoring EAL argument --proc-type=primary: the manager is always the primary",
				"reinforce-mgr: notice: ignoring EAL argument --base-virtaddr=0x7f000000000: the region holds no pointers, so any address works",
			} {
				if !strings.Contains(r.stderr, n+"\n") {
					t.Errorf("stderr lacks %q:\n%s", n, r.stderr)
				}
			}
			if n := strings.Count(r.stdout, "NF TAG "); n < 3 {
				t.Errorf("%d stats periods in 5 s, want at least 3", n)
			}
		})
	}
}

// go.sh's refusals: its messages on stdout, exit 1, no manager started.
func TestGoShRefusalsPrintGoShsMessages(t *testing.T) {
	root := filepath.Dir(home(t))
	env := scriptEnv(t, uniqueName("refuse"))
	for _, tc := range []struct {
		args  string
		lines []string
	}{
		{"0,1 0 0xF8", []string{"Error: Invalid Manager Cores. Proper syntax: onvm-compat/onvm/go.sh <cores> <port mask> <NF cores> [OPTIONS]",
			"Example: onvm-compat/onvm/go.sh 0,1,2 1 0xF8 -s stdout"}},
		{"0,1,2 0 F8", []string{"Error: Invalid NF Core Mask. Proper syntax: onvm-compat/onvm/go.sh <cores> <port mask> <NF cores> [OPTIONS]"}},
		{"0,1,2 0 0xF8 -m 1,2,3", []string{"Error: Cannot use manual manager core flag with legacy syntax. Proper syntax: onvm-compat/onvm/go.sh <cores> <port mask> <NF cores> [OPTIONS]"}},
		{"-n 0xF8", []string{"Error: Port Mask not set. openNetVM requires that a Port Mask be set using -k <port mask> using a hexadecimal number (without 0x)",
			"onvm-compat/onvm/go.sh -k PORTMASK -n NF-COREMASK [-m MANAGER CORES] [-r NUM-SERVICES] [-d DEFAULT-SERVICE] [-s STATS-OUTPUT] [-p WEB-PORT-NUMBER] [-z STATS-SLEEP-TIME]"}},
		{"-k 1 -n 0xF8 -s file", []string{"ERROR: invalid stats output (stdout, stderr or web) -s \"file\""}},
	} {
		r := run(t, root, env, 2*time.Minute, append([]string{"onvm-compat/onvm/go.sh"}, strings.Fields(tc.args)...)...)
		if r.code != 1 {
			t.Errorf("%q: exit %d, want 1\nstdout:\n%s\nstderr:\n%s", tc.args, r.code, r.stdout, r.stderr)
		}
		wantLines(t, tc.args, r.stdout, tc.lines...)
	}
}

// The install test (ONVM-COMPAT.md §5.1) against a running manager, then the
// other start_nf.sh modes against the same manager.
func TestSpeedTesterScreenAndStartNFModes(t *testing.T) {
	root := filepath.Dir(home(t))
	name := uniqueName("st")
	env := scriptEnv(t, name)
	examples := filepath.Join(home(t), "examples")

	// No manager yet: examples/go.sh refuses.
	r := run(t, filepath.Join(examples, "speed_tester"), env, 2*time.Minute, "./go.sh", "1", "-d", "1", "-c", "16000")
	if r.code != 1 || !strings.Contains(r.stdout, "NF cannot start without a running manager\n") {
		t.Fatalf("without a manager: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	t.Cleanup(func() { // the NFs' <tag>_stats.csv, written where they ran
		for _, nf := range []string{"speed_tester", "simple_forward"} {
			os.Remove(filepath.Join(examples, nf, nf+"_stats.csv"))
		}
		os.Remove(filepath.Join(examples, "simple_forward_stats.csv"))
	})

	mgr := start(t, root, env, "onvm-compat/onvm/go.sh", "-k", "0", "-n", "0xF8", "-t", "120")
	mgr.waitOutput(t, "manager started", 5*time.Minute)

	// A second manager on the same socket is refused, as go.sh refuses one.
	if r := run(t, root, env, time.Minute, "onvm-compat/onvm/go.sh", "-k", "0", "-n", "0xF8"); r.code != 1 ||
		!strings.Contains(r.stdout, "Manager cannot be started while another is running\n") {
		t.Fatalf("second manager: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	st := start(t, filepath.Join(examples, "speed_tester"), env, "./go.sh", "1", "-d", "1", "-c", "16000")
	// Two screens, the second with a higher total.
	re := regexp.MustCompile(`Total packets: +(\d+) \nTX pkts per second: +(\d+) \nInitial packets created: (\d+)\n`)
	var totals []uint64
	for deadline := time.Now().Add(2 * time.Minute); len(totals) < 2; time.Sleep(50 * time.Millisecond) {
		m := re.FindAllStringSubmatch(st.out.String(), -1)
		totals = totals[:0]
		for _, s := range m {
			n, _ := strconv.ParseUint(s[1], 10, 64)
			totals = append(totals, n)
		}
		if time.Now().After(deadline) {
			t.Fatalf("speed_tester showed %d screens\nstdout:\n%s\nstderr:\n%s", len(totals), st.out.String(), st.err.String())
		}
	}
	if totals[1] <= totals[0] {
		t.Fatalf("packet count did not rise: %v", totals)
	}
	if code := st.stop(t, 10*time.Second); code != 0 {
		t.Fatalf("speed_tester exit %d after SIGINT\n%s", code, st.err.String())
	}
	wantLines(t, "speed_tester", st.out.String(), "NF Activity summary", "NF tag: speed_tester", "NF service ID: 1",
		"CSV file written to speed_tester directory")
	wantLines(t, "speed_tester", st.err.String(), "ignoring EAL argument -l 0", "ignoring EAL argument --proc-type=secondary")

	// -F mode: ONVM's example_config.json gives service 1, instance 3.
	sf := start(t, filepath.Join(examples, "simple_forward"), env, "./go.sh", "-F", "../example_config.json", "--", "--", "-d", "1")
	mgr.waitOutput(t, "nf=simple_forward#3", 30*time.Second)
	if code := sf.stop(t, 10*time.Second); code != 0 {
		t.Fatalf("simple_forward -F: exit %d\n%s", code, sf.err.String())
	}
	wantLines(t, "simple_forward -F", sf.out.String(), "NF instance ID: 3", "NF service ID: 1")
	wantLines(t, "simple_forward -F", sf.err.String(), "config file ../example_config.json: ignoring dpdk.memory_channels")

	// Complex mode, with the whole-word split of "--".
	cx := start(t, examples, env, "./start_nf.sh", "simple_forward", "-l", "1", "--", "-r", "2", "-n", "9", "--", "-d", "2")
	mgr.waitOutput(t, "nf=simple_forward#9", 30*time.Second)
	if code := cx.stop(t, 10*time.Second); code != 0 {
		t.Fatalf("complex mode: exit %d\n%s", code, cx.err.String())
	}
	wantLines(t, "complex mode", cx.out.String(), "NF instance ID: 9", "NF service ID: 2")

	// start_nf.sh refusals.
	for _, tc := range []struct {
		args []string
		line string
	}{
		{[]string{"speed_tester", "-l", "1", "--", "-r", "1"}, "This script expects 0 or at least 2 '--' argument separators"},
		{[]string{"no_such_nf", "1"}, "ERROR: NF executable not found, " + examples + "/no_such_nf/build/app/no_such_nf doesn't exist"},
		{[]string{"speed_tester"}, "ERROR: Missing required arguments"},
	} {
		r := run(t, examples, env, time.Minute, append([]string{"./start_nf.sh"}, tc.args...)...)
		if r.code != 1 {
			t.Errorf("start_nf.sh %q: exit %d, want 1", tc.args, r.code)
		}
		wantLines(t, fmt.Sprint(tc.args), r.stdout, tc.line)
	}

	if code := mgr.stop(t, 15*time.Second); code != 0 {
		t.Fatalf("manager exit %d after SIGINT\n%s", code, mgr.err.String())
	}
	wantLines(t, "manager", mgr.out.String(), "Received interrupt, shutting down")
}

// run_group.py with ONVM's example deployment: three NFs, stopped at its
// 10 s TTL.
func TestRunGroupStartsTheDeploymentAndStopsItAtTheTTL(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		testenv.Skip(t, "python3 is not installed")
	}
	root := filepath.Dir(home(t))
	env := scriptEnv(t, uniqueName("rg"))
	examples := filepath.Join(home(t), "examples")
	out := filepath.Join(examples, "output_files")
	if _, err := os.Stat(out); err == nil {
		t.Fatalf("%s exists; remove it first", out)
	}
	t.Cleanup(func() {
		os.RemoveAll(out)
		for _, nf := range []string{"speed_tester", "simple_forward"} {
			os.Remove(filepath.Join(examples, nf, nf+"_stats.csv"))
		}
	})
	for _, nf := range []string{"reinforce-mgr", "speed_tester", "simple_forward"} {
		if r := run(t, root, env, 5*time.Minute, "bash", "-c", ". onvm-compat/lib/bin.sh && reinforce_bin "+nf); r.code != 0 {
			t.Fatalf("build %s: %s", nf, r.stderr)
		}
	}
	mgr := start(t, root, env, "onvm-compat/onvm/go.sh", "-k", "0", "-n", "0xF8", "-t", "120")
	mgr.waitOutput(t, "manager started", time.Minute)

	r := run(t, examples, env, 2*time.Minute, "python3", "run_group.py", "example_nf_deploy.json")
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s\nmanager:\n%s", r.code, r.stdout, r.stderr, mgr.err.String())
	}
	wantLines(t, "run_group.py", r.stdout,
		"Creating directory output_files",
		"Starting simple_forward ./go.sh 2 -d 1",
		"Starting speed_tester ./go.sh 1 -d 2 -c 16000",
		"Starting speed_tester ./go.sh 3 -d 3 -c 16000",
		"Exiting on timeout...")
	if r.took < 9500*time.Millisecond || r.took > 40*time.Second {
		t.Errorf("ran %v, want the 10 s TTL plus the NFs' exit", r.took)
	}
	for _, f := range []string{"log-simple_forward-2.txt", "log-speed_tester-1.txt", "log-speed_tester-3.txt"} {
		b, err := os.ReadFile(filepath.Join(out, f))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "NF Activity summary") {
			t.Errorf("%s: the NF did not stop cleanly:\n%s", f, b)
		}
	}
	mgrErr := mgr.err.String()
	for _, nf := range []string{"nf=simple_forward#", "nf=speed_tester#"} {
		if !strings.Contains(mgrErr, nf) {
			t.Errorf("the manager saw no %s", nf)
		}
	}
	mgr.stop(t, 15*time.Second)

	// Outside examples/ it refuses, as ONVM's does.
	r = run(t, home(t), env, time.Minute, "python3", "examples/run_group.py", "examples/example_nf_deploy.json")
	if r.code != 1 || r.stdout != "Error: Run script from within /examples folder\n" {
		t.Fatalf("outside examples/: exit %d, %q", r.code, r.stdout)
	}
}

// Web mode: both JSON files over HTTP on port 8000 (another port if 8000 is
// taken on this machine), with every key the console reads.
func TestGoShWebModeServesTheConsoleFiles(t *testing.T) {
	port := 8000
	if ln, err := net.Listen("tcp", ":8000"); err != nil {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		t.Logf("port 8000 is taken here; using %d", port)
	} else {
		ln.Close()
	}
	root := filepath.Dir(home(t))
	t.Cleanup(func() {
		for _, f := range []string{"onvm_json_stats.json", "onvm_json_events.json", "onvm_stats.txt"} {
			os.Remove(filepath.Join(home(t), "onvm_web", f))
		}
	})
	env := scriptEnv(t, uniqueName("web"), "REINFORCE_WEB_PORT="+strconv.Itoa(port), "REINFORCE_PORT_RATE=1000")
	mgr := start(t, root, env, "onvm-compat/onvm/go.sh", "-k", "1", "-n", "0xF8", "-s", "web", "-p", "8080", "-t", "60")
	mgr.waitOutput(t, "manager started", 5*time.Minute)
	wantLines(t, "stdout", mgr.out.String(), "ONVM stats can be viewed through the web console")
	if !strings.Contains(mgr.err.String(), "ignoring -p 8080") {
		t.Errorf("no notice about the console port:\n%s", mgr.err.String())
	}
	get := func(name string, into any) {
		t.Helper()
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/%s", port, name))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Fatalf("%s: %s, Access-Control-Allow-Origin %q", name, resp.Status, resp.Header.Get("Access-Control-Allow-Origin"))
		}
		if err := json.Unmarshal(b, into); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, b)
		}
	}
	// A period with the port's traffic in it.
	var stats struct {
		LastUpdated string                    `json:"last_updated"`
		Ports       map[string]map[string]any `json:"onvm_port_stats"`
		NFs         map[string]any            `json:"onvm_nf_stats"`
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		get("onvm_json_stats.json", &stats)
		if rx, _ := stats.Ports["Port 0"]["RX"].(float64); rx > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no port RX rate in %+v", stats)
		}
	}
	if stats.LastUpdated == "" || stats.NFs == nil || stats.Ports["Port 0"]["TX"] == nil {
		t.Fatalf("stats %+v", stats)
	}
	var events []struct {
		Message string         `json:"message"`
		Source  map[string]any `json:"source"`
	}
	get("onvm_json_events.json", &events)
	if len(events) != 4 || events[3].Message != "Port 0 initialized" || events[3].Source["type"] != "MGR" {
		t.Fatalf("events %+v", events)
	}
	// And the files where ONVM's manager writes them.
	for _, f := range []string{"onvm_json_stats.json", "onvm_json_events.json", "onvm_stats.txt"} {
		if _, err := os.Stat(filepath.Join(home(t), "onvm_web", f)); err != nil {
			t.Error(err)
		}
	}
	if code := mgr.stop(t, 15*time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// The NF JSON config in examples/ must stay what ONVM ships.
func TestExampleFilesParse(t *testing.T) {
	b, err := os.ReadFile("examples/example_nf_deploy.json")
	if err != nil {
		t.Fatal(err)
	}
	d, err := ParseDeploy(b)
	if err != nil {
		t.Fatal(err)
	}
	if d.TTL != 10 || d.Directory != "output_files" || len(d.NFs) != 3 {
		t.Fatalf("deploy %+v", d)
	}
}
