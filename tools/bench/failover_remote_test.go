package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/internal/testenv"
)

func TestParseFailoverRemoteFlags(t *testing.T) {
	f, err := parseFailoverRemoteFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if f.kills != 10 || f.labs != 10 || f.rate != 20_000 || f.flows != 64 || f.size != 128 || f.plot != "failover-remote.png" ||
		len(f.profiles) != 2 || f.profiles[0].name != "default" || f.profiles[1].name != "loaded" ||
		f.profiles[0].target != 5*time.Millisecond || f.profiles[1].target != 10*time.Millisecond {
		t.Errorf("defaults: %+v", f)
	}
	f, err = parseFailoverRemoteFlags([]string{"-kills", "3", "-profiles", "loaded", "-rate", "5000", "-json", "-", "-plot", "none", "-seed", "7", "-nice", "-5"}, io.Discard)
	if err != nil || f.kills != 3 || len(f.profiles) != 1 || f.profiles[0].name != "loaded" || f.rate != 5000 ||
		f.jsonPath != "-" || f.plot != "none" || f.seed != 7 || f.nice != -5 {
		t.Errorf("flags: %+v, %v", f, err)
	}
	var out bytes.Buffer
	if _, err := parseFailoverRemoteFlags([]string{"-h"}, &out); !errors.Is(err, flag.ErrHelp) || !strings.Contains(out.String(), "-profiles") {
		t.Errorf("-h: %v, %q", err, out.String())
	}
	for _, bad := range [][]string{
		{"-kills", "0"},
		{"-profiles", "fast"},
		{"-profiles", "default,default"},
		{"-profiles", ""},
		{"-rate", "10"},
		{"-flows", "0"},
		{"-size", "60"},
		{"-gap-min", "50ms", "-gap-max", "10ms"},
		{"-timeout", "10ms"},
		{"-nice", "-21"},
		{"-labs", "-1"},
		{"extra"},
		{"-nosuchflag"},
	} {
		out.Reset()
		if _, err := parseFailoverRemoteFlags(bad, &out); err == nil {
			t.Errorf("%q: accepted", bad)
		} else if out.Len() == 0 {
			t.Errorf("%q: no message", bad)
		}
	}
}

func TestQuantile(t *testing.T) {
	v := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if quantile(v, 0.5) != 6 || quantile(v, 0.99) != 10 || quantile(v, 0) != 1 || quantile(v, 1) != 10 {
		t.Errorf("quantiles of 1..10: p50 %v p99 %v", quantile(v, 0.5), quantile(v, 0.99))
	}
	if quantile(nil, 0.5) != 0 || quantile([]float64{4}, 0.99) != 4 {
		t.Error("empty or single")
	}
}

// rowNamed finds the row whose name contains all of parts.
func foRowNamed(t *testing.T, rows []Row, parts ...string) Row {
	t.Helper()
next:
	for _, r := range rows {
		for _, p := range parts {
			if !strings.Contains(r.Benchmark, p) {
				continue next
			}
		}
		return r
	}
	t.Fatalf("no row with %q in %+v", parts, rows)
	return Row{}
}

func sampleSet(profile string, commitsUs []float64, sinkUs float64) []RemoteFailover {
	var s []RemoteFailover
	for i, c := range commitsUs {
		victim, taker := "a", "b"
		if i%2 == 1 {
			victim, taker = taker, victim
		}
		s = append(s, RemoteFailover{Profile: profile, Victim: victim, Taker: taker, CommitUs: c, CommitNF: "stamp",
			PromotedUs: c - 100, SinkUs: sinkUs, ArbiterPromotingUs: c - 300, ArbiterRedirectUs: -1, RejoinMs: 800})
	}
	return s
}

