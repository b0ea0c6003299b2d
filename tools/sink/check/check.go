// Package check is the sink's verdict, apart from any socket: feed it the
// probe records in arrival order (Add) and the frames without one
// (AddOther), then ask for a Report. Failover tests feed it what they
// capture themselves.
//
// Per flow it counts packets received, duplicated (a sequence number seen
// before), reordered (a new sequence number below the highest seen) and
// lost (sequence numbers never seen, below the flow's expected count or its
// highest seen), and keeps a latency histogram. Optionally it checks that
// stamp fields rise by exactly one per packet per flow (Options.Stamps)
// and that every mutation counter equals Options.Mutate.
package check

import (
	"fmt"
	"math/bits"
	"sort"

	"github.com/reinforce-nfv/reinforce/pkt/probe"
)

// Options say what else to check.
type Options struct {
	// Stamps lists stamp fields (0..probe.Stamps-1) that must rise by
	// exactly one from one packet of a flow to its next, in arrival order;
	// the first packet of a flow sets the start.
	Stamps []int
	// CheckMutate demands that every record's mutation counter be Mutate.
	CheckMutate bool
	Mutate      uint32
	// MaxSeq bounds the sequence numbers tracked per flow (duplicate
	// detection keeps a bit per number); records beyond count as
	// Untracked. 0 means DefaultMaxSeq.
	MaxSeq uint64
	// MaxExamples bounds Report.Violations; 0 means 20.
	MaxExamples int
}

// MaxFlowHists is how many flows get their own latency histogram (8 KiB
// each); later flows count in the total only.
const MaxFlowHists = 4096

// DefaultMaxSeq is the default Options.MaxSeq: 2^26 numbers, 8 MiB of
// bitmap for a flow that uses them all.
const DefaultMaxSeq = 1 << 26

// Checker accumulates records. Not safe for concurrent use; Add does not
// allocate once a flow's bitmap has grown to its highest sequence number.
type Checker struct {
	o        Options
	flows    map[uint32]*flow
	other    uint64
	otherSum uint64
	malf     uint64
	examples []string
	total    Hist
}

type flow struct {
	id        uint32
	received  uint64
	unique    uint64
	dups      uint64
	reordered uint64
	untracked uint64
	next      uint64 // one past the highest sequence number seen
	seen      []uint64
	stamps    [probe.Stamps]uint32
	started   bool
	stampBad  [probe.Stamps]StampViolations
	mutateBad uint64
	lat       *Hist // nil past MaxFlowHists flows
}

// StampViolations counts one stamp field's breaches of "previous + 1".
type StampViolations struct {
	Repeated  uint64 `json:"repeated"`  // equal to the previous value
	Regressed uint64 `json:"regressed"` // below it
	Skipped   uint64 `json:"skipped"`   // more than one above it
}

// Total is the sum of the three.
func (s StampViolations) Total() uint64 { return s.Repeated + s.Regressed + s.Skipped }

// New returns an empty checker.
func New(o Options) (*Checker, error) {
	for _, s := range o.Stamps {
		if s < 0 || s >= probe.Stamps {
			return nil, fmt.Errorf("stamp field %d: want 0..%d", s, probe.Stamps-1)
		}
	}
	if o.MaxSeq == 0 {
		o.MaxSeq = DefaultMaxSeq
	}
	if o.MaxExamples == 0 {
		o.MaxExamples = 20
	}
	return &Checker{o: o, flows: map[uint32]*flow{}}, nil
}

// room says whether another example fits; callers check it first, so
// boxing the arguments costs nothing once the list is full.
func (c *Checker) room() bool { return len(c.examples) < c.o.MaxExamples }

func (c *Checker) example(format string, args ...any) {
	c.examples = append(c.examples, fmt.Sprintf(format, args...))
}

// Add records one received probe; rxNs is its arrival time on the
// sender's clock (CLOCK_MONOTONIC on one machine), for the latency.
func (c *Checker) Add(r *probe.Record, rxNs int64) {
	f := c.flows[r.Flow]
	if f == nil {
		f = &flow{id: r.Flow}
		if len(c.flows) < MaxFlowHists {
			f.lat = new(Hist)
		}
		c.flows[r.Flow] = f
	}
	f.received++
	if lat := rxNs - int64(r.SentNs); lat >= 0 {
		if f.lat != nil {
			f.lat.Add(uint64(lat))
		}
		c.total.Add(uint64(lat))
	}
	switch {
	case r.Seq >= c.o.MaxSeq:
		f.untracked++
	default:
		w, b := r.Seq/64, uint64(1)<<(r.Seq%64)
		for uint64(len(f.seen)) <= w {
			f.seen = append(f.seen, 0)
		}
		switch {
		case f.seen[w]&b != 0:
			f.dups++
			if c.room() {
				c.example("flow %d: seq %d duplicated", r.Flow, r.Seq)
			}
		default:
			f.seen[w] |= b
			f.unique++
			if r.Seq < f.next {
				f.reordered++
				if c.room() {
					c.example("flow %d: seq %d after %d", r.Flow, r.Seq, f.next-1)
				}
			}
		}
		if r.Seq >= f.next {
			f.next = r.Seq + 1
		}
	}
	for _, i := range c.o.Stamps {
		v := r.Stamp[i]
		if f.started {
			prev := f.stamps[i]
			switch {
			case v == prev+1:
			case v == prev:
				f.stampBad[i].Repeated++
				if c.room() {
					c.example("flow %d: seq %d: stamp %d repeated %d", r.Flow, r.Seq, i, v)
				}
			case int32(v-prev) < 0:
				f.stampBad[i].Regressed++
				if c.room() {
					c.example("flow %d: seq %d: stamp %d fell from %d to %d", r.Flow, r.Seq, i, prev, v)
				}
			default:
				f.stampBad[i].Skipped++
				if c.room() {
					c.example("flow %d: seq %d: stamp %d jumped from %d to %d", r.Flow, r.Seq, i, prev, v)
				}
			}
		}
		f.stamps[i] = v
	}
	f.started = true
	if c.o.CheckMutate && r.Mutate != c.o.Mutate {
		f.mutateBad++
		if c.room() {
			c.example("flow %d: seq %d: mutation counter %d, want %d", r.Flow, r.Seq, r.Mutate, c.o.Mutate)
		}
	}
}

