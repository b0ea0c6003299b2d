package arbiter

// Wire format (docs/arbiter.md, "Wire format"). One UDP socket per process
// carries two kinds of datagram, told apart by their first byte:
//
//	0xA1 message: the 84-byte authenticated message below
//	0xB1 bfd:     kind, sender MemberID (u32), a BFD control packet
//	              authenticated by BFD itself (Meticulous Keyed SHA1, RFC 5880
//	              §6.7.4) under a key derived for that member (BFDKey)
//
// A message (84 bytes), big-endian:
//
//	0      kind 0xA1
//	1      version 2
//	2      type (MsgType)
//	3      reserved, 0
//	4-7    from (MemberID; ArbiterID = 0 for the arbiter)
//	8-11   to
//	12-19  wire sequence number: per sender, strictly increasing, never 0
//	20-23  chain
//	24-31  epoch (0 only in Hello)
//	32-39  lease request number (LeaseRequest, LeaseGrant), else 0
//	40-43  lease in µs (LeaseGrant), the new primary (Demote), or 1 if
//	       ready, 0 if not (StandbyStatus), else 0
//	44-51  incarnation: the sending member's (never 0), or the addressed
//	       member's as the arbiter last heard it (0: unknown)
//	52-83  HMAC-SHA256(message key, bytes 0-51)
//
// Every message has the same length, so a length check is one comparison
// and fields a type does not use must be zero. The receiver accepts a
// sequence number above the highest seen from that sender, or one of the 63
// below it not seen yet (the IPsec/WireGuard sliding window): reordered
// messages pass, replays and duplicates do not.

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"time"
)

// ErrAuth is returned for a message whose MAC does not verify.
var ErrAuth = errors.New("arbiter message authentication failed")

// ErrReplay is returned for a message whose sequence number was seen
// already or is too old for the window.
var ErrReplay = errors.New("arbiter message replayed or too old")

// ErrUnknownSender is returned for an authentic message from a sender the
// receiver does not know (not configured).
var ErrUnknownSender = errors.New("arbiter message from an unknown sender")

// WireError reports a datagram that is not a well-formed message.
type WireError struct {
	Len    int
	Reason string
}

func (e *WireError) Error() string {
	return fmt.Sprintf("arbiter datagram (%d bytes): %s", e.Len, e.Reason)
}

// Header is a message's envelope on the wire.
type Header struct {
	From, To MemberID
	Seq      uint64
}

