package gen

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"

	"github.com/reinforce-nfv/reinforce/pkt"
	"github.com/reinforce-nfv/reinforce/pkt/probe"
)

// Flows describes the generated flows: flow i (0-based) has source address
// SrcIP+i and source port SrcPort+i (wrapping within 1024..65535); every
// other field is the same for all flows.
type Flows struct {
	Count            int // number of flows, 1..MaxFlows
	SrcMAC, DstMAC   pkt.MAC
	SrcIP, DstIP     netip.Addr // both IPv4 or both IPv6
	SrcPort, DstPort uint16
	VLAN             int   // 802.1Q VLAN ID 1..4094; 0 for untagged
	Sizes            []int // frame sizes in bytes (no FCS), cycled per flow packet; nil = {MinFrame}
}

// MaxFlows bounds Flows.Count: flow IDs are 32-bit, templates cost memory.
const MaxFlows = 1 << 16

// MaxFrame is the largest frame built, in bytes: a 9000-byte MTU plus
// Ethernet and a VLAN tag.
const MaxFrame = 9018

// MinFrame is the smallest frame that holds the probe for the flows' IP
// version and tagging.
func (f Flows) MinFrame() int {
	n := pkt.EthHeaderBytes + 8 + probe.Bytes + 20
	if f.SrcIP.Is6() {
		n += 20
	}
	if f.VLAN != 0 {
		n += 4
	}
	if n < pkt.MinFrameBytes {
		n = pkt.MinFrameBytes
	}
	return n
}

// Validate checks the flows.
func (f Flows) Validate() error {
	var errs []error
	if f.Count < 1 || f.Count > MaxFlows {
		errs = append(errs, fmt.Errorf("flows %d: want 1..%d", f.Count, MaxFlows))
	}
	if !f.SrcIP.IsValid() || !f.DstIP.IsValid() || f.SrcIP.Is4() != f.DstIP.Is4() {
		errs = append(errs, fmt.Errorf("addresses %v, %v: want two IPv4 or two IPv6 addresses", f.SrcIP, f.DstIP))
	}
	if f.VLAN < 0 || f.VLAN > 4094 {
		errs = append(errs, fmt.Errorf("vlan %d: want 0 (none) or 1..4094", f.VLAN))
	}
	for _, s := range f.Sizes {
		if s < f.MinFrame() || s > MaxFrame {
			errs = append(errs, fmt.Errorf("size %d: want %d..%d bytes for these headers", s, f.MinFrame(), MaxFrame))
		}
	}
	return errors.Join(errs...)
}

// Template is a flow's frame of one size with sequence number and send
// time 0 and valid checksums; Put copies it and sets those fields.
type Template struct {
	Frame []byte
	probe int // offset of the probe record
	csum  int // offset of the UDP checksum
}

// Templates builds flow i's template of every size, in Sizes order.
func (f Flows) Templates(i int) ([]Template, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if i < 0 || i >= f.Count {
		return nil, fmt.Errorf("flow %d: want 0..%d", i, f.Count-1)
	}
	sizes := f.Sizes
	if len(sizes) == 0 {
		sizes = []int{f.MinFrame()}
	}
	out := make([]Template, len(sizes))
	for k, n := range sizes {
		t, err := f.build(i, n)
		if err != nil {
			return nil, err
		}
		out[k] = t
	}
	return out, nil
}

// build writes flow i's frame of n bytes.
func (f Flows) build(i, n int) (Template, error) {
	if n < f.MinFrame() || n > MaxFrame {
		return Template{}, fmt.Errorf("size %d: want %d..%d", n, f.MinFrame(), MaxFrame)
	}
	b := make([]byte, n)
	copy(b[0:6], f.DstMAC[:])
	copy(b[6:12], f.SrcMAC[:])
	o := 12
	if f.VLAN != 0 {
		binary.BigEndian.PutUint16(b[o:], 0x8100)
		binary.BigEndian.PutUint16(b[o+2:], uint16(f.VLAN))
		o += 4
	}
	l3 := o + 2
	sport := uint16(1024 + (int(f.SrcPort)-1024+i)%(65536-1024))
	if f.SrcPort < 1024 {
		sport = uint16((int(f.SrcPort) + i) % 65536)
	}
	var l4 int
	if f.SrcIP.Is4() {
		binary.BigEndian.PutUint16(b[o:], 0x0800)
		ip := b[l3:]
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(n-l3))
		ip[6] = 0x40 // DF
		ip[8] = 64
		ip[9] = pkt.ProtoUDP
		src := f.SrcIP.As4()
		v := binary.BigEndian.Uint32(src[:]) + uint32(i)
		binary.BigEndian.PutUint32(ip[12:], v)
		dst := f.DstIP.As4()
		copy(ip[16:20], dst[:])
		l4 = l3 + 20
	} else {
		binary.BigEndian.PutUint16(b[o:], 0x86DD)
		ip := b[l3:]
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(n-l3-40))
		ip[6] = pkt.ProtoUDP
		ip[7] = 64
		src := f.SrcIP.As16()
		hi, lo := binary.BigEndian.Uint64(src[:8]), binary.BigEndian.Uint64(src[8:])
		lo2, carry := bits.Add64(lo, uint64(i), 0)
		binary.BigEndian.PutUint64(ip[8:], hi+carry)
		binary.BigEndian.PutUint64(ip[16:], lo2)
		dst := f.DstIP.As16()
		copy(ip[24:40], dst[:])
		l4 = l3 + 40
	}
	binary.BigEndian.PutUint16(b[l4:], sport)
	binary.BigEndian.PutUint16(b[l4+2:], f.DstPort)
	binary.BigEndian.PutUint16(b[l4+4:], uint16(n-l4))
	rec := probe.Record{Flow: uint32(i)}
	rec.Put(b[l4+8:])
	var h pkt.Headers
	if err := h.Decode(b); err != nil {
		return Template{}, fmt.Errorf("built frame does not decode: %w", err)
	}
	if h.IPVersion == 4 && !h.SetIPv4Checksum(b) {
		return Template{}, errors.New("built frame: no IPv4 checksum")
	}
	if !h.SetL4Checksum(b) {
		return Template{}, errors.New("built frame: no UDP checksum")
	}
	return Template{Frame: b, probe: l4 + 8, csum: l4 + 6}, nil
}

// Put copies the template into dst (len(dst) >= len(t.Frame)) with
// sequence number seq and send time sent, keeping the UDP checksum valid,
// and returns the frame's length. It does not allocate.
func (t *Template) Put(dst []byte, seq, sent uint64) int {
	n := copy(dst, t.Frame)
	at := t.probe + 8 // seq, then send time (probe layout)
	probe.SetUint32(dst, at, t.csum, uint32(seq>>32))
	probe.SetUint32(dst, at+4, t.csum, uint32(seq))
	probe.SetUint32(dst, at+8, t.csum, uint32(sent>>32))
	probe.SetUint32(dst, at+12, t.csum, uint32(sent))
	return n
}
