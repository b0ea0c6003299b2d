// Package bfd is a BFD session in asynchronous mode (RFC 5880) as a pure
// value (STYLE.md §7): no sockets, goroutines or clocks. Session.Step takes
// a received control packet, Tick advances time by one tick (the driver
// says how many microseconds that is), Ready returns the packets to send and
// the state changes to act on, Advance confirms them. Authentication is
// Keyed SHA1 or Meticulous Keyed SHA1 (RFC 5880 §6.7.4); the decoder also
// reads the other §4.2-4.4 sections so real captures round-trip byte for
// byte.
package bfd

import (
	"encoding/binary"
	"fmt"
)

// State is a session state (RFC 5880 §4.1, Sta).
type State uint8

// States.
const (
	AdminDown State = 0
	Down      State = 1
	Init      State = 2
	Up        State = 3
)

func (s State) String() string {
	return [...]string{"AdminDown", "Down", "Init", "Up"}[s&3]
}

// Diag is a diagnostic code (RFC 5880 §4.1).
type Diag uint8

// Diagnostic codes used here.
const (
	DiagNone          Diag = 0
	DiagDetectExpired Diag = 1 // Control Detection Time Expired
	DiagNeighborDown  Diag = 3 // Neighbor Signaled Session Down
	DiagAdminDown     Diag = 7 // Administratively Down
)

// AuthType is the authentication section's type (RFC 5880 §4.1).
type AuthType uint8

// Authentication types.
const (
	AuthNone           AuthType = 0
	AuthSimplePassword AuthType = 1
	AuthKeyedMD5       AuthType = 2
	AuthMeticulousMD5  AuthType = 3
	AuthKeyedSHA1      AuthType = 4
	AuthMeticulousSHA1 AuthType = 5
)

// ControlPacket is a BFD control packet (RFC 5880 §4.1). Intervals are in
// microseconds, as on the wire.
type ControlPacket struct {
	Version    uint8
	Diag       Diag
	State      State
	Poll       bool
	Final      bool
	CPI        bool // Control Plane Independent
	Auth       bool // A: an authentication section follows
	Demand     bool
	Multipoint bool
	DetectMult uint8
	// Length is the Length field as received; Append writes the computed
	// length when it is 0.
	Length            uint8
	MyDisc, YourDisc  uint32
	DesiredMinTx      uint32 // µs
	RequiredMinRx     uint32 // µs
	RequiredMinEchoRx uint32 // µs

	// Authentication section, valid iff Auth.
	AuthType AuthType
	AuthLen  uint8
	KeyID    uint8
	Reserved uint8  // MD5 and SHA1 types
	Seq      uint32 // MD5 and SHA1 types
	// AuthData is the password (simple password) or the digest; it aliases
	// the decoded buffer.
	AuthData []byte
	// Extra holds the bytes a Length above 24 covers when no authentication
	// section is present (§6.8.6 accepts them); it aliases the buffer.
	Extra []byte
}

// PacketError reports a packet that RFC 5880 §6.8.6 says to discard
// before looking at the session.
type PacketError struct {
	Len    int
	Reason string
}

func (e *PacketError) Error() string {
	return fmt.Sprintf("bfd packet (%d bytes): %s", e.Len, e.Reason)
}

func authLen(t AuthType) (int, bool) {
	switch t {
	case AuthKeyedMD5, AuthMeticulousMD5:
		return 24, true
	case AuthKeyedSHA1, AuthMeticulousSHA1:
		return 28, true
	}
	return 0, false
}

