package shm

// Constants fixed by OpenNetVM (ONVM-COMPAT.md §2.1, §2.3).
const (
	// BurstSize is the default burst everywhere. ONVM: PACKET_READ_SIZE.
	BurstSize = 32

	// ActionDrop frees the packet. ONVM: ONVM_NF_ACTION_DROP.
	ActionDrop uint8 = 0
	// ActionNext goes to the next entry of the packet's chain. ONVM: ONVM_NF_ACTION_NEXT.
	ActionNext uint8 = 1
	// ActionToNF sends to the service in Destination. ONVM: ONVM_NF_ACTION_TONF.
	ActionToNF uint8 = 2
	// ActionOut sends out of the port in Destination. ONVM: ONVM_NF_ACTION_OUT.
	ActionOut uint8 = 3
)

// Implementation choices.
const (
	// CacheLineBytes is the unit of alignment and padding in the region.
	CacheLineBytes = 64
	// HeadroomBytes precedes a slot's data so encapsulation is written in place.
	HeadroomBytes = 128
	// DefaultDataBytes is a slot's data room unless configured otherwise.
	DefaultDataBytes = 2048
	// JumboDataBytes holds ONVM's jumbo frame (9600 + CRC 4 + Ethernet 14), rounded up (as manager/config sizes it).
	JumboDataBytes = 9728
	// MinDataBytes is the smallest data room a region accepts (tests use it).
	MinDataBytes = 64
	// MaxDataBytes bounds a slot's data room.
	MaxDataBytes = 65536

	// MaxSlots is the largest pool: slot references keep 24 bits of index.
	MaxSlots = 1 << slotIndexBits
	// MaxRings bounds the edge-ring table (a ring ID is 16 bits in a slot's state word).
	MaxRings = 1 << 16
	// MaxOwners bounds the owners (allocation caches) of one region; owner 0 means none.
	MaxOwners = 1 << 12
	// MaxRingCap is the largest ring capacity in entries.
	MaxRingCap = 1 << 24
	// MaxBurst is the largest burst the rings and caches accept in one call.
	MaxBurst = 256

	// HeaderBytes is the size of the region header (one small page).
	HeaderBytes = 4096
	// HugePageBytes is the hugetlbfs page size the region is rounded to on hugetlbfs.
	HugePageBytes = 2 << 20

	// LayoutVersion changes whenever any structure another process reads changes.
	LayoutVersion uint32 = 1
)

// regionMagic opens every region file.
var regionMagic = [8]byte{'R', 'N', 'F', 'R', 'C', 'S', 'H', 'M'}
