package remotelab

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reinforce-nfv/reinforce/pkt"
	"github.com/reinforce-nfv/reinforce/pkt/probe"
	"github.com/reinforce-nfv/reinforce/port"
	"github.com/reinforce-nfv/reinforce/shm"
	"github.com/reinforce-nfv/reinforce/tools/pktgen/gen"
	"github.com/reinforce-nfv/reinforce/tools/sink/check"
)

// SinkIfaces are the sink's interfaces: from A, from B.
var SinkIfaces = [2]string{"eth0", "eth1"}

// TimelineBucket is the width of Sink.Timeline's buckets, and
// timelineMax how far it reaches.
const (
	TimelineBucket = time.Millisecond
	timelineMax    = 10 * time.Minute
)

// Sink receives on both of the sink server's interfaces in the calling
// process (sockets opened in its namespace, polled by one goroutine),
// feeds tools/sink/check (duplicates, order, mutation exactly 1; the
// stamps are checked here instead, since a failover may skip some) and
// checks each flow's stamps from one packet to its next:
//
//   - neither stamp field may repeat or go down (no output contradicts an
//     earlier one);
//   - the members' stamp may skip no more than the ingress's does: the
//     packets the chain counted and never delivered are among the flow's
//     packets that left the ingress and never arrived (lost in flight).
type Sink struct {
	f     [2]*gen.Iface
	ck    *check.Checker
	flows int
	start time.Time

	got   atomic.Uint64
	per   [2]atomic.Uint64 // probes received on each interface
	max0  []atomic.Uint32  // per flow: the highest member stamp so far
	gap0  atomic.Uint64    // stamps 0 skipped, all flows
	gap3  atomic.Uint64    // stamps 3 skipped (lost in flight), all flows
	nbad  atomic.Uint64
	lastN atomic.Int64 // time of the last probe, UnixNano

	markNs  atomic.Int64    // SetMark's instant
	firstNs [2]atomic.Int64 // per interface: the first probe at or after it (0: none yet)

	stop, done chan struct{}
	closeOnce  sync.Once

	// The loop's own until done.
	last0, last3     []uint32
	lastIf           []uint8 // the interface of each flow's last packet
	recv, jumps      []uint64
	gapSum0, gapSum3 []uint64
	maxExcess        []uint64 // per flow: not used unless a violation (gap0 - gap3 > 0)
	bad              []string // guarded by badMu
	badMu            sync.Mutex
	other            uint64
	tlCount, tlLat   []uint64
	stats            [2]SinkPort
	firstStamp0      []uint32
	firstStamp3      []uint32
}

// SinkPort are one interface's port counters, read at Close.
type SinkPort struct {
	RxDrops, KernelDrops uint64
}

// StartSink opens the sink's interfaces and starts receiving.
func (l *Lab) StartSink() (*Sink, error) {
	ck, err := check.New(check.Options{CheckMutate: true, Mutate: 1})
	if err != nil {
		return nil, err
	}
	n := l.Opt.Flows
	s := &Sink{ck: ck, flows: n, start: time.Now(), max0: make([]atomic.Uint32, n), stop: make(chan struct{}), done: make(chan struct{}),
		last0: make([]uint32, n), last3: make([]uint32, n), lastIf: make([]uint8, n), recv: make([]uint64, n), jumps: make([]uint64, n),
		gapSum0: make([]uint64, n), gapSum3: make([]uint64, n), maxExcess: make([]uint64, n),
		firstStamp0: make([]uint32, n), firstStamp3: make([]uint32, n),
		tlCount: make([]uint64, timelineMax/TimelineBucket), tlLat: make([]uint64, timelineMax/TimelineBucket)}
	for i, iface := range SinkIfaces {
		if err := l.L.Server("sink").Do(func() (err error) {
			s.f[i], err = gen.OpenIface(iface, 16384, 9600+shm.HeadroomBytes, gen.AfpacketDefaults())
			return err
		}); err != nil {
			s.closeIfaces()
			return nil, err
		}
	}
	l.mu.Lock()
	l.sink = s
	l.mu.Unlock()
	go s.loop()
	return s, nil
}