// Decode parses a message datagram without checking its MAC or sequence
// number (Codec.Open does both). It never panics and does not allocate.
func Decode(b []byte) (Header, Msg, error) {
	var h Header
	var m Msg
	if len(b) != MsgLen {
		return h, m, &WireError{len(b), fmt.Sprintf("length %d, a message is %d bytes", len(b), MsgLen)}
	}
	if b[0] != KindMsg {
		return h, m, &WireError{len(b), fmt.Sprintf("kind 0x%02x, not a message", b[0])}
	}
	if b[1] != wireVersion {
		return h, m, &WireError{len(b), fmt.Sprintf("version %d, ours is %d", b[1], wireVersion)}
	}
	m.Type = MsgType(b[2])
	if m.Type == 0 || m.Type >= msgTypeEnd {
		return h, m, &WireError{len(b), fmt.Sprintf("type %d", b[2])}
	}
	if b[3] != 0 {
		return h, m, &WireError{len(b), fmt.Sprintf("reserved byte %d", b[3])}
	}
	h.From = MemberID(binary.BigEndian.Uint32(b[4:]))
	h.To = MemberID(binary.BigEndian.Uint32(b[8:]))
	h.Seq = binary.BigEndian.Uint64(b[12:])
	if h.Seq == 0 {
		return h, m, &WireError{len(b), "sequence number 0"}
	}
	if h.From == h.To {
		return h, m, &WireError{len(b), fmt.Sprintf("from and to are both %d", h.From)}
	}
	m.Chain = ChainID(binary.BigEndian.Uint32(b[20:]))
	m.Epoch = Epoch(binary.BigEndian.Uint64(b[24:]))
	arg1 := binary.BigEndian.Uint64(b[32:])
	arg2 := binary.BigEndian.Uint32(b[40:])
	m.Inc = binary.BigEndian.Uint64(b[44:])
	if m.Epoch == 0 && m.Type != MsgHello {
		return h, m, &WireError{len(b), fmt.Sprintf("%v at epoch %d", m.Type, m.Epoch)}
	}
	toArbiter := m.Type == MsgLeaseRequest || m.Type == MsgPromoted || m.Type == MsgDemoted || m.Type == MsgYielded ||
		m.Type == MsgHello || m.Type == MsgStandbyStatus
	if toArbiter != (h.To == ArbiterID) || (h.From == ArbiterID) == toArbiter {
		return h, m, &WireError{len(b), fmt.Sprintf("%v from %d to %d", m.Type, h.From, h.To)}
	}
	if toArbiter && m.Inc == 0 {
		return h, m, &WireError{len(b), fmt.Sprintf("%v from incarnation 0", m.Type)}
	}
	switch m.Type {
	case MsgLeaseRequest:
		m.Seq = arg1
		if m.Seq == 0 || arg2 != 0 {
			return h, m, &WireError{len(b), fmt.Sprintf("lease request %d with argument %d", arg1, arg2)}
		}
	case MsgLeaseGrant:
		m.Seq = arg1
		m.Lease = time.Duration(arg2) * time.Microsecond
		if m.Seq == 0 || arg2 == 0 || m.Lease > MaxLease {
			return h, m, &WireError{len(b), fmt.Sprintf("lease grant %d of %d µs", arg1, arg2)}
		}
	case MsgDemote:
		m.Primary = MemberID(arg2)
		if arg1 != 0 || m.Primary == ArbiterID {
			return h, m, &WireError{len(b), fmt.Sprintf("demote with arguments %d, %d", arg1, arg2)}
		}
	case MsgStandbyStatus:
		m.Ready = arg2 == 1
		if arg1 != 0 || arg2 > 1 {
			return h, m, &WireError{len(b), fmt.Sprintf("standby status with arguments %d, %d", arg1, arg2)}
		}
	default:
		if arg1 != 0 || arg2 != 0 {
			return h, m, &WireError{len(b), fmt.Sprintf("%v with arguments %d, %d", m.Type, arg1, arg2)}
		}
	}
	return h, m, nil
}

// Encode appends the message's encoding to dst with a zero MAC (Codec.Seal
// writes it). Lease is rounded up to µs and capped at MaxLease.
func Encode(dst []byte, h Header, m Msg) []byte {
	var arg1 uint64
	var arg2 uint32
	switch m.Type {
	case MsgLeaseRequest:
		arg1 = m.Seq
	case MsgLeaseGrant:
		arg1 = m.Seq
		arg2 = uint32((min(m.Lease, MaxLease) + time.Microsecond - 1) / time.Microsecond)
	case MsgDemote:
		arg2 = uint32(m.Primary)
	case MsgStandbyStatus:
		if m.Ready {
			arg2 = 1
		}
	}
	dst = append(dst, KindMsg, wireVersion, byte(m.Type), 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(h.From))
	dst = binary.BigEndian.AppendUint32(dst, uint32(h.To))
	dst = binary.BigEndian.AppendUint64(dst, h.Seq)
	dst = binary.BigEndian.AppendUint32(dst, uint32(m.Chain))
	dst = binary.BigEndian.AppendUint64(dst, uint64(m.Epoch))
	dst = binary.BigEndian.AppendUint64(dst, arg1)
	dst = binary.BigEndian.AppendUint32(dst, arg2)
	dst = binary.BigEndian.AppendUint64(dst, m.Inc)
	var mac [macLen]byte
	return append(dst, mac[:]...)
}

// window is the sliding replay window for one sender.
type window struct {
	top  uint64 // highest accepted sequence number
	seen uint64 // bit i: top-i was accepted
}

func (w *window) check(seq uint64) bool {
	switch {
	case seq > w.top:
		return true
	case w.top-seq >= replayWindow:
		return false
	default:
		return w.seen&(1<<(w.top-seq)) == 0
	}
}

