// Package gen is tools/pktgen's engine: it builds probe-carrying UDP
// frames for a set of flows (or replays a capture) and sends them out of an
// AF_PACKET port at a rate kept by busy-waiting on CLOCK_MONOTONIC, since
// Go's timers wake about a millisecond late here.
package gen

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"time"

	"github.com/reinforce-nfv/reinforce/pkt"
	"github.com/reinforce-nfv/reinforce/pkt/probe"
	"github.com/reinforce-nfv/reinforce/port"
	"github.com/reinforce-nfv/reinforce/port/afpacket"
	"github.com/reinforce-nfv/reinforce/port/pcap"
	"github.com/reinforce-nfv/reinforce/shm"
	"golang.org/x/sys/unix"
)

// Options configure a run.
type Options struct {
	Iface string
	Flows Flows
	// Count is the number of packets to send (flows round-robin); 0 means
	// until Duration or the context ends.
	Count uint64
	// Duration bounds the run; 0 means no bound.
	Duration time.Duration
	// RatePPS paces sending, in packets per second; 0 sends as fast as the
	// port takes frames.
	RatePPS float64
	// Burst is the most frames handed to the port at once (1..shm.MaxBurst);
	// 0 means 32.
	Burst int
	// Pcap, when set, replays the capture's frames instead of flows, in
	// order, Loops times (0 = once).
	Pcap  string
	Loops int
	// Bucket bounds how far behind the clock a paced run may fall, in
	// frames: beyond it the lost time is forfeited (Report.Forfeited) and
	// the run ends later, so a descheduled generator never catches up in a
	// line-rate burst. 0 means no bound: the average rate is exact.
	Bucket int
	// MaxDelay is how long a paced frame may wait for a full burst to
	// fall due before a shorter burst goes; 0 sends every frame when due.
	MaxDelay time.Duration
	// Yield makes the pacing spin call sched_yield, so processes sharing
	// the CPU run between frames; the clock stays the timer.
	Yield bool
	// Afpacket tunes the port.
	Afpacket afpacket.Config
}

// Report is what a run sent.
type Report struct {
	Sent      uint64        `json:"sent"`
	PerFlow   []uint64      `json:"per_flow,omitempty"` // packets sent per flow ID
	Elapsed   time.Duration `json:"elapsed_ns"`
	PPS       float64       `json:"pps"`
	Forfeited uint64        `json:"forfeited"` // paced frames whose time passed while the generator was descheduled (Options.Bucket)
	Refused   uint64        `json:"refused"`   // times the kernel refused a frame; it was sent again
	Invalid   uint64        `json:"invalid"`   // frames the port dropped unsent (longer than the MTU allows)
	TxDrops   uint64        `json:"tx_drops"`
	Frames    uint64        `json:"pcap_frames,omitempty"`    // capture frames sent (pcap replay)
	Malformed uint64        `json:"pcap_malformed,omitempty"` // of them, frames pkt.Decode rejects
	// HashSum is the sum of the FNV-1a 64 hashes of the capture frames sent
	// (pcap replay), an order-free digest the sink's OtherHash matches.
	HashSum uint64 `json:"pcap_hash_sum,omitempty"`
}

// finalRetry is how long the end of a run keeps offering frames the
// kernel refused.
const finalRetry = time.Second

// MaxReplayFrame is the longest capture frame replayed: captures taken
// with offloads on hold frames up to the largest IP packet.
const MaxReplayFrame = 65535 + 14 + 8

// FrameHash is the per-frame digest pktgen and the sink sum.
func FrameHash(b []byte) uint64 {
	h := fnv.New64a()
	h.Write(b)
	return h.Sum64()
}

