package arbiter

import "time"

// Fixed by the wire format (wire.go, docs/arbiter.md "Wire format").
const (
	// KindMsg and KindBFD are the first byte of a datagram.
	KindMsg = 0xA1
	KindBFD = 0xB1
	// wireVersion 2 added StandbyStatus: a version-1 member never reports
	// a ready standby, so a version-2 arbiter would never fail over to it.
	wireVersion = 2
	macLen      = 32 // bytes: HMAC-SHA256
	// MsgLen is the length of every message datagram.
	MsgLen = 52 + macLen // bytes
	// bfdHeaderLen is the kind byte and the sender ID before a BFD packet.
	bfdHeaderLen = 5 // bytes
	// replayWindow is how far below the highest sequence number a reordered
	// message is still accepted.
	replayWindow = 64 // messages
	// MinPSKBytes is the least pre-shared key length.
	MinPSKBytes = 16 // bytes
	// MaxLease caps a lease (the wire carries µs in 32 bits).
	MaxLease = time.Hour
)

// Implementation choices (docs/arbiter.md, "Timing").
const (
	// DefaultLease is the lease D with the default BFD profile: twice the
	// 3 ms detection time, so a primary's lease lapses only when every
	// renewal of 4.5 ms fails, while failover (≈ D + margin − the last
	// grant's age) stays within the 10 ms remote-failover budget.
	DefaultLease = 6 * time.Millisecond
	// LoadedLease is D with the loaded profile (6 ms detection).
	LoadedLease = 12 * time.Millisecond
	// DefaultMargin is added to the arbiter's lease bound: it covers clock
	// rate differences (ppm: microseconds per lease) and the gap between the
	// manager's CanRelease check and the packet leaving.
	DefaultMargin = time.Millisecond
	// DefaultRetry is how often an unacknowledged Promote, Demote or Yield
	// is sent again.
	DefaultRetry = 2 * time.Millisecond
	// DefaultYieldTimeout is how long a switchover waits for Yielded before
	// it falls back to waiting out the lease.
	DefaultYieldTimeout = 500 * time.Millisecond
	// renewDivisor: a primary asks for a renewal every D/4, so three
	// requests may be lost before its lease lapses.
	renewDivisor = 4
	// requestMemory is how many outstanding lease requests a member
	// remembers the send time of; a grant for an older one is ignored.
	requestMemory = 8
	// DefaultTick is the drivers' timer period: a quarter of the fastest
	// profile's 1 ms interval and half a tick of detection error. At
	// 100 µs the Server and each Client woke 20 000 times a second, a
	// third of a CPU per manager on the 2-vCPU lab VM — load that itself
	// made BFD late and declared live members down.
	DefaultTick = 250 * time.Microsecond
)
