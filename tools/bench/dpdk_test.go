package main

import (
	"strings"
	"testing"
)

func TestParseRingPerfCapturedOutput(t *testing.T) {
	tests := []struct {
		file string
		// want are rows that must be present, by section/API/mode/op/size.
		want []DPDKRow
		rows int
	}{
		{
			file: "ring_perf_22.11_info.txt",
			rows: 32, // 16 per API: single 2, burst 4, bulk 4, empty 2, two-core 4
			want: []DPDKRow{
				{Section: "single element enq/deq", API: "legacy", Mode: "SP/SC", Op: "single", Size: 1, Cycles: 8.25},
				{Section: "bulk enq/deq", API: "legacy", Mode: "SP/SC", Op: "bulk", Size: 32, Cycles: 42.18},
				{Section: "two physical cores", API: "legacy", Mode: "SP/SC", Op: "bulk", Size: 8, Cycles: 11.07},
				{Section: "two physical cores", API: "legacy", Mode: "SP/SC", Op: "bulk", Size: 32, Cycles: 4.69},
				{Section: "two physical cores", API: "legacy", Mode: "MP/MC", Op: "bulk", Size: 32, Cycles: 6.02},
				{Section: "two physical cores", API: "elem 16B", Mode: "SP/SC", Op: "bulk", Size: 32, Cycles: 4.61},
				{Section: "empty bulk deq", API: "elem 16B", Mode: "MP/MC", Op: "bulk", Size: 8, Cycles: 5.17},
			},
		},
		{
			file: "ring_perf_22.11_debug.txt",
			rows: 32, // 16 per API: single 2, burst 4, bulk 4, empty 2, two-core 4
			want: []DPDKRow{
				{Section: "two physical cores", API: "legacy", Mode: "SP/SC", Op: "bulk", Size: 32, Cycles: 23.83},
				{Section: "two physical cores", API: "elem 16B", Mode: "SP/SC", Op: "bulk", Size: 32, Cycles: 22.53},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			rows := ParseRingPerf(readTestdata(t, tt.file))
			if len(rows) != tt.rows {
				t.Errorf("got %d rows, want %d", len(rows), tt.rows)
			}
			for _, w := range tt.want {
				found := false
				for _, r := range rows {
					if r == w {
						found = true
					}
				}
				if !found {
					t.Errorf("missing row %+v", w)
				}
			}
		})
	}
}

func TestParseRingPerfPre2002Format(t *testing.T) {
	// Synthetic, in the format printed by DPDK before 20.02 (no API label,
	// "enq/dequeue" after the operation); no such build is installed here.
	text := `### Testing single element and burst enq/deq ###
SP/SC single enq/dequeue: 8
SP/SC burst enq/dequeue (size: 32): 1

### Testing using two physical cores ###
SP/SC bulk enq/dequeue (size: 8): 11.07
MP/MC bulk enq/dequeue (size: 8): 16.82
SP/SC bulk enq/dequeue (size: 32): 4.69
MP/MC bulk enq/dequeue (size: 32): 6.02
`
	rows := ParseRingPerf(text)
	if len(rows) != 6 {
		t.Fatalf("got %d rows, want 6: %+v", len(rows), rows)
	}
	want := DPDKRow{Section: "single element and burst enq/deq", Mode: "SP/SC", Op: "single", Size: 1, Cycles: 8}
	if rows[0] != want {
		t.Errorf("rows[0] = %+v, want %+v", rows[0], want)
	}
	ref, ok := PickReference(rows, 32)
	want = DPDKRow{Section: "two physical cores", Mode: "SP/SC", Op: "bulk", Size: 32, Cycles: 4.69}
	if !ok || ref != want {
		t.Errorf("PickReference = %+v, %v; want %+v", ref, ok, want)
	}
}

func TestPickReferencePrefersPhysicalCoresAndLegacyAPI(t *testing.T) {
	info := readTestdata(t, "ring_perf_22.11_info.txt")
	// The capture has only "two physical cores" sections (EAL reports the
	// two vCPUs as cores 0 and 1); the other cases rename its headers to
	// stand for machines where EAL reports other topologies.
	tests := []struct {
		name    string
		text    string
		ok      bool
		section string
		api     string
		cycles  float64
	}{
		{"physical cores, legacy before elem", info, true, "two physical cores", "legacy", 4.69},
		{"hyperthreads when no physical-core pair",
			strings.ReplaceAll(info, "two physical cores", "two hyperthreads"), true, "two hyperthreads", "legacy", 4.69},
		{"NUMA nodes as last resort",
			strings.ReplaceAll(info, "two physical cores", "two NUMA nodes"), true, "two NUMA nodes", "legacy", 4.69},
		{"physical cores beat hyperthreads printed first",
			"### Testing using two hyperthreads ###\nlegacy APIs: SP/SC: bulk (size: 32): 3.00\n" + info,
			true, "two physical cores", "legacy", 4.69},
		{"elem API when legacy is missing",
			"### Testing using two physical cores ###\nelem APIs: element size 16B: SP/SC: bulk (size: 32): 4.61\n",
			true, "two physical cores", "elem 16B", 4.61},
		{"single-lcore figures are not a two-core reference",
			strings.ReplaceAll(info, "two physical cores", "something else"), false, "", "", 0},
		{"empty output", "", false, "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref, ok := PickReference(ParseRingPerf(tt.text), 32)
			if ok != tt.ok || ref.Section != tt.section || ref.API != tt.api || ref.Cycles != tt.cycles {
				t.Errorf("PickReference = %+v, %v; want section %q api %q cycles %v ok %v",
					ref, ok, tt.section, tt.api, tt.cycles, tt.ok)
			}
			if ok && (ref.Mode != "SP/SC" || ref.Op != "bulk" || ref.Size != 32) {
				t.Errorf("picked %+v, want an SP/SC bulk 32 row", ref)
			}
		})
	}
}

func TestParseDPDKTSC(t *testing.T) {
	tests := []struct {
		name string
		text string
		hz   float64
		ok   bool
	}{
		{"captured debug run", readTestdata(t, "ring_perf_22.11_debug.txt"), 2.6e9, true},
		{"info level prints none", readTestdata(t, "ring_perf_22.11_info.txt"), 0, false},
		{"without tilde", "EAL: TSC frequency is 2450000 KHz\n", 2.45e9, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hz, line, ok := parseDPDKTSC(tt.text)
			if hz != tt.hz || ok != tt.ok {
				t.Errorf("parseDPDKTSC = %v, %q, %v; want %v, %v", hz, line, ok, tt.hz, tt.ok)
			}
		})
	}
}

func TestDPDKArgsKeepNoShconf(t *testing.T) {
	// --no-shconf is what lets this run beside another DPDK primary
	// process; --in-memory, its alternative, fails with --no-huge.
	got := strings.Join(dpdkArgs("0,1"), " ")
	want := "--no-huge --no-pci --no-shconf -l 0,1 -m 512 --log-level=lib.eal:debug"
	if got != want {
		t.Errorf("dpdkArgs = %q, want %q", got, want)
	}
}