// Run sends until Count, Duration or ctx ends it.
func Run(ctx context.Context, o Options) (Report, error) {
	if o.Burst == 0 {
		o.Burst = 32
	}
	if o.Burst < 1 || o.Burst > shm.MaxBurst {
		return Report{}, fmt.Errorf("burst %d: want 1..%d", o.Burst, shm.MaxBurst)
	}
	if o.RatePPS < 0 {
		return Report{}, fmt.Errorf("rate %v: want >= 0", o.RatePPS)
	}
	var (
		frames [][]byte // pcap replay
		tmpl   [][]Template
		maxLen int
	)
	if o.Pcap != "" {
		var err error
		if frames, err = readCapture(o.Pcap); err != nil {
			return Report{}, err
		}
		if len(frames) == 0 {
			return Report{}, fmt.Errorf("%s: no frames", o.Pcap)
		}
		for _, f := range frames {
			maxLen = max(maxLen, len(f))
		}
	} else {
		if err := o.Flows.Validate(); err != nil {
			return Report{}, err
		}
		tmpl = make([][]Template, o.Flows.Count)
		for i := range tmpl {
			t, err := o.Flows.Templates(i)
			if err != nil {
				return Report{}, err
			}
			tmpl[i] = t
			for _, x := range t {
				maxLen = max(maxLen, len(x.Frame))
			}
		}
	}
	f, err := OpenIface(o.Iface, 8192, uint32(maxLen)+shm.HeadroomBytes, o.Afpacket)
	if err != nil {
		return Report{}, err
	}
	defer f.Close()

	rep := Report{}
	if tmpl != nil {
		rep.PerFlow = make([]uint64, len(tmpl))
	}
	total := o.Count
	if frames != nil {
		total = uint64(len(frames)) * uint64(max(o.Loops, 1))
	}
	var (
		slots   = make([]shm.Slot, o.Burst)
		pendBuf = make([]shm.Slot, 0, o.Burst)
		pending []shm.Slot // filled, refused by the kernel: sent again first
		r       = f.Region
		next    uint64 // packets generated so far
		t0      = port.Nanotime()
		end     = int64(-1)
		spins   int
		pc      = pacer{start: t0, bucket: uint64(max(o.Bucket, 0))}
	)
	if o.Duration > 0 {
		end = t0 + int64(o.Duration)
	}
	if o.RatePPS > 0 {
		pc.nsPer = 1e9 / o.RatePPS
	}
	done := ctx.Done()
	for {
		now := port.Nanotime()
		if end >= 0 && now >= end {
			break
		}
		if total != 0 && next >= total && len(pending) == 0 {
			break
		}
		if spins++; spins&1023 == 0 {
			select {
			case <-done:
				end = now
				continue
			default:
			}
		}
		f.Service()
		if len(pending) > 0 {
			n := f.Port.TxBurst(f.Cache, pending)
			rep.Refused += uint64(len(pending) - n)
			pending = pending[n:]
			if len(pending) > 0 {
				continue
			}
		}
		want := o.Burst
		if total != 0 {
			want = int(min(uint64(want), total-next))
		}
		if pc.nsPer > 0 {
			// Token bucket: frames fall due continuously; a burst sends
			// what is due, up to Burst, so a late loop catches up.
			due := pc.due(now, next)
			if due <= next {
				// Busy-wait (Go timers are too coarse), but give the CPU
				// to whatever else is runnable on it: on a small machine
				// the lab's other processes need it more than the spin.
				if o.Yield {
					unix.Syscall(unix.SYS_SCHED_YIELD, 0, 0, 0)
				}
				continue
			}
			want = int(min(uint64(want), due-next))
			// Batch: wait for a full burst unless the oldest due frame
			// has waited MaxDelay; one syscall per frame costs more CPU
			// than the lab has at these rates.
			if want < o.Burst && (total == 0 || next+uint64(want) < total) &&
				now-pc.at(next) < int64(o.MaxDelay) {
				if o.Yield {
					unix.Syscall(unix.SYS_SCHED_YIELD, 0, 0, 0)
				}
				continue
			}
		}
		if want == 0 {
			continue
		}
		k := f.Cache.Alloc(slots[:want])
		if k == 0 {
			continue
		}
		stamp := uint64(port.Nanotime())
		for j := range k {
			s := slots[j]
			buf := r.Buf(s)[shm.HeadroomBytes:]
			var n int
			if frames != nil {
				fr := frames[next%uint64(len(frames))]
				n = copy(buf, fr)
			} else {
				flow := next % uint64(len(tmpl))
				seq := next / uint64(len(tmpl))
				ts := tmpl[flow]
				t := &ts[seq%uint64(len(ts))]
				n = t.Put(buf, seq, stamp)
				rep.PerFlow[flow]++
			}
			m := r.Meta(s)
			m.Reset(uint32(n))
			next++
		}
		n := f.Port.TxBurst(f.Cache, slots[:k])
		if n < k {
			rep.Refused += uint64(k - n)
			pending = append(pendBuf[:0], slots[n:k]...)
		}
	}
	// Frames the kernel still refuses at the end get a last chance; those
	// it never takes are not counted as sent to their flows.
	for deadline := port.Nanotime() + int64(finalRetry); len(pending) > 0 && port.Nanotime() < deadline; {
		f.Service()
		n := f.Port.TxBurst(f.Cache, pending)
		rep.Refused += uint64(len(pending) - n)
		pending = pending[n:]
	}
	if len(pending) > 0 {
		var h pkt.Headers
		var pr probe.Record
		for _, s := range pending {
			fr := r.Packet(s)
			if off, ok := probe.Find(&h, fr); ok && pr.Get(fr[off:]) && int(pr.Flow) < len(rep.PerFlow) {
				rep.PerFlow[pr.Flow]--
			}
		}
		f.Cache.Free(pending)
	}
	rep.Elapsed = time.Duration(port.Nanotime() - t0)
	rep.Forfeited = pc.forfeited
	st := f.Port.Stats()
	d := f.Port.Detail()
	rep.Sent = st.TxPkts
	rep.TxDrops = st.TxDrops
	rep.Invalid = d.TxInvalid
	if rep.Elapsed > 0 {
		rep.PPS = float64(rep.Sent) / rep.Elapsed.Seconds()
	}
	if frames != nil {
		var h pkt.Headers
		for i := uint64(0); i < next; i++ {
			fr := frames[i%uint64(len(frames))]
			rep.Frames++
			rep.HashSum += FrameHash(fr)
			if h.Decode(fr) != nil {
				rep.Malformed++
			}
		}
	}
	return rep, nil
}

