package replicator

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Wire format of replication frames (docs/replication.md, "Frames"). Every
// integer is big-endian. A frame is
//
//	header  (24 B): magic u16 | version u8 | type u8 | flags u16 | reserved u16 | epoch u64 | txid u64
//	body    (type-specific, below)
//	trailer (4 B):  CRC32C of every byte before it
//
// Data body (16 B + payload): chunk u32 | chunks u32 | txlen u32 | txcrc u32 | payload
// Ack body: none (txid is the cumulative applied ID).
// Join body (32 B): the layout digest.
// JoinAccept body (8 B): the join ID it answers (txid is the snapshot cut).
// JoinReject body (1 B): reason.
//
// The CRC only catches corruption; authenticity comes from the transport,
// which wraps every datagram in an HMAC (transport.go).

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// FrameType says what a frame carries.
type FrameType uint8

// Frame types.
const (
	FrameData       FrameType = 1 // one chunk of a transaction or snapshot (primary → standby)
	FrameAck        FrameType = 2 // cumulative acknowledgement (standby → primary)
	FrameJoin       FrameType = 3 // a standby asks for a snapshot (standby → primary)
	FrameJoinAccept FrameType = 4 // the layouts match; a snapshot follows (primary → standby)
	FrameJoinReject FrameType = 5 // the layouts differ (primary → standby)
)

func (t FrameType) String() string {
	switch t {
	case FrameData:
		return "data"
	case FrameAck:
		return "ack"
	case FrameJoin:
		return "join"
	case FrameJoinAccept:
		return "join-accept"
	case FrameJoinReject:
		return "join-reject"
	}
	return fmt.Sprintf("FrameType(%d)", uint8(t))
}

// Frame flags.
const (
	// FlagSnapshot marks the chunks of a snapshot: the transaction replaces
	// the standby's whole state instead of patching it.
	FlagSnapshot uint16 = 1 << 0
)

// Frame is a decoded replication frame. Payload aliases the buffer it was
// decoded from.
type Frame struct {
	Type  FrameType
	Flags uint16
	Epoch Epoch
	TxID  TxID
	// Data frames only.
	Chunk, Chunks uint32
	TxLen         uint32 // whole transaction's payload length in bytes
	TxCRC         uint32 // CRC32C of the whole transaction's payload
	Payload       []byte
	// Join frames only.
	Digest Digest
	// JoinAccept frames only: the join request's ID (a Join carries its own
	// in TxID).
	JoinID uint64
	// JoinReject frames only.
	Reason RejectReason
}

// RejectReason says why a primary refused a join.
type RejectReason uint8

// Reject reasons.
const (
	RejectLayout RejectReason = 1 // the layout digests differ
)

// FrameError reports a frame that cannot be decoded.
type FrameError struct {
	Len    int
	Reason string
}

func (e *FrameError) Error() string {
	return fmt.Sprintf("replication frame (%d bytes): %s", e.Len, e.Reason)
}

func (e *FrameError) Is(target error) bool { return target == ErrMalformed }

// Size returns the encoded size of f in bytes.
func (f *Frame) Size() int {
	n := headerLen + trailerLen
	switch f.Type {
	case FrameData:
		n += dataBodyLen + len(f.Payload)
	case FrameJoin:
		n += len(Digest{})
	case FrameJoinAccept:
		n += 8
	case FrameJoinReject:
		n++
	}
	return n
}

