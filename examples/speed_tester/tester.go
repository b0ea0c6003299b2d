package main

import (
	"encoding/binary"
	"io"
	"time"

	"github.com/reinforce-nfv/reinforce/examples/internal/pktprint"
	"github.com/reinforce-nfv/reinforce/nflib"
	"github.com/reinforce-nfv/reinforce/shm"
)

// tester is the NF's packet-path state (ONVM: packet_handler and
// do_stats_display with their statics). It is used by the burst loop
// goroutine only, and nothing in it allocates.
type tester struct {
	act     nflib.Action // ToNF(-d)
	size    int          // -s: a probe's timestamp sits at this offset
	latency bool         // -l
	every   uint64       // -p: packets between displays; 0 never displays
	created uint32       // packets setup created, for the display
	now     func() uint64
	out     io.Writer
	buf     []byte // the display, reused

	total     uint64 // packets handled
	lastTotal uint64 // total at the last display
	lastNs    uint64 // now() at the last display (or at creation)
	latSum    uint64 // ns of round trips measured since the last display
	latN      uint64 // round trips in latSum
}

// monoEpoch anchors monoNanos.
var monoEpoch = time.Now()

// monoNanos is a monotonic clock in ns, never 0 (0 marks a probe that was
// never stamped). ONVM stamps TSC cycles; only this process reads the stamps.
func monoNanos() uint64 { return uint64(time.Since(monoEpoch)) + 1 }

func newTester(cfg config, created uint32, out io.Writer, now func() uint64) *tester {
	return &tester{act: nflib.ToNF(cfg.dst), size: cfg.size, latency: cfg.latency, every: cfg.printDelay,
		created: created, now: now, out: out, buf: make([]byte, 0, 256), lastNs: now()}
}

// handle is the packet handler.
func (t *tester) handle(p nflib.Packet) nflib.Action {
	return t.process(p.Meta(), p.Data())
}

// process handles one packet: the display every -p packets, then the
// packets this NF created (speedBit) go around again to -d, with a probe's
// round trip measured and its stamp renewed, and every other packet is
// dropped.
func (t *tester) process(m *shm.Meta, data []byte) nflib.Action {
	t.total++
	if t.total-t.lastTotal == t.every {
		t.display()
	}
	if m.Flags&speedBit == 0 {
		return nflib.Drop
	}
	if t.latency && m.Flags&latencyBit != 0 && len(data) >= t.size+stampBytes {
		stamp := data[t.size : t.size+stampBytes]
		now := t.now()
		// Native order, as ONVM's *(uint64_t *) store; only we read it. A
		// stamp from the future is another NF's scribble: not a sample.
		if old := binary.NativeEndian.Uint64(stamp); old != 0 && old <= now {
			t.latSum += now - old
			t.latN++
		}
		binary.NativeEndian.PutUint64(stamp, now)
	}
	return t.act
}

// display prints ONVM's speed tester block and starts a new interval.
// Where ONVM differs: it displays every -p+1 packets and adds -p to its
// total each time; here the display comes every -p packets and the total is
// the packets handled, which is then the same number.
func (t *tester) display() {
	now := t.now()
	var pps uint64
	if now > t.lastNs {
		pps = uint64(float64(t.total-t.lastTotal) * 1e9 / float64(now-t.lastNs))
	}
	b := append(t.buf[:0], pktprint.ClearScreen...)
	b = append(b, "Total packets: "...)
	b = pktprint.AppendPadded(b, t.total, 9)
	b = append(b, " \nTX pkts per second: "...)
	b = pktprint.AppendPadded(b, pps, 9)
	b = append(b, " \n"...)
	if t.latency && t.latN > 0 {
		b = append(b, "Avg latency nanoseconds: "...)
		b = pktprint.AppendPadded(b, t.latSum/t.latN, 6)
		b = append(b, " \n"...)
	}
	b = append(b, "Initial packets created: "...)
	b = pktprint.AppendPadded(b, uint64(t.created), 0)
	b = append(b, "\n\n\n"...)
	t.buf = b
	t.out.Write(b)
	t.latSum, t.latN = 0, 0
	t.lastTotal, t.lastNs = t.total, now
}