func (s *Sink) loop() {
	defer close(s.done)
	var (
		slots = make([]shm.Slot, 64)
		h     pkt.Headers
		rec   probe.Record
	)
	for {
		busy := false
		for i, f := range s.f {
			f.Service()
			n := f.Port.RxBurst(f.Cache, slots)
			if n == 0 {
				continue
			}
			busy = true
			now := time.Now()
			for _, sl := range slots[:n] {
				m := f.Region.Meta(sl)
				frame := f.Region.Packet(sl)
				off, ok := probe.Find(&h, frame)
				if !ok || !rec.Get(frame[off:]) {
					s.other++
					s.ck.AddOther(gen.FrameHash(frame), h.Decode(frame) != nil)
					continue
				}
				s.ck.Add(&rec, m.Timestamp)
				s.track(&rec, i, now, m.Timestamp)
			}
			f.Cache.Free(slots[:n])
		}
		if busy {
			continue
		}
		select {
		case <-s.stop:
			for i, f := range s.f {
				st := f.Port.Stats()
				s.stats[i] = SinkPort{RxDrops: st.RxDrops, KernelDrops: f.Port.Detail().RxKernelDrops}
			}
			return
		default:
			time.Sleep(100 * time.Microsecond)
		}
	}
}

func (s *Sink) badf(format string, args ...any) {
	s.nbad.Add(1)
	s.badMu.Lock()
	if len(s.bad) < 30 {
		s.bad = append(s.bad, fmt.Sprintf(format, args...))
	}
	s.badMu.Unlock()
}

// ViolationExamples returns up to 30 of the stamp rules broken so far.
func (s *Sink) ViolationExamples() []string {
	s.badMu.Lock()
	defer s.badMu.Unlock()
	return append([]string(nil), s.bad...)
}

func (s *Sink) track(rec *probe.Record, iface int, now time.Time, rxNs int64) {
	f := int(rec.Flow)
	if f >= s.flows {
		s.badf("probe of flow %d (only %d sent)", rec.Flow, s.flows)
		return
	}
	v0, v3 := rec.Stamp[StampMember], rec.Stamp[StampIngress]
	p0, p3 := s.last0[f], s.last3[f]
	if s.recv[f] == 0 {
		s.firstStamp0[f], s.firstStamp3[f] = v0, v3
	}
	switch {
	case v0 <= p0 || v3 <= p3:
		s.badf("flow %d seq %d on %s: stamps (member %d, ingress %d) after (%d, %d) on %s: repeated or regressed (sent %v ago)",
			f, rec.Seq, SinkIfaces[iface], v0, v3, p0, p3, SinkIfaces[s.lastIf[f]], time.Duration(port.Nanotime()-int64(rec.SentNs)).Round(time.Microsecond))
	default:
		g0, g3 := uint64(v0-p0-1), uint64(v3-p3-1)
		if g0 > 0 {
			s.jumps[f]++
			s.gapSum0[f] += g0
			s.gap0.Add(g0)
		}
		s.gapSum3[f] += g3
		s.gap3.Add(g3)
		if g0 > g3 {
			s.maxExcess[f] = max(s.maxExcess[f], g0-g3)
			s.badf("flow %d seq %d on %s: member stamp %d after %d skips %d, more than the %d packets lost in flight (ingress stamp %d after %d)",
				f, rec.Seq, SinkIfaces[iface], v0, p0, g0, g3, v3, p3)
		}
	}
	s.last0[f], s.last3[f] = max(v0, p0), max(v3, p3)
	s.lastIf[f] = uint8(iface)
	s.recv[f]++
	if v0 > s.max0[f].Load() {
		s.max0[f].Store(v0)
	}
	ns := now.UnixNano()
	s.lastN.Store(ns)
	if mk := s.markNs.Load(); mk != 0 && ns >= mk && s.firstNs[iface].Load() == 0 {
		s.firstNs[iface].Store(ns)
	}
	if b := now.Sub(s.start) / TimelineBucket; b >= 0 && int(b) < len(s.tlCount) {
		s.tlCount[b]++
		if lat := rxNs - int64(rec.SentNs); lat > 0 {
			s.tlLat[b] += uint64(lat)
		}
	}
	s.per[iface].Add(1)
	s.got.Add(1)
}

// Got is the probes received so far, and on each interface (from A, from B).
func (s *Sink) Got() (total uint64, fromA, fromB uint64) {
	return s.got.Load(), s.per[0].Load(), s.per[1].Load()
}

// Gaps are the stamps skipped so far over all flows: the members' (output
// the chain counted and never delivered) and the ingress's (packets lost
// in flight, the bound of the former).
func (s *Sink) Gaps() (member, inFlight uint64) { return s.gap0.Load(), s.gap3.Load() }

// Violations is how many stamp rules were broken so far.
func (s *Sink) Violations() uint64 { return s.nbad.Load() }

