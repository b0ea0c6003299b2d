package replicator

// Fixed by the wire format (docs/replication.md, "Frames").
const (
	frameMagic   = 0x5250 // "RP"
	frameVersion = 1
	headerLen    = 24 // bytes: magic, version, type, flags, reserved, epoch, txid
	dataBodyLen  = 16 // bytes: chunk, chunks, txlen, txcrc
	trailerLen   = 4  // bytes: CRC32C
)

// Implementation choices.
const (
	// MaxChunkPayload is the transaction bytes one data frame carries: with
	// the frame's 44 bytes, the transport's 40 and UDP/IPv4's 28 a chunk
	// fits a 1500-byte MTU with room for a VLAN tag or a tunnel header.
	MaxChunkPayload = 1280 // bytes
	// MaxFrameLen bounds every replication frame.
	MaxFrameLen = headerLen + dataBodyLen + MaxChunkPayload + trailerLen // bytes
)

// maxBackoffShift caps the retransmission backoff at 2^4 = 16 times
// RetransmitTicks (32 ms with the Node's 2 ms).
const maxBackoffShift = 4

// DefaultConfig returns the defaults: three transactions in flight
// (RESILIENCY.md, "Rounds"), 1 MiB per transaction, 8 MiB queued on the
// primary, 64 MiB per snapshot, retransmission after 5 ticks without
// progress and a join request every 20 ticks.
func DefaultConfig() Config {
	return Config{
		Role:             RoleStandby,
		Epoch:            1,
		Window:           3,
		MaxTxBytes:       1 << 20,
		MaxQueueBytes:    8 << 20,
		MaxSnapshotBytes: 64 << 20,
		RetransmitTicks:  5,
		JoinTicks:        20,
	}
}