// AppendFrame appends f's encoding to b and returns the extended slice.
func AppendFrame(b []byte, f *Frame) []byte {
	start := len(b)
	b = binary.BigEndian.AppendUint16(b, frameMagic)
	b = append(b, frameVersion, byte(f.Type))
	b = binary.BigEndian.AppendUint16(b, f.Flags)
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint64(b, uint64(f.Epoch))
	b = binary.BigEndian.AppendUint64(b, uint64(f.TxID))
	switch f.Type {
	case FrameData:
		b = binary.BigEndian.AppendUint32(b, f.Chunk)
		b = binary.BigEndian.AppendUint32(b, f.Chunks)
		b = binary.BigEndian.AppendUint32(b, f.TxLen)
		b = binary.BigEndian.AppendUint32(b, f.TxCRC)
		b = append(b, f.Payload...)
	case FrameJoin:
		b = append(b, f.Digest[:]...)
	case FrameJoinAccept:
		b = binary.BigEndian.AppendUint64(b, f.JoinID)
	case FrameJoinReject:
		b = append(b, byte(f.Reason))
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
}

// DecodeFrame parses b into f. It returns a *FrameError (errors.Is
// ErrMalformed) for a frame that is short, of another protocol or version,
// inconsistent, or whose CRC does not match (errors.Is ErrCorrupt too).
// f.Payload aliases b. DecodeFrame never panics and does not allocate.
func DecodeFrame(b []byte, f *Frame) error {
	if len(b) < headerLen+trailerLen {
		return &FrameError{len(b), "shorter than a header"}
	}
	if binary.BigEndian.Uint16(b) != frameMagic {
		return &FrameError{len(b), "bad magic"}
	}
	if b[2] != frameVersion {
		return &FrameError{len(b), fmt.Sprintf("version %d, want %d", b[2], frameVersion)}
	}
	body := b[headerLen : len(b)-trailerLen]
	if got, want := crc32.Checksum(b[:len(b)-trailerLen], castagnoli), binary.BigEndian.Uint32(b[len(b)-trailerLen:]); got != want {
		return &CorruptError{What: "frame", Got: got, Want: want}
	}
	*f = Frame{
		Type:  FrameType(b[3]),
		Flags: binary.BigEndian.Uint16(b[4:]),
		Epoch: Epoch(binary.BigEndian.Uint64(b[8:])),
		TxID:  TxID(binary.BigEndian.Uint64(b[16:])),
	}
	switch f.Type {
	case FrameData:
		if len(body) < dataBodyLen {
			return &FrameError{len(b), "data frame shorter than its header"}
		}
		f.Chunk = binary.BigEndian.Uint32(body)
		f.Chunks = binary.BigEndian.Uint32(body[4:])
		f.TxLen = binary.BigEndian.Uint32(body[8:])
		f.TxCRC = binary.BigEndian.Uint32(body[12:])
		f.Payload = body[dataBodyLen:]
		switch {
		case f.Chunks == 0 || f.Chunk >= f.Chunks:
			return &FrameError{len(b), fmt.Sprintf("chunk %d of %d", f.Chunk, f.Chunks)}
		case f.TxID == 0:
			return &FrameError{len(b), "transaction ID 0"}
		case uint64(f.TxLen) > uint64(f.Chunks)*MaxChunkPayload:
			return &FrameError{len(b), fmt.Sprintf("%d bytes in %d chunks", f.TxLen, f.Chunks)}
		case len(f.Payload) > MaxChunkPayload:
			return &FrameError{len(b), fmt.Sprintf("chunk payload of %d bytes", len(f.Payload))}
		}
	case FrameAck:
		if len(body) != 0 {
			return &FrameError{len(b), "ack frame with a body"}
		}
	case FrameJoinAccept:
		if len(body) != 8 {
			return &FrameError{len(b), fmt.Sprintf("join-accept body of %d bytes", len(body))}
		}
		f.JoinID = binary.BigEndian.Uint64(body)
	case FrameJoin:
		if len(body) != len(f.Digest) {
			return &FrameError{len(b), fmt.Sprintf("join body of %d bytes", len(body))}
		}
		copy(f.Digest[:], body)
	case FrameJoinReject:
		if len(body) != 1 {
			return &FrameError{len(b), fmt.Sprintf("join-reject body of %d bytes", len(body))}
		}
		f.Reason = RejectReason(body[0])
	default:
		return &FrameError{len(b), fmt.Sprintf("unknown type %d", b[3])}
	}
	return nil
}

// chunkRange returns the byte range of chunk i of a transaction of txLen
// bytes: every chunk but the last holds MaxChunkPayload bytes.
func chunkRange(i uint32, txLen uint32) (lo, hi uint32) {
	lo = i * MaxChunkPayload
	hi = min(lo+MaxChunkPayload, txLen)
	return lo, hi
}

// chunkCount returns how many chunks carry txLen bytes (at least one, so an
// empty transaction still travels).
func chunkCount(txLen int) uint32 {
	return uint32(max(1, (txLen+MaxChunkPayload-1)/MaxChunkPayload))
}