// Decode parses a control packet (a UDP payload) into p, with the checks of
// RFC 5880 §6.8.6 that need no session state. p.AuthData aliases b.
// Decode never panics and does not allocate.
func Decode(b []byte, p *ControlPacket) error {
	if len(b) < minLen {
		return &PacketError{len(b), "shorter than 24 bytes"}
	}
	*p = ControlPacket{
		Version: b[0] >> 5, Diag: Diag(b[0] & 0x1f), State: State(b[1] >> 6),
		Poll: b[1]&0x20 != 0, Final: b[1]&0x10 != 0, CPI: b[1]&0x08 != 0,
		Auth: b[1]&0x04 != 0, Demand: b[1]&0x02 != 0, Multipoint: b[1]&0x01 != 0,
		DetectMult: b[2], Length: b[3],
		MyDisc: binary.BigEndian.Uint32(b[4:]), YourDisc: binary.BigEndian.Uint32(b[8:]),
		DesiredMinTx: binary.BigEndian.Uint32(b[12:]), RequiredMinRx: binary.BigEndian.Uint32(b[16:]),
		RequiredMinEchoRx: binary.BigEndian.Uint32(b[20:]),
	}
	switch {
	case p.Version != version:
		return &PacketError{len(b), fmt.Sprintf("version %d", p.Version)}
	case int(p.Length) > len(b):
		return &PacketError{len(b), fmt.Sprintf("length field %d beyond the payload", p.Length)}
	case p.Length < minLen || (p.Auth && p.Length < minLen+2):
		return &PacketError{len(b), fmt.Sprintf("length field %d too small", p.Length)}
	case p.DetectMult == 0:
		return &PacketError{len(b), "detect multiplier 0"}
	case p.Multipoint:
		return &PacketError{len(b), "multipoint bit set"}
	case p.MyDisc == 0:
		return &PacketError{len(b), "my discriminator 0"}
	case p.YourDisc == 0 && p.State != Down && p.State != AdminDown:
		return &PacketError{len(b), fmt.Sprintf("your discriminator 0 in state %v", p.State)}
	}
	if !p.Auth {
		p.Extra = b[minLen:p.Length]
		return nil
	}
	a := b[minLen:p.Length]
	p.AuthType, p.AuthLen = AuthType(a[0]), a[1]
	if int(p.AuthLen) != len(a) {
		return &PacketError{len(b), fmt.Sprintf("auth length %d, section of %d bytes", p.AuthLen, len(a))}
	}
	switch p.AuthType {
	case AuthSimplePassword:
		if p.AuthLen < 4 || p.AuthLen > 19 {
			return &PacketError{len(b), fmt.Sprintf("simple password auth length %d", p.AuthLen)}
		}
		p.KeyID = a[2]
		p.AuthData = a[3:]
	case AuthKeyedMD5, AuthMeticulousMD5, AuthKeyedSHA1, AuthMeticulousSHA1:
		if n, _ := authLen(p.AuthType); int(p.AuthLen) != n {
			return &PacketError{len(b), fmt.Sprintf("auth type %d with length %d", p.AuthType, p.AuthLen)}
		}
		p.KeyID, p.Reserved = a[2], a[3]
		p.Seq = binary.BigEndian.Uint32(a[4:])
		p.AuthData = a[8:]
	default:
		return &PacketError{len(b), fmt.Sprintf("auth type %d", p.AuthType)}
	}
	return nil
}

// Size returns the encoded length of p.
func (p *ControlPacket) Size() int {
	if p.Length != 0 {
		return int(p.Length)
	}
	if !p.Auth {
		return minLen + len(p.Extra)
	}
	if n, ok := authLen(p.AuthType); ok {
		return minLen + n
	}
	return minLen + 3 + len(p.AuthData)
}

// Append appends p's encoding to b. For the MD5 and SHA1 types AuthData
// is written as given (Sign computes it).
func Append(b []byte, p *ControlPacket) []byte {
	flags := byte(p.State) << 6
	for i, f := range []bool{p.Poll, p.Final, p.CPI, p.Auth, p.Demand, p.Multipoint} {
		if f {
			flags |= 0x20 >> i
		}
	}
	b = append(b, p.Version<<5|byte(p.Diag)&0x1f, flags, p.DetectMult, byte(p.Size()))
	b = binary.BigEndian.AppendUint32(b, p.MyDisc)
	b = binary.BigEndian.AppendUint32(b, p.YourDisc)
	b = binary.BigEndian.AppendUint32(b, p.DesiredMinTx)
	b = binary.BigEndian.AppendUint32(b, p.RequiredMinRx)
	b = binary.BigEndian.AppendUint32(b, p.RequiredMinEchoRx)
	if !p.Auth {
		return append(b, p.Extra...)
	}
	if n, ok := authLen(p.AuthType); ok {
		b = append(b, byte(p.AuthType), byte(n), p.KeyID, p.Reserved)
		b = binary.BigEndian.AppendUint32(b, p.Seq)
		var d [20]byte
		copy(d[:], p.AuthData)
		return append(b, d[:n-8]...)
	}
	b = append(b, byte(p.AuthType), byte(3+len(p.AuthData)), p.KeyID)
	return append(b, p.AuthData...)
}
