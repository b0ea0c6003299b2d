package port

// The null port's RX path, in order (RX goroutine only):
//
//	pacing: credit from the monotonic clock → how many frames are due
//	→ Alloc that many slots → copy the template frame into each
//	→ patch the flow fields (source address and port) and both checksums
//	  incrementally (RFC 1624) → fill Meta
//
// TX (TX goroutine only) counts and frees. The two paths share nothing but
// the atomic counters and the closed flag.

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"sync/atomic"

	"github.com/reinforce-nfv/reinforce/pkt"
	"github.com/reinforce-nfv/reinforce/shm"
)

// NullOptions configures a null port. Zero fields take the defaults.
type NullOptions struct {
	// PktBytes is the frame size in bytes (Meta.Len), MinNullPktBytes..MaxNullPktBytes;
	// 0 means DefaultNullPktBytes.
	PktBytes int
	// RatePPS paces RX in packets per second, up to MaxNullRatePPS; 0
	// delivers a full burst on every call. Frames fall due continuously;
	// up to NullRxQueueFrames of them wait for a poll, the rest are RxDrops.
	RatePPS uint64
	// Flows is how many distinct 5-tuples RX cycles through, round-robin,
	// 1..MaxNullFlows; 0 means DefaultNullFlows. Flow i differs from flow 0
	// in source address (+i) and UDP source port (+i, wrapping in 1024..65535).
	Flows int
	// Seed shifts the base source address and port, so two generators built
	// with different seeds emit disjoint flows. The same seed always gives
	// the same frames.
	Seed uint64
}

// Null is a port with no wire: RX generates UDP/IPv4 frames, TX counts and
// frees what it is given. It is the benchmark's traffic source and sink
// (ARCHITECTURE.md, Ports). RxBurst is for one goroutine and TxBurst for
// one (possibly another); ID, Name, Stats and Close are safe from any.
type Null struct {
	id    uint16
	name  string
	o     NullOptions
	stats Counters

	// The template frame and its flow fields, written once by NewNull.
	tmpl              []byte
	tmplIP            uint32 // source address of flow 0
	tmplPort          uint16 // source port of flow 0
	tmplIPSum, tmplL4 uint16 // flow 0's IPv4 and UDP checksums

	// RX goroutine only.
	flow    int    // next flow index
	curIP   uint32 // its source address
	curPort uint16 // its source port
	start   int64  // pacing epoch (Nanotime at the first RxBurst); 0 before it
	emitted uint64 // frames delivered or dropped since start: the credit spent

	closed atomic.Bool
}

// Null's generated addresses: sources in 10.0.0.0/8 (one per flow),
// destination and MACs fixed, destination port 9 (discard, RFC 863). The
// destination is in 198.18.0.0/15, reserved for benchmarks (RFC 2544).
var (
	nullSrcMAC = pkt.MAC{0x02, 0x4E, 0x55, 0x4C, 0x4C, 0x00} // locally administered; last byte = port ID
	nullDstMAC = pkt.MAC{0x02, 0x4E, 0x55, 0x4C, 0x4C, 0xFF}
	nullDstIP  = [4]byte{198, 18, 0, 1}
)

const (
	nullSrcNet   = 10 << 24
	nullDstPort  = 9
	nullPortBase = 1024
	nullPorts    = 65536 - nullPortBase
)

// NewNull returns a null port with ID id. It builds the template frame
// once; RX then only copies and patches it. Safe for concurrent use.
func NewNull(id uint16, o NullOptions) (*Null, error) {
	if o.PktBytes == 0 {
		o.PktBytes = DefaultNullPktBytes
	}
	if o.PktBytes < MinNullPktBytes || o.PktBytes > MaxNullPktBytes {
		return nil, fmt.Errorf("null port %d: frame size %d outside %d..%d", id, o.PktBytes, MinNullPktBytes, MaxNullPktBytes)
	}
	if o.Flows == 0 {
		o.Flows = DefaultNullFlows
	}
	if o.Flows < 0 || o.Flows > MaxNullFlows {
		return nil, fmt.Errorf("null port %d: flows %d outside 1..%d", id, o.Flows, MaxNullFlows)
	}
	if o.RatePPS > MaxNullRatePPS {
		return nil, fmt.Errorf("null port %d: rate %d pps above %d", id, o.RatePPS, uint64(MaxNullRatePPS))
	}
	n := &Null{id: id, name: portName(DriverNull, id), o: o, tmpl: make([]byte, o.PktBytes)}
	n.tmplIP = nullSrcNet | uint32(o.Seed)&0xFFFFFF
	n.tmplPort = nullPortBase + uint16((o.Seed>>24)%nullPorts)
	src := nullSrcMAC
	src[5] = byte(id)
	var srcIP [4]byte
	binary.BigEndian.PutUint32(srcIP[:], n.tmplIP)
	if _, err := pkt.BuildUDP4(n.tmpl, src, nullDstMAC, srcIP, nullDstIP, n.tmplPort, nullDstPort,
		o.PktBytes-pkt.OffL4-pkt.UDPHeaderBytes); err != nil {
		return nil, fmt.Errorf("null port %d: build template: %w", id, err)
	}
	n.tmplIPSum = binary.BigEndian.Uint16(n.tmpl[pkt.OffIPv4Checksum:])
	n.tmplL4 = binary.BigEndian.Uint16(n.tmpl[pkt.OffUDPChecksum:])
	n.curIP, n.curPort = n.tmplIP, n.tmplPort
	return n, nil
}

// ID is the port number. Safe from any goroutine.
func (n *Null) ID() uint16 { return n.id }

// Name is "null" and the ID. Safe from any goroutine.
func (n *Null) Name() string { return n.name }

