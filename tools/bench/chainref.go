package main

// The chain subcommand's two in-run references: dpdk-testpmd forwarding
// between two net_null ports (T2, T3) and a cache-line ping-pong between
// two processes (T4).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/reinforce-nfv/reinforce/shm"
)

// TestPMDResult is one dpdk-testpmd run.
type TestPMDResult struct {
	Command []string  `json:"command"`
	Blocks  []float64 `json:"mpps_per_stats_block"` // Rx-pps summed over both ports, per stats period
	Mpps    float64   `json:"mpps"`                 // the best block: on a shared machine the best is the closest to the truth
	Output  string    `json:"output"`
}

// testpmdArgs is io forwarding between two net_null ports on one
// forwarding core, without hugepages or PCI (TARGETS.md's reference).
func testpmdArgs(lcores string) []string {
	return []string{"-l", lcores, "--no-pci", "--no-huge", "-m", "1024",
		"--vdev", "net_null0", "--vdev", "net_null1", "--file-prefix", fmt.Sprintf("reinforce-bench-%d", os.Getpid()),
		"--", "--forward-mode=io", "--auto-start", "--stats-period", "1", "--nb-cores", "1"}
}

var rxPPS = regexp.MustCompile(`Rx-pps:\s+(\d+)`)

// ParseTestPMD sums the ports' Rx-pps of each stats block (testpmd prints
// one "Rx-pps:" line per port per period) and returns the sums in order.
func ParseTestPMD(text string, ports int) []float64 {
	var blocks []float64
	m := rxPPS.FindAllStringSubmatch(text, -1)
	for i := 0; i+ports <= len(m); i += ports {
		sum := 0.0
		for _, x := range m[i : i+ports] {
			v, _ := strconv.ParseFloat(x[1], 64)
			sum += v
		}
		blocks = append(blocks, sum/1e6)
	}
	return blocks
}

// runTestPMD runs dpdk-testpmd, once more if a run printed no rate (it
// happens on a loaded machine).
func runTestPMD(ctx context.Context, path string, f chainFlags) (*TestPMDResult, error) {
	res, err := runTestPMDOnce(ctx, path, f)
	if err != nil && ctx.Err() == nil {
		res, err = runTestPMDOnce(ctx, path, f)
	}
	return res, err
}

func runTestPMDOnce(ctx context.Context, path string, f chainFlags) (*TestPMDResult, error) {
	args := testpmdArgs(f.testpmdLcores)
	res := &TestPMDResult{Command: append([]string{path}, args...)}
	cmd := exec.CommandContext(ctx, path, args...)
	out := &lockedBuf{}
	if f.verbose {
		out.w = f.stderr
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	select {
	case <-time.After(f.testpmdTime):
	case <-ctx.Done():
	}
	cmd.Process.Signal(syscall.SIGINT) // testpmd stops its cores and closes the ports on SIGINT
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
	}
	res.Output = out.String()
	res.Blocks = ParseTestPMD(res.Output, 2)
	var nz []float64
	for _, b := range res.Blocks {
		if b > 0 {
			nz = append(nz, b)
		}
	}
	if len(nz) == 0 {
		return res, fmt.Errorf("no forwarding rate in its output:\n%s", lastLines(res.Output, 15))
	}
	res.Mpps = slices.Max(nz)
	return res, nil
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// PingPongResult is the T4 floor: one cache line bounced between two
// processes, each spinning on it.
type PingPongResult struct {
	Iters int       `json:"round_trips_per_run"`
	Runs  []float64 `json:"ns_per_round_trip"`
	RTTns float64   `json:"rtt_ns"` // the fastest run: a floor, and neighbours only ever slow it down
}

// pingPongBell is the doorbell whose word the ping-pong bounces.
const pingPongBell = 1

// runPingPong creates a small region, starts this binary again as the
// second process on it, and times iters round trips, five times.
// The parent writes odd values, the child answers with the next even one.
func runPingPong(ctx context.Context, iters int) (*PingPongResult, error) {
	r, err := shm.Create(shm.Options{Name: fmt.Sprintf("reinforce-pingpong-%d", os.Getpid()), Dir: "/dev/shm",
		Slots: 64, DataBytes: 256, Rings: 2, RingCap: 64, Owners: 2, CacheCap: 64, Doorbells: 2})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	bell, err := r.Doorbell(pingPongBell)
	if err != nil {
		return nil, err
	}
	w := bell.Line()
	w.Store(0)
	const runs = 5
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, self, "chain", pingPongChild, r.Path(), strconv.Itoa(iters*(runs+1)))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	res := &PingPongResult{Iters: iters}
	v := uint32(0)
	deadline := time.Now().Add(time.Minute)
	for run := 0; run <= runs; run++ { // run 0 warms up (and waits for the child to attach)
		t0 := time.Now()
		for i := 0; i < iters; i++ {
			v++
			w.Store(v)
			v++
			for spin := 0; w.Load() != v; spin++ {
				if spin&0xFFFFF == 0 && time.Now().After(deadline) {
					return nil, errors.New("the child stopped answering")
				}
			}
		}
		if run > 0 {
			res.Runs = append(res.Runs, float64(time.Since(t0).Nanoseconds())/float64(iters))
		}
	}
	res.RTTns = slices.Min(res.Runs)
	return res, nil
}

// pingPongChildMain is the second process: it answers every odd value
// with the next even one, n times.
func pingPongChildMain(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("want <region> <round trips>, got %q", args)
	}
	n, err := strconv.Atoi(args[1])
	if err != nil {
		return err
	}
	r, err := shm.Attach(args[0])
	if err != nil {
		return err
	}
	defer r.Close()
	bell, err := r.Doorbell(pingPongBell)
	if err != nil {
		return err
	}
	w := bell.Line()
	deadline := time.Now().Add(2 * time.Minute)
	want := uint32(1)
	for i := 0; i < n; i++ {
		for spin := 0; w.Load() != want; spin++ {
			if spin&0xFFFFF == 0 && time.Now().After(deadline) {
				return errors.New("the parent stopped")
			}
		}
		w.Store(want + 1)
		want += 2
	}
	return nil
}