// MaxStamp is flow f's highest member stamp received so far.
func (s *Sink) MaxStamp(f int) uint32 { return s.max0[f].Load() }

// LastOutput is when the last probe arrived (zero before any).
func (s *Sink) LastOutput() time.Time {
	if n := s.lastN.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// SetMark arms FirstAfterMark at t.
func (s *Sink) SetMark(t time.Time) {
	s.markNs.Store(0)
	s.firstNs[0].Store(0)
	s.firstNs[1].Store(0)
	s.markNs.Store(t.UnixNano())
}

// FirstAfterMark is when the first probe at or after the mark arrived on
// interface iface (0: from A, 1: from B; IfaceOf); ok is false before one
// did. Probes the old primary released before a fault may still arrive on
// its interface after it, so a failover's first output is the new
// primary's interface's.
func (s *Sink) FirstAfterMark(iface int) (t time.Time, ok bool) {
	n := s.firstNs[iface].Load()
	if n == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, n), true
}

// IfaceOf is the index of the sink's interface from member (A or B).
func IfaceOf(member string) int {
	if member == B {
		return 1
	}
	return 0
}

// WaitFlowing waits until n more probes than now have arrived.
func (s *Sink) WaitFlowing(n uint64, d time.Duration) error {
	from := s.got.Load()
	deadline := time.Now().Add(d)
	for s.got.Load() < from+n {
		if time.Now().After(deadline) {
			return fmt.Errorf("the sink got %d probes in %v, want %d", s.got.Load()-from, d, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return nil
}

// Close stops receiving (once) and closes the interfaces.
func (s *Sink) Close() {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
		s.closeIfaces()
	})
}

func (s *Sink) closeIfaces() {
	for i, f := range s.f {
		if f != nil {
			f.Close()
			s.f[i] = nil
		}
	}
}

// SinkResult is the sink's verdict, after Close.
type SinkResult struct {
	check.Report
	// StampViolations are the stamp rules broken (examples, up to 30);
	// NStampViolations counts them all.
	StampViolations  []string
	NStampViolations uint64
	// Per flow: probes received, member stamp jumps, member stamps
	// skipped, ingress stamps skipped (lost in flight), the largest excess
	// of the former over the latter in one step (0 when the rule held).
	Recv, Jumps, Gap, InFlight, MaxExcess []uint64
	// Totals of the two gaps.
	GapTotal, InFlightTotal uint64
	// Other: frames without a probe. Ports: each interface's drops.
	Other uint64
	Ports [2]SinkPort
	// FromA, FromB: probes received on each interface.
	FromA, FromB uint64
}

// Result closes the sink and returns its verdict; expected is pktgen's
// report (nil: judge losses by the highest sequence numbers seen).
func (s *Sink) Result(expected *gen.Report) SinkResult {
	s.Close()
	var m map[uint32]uint64
	if expected != nil {
		m = make(map[uint32]uint64, len(expected.PerFlow))
		for i, v := range expected.PerFlow {
			m[uint32(i)] = v
		}
	}
	r := SinkResult{Report: s.ck.Report(m), StampViolations: s.ViolationExamples(), NStampViolations: s.nbad.Load(),
		Recv: s.recv, Jumps: s.jumps, Gap: s.gapSum0, InFlight: s.gapSum3, MaxExcess: s.maxExcess,
		Other: s.other, Ports: s.stats, FromA: s.per[0].Load(), FromB: s.per[1].Load()}
	for f := range s.flows {
		r.GapTotal += s.gapSum0[f]
		r.InFlightTotal += s.gapSum3[f]
	}
	return r
}

// Point is one bucket of the timeline: probes received and their mean
// latency (send to the sink's kernel receive time).
type Point struct {
	At      time.Duration // from StartSink
	Packets uint64
	MeanLat time.Duration
}

// Timeline returns the sink's per-TimelineBucket throughput and latency
// from `from` to `to` (times since StartSink), after Close.
func (s *Sink) Timeline(from, to time.Duration) []Point {
	var out []Point
	for b := max(from/TimelineBucket, 0); b < to/TimelineBucket && int(b) < len(s.tlCount); b++ {
		p := Point{At: b * TimelineBucket, Packets: s.tlCount[b]}
		if p.Packets > 0 {
			p.MeanLat = time.Duration(s.tlLat[b] / p.Packets)
		}
		out = append(out, p)
	}
	return out
}

// Started is when the sink started (Timeline's zero).
func (s *Sink) Started() time.Time { return s.start }