func TestT7RemoteRows(t *testing.T) {
	def, _ := profileNamed("default")
	loaded, _ := profileNamed("loaded")
	// Default: ten failovers, p99 (the max of ten) 4.9 ms: met.
	samples := sampleSet("default", []float64{3000, 3100, 3200, 3300, 3400, 3500, 3600, 3700, 3800, 4900}, 6000)
	// Loaded: the max is 10.5 ms: missed; its sink output is not seen once.
	ld := sampleSet("loaded", []float64{8000, 8100, 8200, 8300, 8400, 8500, 8600, 8700, 8800, 10500}, 9000)
	ld[3].SinkUs = -1
	samples = append(samples, ld...)

	rows, misses := t7RemoteRows(def, 10, samples)
	r := foRowNamed(t, rows, "default", "first commit", "p99")
	if r.Figure != 4.9 || r.Unit != "ms" || r.Reference == nil || *r.Reference != 5 || r.Status != "met" || r.Ratio == nil || *r.Ratio != 0.98 {
		t.Errorf("default p99 row: %+v", r)
	}
	if r := foRowNamed(t, rows, "default", "first commit", "p50"); r.Figure != 3.5 || r.Status != "" {
		t.Errorf("default p50 row: %+v", r)
	}
	if r := foRowNamed(t, rows, "default", "first commit", "max"); r.Figure != 4.9 {
		t.Errorf("default max row: %+v", r)
	}
	// The sink's 6 ms misses the 5 ms budget.
	if r := foRowNamed(t, rows, "default", "sink", "p99"); r.Figure != 6 || r.Status != "missed" {
		t.Errorf("default sink row: %+v", r)
	}
	if r := foRowNamed(t, rows, "default", "arbiter starts", "p50"); r.Figure != 3.2 {
		t.Errorf("arbiter row: %+v", r)
	}
	for _, r := range rows {
		if strings.Contains(r.Benchmark, "redirected") {
			t.Errorf("a row for an event never seen: %+v", r)
		}
	}
	if r := foRowNamed(t, rows, "default", "failovers completed"); r.Figure != 10 || r.Status != "met" {
		t.Errorf("completed row: %+v", r)
	}
	if len(misses) != 1 || !strings.Contains(misses[0], "first output at the sink") {
		t.Errorf("misses: %q", misses)
	}

	rows, misses = t7RemoteRows(loaded, 10, samples)
	if r := foRowNamed(t, rows, "loaded", "first commit", "p99 [≤ 10 ms]"); r.Figure != 10.5 || r.Status != "missed" {
		t.Errorf("loaded p99 row: %+v", r)
	}
	if r := foRowNamed(t, rows, "loaded", "sink", "p99"); r.Figure != 9 || r.Status != "met" {
		t.Errorf("loaded sink row (nine seen): %+v", r)
	}
	if len(misses) != 1 || !strings.Contains(misses[0], "p99 10.50 ms") {
		t.Errorf("misses: %q", misses)
	}

	// A failover that did not complete makes the target rows missed even
	// when the others were fast.
	bad := sampleSet("default", []float64{3000, 3000}, 4000)
	bad = append(bad, RemoteFailover{Profile: "default", Victim: "a", Error: "no takeover within 30s", CommitUs: -1, SinkUs: -1})
	rows, misses = t7RemoteRows(def, 3, bad)
	if r := foRowNamed(t, rows, "first commit", "p99"); r.Status != "missed" {
		t.Errorf("incomplete run met: %+v", r)
	}
	if r := foRowNamed(t, rows, "failovers completed"); r.Figure != 2 || r.Status != "missed" {
		t.Errorf("completed row: %+v", r)
	}
	if len(misses) != 2 || !strings.Contains(misses[0], "only 2 of 3") || !strings.Contains(misses[0], "no takeover") {
		t.Errorf("misses: %q", misses)
	}

	// No samples at all: the target rows say missed, with the reason.
	rows, misses = t7RemoteRows(loaded, 2, nil)
	if r := foRowNamed(t, rows, "first commit", "p99"); r.Status != "missed" {
		t.Errorf("empty: %+v", r)
	}
	if len(misses) != 2 {
		t.Errorf("misses: %q", misses)
	}
}

func TestSinkRowAndAlternation(t *testing.T) {
	r, misses := sinkRow([]SinkVerdict{{Profile: "default", Sent: 100, Received: 90, Lost: 10}})
	if r.Status != "met" || r.Figure != 0 || len(misses) != 0 {
		t.Errorf("loss alone is not a violation: %+v %q", r, misses)
	}
	r, misses = sinkRow([]SinkVerdict{{Profile: "default"}, {Profile: "loaded", Duplicated: 1, StampErrors: 2, FirstBad: "flow 3 stamp 9 after 9"}})
	if r.Status != "missed" || r.Figure != 3 || len(misses) != 1 || !strings.Contains(misses[0], "flow 3") {
		t.Errorf("violations: %+v %q", r, misses)
	}
	if r, _ := sinkRow(nil); r.Status != "missed" {
		t.Errorf("no verdict met: %+v", r)
	}
	s := sampleSet("default", []float64{1, 2, 3}, 4)
	if !victimsAlternate(s) {
		t.Error("a, b, a: not alternating")
	}
	s[1].Victim = "a"
	if victimsAlternate(s) {
		t.Error("a, a, a: alternating")
	}
}

