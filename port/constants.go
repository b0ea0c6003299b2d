package port

import (
	"github.com/reinforce-nfv/reinforce/pkt"
	"github.com/reinforce-nfv/reinforce/shm"
)

// Driver names, as the configuration spells them (ARCHITECTURE.md, Ports).
const (
	// DriverNull generates UDP frames on RX and discards TX (Null).
	DriverNull = "null"
	// DriverLoop returns TX frames on RX (Loop).
	DriverLoop = "loop"
	// DriverAFPacket is a Linux AF_PACKET socket (package port/afpacket, which a binary imports to register it).
	DriverAFPacket = "afpacket"
	// DriverPcap replays a capture file and writes one (package port/pcap, which a binary imports to register it).
	DriverPcap = "pcap"
	// DriverDPDK drives a NIC through DPDK under the dpdk build tag; not built yet.
	DriverDPDK = "dpdk"
)

// Constants fixed by ONVM or by standards.
const (
	// MinNullPktBytes is the smallest null frame: the Ethernet minimum without FCS.
	MinNullPktBytes = pkt.MinFrameBytes
	// MaxNullPktBytes is the largest null frame. ONVM: its jumbo frame size (9600).
	MaxNullPktBytes = 9600
	// DefaultNullPktBytes is the null frame size, in bytes: 64, as packet
	// generators (testpmd txonly, pktgen) count a minimum frame.
	DefaultNullPktBytes = 64
)

// Implementation choices.
const (
	// DefaultNullFlows is how many distinct 5-tuples a null port cycles through.
	DefaultNullFlows = 64
	// MaxNullFlows bounds NullOptions.Flows: flows differ in the low 24 bits
	// of the source address (10.0.0.0/8).
	MaxNullFlows = 1 << 24
	// MaxNullRatePPS bounds NullOptions.RatePPS: far above any port's rate,
	// and low enough that the pacing arithmetic stays exact for 57 years.
	MaxNullRatePPS = 10_000_000_000
	// NullRxQueueFrames is the RX descriptor ring a paced null port emulates:
	// packets that fall due while RX is not polled wait up to this many, and
	// the rest are counted in RxDrops (a NIC's "imissed"). 1024 is DPDK's
	// usual RX ring size.
	NullRxQueueFrames = 1024

	// DefaultLoopDepth is a loop port's ring depth in frames when Open
	// creates it (Desc has no depth).
	DefaultLoopDepth = 1024
	// MaxLoopDepth bounds NewLoop's depth, in frames.
	MaxLoopDepth = 8192
	// loopAvgFrameBytes sizes a loop port's byte arena per frame of depth:
	// a full ring of default-size slots fits; small frames pack densely.
	loopAvgFrameBytes = shm.DefaultDataBytes
	// loopMaxFrameBytes is the largest frame a slot can hold (headroom used
	// as data included); the arena holds at least two.
	loopMaxFrameBytes = shm.HeadroomBytes + shm.MaxDataBytes

	// txChunk is how many slots a TX burst handles per Free call: their
	// lengths are kept in a stack array, so a TX burst of any size needs no
	// allocation (see Null.TxBurst).
	txChunk = 64
)
