package main

import "testing"

func TestParseSysfsTSC(t *testing.T) {
	tests := []struct {
		in string
		hz float64
		ok bool
	}{
		{"2596124\n", 2596124e3, true},
		{"", 0, false},
		{"0\n", 0, false},
		{"n/a", 0, false},
	}
	for _, tt := range tests {
		hz, ok := parseSysfsTSC(tt.in)
		if hz != tt.hz || ok != tt.ok {
			t.Errorf("parseSysfsTSC(%q) = %v, %v; want %v, %v", tt.in, hz, ok, tt.hz, tt.ok)
		}
	}
}

func TestParseDmesgTSC(t *testing.T) {
	// The first case is this machine's dmesg.
	tests := []struct {
		name string
		text string
		hz   float64
		line string
		ok   bool
	}{
		{
			name: "detected only",
			text: "[    0.000000] [Firmware Bug]: TSC doesn't count with P0 frequency!\n" +
				"[    0.000064] tsc: Detected 2596.124 MHz processor\n" +
				"[    0.380664] clocksource: Switched to clocksource tsc\n",
			hz: 2596.124e6, line: "[    0.000064] tsc: Detected 2596.124 MHz processor", ok: true,
		},
		{
			name: "refined calibration supersedes detected",
			text: "[    0.000000] tsc: Detected 2400.000 MHz processor\n" +
				"[    1.312345] tsc: Refined TSC clocksource calibration: 2394.454 MHz\n",
			hz: 2394.454e6, line: "[    1.312345] tsc: Refined TSC clocksource calibration: 2394.454 MHz", ok: true,
		},
		{
			name: "newer kernels say TSC instead of processor",
			text: "[    0.000000] tsc: Detected 2450.000 MHz TSC\n",
			hz:   2450e6, line: "[    0.000000] tsc: Detected 2450.000 MHz TSC", ok: true,
		},
		{name: "no tsc line", text: "[    0.0] Linux version 6.1\n", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hz, line, ok := parseDmesgTSC(tt.text)
			if hz != tt.hz || line != tt.line || ok != tt.ok {
				t.Errorf("parseDmesgTSC = %v, %q, %v; want %v, %q, %v", hz, line, ok, tt.hz, tt.line, tt.ok)
			}
		})
	}
}

func TestParseCPUInfoMHz(t *testing.T) {
	text := "processor\t: 0\nmodel name\t: AMD EPYC\ncpu MHz\t\t: 2596.124\n\nprocessor\t: 1\ncpu MHz\t\t: 1800.000\n"
	hz, line, ok := parseCPUInfoMHz(text)
	if hz != 2596.124e6 || line != "cpu MHz : 2596.124" || !ok {
		t.Errorf("parseCPUInfoMHz = %v, %q, %v; want the first cpu's 2596.124 MHz", hz, line, ok)
	}
	if _, _, ok := parseCPUInfoMHz("processor\t: 0\n"); ok {
		t.Error("parseCPUInfoMHz found a frequency in cpuinfo without one")
	}
}
