package bfd

// Fixed by RFC 5880.
const (
	version = 1  // §4.1
	minLen  = 24 // bytes: the mandatory section (§4.1)
	// SlowTxMicros is the least transmit interval while the session is not
	// Up (§6.8.3: "not less than one second").
	SlowTxMicros = 1_000_000 // µs
	// Port is the UDP destination port of single-hop control packets
	// (RFC 5881 §4).
	Port = 3784
)

// DefaultConfig returns 1 ms × 3 with 100 µs ticks (RESILIENCY.md, "Failure
// detection": defaults 1 ms × 3) and Meticulous Keyed SHA1.
func DefaultConfig() Config {
	return Config{
		DesiredMinTxMicros:  1000,
		RequiredMinRxMicros: 1000,
		DetectMult:          3,
		TickMicros:          100,
		SlowTxMicros:        SlowTxMicros,
		AuthType:            AuthMeticulousSHA1,
	}
}
