package afpacket

import "time"

// Constants fixed by the kernel ABI (linux/if_packet.h, net/packet/af_packet.c).
const (
	// blockDescBytes is BLK_HDR_LEN: the tpacket_block_desc opening each
	// RX block, aligned to 8. The first frame's offset is at least this.
	blockDescBytes = 48
	// frameHdrBytes is sizeof(struct tpacket3_hdr): the header in front of
	// every frame of a TPACKET_V3 block. A frame's tp_next_offset is at
	// least this.
	frameHdrBytes = 48
	// frameOverheadBytes bounds what a frame costs in a block beyond its
	// data: TPACKET_ALIGN(tpacket3_hdr + sockaddr_ll) in front of tp_mac,
	// plus alignment padding after it.
	frameOverheadBytes = 128
	// macPairBytes is the destination and source MAC addresses, after which
	// a VLAN tag sits (IEEE 802.1Q §9.3).
	macPairBytes = 12
	// vlanTPIDDefault is the TPID the kernel means when it strips a tag
	// without TP_STATUS_VLAN_TPID_VALID (802.1Q).
	vlanTPIDDefault = 0x8100
)

// Implementation choices. Zero Config fields take these.
const (
	// DefaultBlockBytes is an RX ring block, in bytes: 256 KiB holds about
	// 1600 minimum frames or 160 of 1514 bytes, so at the ~0.4 Mpps a veth
	// moves (ARCHITECTURE.md, Testing topology) a busy block fills in a few
	// milliseconds, and it holds any frame up to the largest MTU (64 KiB).
	DefaultBlockBytes = 256 << 10
	// DefaultBlocks is the RX ring's block count: 64 × 256 KiB = 16 MiB,
	// about 40 ms of 1514-byte frames at 0.4 Mpps before the kernel drops.
	DefaultBlocks = 64
	// DefaultBlockTimeout is how long the kernel keeps a partly filled block
	// before handing it over (tp_retire_blk_tov): the RX latency at low
	// rates. 1 ms is the kernel's granularity and its smallest value.
	DefaultBlockTimeout = time.Millisecond
	// DefaultSndBufBytes is the TX socket's send buffer, in bytes: room for
	// a few thousand frames queued in the kernel between bursts.
	DefaultSndBufBytes = 4 << 20

	// MaxBlockBytes bounds Config.BlockBytes.
	MaxBlockBytes = 64 << 20
	// MaxRingBytes bounds Config.Blocks × Config.BlockBytes.
	MaxRingBytes = 1 << 30
	// MinBlocks is the fewest RX blocks: with one, the kernel drops
	// everything while the port copies out of it.
	MinBlocks = 2

	// rxFrameBytes is tp_frame_size for the V3 ring. V3 packs frames of any
	// size into a block; the kernel only checks frame_size for alignment and
	// block_nr × (block_size / frame_size) == frame_nr.
	rxFrameBytes = 2048
	// txBatch is how many frames one sendmmsg carries, and the most TX
	// slots waiting to be freed (Port.pend).
	txBatch = 64
)
