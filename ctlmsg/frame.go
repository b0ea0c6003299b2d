package ctlmsg

// Framing. A frame is
//
//	+----------------+------+---------------------------+
//	| length (u32 LE)| type | body: one JSON object     |
//	+----------------+------+---------------------------+
//	  4 bytes          1      length-1 bytes
//
// length counts the type byte and the body, so it is at least 1 and the whole
// frame is at most MaxFrameBytes. The body is exactly one JSON object with only
// the fields of its type's struct, optionally surrounded by JSON whitespace.
//
// ReadMsg reads exactly one frame and never more, so it can share a
// *bufio.Reader with other readers of the stream. After an error whose frame
// length was valid (ErrUnknownType, ErrBadBody, ErrEmptyFrame) the stream is
// still positioned at the next frame; after any other error it is not, and the
// connection MUST be closed.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// Sentinel errors carried by *FrameError; test for them with errors.Is.
var (
	// ErrFrameTooLarge is a length prefix beyond MaxFrameBytes.
	ErrFrameTooLarge = errors.New("frame too large")
	// ErrEmptyFrame is a length prefix of 0: a frame without a type byte.
	ErrEmptyFrame = errors.New("empty frame")
	// ErrUnknownType is a type byte that names no message.
	ErrUnknownType = errors.New("unknown message type")
	// ErrBadBody is a body that is not one JSON object of the type's fields
	// with valid values.
	ErrBadBody = errors.New("bad message body")
)

// FrameError describes a frame that could not be read or written.
type FrameError struct {
	// Op is "read" or "write".
	Op string
	// Type is the frame's type byte; valid iff Len > 0.
	Type Type
	// Len is the frame's length prefix in bytes (type byte plus body).
	Len uint32
	// Err is one of ErrFrameTooLarge, ErrEmptyFrame, ErrUnknownType, ErrBadBody.
	Err error
	// Cause is the underlying error (the JSON decoder's, a validation
	// failure), or nil.
	Cause error
}

// Error describes the frame and what is wrong with it.
func (e *FrameError) Error() string {
	var b strings.Builder
	b.WriteString("ctlmsg: ")
	b.WriteString(e.Op)
	if e.Len > 0 {
		fmt.Fprintf(&b, " %s frame", e.Type)
	} else {
		b.WriteString(" frame")
	}
	fmt.Fprintf(&b, " (length %d): %v", e.Len, e.Err)
	if e.Cause != nil {
		fmt.Fprintf(&b, ": %v", e.Cause)
	}
	return b.String()
}

// Unwrap returns Err and, when set, Cause, so errors.Is matches both.
func (e *FrameError) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.Cause}
}

// WriteMsg encodes m as one frame and writes it with a single w.Write call, so
// that writers sharing a socket under a mutex never interleave partial frames.
// It rejects a nil m, a message that fails validation, and a body that would
// exceed MaxFrameBytes (*FrameError). WriteMsg is safe for concurrent use with
// distinct writers; callers serialise writes to one w.
func WriteMsg(w io.Writer, m Msg) error {
	if m == nil {
		return errors.New("ctlmsg: write nil message")
	}
	if v := reflect.ValueOf(m); v.Kind() == reflect.Pointer && v.IsNil() {
		return fmt.Errorf("ctlmsg: write nil %T", m)
	}
	t := m.Type()
	if err := m.validate(); err != nil {
		return &FrameError{Op: "write", Type: t, Len: 1, Err: ErrBadBody, Cause: err}
	}
	body, err := json.Marshal(m)
	if err != nil {
		return &FrameError{Op: "write", Type: t, Len: 1, Err: ErrBadBody, Cause: err}
	}
	n := 1 + len(body)
	if n > maxLen {
		return &FrameError{Op: "write", Type: t, Len: uint32(min(n, 1<<31)), Err: ErrFrameTooLarge}
	}
	buf := make([]byte, lenBytes+n)
	binary.LittleEndian.PutUint32(buf, uint32(n))
	buf[lenBytes] = byte(t)
	copy(buf[lenBytes+1:], body)
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("write ctlmsg %s: %w", t, err)
	}
	return nil
}

// ReadMsg reads exactly one frame from r and returns its message as a value
// (Register, not *Register). At a clean end of stream (no byte of a new frame)
// it returns io.EOF; a stream that ends inside a frame gives an error wrapping
// io.ErrUnexpectedEOF. Malformed frames give a *FrameError, never a panic:
// an oversize or zero length, an unknown type byte, a body that is not exactly
// one JSON object, has a field its type lacks, or holds an invalid value. It
// allocates one buffer of the frame's size and reads nothing past the frame.
// ReadMsg is safe for one reader of r at a time.
func ReadMsg(r io.Reader) (Msg, error) {
	var hdr [lenBytes]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("read ctlmsg length: %w", err)
	}
	n := binary.LittleEndian.Uint32(hdr[:])
	if n == 0 {
		return nil, &FrameError{Op: "read", Err: ErrEmptyFrame}
	}
	if n > maxLen {
		return nil, &FrameError{Op: "read", Len: n, Err: ErrFrameTooLarge}
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("read ctlmsg frame of %d bytes: %w", n, err)
	}
	t := Type(buf[0])
	p := newMsg(t)
	if p == nil {
		return nil, &FrameError{Op: "read", Type: t, Len: n, Err: ErrUnknownType}
	}
	if err := decodeBody(buf[1:], p); err != nil {
		return nil, &FrameError{Op: "read", Type: t, Len: n, Err: ErrBadBody, Cause: err}
	}
	m := deref(p)
	if err := m.validate(); err != nil {
		return nil, &FrameError{Op: "read", Type: t, Len: n, Err: ErrBadBody, Cause: err}
	}
	return m, nil
}

// decodeBody decodes body, which must be exactly one JSON object with only the
// fields of *p, into p.
func decodeBody(body []byte, p any) error {
	i := skipSpace(body, 0)
	if i == len(body) || body[i] != '{' {
		// "null" or a bare value would decode into a zero struct without
		// complaint; a sender that produces one is broken, so say so.
		return errors.New("body is not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(p); err != nil {
		return err
	}
	// The decoder stops after the first value; anything but whitespace after
	// it is a second value or garbage.
	if j := skipSpace(body, int(dec.InputOffset())); j != len(body) {
		return fmt.Errorf("trailing data at offset %d after the JSON object", j)
	}
	return nil
}

// skipSpace returns the index of the first byte at or after i in b that is
// not JSON whitespace (RFC 8259 §2), or len(b).
func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}
