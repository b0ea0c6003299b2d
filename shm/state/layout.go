// Package state holds an NF's replicated state: a per-NF file of named
// containers (hash maps, arrays, single values, packet queues) and the
// state log that makes every burst an atomic transaction. The design is in
// docs/state.md.
package state

// The state file, as the NF, its standby and the manager map it (offsets
// from the file start; nothing in it is a pointer):
//
//	0        ┌───────────────────────────────┐
//	         │ header line 0: identity        │ magic, version, sizes, seed
//	64       │ header line 1: allocator       │ directory entries used, data bytes used (logged writes)
//	128      │ header line 2: log cursors     │ head, tail (atomic)
//	192      │ header line 3: transaction     │ open tx start, its seq, last committed, last published (atomic)
//	256      │ header line 4: counters        │ commits, rollbacks, roll-forwards, aborts (atomic)
//	4096     ├───────────────────────────────┤
//	         │ directory: dirEntries × 128 B  │ name, kind, key/value sizes, capacity, offset, size, seed
//	         ├───────────────────────────────┤
//	         │ data: containers, 64 B aligned │ written only through the transaction (undo + redo logged)
//	         ├───────────────────────────────┤
//	         │ log: circular, 8 B records     │ begin, inputs, data, alloc, write, commit, abort, pad
//	         └───────────────────────────────┘
//
// Every log record is a 16-byte header (type u16, pad u16, payload bytes
// u32, transaction sequence u64) followed by its payload, padded to 8 bytes.
// Records never straddle the end of the log: a pad record (or, with less
// than a header's room left, nothing) fills the tail and the next record
// starts at offset 0. Positions are 64-bit log sequence numbers (LSNs) that
// only grow; the byte offset is LSN mod the log size.

const (
	fileMagic       = "RNFSTATE"
	fileVersion     = 1
	headerBytes     = 4096
	dirEntries      = 64
	dirEntryBytes   = 128
	dirOff          = headerBytes
	dataOff         = dirOff + dirEntries*dirEntryBytes
	lineBytes       = 64
	recHdrBytes     = 16
	maxNameBytes    = 47
	containerAlign  = 64
	noTx            = ^uint64(0)
	defaultData     = 64 << 20
	defaultLog      = 4 << 20
	minLog          = 64 << 10
	maxFileBytes    = 1 << 40
	inputEntryBytes = 64 // slot u32, ring u32, state word u64, metadata fields (48)
)

// Header field offsets.
const (
	hMagic     = 0  // [8]byte
	hVersion   = 8  // u32
	hDataBytes = 16 // u64
	hLogOff    = 24 // u64
	hLogBytes  = 32 // u64
	hTotal     = 40 // u64
	hSeed      = 48 // u64
	hRegionID  = 56 // u64: the manager region's identity (its epoch) when the file was made

	hDirUsed  = 64 // u64, logged
	hDataUsed = 72 // u64, logged

	hHead    = 128 // u64 atomic: LSN one past the last complete record
	hTail    = 136 // u64 atomic: oldest LSN anyone still needs
	hReader  = 144 // u64 atomic: 1 while a log reader (the replicator) holds the tail
	hStopped = 152 // u64 atomic: 1 when the last holder stopped cleanly and left the file to its reader

	hTxStart   = 192 // u64 atomic: LSN of the open transaction's begin record, noTx if none
	hTxSeq     = 200 // u64 atomic: sequence of the open (or last) transaction
	hCommitted = 208 // u64 atomic: last committed sequence
	hPublished = 216 // u64 atomic: last sequence whose publication finished

	hCommits      = 256 // u64 atomic counters
	hRollbacks    = 264
	hRollForwards = 272
	hAborts       = 280
	hRedelivered  = 288
	hTakeovers    = 296 // processes that took the file over from a dead holder
	hWokeNs       = 304 // CLOCK_MONOTONIC ns when the last taker saw the death
	hFirstNs      = 312 // CLOCK_MONOTONIC ns of its first commit after that
)

// Directory entry field offsets.
const (
	dName     = 0  // [48]byte, NUL-padded
	dKind     = 48 // u32
	dKeyBytes = 52 // u32
	dValBytes = 56 // u32
	dCap      = 64 // u64: entries the container holds
	dOff      = 72 // u64: file offset of its data
	dSize     = 80 // u64: bytes
	dSeed     = 88 // u64: hash seed (maps)
)

// Container kinds.
const (
	kindMap   = 1
	kindArray = 2
	kindValue = 3
	kindQueue = 4
)

// Log record types.
const (
	recPad    = 1
	recBegin  = 2
	recInputs = 3 // packets the transaction took: from a ring, or from a queue (ring = noRing)
	recData   = 4 // original bytes of a packet, saved before its first write
	recAlloc  = 5 // slots about to be taken from the fill ring
	recWrite  = 6 // container write: offset, old bytes, new bytes
	recCommit = 7
	recAbort  = 8
)

// noRing marks inputs taken from a packet queue rather than a ring.
const noRing = ^uint32(0)
