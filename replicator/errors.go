package replicator

import (
	"errors"
	"fmt"
)

// Errors returned by Step. Each one means the input was counted and dropped;
// none of them changes what was applied or released.
var (
	ErrMalformed       = errors.New("malformed frame")
	ErrCorrupt         = errors.New("checksum mismatch")
	ErrStaleEpoch      = errors.New("stale epoch")
	ErrDuplicate       = errors.New("duplicate")
	ErrOutOfWindow     = errors.New("transaction outside the receive window")
	ErrNotJoined       = errors.New("not joined: waiting for a snapshot")
	ErrWrongRole       = errors.New("message not for this role")
	ErrBackpressure    = errors.New("replication queue full")
	ErrTooLarge        = errors.New("transaction too large")
	ErrLayout          = errors.New("state layout digests differ")
	ErrFenced          = errors.New("fenced by a higher epoch")
	ErrUnauthenticated = errors.New("unauthenticated datagram")
)

// CorruptError reports a checksum mismatch (errors.Is ErrCorrupt and
// ErrMalformed).
type CorruptError struct {
	What      string // "frame" or "transaction"
	Got, Want uint32
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("%s CRC32C %#08x, want %#08x", e.What, e.Got, e.Want)
}

func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt || target == ErrMalformed }
