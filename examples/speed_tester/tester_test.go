package main

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"

	"github.com/reinforce-nfv/reinforce/nflib"
	"github.com/reinforce-nfv/reinforce/shm"
)

// fakeClock is a settable now() for the tester.
type fakeClock struct{ ns uint64 }

func (c *fakeClock) now() uint64 { return c.ns }

func TestTesterCirculatesItsPacketsAndDropsOthers(t *testing.T) {
	clk := &fakeClock{ns: 1}
	tr := newTester(config{dst: 4, printDelay: 0, size: 14}, 128, io.Discard, clk.now)
	data := make([]byte, 14)
	tests := []struct {
		flags uint8
		want  nflib.Action
	}{
		{speedBit, nflib.ToNF(4)},
		{speedBit | latencyBit, nflib.ToNF(4)}, // not measuring: forwarded as is
		{0, nflib.Drop},
		{latencyBit, nflib.Drop},
		{0x7f, nflib.Drop},
	}
	for _, tt := range tests {
		if got := tr.process(&shm.Meta{Flags: tt.flags}, data); got != tt.want {
			t.Errorf("flags %#x: action %v, want %v", tt.flags, got, tt.want)
		}
	}
	if tr.total != uint64(len(tests)) {
		t.Errorf("counted %d packets, want %d", tr.total, len(tests))
	}
}

func TestTesterMeasuresProbeRoundTrips(t *testing.T) {
	clk := &fakeClock{ns: 1000}
	tr := newTester(config{dst: 1, size: 20, latency: true}, 16, io.Discard, clk.now)
	probe := make([]byte, 28)
	m := &shm.Meta{Flags: speedBit | latencyBit}
	stamp := func() uint64 { return binary.NativeEndian.Uint64(probe[20:]) }

	clk.ns = 5000
	tr.process(m, probe) // first return: only stamped
	if stamp() != 5000 || tr.latN != 0 {
		t.Fatalf("after first return: stamp %d, samples %d; want 5000, 0", stamp(), tr.latN)
	}
	clk.ns = 5700
	tr.process(m, probe)
	clk.ns = 6000
	tr.process(m, probe)
	if stamp() != 6000 || tr.latN != 2 || tr.latSum != 1000 {
		t.Errorf("stamp %d, %d samples summing %d ns; want 6000, 2, 1000", stamp(), tr.latN, tr.latSum)
	}

	// A probe too short to hold its stamp (a chain NF cut it) is forwarded
	// untouched; so is a probe without the latency bit.
	short := bytes.Repeat([]byte{0xee}, 27)
	if tr.process(m, short) != nflib.ToNF(1) || !bytes.Equal(short, bytes.Repeat([]byte{0xee}, 27)) {
		t.Error("short probe: not forwarded untouched")
	}
	plain := make([]byte, 28)
	tr.process(&shm.Meta{Flags: speedBit}, plain)
	if !bytes.Equal(plain, make([]byte, 28)) {
		t.Error("packet without the latency bit was stamped")
	}
}

func TestTesterDisplaysONVMsBlock(t *testing.T) {
	clk := &fakeClock{ns: 1000}
	var out bytes.Buffer
	tr := newTester(config{dst: 1, printDelay: 4, size: 14, latency: true}, 128, &out, clk.now)
	probe := make([]byte, 22)
	m := &shm.Meta{Flags: speedBit | latencyBit}

	for range 3 {
		tr.process(m, probe)
		clk.ns += 250
	}
	if out.Len() != 0 {
		t.Fatalf("displayed after 3 of 4 packets: %q", out.String())
	}
	clk.ns = 1000 + 2e9 // 4 packets in 2 s
	tr.process(m, probe)
	// As in ONVM the display comes before the packet is handled: the 4th
	// round trip belongs to the next interval.
	want := "\x1b[2J\x1b[1;1H" +
		"Total packets:         4 \n" +
		"TX pkts per second:         2 \n" +
		"Avg latency nanoseconds:    250 \n" +
		"Initial packets created: 128\n\n\n"
	if got := out.String(); got != want {
		t.Errorf("display\n%q\nwant\n%q", got, want)
	}

	// The next interval starts afresh.
	out.Reset()
	clk.ns += 1e9
	for range 4 {
		tr.process(m, probe)
	}
	want = "\x1b[2J\x1b[1;1H" +
		"Total packets:         8 \n" +
		"TX pkts per second:         4 \n" +
		// Round trips of 2 s - 500 ns (the 4th), 1 s (the 5th), 0 and 0.
		// Wider than %6 is not cut.
		"Avg latency nanoseconds: 749999875 \n" +
		"Initial packets created: 128\n\n\n"
	if got := out.String(); got != want {
		t.Errorf("second display\n%q\nwant\n%q", got, want)
	}
}

func TestTesterDisplaysNoLatencyWithoutSamples(t *testing.T) {
	for _, latency := range []bool{false, true} {
		clk := &fakeClock{ns: 1}
		var out bytes.Buffer
		tr := newTester(config{dst: 1, printDelay: 2, size: 14, latency: latency}, 0, &out, clk.now)
		tr.process(&shm.Meta{Flags: speedBit | latencyBit}, make([]byte, 22)) // stamps only
		tr.process(&shm.Meta{}, nil)                                          // same clock: rate unknown
		want := "\x1b[2J\x1b[1;1H" +
			"Total packets:         2 \n" +
			"TX pkts per second:         0 \n" +
			"Initial packets created: 0\n\n\n"
		if got := out.String(); got != want {
			t.Errorf("latency %v: display\n%q\nwant\n%q", latency, got, want)
		}
	}
}

func TestTesterDoesNotAllocate(t *testing.T) {
	tr := newTester(config{dst: 1, printDelay: 1, size: 14, latency: true}, 128, io.Discard, monoNanos) // displays every packet
	probe := make([]byte, 22)
	m := &shm.Meta{Flags: speedBit | latencyBit}
	other := &shm.Meta{}
	if n := testing.AllocsPerRun(1000, func() {
		tr.process(m, probe)
		tr.process(other, probe)
	}); n != 0 {
		t.Errorf("process allocates %v times per packet pair", n)
	}
}

func BenchmarkTesterProcess(b *testing.B) {
	tr := newTester(config{dst: 1, printDelay: defaultPrintDelay, size: 14, latency: true}, 128, io.Discard, monoNanos)
	probe := make([]byte, 22)
	m := &shm.Meta{Flags: speedBit | latencyBit}
	b.ReportAllocs()
	for b.Loop() {
		tr.process(m, probe)
	}
}
