package onvmstats

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// rawRates renders ticks through Raw with the given period and returns, per tick, the NF row's
// columns rx_pps, tx_pps, rx_drop_rate, tx_drop_rate, wakeup_rate.
func rawRates(t *testing.T, period int, nfs ...[]NF) [][5]string {
	t.Helper()
	r := New(Options{Verbosity: LevelRaw, PeriodSeconds: period})
	var out [][5]string
	for i, n := range nfs {
		rows := strings.Split(strings.TrimSuffix(string(r.Raw(Tick{Time: t0.Add(time.Duration(i) * time.Second), NFs: n})), "\n"), "\n")
		if len(n) == 0 {
			out = append(out, [5]string{})
			continue
		}
		c := strings.Split(rows[0], ",")
		out = append(out, [5]string{c[10], c[11], c[14], c[15], c[23]})
	}
	return out
}

func TestRateIntegerDivision(t *testing.T) {
	nf := func(c uint64) []NF {
		return []NF{{Tag: "a", Instance: 1, RX: c, TX: 2 * c, RXDrop: c + 1, TXDrop: c + 2, Wakeups: c}}
	}
	got := rawRates(t, 3, nf(10), nf(21), nf(23))
	want := [][5]string{
		{"3", "6", "3", "4", "3"}, // first tick: previous is 0, 10/3 = 3
		{"3", "7", "3", "3", "3"}, // 11/3, 22/3, 11/3, 11/3, 11/3
		{"0", "1", "0", "0", "0"}, // 2/3 = 0, 4/3 = 1
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("rates = %v, want %v", got, want)
	}
}

func TestRateZeroCounterResetsLast(t *testing.T) {
	nf := func(c uint64) []NF { return []NF{{Instance: 1, RX: c, TX: c, RXDrop: c, TXDrop: c, Wakeups: c}} }
	got := rawRates(t, 1, nf(100), nf(0), nf(7))
	want := [][5]string{
		{"100", "100", "100", "100", "100"},
		{"0", "0", "0", "0", "0"}, // ONVM would print (0-100) wrapped
		{"7", "7", "7", "7", "7"}, // counted from the reset
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("rates = %v, want %v", got, want)
	}
}

func TestRateCounterBelowLastRestartsFromZero(t *testing.T) {
	nf := func(c uint64) []NF { return []NF{{Instance: 1, RX: c}} }
	got := rawRates(t, 2, nf(100), nf(40))
	if got[1][0] != "20" {
		t.Fatalf("rx_pps after 100 -> 40 with period 2 = %s, want 20", got[1][0])
	}
}

func TestRateForgetsMissingNF(t *testing.T) {
	nf := func(c uint64) []NF { return []NF{{Instance: 5, RX: c}} }
	got := rawRates(t, 1, nf(100), nil, nf(150))
	if got[2][0] != "150" {
		t.Fatalf("rx_pps of a returning NF = %s, want 150 (its old counters forgotten)", got[2][0])
	}
}

func TestPortRateMatchedByIndex(t *testing.T) {
	r := New(Options{Verbosity: LevelRaw, PeriodSeconds: 1})
	r.Raw(Tick{Time: t0, Ports: []Port{{Index: 0, ID: 3, RX: 10}}})
	// Same index, different ID (a config change): the index keys the previous value, as
	// ONVM's rx_last[i] does.
	got := string(r.Raw(Tick{Time: t0.Add(time.Second), Ports: []Port{{Index: 0, ID: 4, RX: 15}}}))
	if want := "2024-03-05 09:07:03,4,15,5,0,0\n"; got != want {
		t.Fatalf("raw port row = %q, want %q", got, want)
	}
}

func TestSameTimeIsSamePeriod(t *testing.T) {
	r := New(Options{Verbosity: LevelNormal, PeriodSeconds: 1})
	a, b := twoTicks(1, chain)
	r.Console(a)
	c1 := r.Console(b)
	w1 := r.WebStatsJSON(b)
	c2 := r.Console(b)
	if !bytes.Equal(c1, c2) {
		t.Fatalf("second Console for the same Time differs:\n%s\n---\n%s", c1, c2)
	}
	r2 := New(Options{Verbosity: LevelNormal, PeriodSeconds: 1})
	r2.WebStatsJSON(a)
	if w2 := r2.WebStatsJSON(b); !bytes.Equal(w1, w2) {
		t.Fatalf("WebStatsJSON after Console of the same tick differs from WebStatsJSON alone:\n%s\n---\n%s", w1, w2)
	}
}