// readCapture loads every frame of a capture into memory (the lab's
// captures are small), so replay costs a copy per frame and no I/O.
func readCapture(path string) ([][]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	rd, err := pcap.NewReader(fh)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("%s: %w", path, err)
		}
		if len(rec.Data) > MaxReplayFrame {
			return nil, fmt.Errorf("%s: frame at offset %d is %d bytes, more than %d", path, rec.Offset, len(rec.Data), MaxReplayFrame)
		}
		out = append(out, append([]byte(nil), rec.Data...))
	}
}

// pacer is the generator's token bucket: frame k (from 0) falls due at
// start + k*nsPer on CLOCK_MONOTONIC.
type pacer struct {
	nsPer     float64 // ns between frames; 0 = unpaced
	start     int64   // when frame 0 fell due, moved on by forfeits
	bucket    uint64  // most frames due but unsent; 0 = no bound
	forfeited uint64
}

// due returns how many frames have fallen due by now, next having been
// sent. With a bucket, frames beyond it are forfeited: the clock moves on,
// so a generator that was descheduled resumes at the rate, not in a
// line-rate burst.
func (p *pacer) due(now int64, next uint64) uint64 {
	if now < p.start {
		return 0
	}
	due := uint64(float64(now-p.start)/p.nsPer) + 1
	if p.bucket > 0 && due > next+p.bucket {
		lost := due - next - p.bucket
		p.start += int64(float64(lost) * p.nsPer)
		p.forfeited += lost
		due -= lost
	}
	return due
}

// at is when frame k falls due.
func (p *pacer) at(k uint64) int64 { return p.start + int64(float64(k)*p.nsPer) }
