package replicator

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// Transport datagrams (docs/replication.md, "Transport"). Every datagram
// starts with a kind byte:
//
//	hello     (1): kind | nonceI [32]                          initiator → responder
//	challenge (2): kind | nonceI [32] | nonceR [32] | mac [32]  mac = HMAC(psk, "R" nonceI nonceR)
//	response  (3): kind | nonceI [32] | nonceR [32] | mac [32]  mac = HMAC(psk, "I" nonceI nonceR)
//	frame     (4): kind | session u64 | payload | tag [16]       tag = HMAC(key, kind session payload)[:16]
//	bfd       (5): kind | session u64 | BFD control packet       (authenticated by BFD itself, RFC 5880 §6.7)
//
// Each side proves it holds the pre-shared key by a MAC over a nonce the
// other side chose just now, so a recorded handshake cannot be replayed
// in either direction. Both then derive key = HMAC(psk, "K" nonceI nonceR)
// and session = HMAC(psk, "S" nonceI nonceR)[:8]: frames of an earlier
// session (a restarted peer's) fail the tag and are dropped.

// Datagram kinds.
const (
	kindHello     = 1
	kindChallenge = 2
	kindResponse  = 3
	kindFrame     = 4
	kindBFD       = 5
)

const (
	nonceLen     = 32
	macLen       = 32
	tagLen       = 16
	sessionLen   = 8
	helloLen     = 1 + nonceLen
	challengeLen = 1 + 2*nonceLen + macLen
	// FrameOverhead is what the transport adds to a replication frame.
	FrameOverhead = 1 + sessionLen + tagLen
)

// Nonce is a handshake nonce.
type Nonce [nonceLen]byte

// Handshake is a decoded handshake datagram.
type Handshake struct {
	Kind           byte
	NonceI, NonceR Nonce
	MAC            [macLen]byte
}

// DecodeHandshake parses a hello, challenge or response datagram. It never
// panics; any other length or kind is a *FrameError.
func DecodeHandshake(b []byte, h *Handshake) error {
	if len(b) == 0 {
		return &FrameError{0, "empty datagram"}
	}
	*h = Handshake{Kind: b[0]}
	switch b[0] {
	case kindHello:
		if len(b) != helloLen {
			return &FrameError{len(b), "hello of the wrong length"}
		}
		copy(h.NonceI[:], b[1:])
	case kindChallenge, kindResponse:
		if len(b) != challengeLen {
			return &FrameError{len(b), "challenge or response of the wrong length"}
		}
		copy(h.NonceI[:], b[1:])
		copy(h.NonceR[:], b[1+nonceLen:])
		copy(h.MAC[:], b[1+2*nonceLen:])
	default:
		return &FrameError{len(b), fmt.Sprintf("handshake kind %d", b[0])}
	}
	return nil
}

// AppendHandshake appends h's encoding.
func AppendHandshake(b []byte, h *Handshake) []byte {
	b = append(b, h.Kind)
	b = append(b, h.NonceI[:]...)
	if h.Kind == kindHello {
		return b
	}
	b = append(b, h.NonceR[:]...)
	return append(b, h.MAC[:]...)
}

func derive(psk []byte, label byte, ni, nr *Nonce) [32]byte {
	m := hmac.New(sha256.New, psk)
	m.Write([]byte{label})
	m.Write(ni[:])
	m.Write(nr[:])
	var out [32]byte
	m.Sum(out[:0])
	return out
}

// Session is an established transport session's keys.
type Session struct {
	ID  uint64
	Key [32]byte
}

func newSession(psk []byte, ni, nr *Nonce) Session {
	id := derive(psk, 'S', ni, nr)
	return Session{ID: binary.BigEndian.Uint64(id[:]), Key: derive(psk, 'K', ni, nr)}
}

// Seal appends a frame or BFD datagram carrying payload to b.
func (s *Session) Seal(b []byte, kind byte, payload []byte) []byte {
	start := len(b)
	b = append(b, kind)
	b = binary.BigEndian.AppendUint64(b, s.ID)
	b = append(b, payload...)
	if kind != kindFrame {
		return b
	}
	m := hmac.New(sha256.New, s.Key[:])
	m.Write(b[start:])
	var sum [32]byte
	return append(b, m.Sum(sum[:0])[:tagLen]...)
}

// Open checks a frame or BFD datagram of this session and returns its
// payload (aliasing b).
func (s *Session) Open(b []byte) (kind byte, payload []byte, err error) {
	if len(b) < 1+sessionLen {
		return 0, nil, &FrameError{len(b), "datagram shorter than its header"}
	}
	kind = b[0]
	if id := binary.BigEndian.Uint64(b[1:]); id != s.ID {
		return kind, nil, fmt.Errorf("session %#x, ours %#x: %w", id, s.ID, ErrUnauthenticated)
	}
	switch kind {
	case kindBFD:
		return kind, b[1+sessionLen:], nil
	case kindFrame:
		if len(b) < FrameOverhead {
			return kind, nil, &FrameError{len(b), "frame datagram shorter than its tag"}
		}
		body := b[:len(b)-tagLen]
		m := hmac.New(sha256.New, s.Key[:])
		m.Write(body)
		var sum [32]byte
		if !hmac.Equal(m.Sum(sum[:0])[:tagLen], b[len(b)-tagLen:]) {
			return kind, nil, fmt.Errorf("frame tag: %w", ErrUnauthenticated)
		}
		return kind, body[1+sessionLen:], nil
	}
	return kind, nil, &FrameError{len(b), fmt.Sprintf("datagram kind %d", kind)}
}

