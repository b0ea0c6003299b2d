package main

// DPDK's ring_perf_autotest is T1's in-run reference. Stages, in order:
// find dpdk-test on PATH → run it dpdkRuns times, one after the other
// (never beside our benchmarks: there are only 2 vCPUs) → parse each output
// → pick the two-core SP/SC bulk 32 row → take the median over the runs.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// DPDKRow is one figure printed by ring_perf_autotest, in TSC cycles.
type DPDKRow struct {
	// Section is the "### Testing ... ###" header the row appeared under,
	// without "Testing using ": "two physical cores", "two hyperthreads",
	// "two NUMA nodes", "bulk enq/deq", ...
	Section string `json:"section"`
	// API is "legacy" (void* elements: the rte_ring ONVM uses),
	// "elem 16B" (rte_ring_*_elem with 16-byte elements), or "" for
	// DPDK < 20.02, which printed no API prefix.
	API  string `json:"api"`
	Mode string `json:"mode"` // "SP/SC" or "MP/MC"
	Op   string `json:"op"`   // "single", "burst" or "bulk"
	Size int    `json:"size"` // elements per call; 1 for "single"
	// Cycles is the printed figure. In the two-core sections it is
	// cycles per element measured on the enqueue core PLUS cycles per
	// element measured on the dequeue core (run_on_core_pair in
	// app/test/test_ring_perf.c prints param1 + param2, in every DPDK
	// version from 2.x to 24.x); see dpdkCoresSummed.
	Cycles float64 `json:"cycles_per_elem"`
}

// dpdkCoresSummed is how many per-core figures a two-core row adds up.
// Both cores run their loops over the same elements at the same time, so
// the wall time per element, the figure that converts to elements/s as
// TARGETS.md's T1 states, is the printed figure divided by this.
const dpdkCoresSummed = 2

var (
	dpdkSection = regexp.MustCompile(`^###\s*(.*?)\s*###\s*$`)
	// dpdkFigure matches both the 20.02+ form
	//	"legacy APIs: SP/SC: bulk (size: 32): 4.69"
	//	"elem APIs: element size 16B: SP/SC: single: 11.34"
	// and the older form
	//	"SP/SC bulk enq/dequeue (size: 32): 4.69"
	//	"SP/SC single enq/dequeue: 8"
	dpdkFigure = regexp.MustCompile(`^(?:(legacy APIs|elem APIs: element size (\d+)B): )?` +
		`([A-Z][A-Z_]*/[A-Z][A-Z_]*):? (single|burst|bulk)(?: enq/dequeue)?` +
		`(?: \(size: (\d+)\))?: (\d+(?:\.\d+)?)\s*$`)
)

// ParseRingPerf extracts every cycles figure from ring_perf_autotest
// output. EAL log lines, "Core [n] count" lines and the like are skipped.
func ParseRingPerf(text string) []DPDKRow {
	var rows []DPDKRow
	section := ""
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if m := dpdkSection.FindStringSubmatch(line); m != nil {
			section = strings.TrimPrefix(m[1], "Testing using ")
			section = strings.TrimPrefix(section, "Testing ")
			continue
		}
		m := dpdkFigure.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		r := DPDKRow{Section: section, Mode: m[3], Op: m[4], Size: 1}
		switch {
		case m[1] == "legacy APIs":
			r.API = "legacy"
		case m[2] != "":
			r.API = "elem " + m[2] + "B"
		}
		if m[5] != "" {
			r.Size, _ = strconv.Atoi(m[5])
		}
		var err error
		if r.Cycles, err = strconv.ParseFloat(m[6], 64); err != nil {
			continue
		}
		rows = append(rows, r)
	}
	return rows
}

// twoCoreSections lists the two-lcore sections best first. ring_perf
// prints a section only if the lcores given with -l form such a pair:
// "two physical cores" is what T1 names; on a VM whose two vCPUs are
// reported as siblings only "two hyperthreads" appears, and a cross-socket
// pair is the last resort.
var twoCoreSections = []string{"two physical cores", "two hyperthreads", "two NUMA nodes"}

// twoCoreAPIs lists the APIs best first: legacy moves pointer-sized
// elements as ONVM's rings do; pre-20.02 output has no API label and
// means the same; the 16-byte elem API is a last resort.
var twoCoreAPIs = []string{"legacy", "", "elem 16B"}

// PickReference returns the SP/SC bulk row of the given size from the best
// two-core section and API present in rows (see twoCoreSections and
// twoCoreAPIs); ok is false if no two-core section has one.
func PickReference(rows []DPDKRow, size int) (ref DPDKRow, ok bool) {
	for _, sec := range twoCoreSections {
		for _, api := range twoCoreAPIs {
			for _, r := range rows {
				if r.Section == sec && r.API == api && r.Mode == "SP/SC" && r.Op == "bulk" && r.Size == size {
					return r, true
				}
			}
		}
	}
	return DPDKRow{}, false
}

// dpdkTSCLine matches EAL's "EAL: TSC frequency is ~2600000 KHz", printed
// at debug log level (hence --log-level=lib.eal:debug in dpdkArgs).
var dpdkTSCLine = regexp.MustCompile(`TSC frequency is ~?(\d+) KHz`)

