package shm

import (
	"errors"
	"fmt"
)

// Sentinel errors; callers branch with errors.Is.
var (
	// ErrBadLayout reports a region whose header or section table is invalid.
	ErrBadLayout = errors.New("bad region layout")
	// ErrRegionInUse reports a region file held by a live creator.
	ErrRegionInUse = errors.New("region in use by a live creator")
	// ErrStaleRegion reports a region file whose creator is gone.
	ErrStaleRegion = errors.New("stale region (no creator holds its lock)")
	// ErrNotOwner reports a slot handed over by a process that does not hold it.
	ErrNotOwner = errors.New("slot not held by this owner")
	// ErrCorrupt reports shared state that failed a check; see CorruptError.
	ErrCorrupt = errors.New("corrupt shared memory")
	// ErrNotCreator reports a creator-only operation on an attached region.
	ErrNotCreator = errors.New("operation reserved to the region's creator")
	// ErrClosed reports use of a closed region.
	ErrClosed = errors.New("region closed")
)

// CorruptError names a shared structure and the bad value read from it.
// It matches ErrCorrupt with errors.Is.
type CorruptError struct {
	What  string // "ring 3 producer index", "slot 77"
	Value uint64
	Why   string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("corrupt %s: value %d: %s", e.What, e.Value, e.Why)
}

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// LayoutError explains why a region header was refused. It matches ErrBadLayout.
type LayoutError struct {
	Path string
	Why  string
}

func (e *LayoutError) Error() string { return fmt.Sprintf("region %s: %s", e.Path, e.Why) }

// Is makes errors.Is(err, ErrBadLayout) true.
func (e *LayoutError) Is(target error) bool { return target == ErrBadLayout }