// AddOther records a frame that carries no probe: malformed says it did
// not decode, hash is its digest (summed into Report.OtherHashSum).
func (c *Checker) AddOther(hash uint64, malformed bool) {
	c.other++
	c.otherSum += hash
	if malformed {
		c.malf++
	}
}

// FlowReport is one flow's verdict.
type FlowReport struct {
	Flow       uint32            `json:"flow"`
	Expected   uint64            `json:"expected"` // sent, if known, else highest sequence number + 1
	Received   uint64            `json:"received"`
	Lost       uint64            `json:"lost"`
	Duplicated uint64            `json:"duplicated"`
	Reordered  uint64            `json:"reordered"`
	Untracked  uint64            `json:"untracked,omitempty"`
	Unexpected uint64            `json:"unexpected,omitempty"` // sequence numbers never sent
	Latency    Percentiles       `json:"latency_ns"`
	Stamps     []StampViolations `json:"stamp_violations,omitempty"` // per Options.Stamps entry
	Mutate     uint64            `json:"mutate_violations,omitempty"`
}

// Report is the whole verdict.
type Report struct {
	Flows        []FlowReport `json:"flows"`
	Received     uint64       `json:"received"` // probe packets
	Expected     uint64       `json:"expected"`
	Lost         uint64       `json:"lost"`
	Duplicated   uint64       `json:"duplicated"`
	Reordered    uint64       `json:"reordered"`
	Untracked    uint64       `json:"untracked,omitempty"`
	Unexpected   uint64       `json:"unexpected,omitempty"`
	StampErrors  uint64       `json:"stamp_violations"`
	MutateErrors uint64       `json:"mutate_violations"`
	Latency      Percentiles  `json:"latency_ns"`
	Other        uint64       `json:"other"`          // frames without a probe
	Malformed    uint64       `json:"malformed"`      // of them, frames that do not decode
	OtherHashSum uint64       `json:"other_hash_sum"` // sum of their digests
	Violations   []string     `json:"violations,omitempty"`
	// OK: every expected packet arrived once, in order, nothing unexpected
	// arrived, and no stamp or mutation rule was broken.
	OK bool `json:"ok"`
}

// Report builds the verdict. expected gives the packets sent per flow ID
// where known (pktgen's report); flows in it that never arrived count as
// wholly lost. nil judges losses by the highest sequence numbers seen,
// which cannot see a flow's lost tail.
func (c *Checker) Report(expected map[uint32]uint64) Report {
	ids := make([]uint32, 0, len(c.flows))
	for id := range c.flows {
		ids = append(ids, id)
	}
	for id := range expected {
		if c.flows[id] == nil {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	rep := Report{Other: c.other, Malformed: c.malf, OtherHashSum: c.otherSum, Latency: c.total.Percentiles()}
	for _, id := range ids {
		f := c.flows[id]
		if f == nil {
			f = &flow{id: id}
		}
		fr := FlowReport{Flow: id, Received: f.received, Duplicated: f.dups, Reordered: f.reordered,
			Untracked: f.untracked, Mutate: f.mutateBad}
		if f.lat != nil {
			fr.Latency = f.lat.Percentiles()
		}
		fr.Expected = f.next
		if expected != nil {
			fr.Expected = expected[id] // 0 for a flow nobody sent
		}
		var seenBelow uint64
		for w, word := range f.seen {
			if uint64(w)*64 >= fr.Expected {
				break
			}
			if rem := fr.Expected - uint64(w)*64; rem < 64 {
				word &= 1<<rem - 1
			}
			seenBelow += uint64(bits.OnesCount64(word))
		}
		if fr.Expected > c.o.MaxSeq {
			seenBelow += f.untracked // numbers past the bitmap: assume they fill the gap
		}
		fr.Lost = fr.Expected - min(seenBelow, fr.Expected)
		if f.unique > seenBelow {
			fr.Unexpected = f.unique - seenBelow
			if c.room() {
				c.example("flow %d: %d packets with sequence numbers at or past the %d sent", id, fr.Unexpected, fr.Expected)
			}
		}
		for _, i := range c.o.Stamps {
			fr.Stamps = append(fr.Stamps, f.stampBad[i])
			rep.StampErrors += f.stampBad[i].Total()
		}
		rep.Flows = append(rep.Flows, fr)
		rep.Received += fr.Received
		rep.Expected += fr.Expected
		rep.Lost += fr.Lost
		rep.Duplicated += fr.Duplicated
		rep.Reordered += fr.Reordered
		rep.Untracked += fr.Untracked
		rep.MutateErrors += fr.Mutate
		rep.Unexpected += fr.Unexpected
	}
	rep.Violations = append([]string(nil), c.examples...)
	rep.OK = rep.Lost == 0 && rep.Duplicated == 0 && rep.Reordered == 0 && rep.StampErrors == 0 && rep.MutateErrors == 0 && rep.Untracked == 0 && rep.Unexpected == 0
	return rep
}
