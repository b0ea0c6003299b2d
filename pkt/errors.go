package pkt

import "errors"

// Sentinels a caller branches on with errors.Is. Every error Decode returns
// is a *FrameError that matches exactly one of them.
var (
	// ErrTruncated means a header or a length field reaches past the frame.
	ErrTruncated = errors.New("truncated")
	// ErrMalformed means a header field holds an impossible value (IHL < 5,
	// a version that disagrees with the EtherType, a UDP length below 8...).
	ErrMalformed = errors.New("malformed")
	// ErrUnsupported means a well-formed frame Decode does not parse, such as
	// more than MaxVLANTags stacked tags or a frame longer than MaxFrameBytes.
	ErrUnsupported = errors.New("unsupported")
	// ErrShortBuffer means a builder's buffer cannot hold the frame.
	ErrShortBuffer = errors.New("buffer too short")
	// ErrBadLength means a builder was asked for a negative payload or a
	// packet longer than an IPv4 total length can express.
	ErrBadLength = errors.New("bad payload length")
)

// FrameError says which header of a frame failed which check. The values
// are preallocated package variables, so returning one does not allocate on
// the packet path; compare with errors.Is against the sentinels, never by
// message text.
type FrameError struct {
	Layer string // "ethernet", "vlan", "ipv4", "ipv6", "tcp", "udp", "icmp"
	Why   string // the failed check, for logs
	kind  error  // one of the sentinels above
}

// Error names the layer, the failed check and the sentinel.
func (e *FrameError) Error() string { return e.Layer + ": " + e.Why + " (" + e.kind.Error() + ")" }

// Is makes errors.Is(err, ErrTruncated) and friends work.
func (e *FrameError) Is(target error) bool { return target == e.kind }

// The errors Decode returns, one per check.
var (
	errTooLong      = &FrameError{"ethernet", "frame longer than 65535 bytes", ErrUnsupported}
	errEthShort     = &FrameError{"ethernet", "shorter than 14 bytes", ErrTruncated}
	errVLANShort    = &FrameError{"vlan", "tag past the end of the frame", ErrTruncated}
	errVLANDepth    = &FrameError{"vlan", "more than 2 stacked tags", ErrUnsupported}
	errIPv4Short    = &FrameError{"ipv4", "header past the end of the frame", ErrTruncated}
	errIPv4Version  = &FrameError{"ipv4", "version is not 4", ErrMalformed}
	errIPv4IHL      = &FrameError{"ipv4", "IHL below 5", ErrMalformed}
	errIPv4TotLen   = &FrameError{"ipv4", "total length below the header length", ErrMalformed}
	errIPv4TotLong  = &FrameError{"ipv4", "total length past the end of the frame", ErrTruncated}
	errIPv6Short    = &FrameError{"ipv6", "header past the end of the frame", ErrTruncated}
	errIPv6Version  = &FrameError{"ipv6", "version is not 6", ErrMalformed}
	errIPv6PayLong  = &FrameError{"ipv6", "payload length past the end of the frame", ErrTruncated}
	errIPv6ExtShort = &FrameError{"ipv6", "extension header past the end of the packet", ErrTruncated}
	errIPv6ExtDepth = &FrameError{"ipv6", "more than 8 extension headers", ErrUnsupported}
	errTCPShort     = &FrameError{"tcp", "header past the end of the packet", ErrTruncated}
	errTCPDataOff   = &FrameError{"tcp", "data offset below 5", ErrMalformed}
	errUDPShort     = &FrameError{"udp", "header past the end of the packet", ErrTruncated}
	errUDPLen       = &FrameError{"udp", "length below 8", ErrMalformed}
	errUDPLenLong   = &FrameError{"udp", "length past the end of the packet", ErrTruncated}
	errICMPShort    = &FrameError{"icmp", "header past the end of the packet", ErrTruncated}
	errBuildShort   = &FrameError{"build", "buffer shorter than the frame", ErrShortBuffer}
	errBuildBadLen  = &FrameError{"build", "payload length negative or IPv4 total length over 65535", ErrBadLength}
)
