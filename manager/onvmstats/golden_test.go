package onvmstats

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// t0 is the first tick's time. UTC keeps the goldens independent of the machine's zone; the
// day is below 10 so ctime's space-padded day shows.
var t0 = time.Date(2024, time.March, 5, 9, 7, 2, 0, time.UTC)

// ports is a portmask of 0x5: index 0 is port 0, index 1 is port 2, so IDs and indexes differ.
func ports(rx0, tx0, rx2, tx2 uint64) []Port {
	return []Port{
		{Index: 0, ID: 0, MAC: "90:e2:ba:b3:bc:6c", RX: rx0, TX: tx0},
		{Index: 1, ID: 2, MAC: "90:e2:ba:b3:bc:6d", RX: rx2, TX: tx2},
	}
}

// chain is two NFs with distinct services (no service totals), given out of order to show
// that rows are sorted by instance ID. scale multiplies the counters.
func chain(scale uint64) []NF {
	return []NF{
		{Tag: "firewall", Instance: 2, Service: 2, Core: 4, Parent: 0, Children: 0,
			RX: 900 * scale, TX: 880 * scale, RXDrop: 3 * scale, TXDrop: 1 * scale,
			ActOut: 880 * scale, ActDrop: 20 * scale, ActBuffer: 7 * scale, ActReturned: 2 * scale,
			Wakeups: 11 * scale, Sleeping: true},
		{Tag: "simple_forward", Instance: 1, Service: 1, Core: 3, Parent: 0, Children: 1,
			RX: 1000 * scale, TX: 950 * scale, RXDrop: 5 * scale, TXDrop: 2 * scale,
			ActToNF: 950 * scale, ActDrop: 50 * scale, ActNext: 4 * scale,
			Wakeups: 5 * scale},
	}
}

// scaled is three NFs, two of them in service 1, so service totals are printed.
func scaled(scale uint64) []NF {
	nfs := chain(scale)
	return append(nfs, NF{Tag: "simple_forward", Instance: 3, Service: 1, Core: 5, Parent: 1,
		RX: 400 * scale, TX: 390 * scale, RXDrop: 1 * scale, TXDrop: 9 * scale,
		ActToNF: 390 * scale, ActDrop: 10 * scale, ActNext: 1 * scale, ActBuffer: 3 * scale, ActReturned: 1 * scale})
}

// twoTicks returns a first tick and a second one PeriodSeconds later.
func twoTicks(period int, nfs func(uint64) []NF) (Tick, Tick) {
	a := Tick{Time: t0, Ports: ports(4, 0, 1000, 2000), NFs: nfs(1)}
	b := Tick{Time: t0.Add(time.Duration(period) * time.Second), Ports: ports(4, 3, 7004, 9001), NFs: nfs(3)}
	return a, b
}

func TestGolden(t *testing.T) {
	type render func(r *Renderer, a, b Tick) []byte
	console := func(r *Renderer, a, b Tick) []byte { return append(r.Console(a), r.Console(b)...) }
	tests := []struct {
		name string
		opt  Options
		nfs  func(uint64) []NF
		run  render
	}{
		{"console_level1", Options{Verbosity: 1, PeriodSeconds: 1, Stdout: true}, chain, console},
		{"console_level1_shared", Options{Verbosity: 1, PeriodSeconds: 2, SharedCore: true}, chain, console},
		{"console_level2", Options{Verbosity: 2, PeriodSeconds: 2}, chain, console},
		{"console_level2_shared", Options{Verbosity: 2, PeriodSeconds: 2, SharedCore: true, Stdout: true}, chain, console},
		{"service_totals_level1", Options{Verbosity: 1, PeriodSeconds: 3}, scaled, console},
		{"service_totals_level2", Options{Verbosity: 2, PeriodSeconds: 3}, scaled, console},
		{"raw", Options{Verbosity: 3, PeriodSeconds: 2, SharedCore: true}, scaled,
			func(r *Renderer, a, b Tick) []byte {
				return bytes.Join([][]byte{RawHeader(), r.Console(a), r.Console(b)}, nil)
			}},
		{"web_stats", Options{Verbosity: 1, PeriodSeconds: 2},
			func(scale uint64) []NF {
				nfs := scaled(scale)
				// IDs 100 and 105 both become "NF 10" ([quirk] copied).
				nfs = append(nfs, NF{Tag: "tenth", Instance: 10, Service: 4, Core: 6, RX: 10 * scale},
					NF{Tag: "hundredth", Instance: 100, Service: 5, Core: 7, RX: 100 * scale},
					NF{Tag: "hundred-fifth", Instance: 105, Service: 5, Core: 8, RX: 105 * scale})
				return nfs
			},
			func(r *Renderer, a, b Tick) []byte { r.WebStatsJSON(a); return r.WebStatsJSON(b) }},
		{"web_stats_no_nfs", Options{Verbosity: 1, PeriodSeconds: 1},
			func(uint64) []NF { return nil },
			func(r *Renderer, a, b Tick) []byte { return r.WebStatsJSON(a) }},
		{"events", Options{}, chain, func(*Renderer, Tick, Tick) []byte {
			at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
			sf := chain(1)[1]
			return EventsJSON([]Event{
				CoreEvent(at(0), MsgMgrStart, 0),
				PortEvent(at(0), 0),
				PortEvent(at(0), 2),
				CoreEvent(at(1), MsgTxStart, 1),
				CoreEvent(at(1), MsgRxStart, 2),
				NFEvent(at(9), MsgNFStarting, sf),
				NFEvent(at(9), MsgNFReady, sf),
				NFEvent(at(10), MsgNFReady, NF{Instance: 2, Service: 2, Core: 4}),
				NFStopEvent(at(40), 1),
			})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := twoTicks(max(tt.opt.PeriodSeconds, 1), tt.nfs)
			got := tt.run(New(tt.opt), a, b)
			checkGolden(t, tt.name, got)
		})
	}
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if bytes.Equal(got, want) {
		return
	}
	gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := range max(len(gl), len(wl)) {
		var g, w string
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if g != w {
			t.Fatalf("%s differs at line %d:\n got: %q\nwant: %q", path, i+1, g, w)
		}
	}
	t.Fatalf("%s differs", path)
}