// Handshaker runs the pre-shared-key handshake, a pure value like
// Replicator: Step a received handshake datagram, Tick to repeat the hello.
// The initiator is the side that dials (the standby).
type Handshaker struct {
	psk       []byte
	initiator bool
	nonce     func() Nonce
	ni, nr    Nonce // current attempt
	haveNR    bool
	session   *Session
	pending   *Session // responder: the session a verified response will establish
	confirmed bool     // initiator: the responder used the session
	last      []byte   // initiator: the hello or response to repeat
	out       [][]byte
}

// NewHandshaker returns a handshaker; nonce supplies fresh random nonces
// (crypto/rand in Node, seeded in tests).
func NewHandshaker(psk []byte, initiator bool, nonce func() Nonce) *Handshaker {
	return &Handshaker{psk: psk, initiator: initiator, nonce: nonce}
}

// Session returns the established session, or nil.
func (h *Handshaker) Session() *Session { return h.session }

// Hello starts (or restarts) the handshake on the initiator.
func (h *Handshaker) Hello() {
	h.ni = h.nonce()
	h.haveNR = false
	h.confirmed = false
	h.last = AppendHandshake(nil, &Handshake{Kind: kindHello, NonceI: h.ni})
	h.out = append(h.out, h.last)
}

// Confirm records, on the initiator, that the responder sent a datagram of
// the current session: it has the session, our response arrived.
func (h *Handshaker) Confirm() { h.confirmed = true }

// Retry repeats the initiator's last hello or response until the session
// is confirmed (both may be lost).
func (h *Handshaker) Retry() {
	if h.initiator && !h.confirmed && h.last != nil {
		h.out = append(h.out, h.last)
	}
}

// Out returns and clears the datagrams to send.
func (h *Handshaker) Out() [][]byte {
	o := h.out
	h.out = nil
	return o
}

// Step processes a handshake datagram. It returns true when it established
// a new session.
func (h *Handshaker) Step(b []byte) (bool, error) {
	var m Handshake
	if err := DecodeHandshake(b, &m); err != nil {
		return false, err
	}
	switch {
	case m.Kind == kindHello && !h.initiator && (h.pending != nil || h.session != nil) && m.NonceI == h.ni:
		// The same hello again (duplicated, or our challenge was lost):
		// the same challenge, so the session does not churn.
		h.out = append(h.out, AppendHandshake(nil, &Handshake{Kind: kindChallenge, NonceI: h.ni, NonceR: h.nr, MAC: derive(h.psk, 'R', &h.ni, &h.nr)}))
		return false, nil
	case m.Kind == kindHello && !h.initiator:
		// Keep the current session until the new one is proven: a forged
		// hello costs the responder one MAC and nothing else.
		nr := h.nonce()
		s := newSession(h.psk, &m.NonceI, &nr)
		h.pending = &s
		h.ni, h.nr = m.NonceI, nr
		h.out = append(h.out, AppendHandshake(nil, &Handshake{Kind: kindChallenge, NonceI: m.NonceI, NonceR: nr, MAC: derive(h.psk, 'R', &m.NonceI, &nr)}))
		return false, nil
	case m.Kind == kindChallenge && h.initiator:
		if m.NonceI != h.ni {
			return false, fmt.Errorf("challenge for another hello: %w", ErrUnauthenticated)
		}
		if want := derive(h.psk, 'R', &m.NonceI, &m.NonceR); !hmac.Equal(want[:], m.MAC[:]) {
			return false, fmt.Errorf("challenge MAC: %w", ErrUnauthenticated)
		}
		h.last = AppendHandshake(nil, &Handshake{Kind: kindResponse, NonceI: m.NonceI, NonceR: m.NonceR, MAC: derive(h.psk, 'I', &m.NonceI, &m.NonceR)})
		h.out = append(h.out, h.last)
		if h.haveNR && h.nr == m.NonceR {
			return false, nil // a repeated challenge: our response was lost
		}
		h.nr, h.haveNR = m.NonceR, true
		h.confirmed = false
		s := newSession(h.psk, &m.NonceI, &m.NonceR)
		h.session = &s
		return true, nil
	case m.Kind == kindResponse && !h.initiator:
		if h.pending == nil || m.NonceI != h.ni || m.NonceR != h.nr {
			return false, fmt.Errorf("response to no challenge of ours: %w", ErrUnauthenticated)
		}
		if want := derive(h.psk, 'I', &m.NonceI, &m.NonceR); !hmac.Equal(want[:], m.MAC[:]) {
			return false, fmt.Errorf("response MAC: %w", ErrUnauthenticated)
		}
		h.session, h.pending = h.pending, nil
		return true, nil
	}
	return false, fmt.Errorf("handshake kind %d for this side: %w", m.Kind, ErrWrongRole)
}