func TestWakeupTotalSumsBeforeDividing(t *testing.T) {
	r := New(Options{Verbosity: LevelVerbose, SharedCore: true, PeriodSeconds: 2})
	nfs := func(c uint64) []NF { return []NF{{Instance: 1, Wakeups: c}, {Instance: 2, Wakeups: c}} }
	r.Console(Tick{Time: t0, NFs: nfs(10)})
	out := string(r.Console(Tick{Time: t0.Add(2 * time.Second), NFs: nfs(11)}))
	// Per NF: (11-10)/2 = 0; total: (22-20)/2 = 1, as onvm_stats_display_client_wakeup_thread_context.
	if !strings.Contains(out, "Total wakeups = 22, Wakeup rate = 1\n") {
		t.Fatalf("shared core totals missing or wrong:\n%s", out)
	}
	if !strings.Contains(out, fmt.Sprintf(fmtNFShared, 11, 0)) {
		t.Fatalf("per-NF wakeup row missing or wrong:\n%s", out)
	}
}

func TestPortLineMatchesSpecExample(t *testing.T) {
	r := New(Options{Verbosity: LevelNormal, PeriodSeconds: 1})
	p := []Port{{Index: 0, ID: 0, MAC: "90:e2:ba:b3:bc:6c", RX: 4}}
	r.Console(Tick{Time: t0, Ports: p})
	out := string(r.Console(Tick{Time: t0.Add(time.Second), Ports: p}))
	const want = "PORTS\n-----\nPort 0: '90:e2:ba:b3:bc:6c'\t\n\n" +
		"Port 0 - rx:         4  (        0 pps)\ttx:         0  (        0 pps)\n" +
		nfHeaderLevel1
	if out != want {
		t.Fatalf("Console =\n%q\nwant\n%q", out, want)
	}
}

func TestNoServiceTotalsWithOneNFPerService(t *testing.T) {
	for _, v := range []int{LevelNormal, LevelVerbose} {
		r := New(Options{Verbosity: v, PeriodSeconds: 1})
		if out := r.Console(Tick{Time: t0, NFs: chain(1)}); bytes.Contains(out, []byte("Service id totals")) {
			t.Errorf("level %d printed service totals with one NF per service", v)
		}
	}
}

func TestConsoleAtRawLevelIsRaw(t *testing.T) {
	a, b := twoTicks(1, scaled)
	r1 := New(Options{Verbosity: LevelRaw, PeriodSeconds: 1, Stdout: true})
	r2 := New(Options{Verbosity: LevelRaw, PeriodSeconds: 1, Stdout: true})
	for _, tk := range []Tick{a, b} {
		if c, w := r1.Console(tk), r2.Raw(tk); !bytes.Equal(c, w) {
			t.Fatalf("Console at level 3 =\n%s\nRaw =\n%s", c, w)
		}
	}
}

func TestOptionsClamped(t *testing.T) {
	tk := Tick{Time: t0, NFs: chain(1)}
	if got, want := New(Options{Verbosity: 7}).Console(tk), New(Options{Verbosity: LevelRaw, PeriodSeconds: 1}).Raw(tk); !bytes.Equal(got, want) {
		t.Errorf("Verbosity 7 is not rendered as raw:\n%s", got)
	}
	if got, want := New(Options{Verbosity: 0, PeriodSeconds: -3}).Console(tk), New(Options{Verbosity: 1, PeriodSeconds: 1}).Console(tk); !bytes.Equal(got, want) {
		t.Errorf("Verbosity 0, period -3 not rendered as level 1, period 1:\n%s", got)
	}
}

func TestStateIsWWithoutSharedCore(t *testing.T) {
	r := New(Options{Verbosity: LevelRaw, PeriodSeconds: 1})
	out := string(r.Raw(Tick{Time: t0, NFs: []NF{{Tag: "x", Instance: 1, Sleeping: true}}}))
	if !strings.Contains(out, ",x,1,0,0,0,W,") {
		t.Fatalf("raw row = %q, want state W (ONVM reads the sleep flag only with -c)", out)
	}
}

func TestChildrenPrintedAsCUnsigned(t *testing.T) {
	r := New(Options{Verbosity: LevelRaw, PeriodSeconds: 1})
	out := string(r.Raw(Tick{Time: t0, NFs: []NF{{Tag: "x", Instance: 1, Children: -1}}}))
	if !strings.Contains(out, ",W,4294967295,") {
		t.Fatalf("raw row = %q, want children -1 printed as %%u of int16 -1", out)
	}
}

