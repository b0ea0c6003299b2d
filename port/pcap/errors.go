package pcap

import (
	"errors"
	"fmt"
)

// Sentinel errors; callers branch with errors.Is. A Reader returns them
// inside a *FormatError that says where the file went wrong.
var (
	// ErrNotCapture reports a file whose magic number is neither classic
	// pcap's (either byte order, µs or ns) nor pcapng's.
	ErrNotCapture = errors.New("not a pcap or pcapng capture")
	// ErrTruncated reports a capture that ends inside a header, record or block.
	ErrTruncated = errors.New("capture truncated")
	// ErrCorrupt reports a header, record or block whose fields are impossible.
	ErrCorrupt = errors.New("capture corrupt")
	// ErrUnsupported reports a format version this package does not read
	// (classic other than 2.x, pcapng other than 1.x).
	ErrUnsupported = errors.New("unsupported capture version")
	// ErrLinkType reports a capture, or a packet in one, whose link type is
	// not Ethernet: the port delivers only Ethernet frames.
	ErrLinkType = errors.New("link type not Ethernet")
)

// FormatError says where and why a capture could not be read. It matches
// its Err (ErrNotCapture, ErrTruncated, ErrCorrupt, ErrUnsupported or
// ErrLinkType) with errors.Is.
type FormatError struct {
	Offset int64  // the file offset of the header, record or block, in bytes
	What   string // what is wrong there: "record of 98 bytes", "block type 0x6: length 13"
	Err    error
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("byte %d: %s: %v", e.Offset, e.What, e.Err)
}

// Unwrap returns the sentinel.
func (e *FormatError) Unwrap() error { return e.Err }