func (w *window) mark(seq uint64) {
	if seq > w.top {
		if d := seq - w.top; d >= replayWindow {
			w.seen = 0
		} else {
			w.seen <<= d
		}
		w.top = seq
		w.seen |= 1
		return
	}
	w.seen |= 1 << (w.top - seq)
}

// Codec seals and opens one process's messages: its own ID, the message key
// derived from the pre-shared key, its send sequence and a replay window per
// sender. It is not safe for concurrent use (the driver's run goroutine
// owns it); Seal and Open do not allocate once the window of each sender
// exists.
type Codec struct {
	self MemberID
	mac  hash.Hash
	sum  [sha256.Size]byte
	seq  uint64
	win  map[MemberID]*window
}

// NewCodec returns a codec for self. psk is the pre-shared key (at least
// MinPSKBytes). firstSeq is the first sequence number to send: it MUST be
// above anything an earlier incarnation of this process sent, or the
// receivers drop its messages as replays (the drivers use the wall clock in
// nanoseconds).
func NewCodec(self MemberID, psk []byte, firstSeq uint64) (*Codec, error) {
	if len(psk) < MinPSKBytes {
		return nil, fmt.Errorf("arbiter: pre-shared key of %d bytes, at least %d", len(psk), MinPSKBytes)
	}
	return &Codec{
		self: self, mac: hmac.New(sha256.New, deriveKey(psk, "reinforce arbiter messages v1")),
		seq: max(firstSeq, 1) - 1, win: map[MemberID]*window{},
	}, nil
}

func deriveKey(psk []byte, label string) []byte {
	m := hmac.New(sha256.New, psk)
	m.Write([]byte(label))
	return m.Sum(nil)
}

// BFDKey returns the Keyed SHA1 key of the BFD session between the arbiter
// and member: 20 bytes derived from the pre-shared key and the member's ID,
// so one member's packets do not verify on another's session.
func BFDKey(psk []byte, member MemberID) []byte {
	var id [4]byte
	binary.BigEndian.PutUint32(id[:], uint32(member))
	return deriveKey(psk, "reinforce arbiter bfd v1 "+string(id[:]))[:20]
}

// Seal appends the authenticated encoding of m, from this codec to to, to
// dst.
func (c *Codec) Seal(dst []byte, to MemberID, m Msg) []byte {
	c.seq++
	start := len(dst)
	dst = Encode(dst, Header{From: c.self, To: to, Seq: c.seq}, m)
	c.mac.Reset()
	c.mac.Write(dst[start : start+MsgLen-macLen])
	copy(dst[start+MsgLen-macLen:], c.mac.Sum(c.sum[:0]))
	return dst
}

// Open decodes and authenticates a message datagram addressed to this
// codec: well-formed (*WireError), MAC (ErrAuth), addressed to us and from a
// known sender (the known function; ErrUnknownSender), and not
// a replay (ErrReplay). Only a message that passes all of these moves the
// sender's window.
func (c *Codec) Open(b []byte, known func(MemberID) bool) (MemberID, Msg, error) {
	h, m, err := Decode(b)
	if err != nil {
		return 0, Msg{}, err
	}
	c.mac.Reset()
	c.mac.Write(b[:MsgLen-macLen])
	if !hmac.Equal(c.mac.Sum(c.sum[:0]), b[MsgLen-macLen:]) {
		return 0, Msg{}, ErrAuth
	}
	if h.To != c.self {
		return 0, Msg{}, &WireError{len(b), fmt.Sprintf("addressed to %d, we are %d", h.To, c.self)}
	}
	if !known(h.From) {
		return 0, Msg{}, fmt.Errorf("sender %d: %w", h.From, ErrUnknownSender)
	}
	w := c.win[h.From]
	if w == nil {
		w = &window{}
		c.win[h.From] = w
	}
	if !w.check(h.Seq) {
		return 0, Msg{}, fmt.Errorf("sequence %d from %d, highest %d: %w", h.Seq, h.From, w.top, ErrReplay)
	}
	w.mark(h.Seq)
	return h.From, m, nil
}