func TestTagPaddedByBytes(t *testing.T) {
	// "café" is 5 bytes and 4 runes: C pads it with 9 spaces to 14 bytes.
	if got, want := string(appendTag(nil, "café")), "café         "; got != want || len(got) != 14 {
		t.Fatalf("appendTag = %q, want %q", got, want)
	}
	long := "a_tag_longer_than_14"
	if got := string(appendTag(nil, long)); got != long {
		t.Fatalf("appendTag cut a long tag: %q", got)
	}
}

func TestNFLabelTruncation(t *testing.T) {
	tests := []struct {
		id   uint16
		want string
	}{
		{0, "NF 0"},
		{1, "NF 1"},
		{99, "NF 99"},
		{100, "NF 10"}, // [quirk] 6-byte buffer
		{127, "NF 12"},
		{65535, "NF 65"},
	}
	for _, tt := range tests {
		if got := NFLabel(tt.id); got != tt.want {
			t.Errorf("NFLabel(%d) = %q, want %q", tt.id, got, tt.want)
		}
	}
}

func TestWebStatsLabelTruncated(t *testing.T) {
	r := New(Options{PeriodSeconds: 1})
	out := string(r.WebStatsJSON(Tick{Time: t0, NFs: []NF{{Instance: 123}}}))
	if !strings.Contains(out, "\t\t\"NF 12\":\t{\n\t\t\t\"Label\":\t\"NF 12\",\n") ||
		!strings.Contains(out, "\"instance_id\":\t123,") {
		t.Fatalf("WebStatsJSON for instance 123:\n%s", out)
	}
}

func TestCJSONNumber(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0"},
		{1, "1"},
		{-1, "-1"},
		{math.MaxInt32, "2147483647"},
		{math.MinInt32, "-2147483648"},
		{math.MaxInt32 + 1, "2147483648"}, // %.0f
		{float64(uint64(1)<<53 + 1), "9007199254740992"}, // the double it rounds to
		{float64(math.MaxUint64), "18446744073709551616"},
		{0.5, "0.500000"},
		{1e-7, "1.000000e-07"},
		{1.5e10 + 0.5, "1.500000e+10"},
		{math.NaN(), "null"},
		{math.Inf(1), "null"},
	}
	for _, tt := range tests {
		if got := string(appendCJSONNumber(nil, tt.in)); got != tt.want {
			t.Errorf("print_number(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCJSONString(t *testing.T) {
	in := "a\"b\\c/d\b\f\n\r\t\x01\x1fé\x7f"
	want := `"a\"b\\c/d\b\f\n\r\t\u0001\u001fé` + "\x7f\""
	if got := string(appendCJSONString(nil, in)); got != want {
		t.Fatalf("print_string_ptr = %q, want %q", got, want)
	}
}

func TestCJSONEmptyContainers(t *testing.T) {
	if got := string(EventsJSON(nil)); got != "[]\n" {
		t.Errorf("EventsJSON(nil) = %q, want %q", got, "[]\n")
	}
	root := jsonObj("")
	if got := string(appendCJSON(nil, &root, 0)); got != "{\n}" {
		t.Errorf("empty root object = %q, want %q", got, "{\n}")
	}
	nested := jsonObj("", jsonObj("a", jsonObj("b")))
	if got, want := string(appendCJSON(nil, &nested, 0)), "{\n\t\"a\":\t{\n\t\t\"b\":\t{\n\t\t}\n\t}\n}"; got != want {
		t.Errorf("nested empty object = %q, want %q", got, want)
	}
}

func TestEventConstructors(t *testing.T) {
	if got := PortEvent(t0, 12345).Message; got != "Port 12345 initialize" {
		t.Errorf("PortEvent(12345) message = %q, want it cut to 21 bytes", got)
	}
	if got := PortEvent(t0, 7).Message; got != "Port 7 initialized" {
		t.Errorf("PortEvent(7) message = %q", got)
	}
	e := NFEvent(t0, MsgNFReady, NF{Instance: 40000, Service: 1, Core: 2})
	if e.Source[0].Str != "NF" || e.Source[1].Num != int64(int16(-25536)) {
		t.Errorf("NFEvent source = %+v, want type NF and instance_id as int16", e.Source)
	}
}

func TestRawHeaderIsLiteral(t *testing.T) {
	h := string(RawHeader())
	lines := strings.Split(h, "\n")
	if len(lines) != 3 || lines[2] != "" ||
		lines[0] != "#YYYY-MM-DD HH:MM:SS,nic_rx_pkts,nic_rx_pps,nic_tx_pkts,nic_tx_pps" ||
		strings.Count(lines[1], ",") != 23 {
		t.Fatalf("RawHeader = %q", h)
	}
	RawHeader()[0] = 'X' // caller-owned copy
	if RawHeader()[0] != '#' {
		t.Fatal("RawHeader returned shared storage")
	}
}