// Stats returns the counters. Safe from any goroutine.
func (n *Null) Stats() Stats { return n.stats.Snapshot() }

// Close stops the port: RxBurst and TxBurst return 0 afterwards. Idempotent,
// safe from any goroutine.
func (n *Null) Close() error {
	n.closed.Store(true)
	return nil
}

// due returns how many frames the pacing credit allows now, counting as
// RxDrops what overflowed the emulated RX queue while nobody polled.
func (n *Null) due(now int64, want int) int {
	if n.o.RatePPS == 0 {
		return want
	}
	if n.start == 0 {
		n.start = now
	}
	// allowed = elapsed·rate/1e9 in 128 bits: elapsed·rate overflows 64
	// bits after 18 s at 1 Gpps. Div64 needs hi < 1e9, which MaxNullRatePPS
	// keeps true for 57 years.
	hi, lo := bits.Mul64(uint64(now-n.start), n.o.RatePPS)
	if hi >= 1e9 {
		return 0
	}
	allowed, _ := bits.Div64(hi, lo, 1e9)
	backlog := allowed - n.emitted
	if backlog > NullRxQueueFrames {
		lost := backlog - NullRxQueueFrames
		n.stats.RxDrops.Add(lost)
		n.emitted += lost
		backlog = NullRxQueueFrames
	}
	return int(min(backlog, uint64(want)))
}

// RxBurst generates the frames that are due (all of len(out) when
// unpaced) into slots allocated from c and returns how many it wrote to
// out; the caller owns them. It returns 0, without blocking, when nothing
// is due, the cache is empty (the frames stay due) or the port is closed.
// For one goroutine only.
func (n *Null) RxBurst(c *shm.Cache, out []shm.Slot) int {
	if n.closed.Load() {
		return 0
	}
	now := Nanotime()
	want := n.due(now, len(out))
	if want == 0 {
		return 0
	}
	r := c.Region()
	size := len(n.tmpl)
	if int(r.DataBytes()) < size {
		// The region's slots cannot hold our frames: a configuration error
		// the counters show (the frames are lost, as on a NIC with no buffers).
		n.stats.RxDrops.Add(uint64(want))
		n.emitted += uint64(want)
		return 0
	}
	k := c.Alloc(out[:want])
	n.fill(r, out[:k], now)
	n.emitted += uint64(k)
	n.stats.RxPkts.Add(uint64(k))
	n.stats.RxBytes.Add(uint64(k) * uint64(size))
	return k
}

// fill writes the next len(s) frames of the flow rotation into s, which
// the RX goroutine holds, and stamps their metadata with now.
func (n *Null) fill(r *shm.Region, s []shm.Slot, now int64) {
	size := len(n.tmpl)
	flow, ip, port := n.flow, n.curIP, n.curPort
	for _, sl := range s {
		b := r.Buf(sl)[shm.HeadroomBytes:]
		copy(b[:size], n.tmpl)
		binary.BigEndian.PutUint32(b[pkt.OffIPv4Src:], ip)
		binary.BigEndian.PutUint16(b[pkt.OffSrcPort:], port)
		binary.BigEndian.PutUint16(b[pkt.OffIPv4Checksum:], pkt.ChecksumUpdate32(n.tmplIPSum, n.tmplIP, ip))
		l4 := pkt.ChecksumUpdate16(pkt.ChecksumUpdate32(n.tmplL4, n.tmplIP, ip), n.tmplPort, port)
		if l4 == 0 {
			l4 = 0xFFFF // RFC 768: 0 means "no checksum"
		}
		binary.BigEndian.PutUint16(b[pkt.OffUDPChecksum:], l4)
		m := r.Meta(sl)
		m.DataOff, m.Len, m.Port, m.Timestamp = shm.HeadroomBytes, uint32(size), n.id, now

		flow++
		ip = nullSrcNet | (ip+1)&0xFFFFFF
		port++
		if port == 0 {
			port = nullPortBase
		}
		if flow == n.o.Flows {
			flow, ip, port = 0, n.tmplIP, n.tmplPort
		}
	}
	n.flow, n.curIP, n.curPort = flow, ip, port
}

// TxBurst counts the frames of s as sent, frees their slots with c and
// returns how many it consumed: all of s unless c's drain ring is full
// (the pool's service loop is behind), in which case the caller keeps
// s[n:] and they count as TxDrops. Returns 0 once closed. For one goroutine
// only.
func (n *Null) TxBurst(c *shm.Cache, s []shm.Slot) int {
	if n.closed.Load() {
		return 0
	}
	return txCountFree(c, s, &n.stats)
}

// txCountFree counts s's bytes and frees s with c in chunks, stopping at
// the first chunk Free does not take whole. Lengths are read before the
// slots are freed: a freed slot may be reallocated at once by another
// goroutine, so reading it afterwards would be a use after free.
func txCountFree(c *shm.Cache, s []shm.Slot, st *Counters) int {
	r := c.Region()
	var lens [txChunk]uint32
	done, bytes := 0, uint64(0)
	for done < len(s) {
		chunk := s[done:min(len(s), done+txChunk)]
		for i, sl := range chunk {
			lens[i] = uint32(len(r.Packet(sl)))
		}
		k := c.Free(chunk)
		for _, l := range lens[:k] {
			bytes += uint64(l)
		}
		done += k
		if k < len(chunk) {
			break
		}
	}
	st.TxPkts.Add(uint64(done))
	st.TxBytes.Add(bytes)
	if done < len(s) {
		st.TxDrops.Add(uint64(len(s) - done))
	}
	return done
}

var _ Port = (*Null)(nil)
