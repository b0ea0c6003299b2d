package main

import "github.com/reinforce-nfv/reinforce/shm"

// frame describes the packets setup creates (ONVM: nf_setup without pcap).
type frame struct {
	size     int     // -s: bytes per packet before any timestamp
	src, dst [6]byte // Ethernet addresses
	count    uint32  // -c: how many packets setup creates
	latency  bool    // -l: some packets are latency probes
}

// isProbe reports whether packet i of f.count carries a timestamp: every
// count/16-th packet, or every packet when there are fewer than 16 (ONVM's
// rule, which marks 17 or more when count is not a multiple of 16).
func (f *frame) isProbe(i uint32) bool {
	return f.latency && (f.count < latencyShare || i%(f.count/latencyShare) == 0)
}

// length is packet i's length: -s bytes, plus the timestamp on a probe.
func (f *frame) length(i uint32) int {
	if f.isProbe(i) {
		return f.size + stampBytes
	}
	return f.size
}

// build writes packet i into data, the slot's room from the packet's first
// byte, and describes it in m, a freshly reset Meta: the Ethernet header
// (dst, src, EtherType 0x88B5 unswapped), zeros up to -s bytes, a zero
// timestamp on a probe (the first return only stamps it), the speed tester
// bit, and flow hash i so that the packets spread over the destination's
// instances (ONVM: hash.rss = i). It returns false, writing nothing, when
// the packet does not fit in data. It does not set the action: the NF's
// Inject does.
func (f *frame) build(data []byte, m *shm.Meta, i uint32) bool {
	n := f.length(i)
	if f.size < minSize || n > len(data) {
		return false
	}
	d := data[:n]
	copy(d[0:6], f.dst[:])
	copy(d[6:12], f.src[:])
	d[12], d[13] = etherType0, etherType1
	clear(d[minSize:])
	m.Flags = speedBit
	if f.isProbe(i) {
		m.Flags |= latencyBit
	}
	m.FlowHash = i
	m.MetaFlags |= shm.FlagHasHash
	m.Port = 0
	m.Len = uint32(n)
	return true
}
