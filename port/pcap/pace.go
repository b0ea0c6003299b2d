package pcap

import (
	"math"
	"math/bits"
)

// noTs marks the recorded pacer's lastTs as unset: the next frame is due
// at once (the start, or the first frame after a rewind).
const noTs = math.MinInt64

// pacer decides how many staged frames are due, by credit on the
// monotonic clock (port.Nanotime), never by sleeping. Three modes:
//
//   - unpaced (rate 0, not recorded): every staged frame is due;
//   - rate: frame k of the schedule is due at base + k·1e9/rate ns, exactly
//     (128-bit arithmetic, no accumulated rounding);
//   - recorded: each frame is due its capture-time gap after the previous
//     one; a timestamp that goes back adds no gap, and the first frame of a
//     pass over the file is due at once after the last of the previous.
//
// In both paced modes a head frame more than MaxPaceLag overdue moves the
// schedule forward (it slips) instead of bursting out the backlog.
// A pacer is used by the RX goroutine only.
type pacer struct {
	rate     uint64 // frames per second; 0 = not rate-paced
	recorded bool
	started  bool
	base     int64  // rate: monotonic ns at which frame 0 of the schedule is due
	k        uint64 // rate: frames consumed since base
	lastDue  int64  // recorded: when the last consumed frame was due, monotonic ns
	lastTs   int64  // recorded: latest capture time consumed (ns since the epoch), or noTs
}

// due returns how many of recs, in order, are due at now.
func (pc *pacer) due(now int64, recs []Record) int {
	if len(recs) == 0 {
		return 0
	}
	lag := int64(MaxPaceLag)
	switch {
	case pc.rate > 0:
		if !pc.started {
			pc.started, pc.base = true, now
		}
		if d := pc.rateDue(0); now-d > lag {
			pc.base += now - lag - d
		}
		n := 0
		for n < len(recs) && pc.rateDue(uint64(n)) <= now {
			n++
		}
		return n
	case pc.recorded:
		if !pc.started {
			pc.started, pc.lastDue = true, now
		}
		d, t := pc.lastDue, pc.lastTs
		n := 0
		for n < len(recs) {
			d, t = gapStep(d, t, recs[n].Timestamp)
			if n == 0 && now-d > lag {
				pc.lastDue += now - lag - d
				d = now - lag
			}
			if d > now {
				break
			}
			n++
		}
		return n
	}
	return len(recs)
}

// consumed advances the schedule past recs, the frames just delivered or
// dropped.
func (pc *pacer) consumed(recs []Record) {
	switch {
	case pc.rate > 0:
		pc.k += uint64(len(recs))
	case pc.recorded:
		for i := range recs {
			pc.lastDue, pc.lastTs = gapStep(pc.lastDue, pc.lastTs, recs[i].Timestamp)
		}
	}
}

// rewound notes that the file starts over: no gap before its first frame.
func (pc *pacer) rewound() { pc.lastTs = noTs }

// rateDue is when frame k+i of the rate schedule is due.
func (pc *pacer) rateDue(i uint64) int64 {
	hi, lo := bits.Mul64(pc.k+i, 1e9)
	if hi >= pc.rate {
		return math.MaxInt64 // beyond 2^64 ns: never
	}
	q, _ := bits.Div64(hi, lo, pc.rate)
	if q > uint64(math.MaxInt64-pc.base) {
		return math.MaxInt64
	}
	return pc.base + int64(q)
}

// gapStep returns when a frame captured at ts is due and the latest
// capture time, given the previous frame's due time d and latest time t.
func gapStep(d, t, ts int64) (int64, int64) {
	if t == noTs {
		return d, ts
	}
	if ts > t {
		return d + (ts - t), ts
	}
	return d, t
}