func TestFailoverRemoteReport(t *testing.T) {
	f, err := parseFailoverRemoteFlags([]string{"-kills", "2"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	rep := newFailoverRemoteReport(f, []string{"-kills", "2"})
	rep.Samples = append(sampleSet("default", []float64{2000, 2500}, 3000), sampleSet("loaded", []float64{7000, 7500}, 8000)...)
	rep.Sink = []SinkVerdict{{Profile: "default", Sent: 10}, {Profile: "loaded", Sent: 10}}
	rep.finish(f)
	var out bytes.Buffer
	if err := rep.write(&out, "-"); err != nil {
		t.Fatal(err)
	}
	table, js, ok := strings.Cut(out.String(), "{\n")
	if !ok {
		t.Fatalf("no JSON after the table: %s", out.String())
	}
	for _, want := range []string{"T7 remote, default 1 ms × 3: kill → standby's first commit, p99 [≤ 5 ms]", "T7 remote, loaded 2 ms × 3: kill → first output at the sink, p99 [≤ 10 ms]", "met"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	if strings.Contains(table, "missed") {
		t.Errorf("a row missed:\n%s", table)
	}
	var back failoverRemoteReport
	if err := json.Unmarshal([]byte("{\n"+js), &back); err != nil {
		t.Fatal(err)
	}
	if back.Subcommand != "failover-remote" || len(back.Samples) != 4 || back.Samples[0].CommitUs != 2000 || len(back.Rows) != len(rep.Rows) ||
		back.Flags["profiles"] != "default,loaded" {
		t.Errorf("JSON: %+v", back)
	}
}

func TestWriteFailoverPlots(t *testing.T) {
	kill := int64(time.Second)
	var times, lat []int64
	for t := kill - int64(60*time.Millisecond); t < kill+int64(200*time.Millisecond); t += int64(50 * time.Microsecond) {
		if t >= kill && t < kill+int64(8*time.Millisecond) {
			continue // the outage
		}
		times = append(times, t)
		lat = append(lat, int64(30*time.Microsecond))
	}
	path := filepath.Join(t.TempDir(), "p.png")
	panels := []failoverPanel{
		{kill: kill, marks: []plotMark{{at: kill + int64(6*time.Millisecond), c: plotBlue}}, times: times, lat: lat},
		{kill: kill, times: times, lat: lat},
	}
	if err := writeFailoverPlots(path, 50*time.Millisecond, 150*time.Millisecond, panels); err != nil {
		t.Fatal(err)
	}
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	img, err := png.Decode(fh)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != plotW || b.Dy() != 2*plotH {
		t.Errorf("size %v, want %d × %d", b, plotW, 2*plotH)
	}
	// The kill line is red in both panels; the outage's bins are empty.
	killX := 50 * (plotW - 1) / 200
	for _, y := range []int{plotH / 4, plotH + plotH/4} {
		if r, g, b, _ := img.At(killX, y).RGBA(); r>>8 != 220 || g != 0 || b != 0 {
			t.Errorf("(%d, %d) is not the kill line", killX, y)
		}
	}
	outageX := killX + 10
	if r, g, b, _ := img.At(outageX, plotH/2-12).RGBA(); r>>8 != 255 || g>>8 != 255 || b>>8 != 255 {
		t.Errorf("throughput during the outage at x %d: %v %v %v", outageX, r>>8, g>>8, b>>8)
	}
	if r, _, b, _ := img.At(killX+55, plotH/2-12).RGBA(); r>>8 != 30 || b>>8 != 200 {
		t.Error("no throughput after the outage")
	}
	if err := writeFailoverPlots(path, 0, 0, panels); err == nil {
		t.Error("empty span accepted")
	}
	if err := writeFailoverPlots(path, time.Millisecond, time.Millisecond, nil); err == nil {
		t.Error("no panels accepted")
	}
}

// TestFailoverRemoteSmoke runs the bench in the lab with one kill per
// profile (up to three labs each, as the bench replaces a lab whose chain
// does not become protected): both failovers are timed end to end, the
// sink's verdict and the target rows are reported, and the table, JSON and
// plot are written. It judges neither the figures, which one failover on
// a shared machine does not support, nor the verdict, which is the fault
// loops' (tools/e2e) to assert; the bench reports it as a met/missed row.
func TestFailoverRemoteSmoke(t *testing.T) {
	testenv.RequireRoot(t, "the lab (namespaces, veth, AF_PACKET)")
	if testing.Short() {
		t.Skip("-short: the lab run takes about 40 s")
	}
	dir := t.TempDir()
	js, plot := filepath.Join(dir, "fo.json"), filepath.Join(dir, "fo.png")
	var out, errb bytes.Buffer
	code := dispatch(context.Background(), []string{"failover-remote", "-kills", "1", "-rate", "10000", "-settle", "200ms", "-labs", "3", "-timeout", "10s",
		"-json", js, "-plot", plot}, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	var rep failoverRemoteReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Samples) != 2 || rep.Samples[0].Profile != "default" || rep.Samples[1].Profile != "loaded" {
		t.Fatalf("samples %+v\n%s", rep.Samples, errb.String())
	}
	for _, s := range rep.Samples {
		if s.CommitUs <= 0 || s.SinkUs <= 0 || len(s.NFs) != 3 || s.Victim == s.Taker || s.CommitUs < s.PromotedUs {
			t.Errorf("sample %+v", s)
		}
	}
	if len(rep.Sink) != 2 {
		t.Fatalf("sink verdicts %+v", rep.Sink)
	}
	for _, v := range rep.Sink {
		if v.Sent == 0 || v.Received == 0 {
			t.Errorf("sink %+v", v)
		}
	}
	if r := foRowNamed(t, rep.Rows, "sink through every failover"); r.Status != "met" && r.Status != "missed" {
		t.Errorf("sink row %+v", r)
	}
	for _, p := range []string{"default 1 ms × 3", "loaded 2 ms × 3"} {
		for _, what := range []string{"first commit", "first output at the sink"} {
			if r := foRowNamed(t, rep.Rows, p, what, "p99"); r.Status != "met" && r.Status != "missed" {
				t.Errorf("%s %s: status %q", p, what, r.Status)
			}
		}
	}
	if !strings.Contains(out.String(), "T7 remote, loaded 2 ms × 3: kill → standby's first commit, p99") {
		t.Errorf("table:\n%s", out.String())
	}
	if fi, err := os.Stat(plot); err != nil || fi.Size() == 0 {
		t.Errorf("plot: %v", err)
	}
}

func TestLogLineTime(t *testing.T) {
	ref := time.Date(2026, 11, 26, 5, 50, 24, 100_000_000, time.Local)
	out := "05:50:24.098 INF launched NF\nstamp: promoted\n05:50:24.112 WRN arbiter chain=c0 event=promoting member=a\n05:50:24.113 WRN ARBITER: traffic redirected\n"
	at, ok := logLineTime(out, "event=promoting", ref)
	if !ok || at.Sub(ref) != 12*time.Millisecond {
		t.Errorf("promoting: %v %v", at, ok)
	}
	if at, ok := logLineTime(out, "ARBITER: traffic redirected", ref); !ok || at.Sub(ref) != 13*time.Millisecond {
		t.Errorf("redirected: %v %v", at, ok)
	}
	if _, ok := logLineTime(out, "promoted", ref); ok {
		t.Error("a line without a timestamp parsed")
	}
	if _, ok := logLineTime(out, "event=demote", ref); ok {
		t.Error("a missing line found")
	}
	late := time.Date(2026, 11, 26, 23, 59, 59, 990_000_000, time.Local)
	if at, ok := logLineTime("00:00:00.004 WRN x event=promoting", "event=promoting", late); !ok || at.Sub(late) != 14*time.Millisecond {
		t.Errorf("across midnight: %v %v", at.Sub(late), ok)
	}
}