// parseDPDKTSC returns the TSC frequency in Hz that EAL printed, and the
// line it came from. EAL rounds its estimate to 10 MHz, which is why the
// kernel's figure (sysfs) is tried before it.
func parseDPDKTSC(text string) (hz float64, line string, ok bool) {
	for l := range strings.Lines(text) {
		if m := dpdkTSCLine.FindStringSubmatch(l); m != nil {
			khz, err := strconv.ParseFloat(m[1], 64)
			if err == nil && khz > 0 {
				return khz * 1e3, strings.TrimSpace(l), true
			}
		}
	}
	return 0, "", false
}

// dpdkConfig says how to run dpdk-test.
type dpdkConfig struct {
	path    string        // dpdk-test binary
	lcores  string        // -l argument: two lcores, the producer and the consumer
	runs    int           // runs to take the median over
	timeout time.Duration // per run
	verbose io.Writer     // raw output is copied here when non-nil
}

// dpdkArgs returns dpdk-test's arguments. Each flag is there because this
// machine needs it: --no-huge (no hugepage mount is required), --no-pci (no
// NIC; skips probing), --no-shconf (no /var/run/dpdk/rte/config lock, so a
// testpmd or a second bench started by someone else at the same time does
// not make this one fail as a second primary process; --in-memory would do
// the same but EAL rejects it together with --no-huge), -m 512 (sizes the
// static --no-huge memory explicitly instead of relying on EAL's default;
// ring_perf itself needs a few MiB), and lib.eal:debug so that EAL prints
// its TSC frequency.
func dpdkArgs(lcores string) []string {
	return []string{"--no-huge", "--no-pci", "--no-shconf", "-l", lcores, "-m", "512", "--log-level=lib.eal:debug"}
}

// DPDKRun is the record of one dpdk-test run.
type DPDKRun struct {
	Output    string   `json:"output"`
	Reference *DPDKRow `json:"reference,omitempty"` // nil if no two-core row was found
}

// DPDKResult is T1's reference as measured in this invocation.
type DPDKResult struct {
	Command []string  `json:"command"` // argv, with DPDK_TEST=ring_perf_autotest in the environment
	Runs    []DPDKRun `json:"runs"`
	// Section and API name the row used, so a reader knows whether the
	// preferred "two physical cores" pair was available.
	Section string `json:"section"`
	API     string `json:"api"`
	// SummedCycles is the median of the printed figure over Runs:
	// enqueue-core plus dequeue-core cycles per element.
	SummedCycles float64 `json:"summed_cycles_per_elem"`
	// WallCycles is SummedCycles / dpdkCoresSummed: TSC cycles of wall
	// time per element moved, the figure compared with ours.
	WallCycles float64 `json:"wall_cycles_per_elem"`
	// Figures are the per-run printed figures, in run order.
	Figures []float64 `json:"figures"`
}

// runDPDK runs ring_perf_autotest cfg.runs times and returns the median
// two-core SP/SC bulk 32 figure. An error means the reference is unusable:
// dpdk-test failed, timed out, or printed no two-core section.
func runDPDK(ctx context.Context, cfg dpdkConfig) (*DPDKResult, error) {
	args := dpdkArgs(cfg.lcores)
	res := &DPDKResult{Command: append([]string{cfg.path}, args...)}
	for i := range cfg.runs {
		out, err := runDPDKOnce(ctx, cfg, args)
		run := DPDKRun{Output: out}
		if err != nil {
			res.Runs = append(res.Runs, run)
			return res, fmt.Errorf("dpdk-test run %d: %w\n%s", i+1, err, out)
		}
		ref, ok := PickReference(ParseRingPerf(out), 32)
		if !ok {
			res.Runs = append(res.Runs, run)
			return res, fmt.Errorf("dpdk-test run %d: no two-core SP/SC bulk 32 row (sections looked for: %s)",
				i+1, strings.Join(twoCoreSections, ", "))
		}
		run.Reference = &ref
		res.Runs = append(res.Runs, run)
		res.Figures = append(res.Figures, ref.Cycles)
		// Runs could in principle pick different sections; the first
		// run's choice names the result, and all runs see the same
		// topology.
		if i == 0 {
			res.Section, res.API = ref.Section, ref.API
		}
	}
	res.SummedCycles = median(res.Figures)
	res.WallCycles = res.SummedCycles / dpdkCoresSummed
	return res, nil
}

// runDPDKOnce runs dpdk-test once with its own timeout. dpdk-test runs the
// test named by DPDK_TEST and exits; stdin is /dev/null so it can never sit
// at its interactive prompt.
func runDPDKOnce(ctx context.Context, cfg dpdkConfig, args []string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, cfg.path, args...)
	cmd.Env = append(os.Environ(), "DPDK_TEST=ring_perf_autotest")
	var buf bytes.Buffer
	cmd.Stdout = &buf
	if cfg.verbose != nil {
		cmd.Stdout = io.MultiWriter(&buf, cfg.verbose)
	}
	cmd.Stderr = cmd.Stdout
	err := cmd.Run()
	out := buf.String()
	if ctx.Err() == context.DeadlineExceeded {
		return out, fmt.Errorf("timed out after %v", cfg.timeout)
	}
	if err != nil {
		return out, err
	}
	if !strings.Contains(out, "Test OK") {
		return out, fmt.Errorf("no \"Test OK\" in output")
	}
	return out, nil
}
