package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// TSC is the time-stamp counter frequency used to turn our ns/elem into
// the cycles/elem that DPDK prints (DPDK times with rdtsc).
type TSC struct {
	Hz     float64 `json:"hz"`
	Source string  `json:"source"` // where Hz came from, with the line read
	// Tried lists the sources tried before Source and why each gave
	// nothing, so a surprising figure can be traced.
	Tried []string `json:"tried,omitempty"`
}

// tscSources lists where the TSC frequency can be read, most exact first:
//
//  1. sysfs tsc_freq_khz: the kernel's calibrated value in kHz, but the
//     attribute is not in mainline kernels, so it is often absent;
//  2. DPDK's own "TSC frequency is ~N KHz": the clock DPDK's figures are in,
//     rounded by EAL to 10 MHz;
//  3. dmesg "tsc: Refined TSC clocksource calibration" or "tsc: Detected":
//     the kernel's calibration, needs permission to read the kernel log;
//  4. /proc/cpuinfo "cpu MHz": the current core clock, which equals the TSC
//     only on CPUs whose TSC runs at the nominal frequency (constant_tsc and
//     no boost); the last resort.
//
// TARGETS.md says 2.45 GHz for "this kind of machine"; a machine is not
// assumed to be that one, so the frequency is always read.
func detectTSC(ctx context.Context, dpdkOutput string) (TSC, error) {
	var t TSC
	if b, err := os.ReadFile("/sys/devices/system/cpu/cpu0/tsc_freq_khz"); err != nil {
		t.Tried = append(t.Tried, "sysfs tsc_freq_khz: "+err.Error())
	} else if hz, ok := parseSysfsTSC(string(b)); !ok {
		t.Tried = append(t.Tried, fmt.Sprintf("sysfs tsc_freq_khz: unparsable %q", strings.TrimSpace(string(b))))
	} else {
		t.Hz, t.Source = hz, "/sys/devices/system/cpu/cpu0/tsc_freq_khz"
		return t, nil
	}

	if dpdkOutput == "" {
		t.Tried = append(t.Tried, "dpdk-test: not run")
	} else if hz, line, ok := parseDPDKTSC(dpdkOutput); !ok {
		t.Tried = append(t.Tried, "dpdk-test: no \"TSC frequency\" line")
	} else {
		t.Hz, t.Source = hz, fmt.Sprintf("dpdk-test EAL %q", line)
		return t, nil
	}

	if out, err := exec.CommandContext(ctx, "dmesg").Output(); err != nil {
		t.Tried = append(t.Tried, "dmesg: "+err.Error())
	} else if hz, line, ok := parseDmesgTSC(string(out)); !ok {
		t.Tried = append(t.Tried, "dmesg: no \"tsc:\" frequency line")
	} else {
		t.Hz, t.Source = hz, fmt.Sprintf("dmesg %q", line)
		return t, nil
	}

	if b, err := os.ReadFile("/proc/cpuinfo"); err != nil {
		t.Tried = append(t.Tried, "/proc/cpuinfo: "+err.Error())
	} else if hz, line, ok := parseCPUInfoMHz(string(b)); !ok {
		t.Tried = append(t.Tried, "/proc/cpuinfo: no \"cpu MHz\" line")
	} else {
		t.Hz, t.Source = hz, fmt.Sprintf("/proc/cpuinfo %q (core clock, may differ from the TSC)", line)
		return t, nil
	}
	return t, fmt.Errorf("tsc frequency: no source worked: %s", strings.Join(t.Tried, "; "))
}

// parseSysfsTSC parses the content of tsc_freq_khz ("2596124\n") into Hz.
func parseSysfsTSC(s string) (float64, bool) {
	khz, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || khz <= 0 {
		return 0, false
	}
	return khz * 1e3, true
}

var (
	dmesgRefined  = regexp.MustCompile(`tsc: Refined TSC clocksource calibration: (\d+(?:\.\d+)?) MHz`)
	dmesgDetected = regexp.MustCompile(`tsc: Detected (\d+(?:\.\d+)?) MHz`)
)

// parseDmesgTSC returns the kernel's TSC frequency in Hz. A "Refined"
// calibration, when present, supersedes the early "Detected" estimate, as
// it does in the kernel; of several lines of one kind the last, most recent
// one wins.
func parseDmesgTSC(text string) (hz float64, line string, ok bool) {
	for _, re := range []*regexp.Regexp{dmesgRefined, dmesgDetected} {
		for l := range strings.Lines(text) {
			if m := re.FindStringSubmatch(l); m != nil {
				if mhz, err := strconv.ParseFloat(m[1], 64); err == nil && mhz > 0 {
					hz, line, ok = mhz*1e6, strings.TrimSpace(l), true
				}
			}
		}
		if ok {
			return hz, line, ok
		}
	}
	return 0, "", false
}

// parseCPUInfoMHz returns the first "cpu MHz" of /proc/cpuinfo in Hz.
func parseCPUInfoMHz(text string) (hz float64, line string, ok bool) {
	for l := range strings.Lines(text) {
		k, v, found := strings.Cut(l, ":")
		if !found || strings.TrimSpace(k) != "cpu MHz" {
			continue
		}
		mhz, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || mhz <= 0 {
			continue
		}
		return mhz * 1e6, strings.Join(strings.Fields(l), " "), true
	}
	return 0, "", false
}
