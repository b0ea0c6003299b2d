package main

import "time"

// Constants fixed by ONVM's speed_tester.c.
const (
	// tag names the NF in the manager's stats. ONVM: NF_TAG.
	tag = "speed_tester"
	// defaultPrintDelay is -p's default, in packets. ONVM: print_delay.
	defaultPrintDelay = 10000000
	// defaultCount is -c's default, in packets. ONVM: DEFAULT_PKT_NUM.
	defaultCount = 128
	// maxCount bounds -c, in packets. ONVM: MAX_PKT_NUM = NF_QUEUE_RINGSIZE.
	maxCount = 16384
	// latencyShare makes every count/latencyShare-th packet a latency probe
	// (all of them below latencyShare packets). ONVM: DEFAULT_LAT_PKT_NUM.
	latencyShare = 16
	// speedBit marks the packets this NF created (onvm_pkt_meta.flags). ONVM:
	// SPEED_TESTER_BIT.
	speedBit = 1 << 7
	// latencyBit marks the latency probes among them. ONVM: LATENCY_BIT.
	latencyBit = 1 << 6
	// etherType is the EtherType of created packets, IEEE's local
	// experimental 0x88B5. ONVM: LOCAL_EXPERIMENTAL_ETHER, stored without a
	// byte swap, so the wire carries 0xB5 0x88 on x86.
	etherType0, etherType1 = 0xB5, 0x88
	// stampBytes is the size of a probe's timestamp, appended after -s bytes.
	stampBytes = 8
)

// Implementation choices.
const (
	// minSize is the smallest -s: the Ethernet header setup writes. ONVM
	// accepts less and writes the header past the packet's end.
	minSize = 14
	// allocPatience is how long setup waits without progress for the pool
	// to refill the NF's cache before it stops creating packets (ONVM:
	// "Failed to allocate packets").
	allocPatience = time.Second
	// allocRetry is setup's pause between allocation attempts.
	allocRetry = 50 * time.Microsecond
)

// fakeSrcMAC is the source MAC of created packets: ONVM uses port 0's MAC,
// or this one when port 0 is not valid; the NF library does not tell NFs the
// ports' MACs, so it is always this one.
var fakeSrcMAC = [6]byte{0x02, 0, 0, 0, 0, 0}
