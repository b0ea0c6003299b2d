package pcap

import (
	"testing"
	"time"
)

const ms = int64(time.Millisecond)

func recsAt(ts ...int64) []Record {
	r := make([]Record, len(ts))
	for i, t := range ts {
		r[i].Timestamp = t
	}
	return r
}

// step asks pc how many of recs are due at now and consumes them.
func step(pc *pacer, now int64, recs []Record) int {
	n := pc.due(now, recs)
	pc.consumed(recs[:n])
	return n
}

func TestPacerUnpacedDeliversEverything(t *testing.T) {
	pc := pacer{lastTs: noTs}
	if n := pc.due(1, make([]Record, 17)); n != 17 {
		t.Fatalf("%d due", n)
	}
}

func TestPacerRateSchedule(t *testing.T) {
	pc := pacer{rate: 1000, lastTs: noTs}
	recs := make([]Record, 64)
	t0 := 5_000 * ms
	for _, tt := range []struct {
		at   int64
		want int
	}{
		{0, 1},                // frame 0 is due at the start
		{ms / 2, 0},           // frame 1 at +1 ms
		{ms, 1},               // frame 1
		{5 * ms, 4},           // frames 2..5
		{5*ms + ms - 1, 0},    // frame 6 at +6 ms
		{1000 * ms, 11},       // after a stall: frames overdue by up to MaxPaceLag, no more
		{1000*ms + ms, 1},     // the schedule slipped: one frame per ms again
		{1000*ms + 3*ms, 2},   //
		{1000*ms + 3*ms, 0},   //
		{1000*ms + 40*ms, 11}, // a second stall
	} {
		if n := step(&pc, t0+tt.at, recs); n != tt.want {
			t.Fatalf("at +%v: %d due, want %d", time.Duration(tt.at), n, tt.want)
		}
	}
}

func TestPacerRateIsExact(t *testing.T) {
	// 3 frames per second: 1/3 s is not a whole number of ns, yet frame
	// 3000 is due exactly 1000 s after frame 0.
	pc := pacer{rate: 3, lastTs: noTs}
	recs := make([]Record, 1)
	step(&pc, 0, recs)
	pc.k = 2999
	if pc.rateDue(0) != 999_666_666_666 || pc.rateDue(1) != 1000_000_000_000 {
		t.Fatalf("frame 2999 due %d, frame 3000 due %d", pc.rateDue(0), pc.rateDue(1))
	}
}

func TestPacerRecordedGaps(t *testing.T) {
	pc := pacer{recorded: true, lastTs: noTs}
	base := int64(1e18)
	// Gaps 5 ms, 0, backwards (no gap), then 15 ms after the latest.
	file := recsAt(base, base+5*ms, base+5*ms, base+3*ms, base+20*ms)
	t0 := 77 * ms
	if n := step(&pc, t0, file); n != 1 {
		t.Fatalf("at the start: %d due", n)
	}
	if n := step(&pc, t0+5*ms-1, file[1:]); n != 0 {
		t.Fatalf("before +5 ms: %d due", n)
	}
	if n := step(&pc, t0+5*ms, file[1:]); n != 3 {
		t.Fatalf("at +5 ms: %d due, want the two at +5 ms and the one that goes back", n)
	}
	if n := step(&pc, t0+19*ms, file[4:]); n != 0 {
		t.Fatalf("at +19 ms: %d due", n)
	}
	if n := step(&pc, t0+20*ms, file[4:]); n != 1 {
		t.Fatalf("at +20 ms: %d due", n)
	}
	// The file starts over: its first frame is due at once, then the gaps again.
	pc.rewound()
	if n := step(&pc, t0+20*ms, file); n != 1 {
		t.Fatalf("after the rewind: %d due", n)
	}
	if n := step(&pc, t0+24*ms, file[1:]); n != 0 {
		t.Fatalf("4 ms into the second pass: %d due", n)
	}
	if n := step(&pc, t0+25*ms, file[1:]); n != 3 {
		t.Fatalf("5 ms into the second pass: %d due", n)
	}
	// A stall of a second: the head is due at once, and the schedule slips
	// so that the next frame keeps its recorded gap from MaxPaceLag ago.
	now := t0 + 1025*ms
	if n := step(&pc, now, file[4:]); n != 1 {
		t.Fatalf("after a stall: %d due", n)
	}
	pc.rewound()
	if n := step(&pc, now, append(file[:1:1], recsAt(base+int64(MaxPaceLag)+ms)...)); n != 1 {
		t.Fatalf("after the slip: %d due, want the first only", n)
	}
}
