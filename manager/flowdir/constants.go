package flowdir

// Implementation choices. ONVM's flow director has a fixed 1024-entry rte_hash (SDN_FT_ENTRIES,
// ONVM-COMPAT.md §1.10) and no wildcard rules; these limits are ours.
const (
	// DefaultMaxFlows is an exact-entry capacity for callers with no better figure: ONVM's
	// sdn_ft holds 1024 entries (ONVM-COMPAT.md §1.10). 2048 slots, 32 KiB of IPv4 slots.
	DefaultMaxFlows = 1024

	// MaxFlows is the largest exact-entry capacity New accepts, in entries. It needs 2^25 slots
	// per address family: 512 MiB of IPv4 slots and 2 GiB of IPv6 slots once both are in use.
	MaxFlows = 1 << 24

	// slotsPerFlow is how many slots a table has per entry of capacity, rounded up to a power of
	// two: linear probing at a load of at most 1/2 finds a present key in 1.5 probes on average
	// and an absent one in 2.5 (Knuth, TAOCP vol. 3 §6.4), and keeps an empty slot that ends
	// every probe.
	slotsPerFlow = 2

	// spinsBeforeYield is how many times Lookup re-reads a generation that a writer holds odd
	// (a Delete in progress, tens of nanoseconds) before it yields the processor each time, in
	// case the writer was descheduled inside its critical section.
	spinsBeforeYield = 128

	// burstGroup is how many flows LookupBurst prefetches together, in flows: enough to keep
	// a core's outstanding-miss slots busy (16 to 24 L1 miss buffers on current x86 cores), few
	// enough that the group's keys stay in registers and L1.
	burstGroup = 16
)

// Layout of a slot's meta word (slot4.meta, slot6.meta): the non-address part of the key, the
// chain and the used flag in one word, so a reader checks "occupied", ports, protocol and reads
// the chain with one atomic load.
//
//	bits 63..48  source port
//	bits 47..32  destination port
//	bits 31..24  IP protocol
//	bits 23..8   chain
//	bits  7..1   zero
//	bit      0   used
const (
	metaSrcPortShift = 48
	metaDstPortShift = 32
	metaProtoShift   = 24
	metaChainShift   = 8
	// metaKeyMask selects the key bits of a meta word: ports and protocol.
	metaKeyMask uint64 = 0xFFFF_FFFF_FF00_0000
	// metaUsed marks an occupied slot; a meta word of 0 is an empty slot.
	metaUsed uint64 = 1
)
