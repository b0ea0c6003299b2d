package config

// Limits fixed by OpenNetVM (ONVM-COMPAT.md §1.2, §2.1). Configs written for ONVM must keep
// working, so these bound what the manager accepts.
const (
	// MaxServiceID is the largest service ID; 0 is rejected by ONVM NFs, so IDs are 1..31.
	// ONVM: MAX_SERVICES (32).
	MaxServiceID = 31
	// MaxInstanceID is the largest NF instance ID; ID 0 is reserved, so IDs are 1..127.
	// ONVM: MAX_NFS (128).
	MaxInstanceID = 127
	// MaxNFs is how many [[nf]] entries the manager launches at most, one per instance ID.
	MaxNFs = MaxInstanceID
	// MaxTagBytes is the longest NF tag in bytes. ONVM: TAG_SIZE (15) including the NUL.
	MaxTagBytes = 14
	// DefaultBurst is the number of packets moved per burst. ONVM: PACKET_READ_SIZE.
	DefaultBurst = 32
	// DefaultStatsIntervalS is the stats period in seconds. ONVM: -z default 1.
	DefaultStatsIntervalS = 1
	// MinVerbosity and MaxVerbosity bound ONVM's -v: 1 normal, 2 verbose, 3 raw CSV dump.
	// ONVM indexes out of bounds at 4 or more (a quirk we reject instead).
	MinVerbosity, MaxVerbosity = 1, 3
	// PacketLimitUnit is what packet_limit_m is multiplied by, in packets.
	// ONVM: PKT_TTL_MULTIPLIER.
	PacketLimitUnit = 1_000_000
	// JumboFrameBytes is the largest frame payload with jumbo frames on, in bytes; ONVM -j sets
	// max_rx_pkt_len to this plus CRC (4) and the Ethernet header (14).
	JumboFrameBytes = 9600
)

// Implementation choices.
const (
	// DefaultName names the region and the control socket unless configured otherwise.
	DefaultName = "reinforce"
	// MaxNameBytes bounds manager.name, which ends up in file and socket names.
	MaxNameBytes = 32

	// MinPoolSlots is the smallest packet pool, in slots: below it per-process caches and
	// rings starve each other.
	MinPoolSlots = 1024
	// MaxPoolSlots is the largest packet pool, in slots: a slot reference keeps 24 bits of
	// index (shm).
	MaxPoolSlots = 1<<24 - 1
	// DefaultPoolSlots is ONVM's NUM_MBUFS (32767) rounded up to a power of two, in slots.
	DefaultPoolSlots = 32768

	// DefaultDataBytes is a slot's data room in bytes: one standard frame fits.
	DefaultDataBytes = 2048
	// JumboDataBytes is the data room with jumbo = true, in bytes: JumboFrameBytes + CRC 4 +
	// Ethernet 14 = 9618, rounded up to 128 bytes (two cache lines).
	JumboDataBytes = 9728
	// MinDataBytes is the smallest data room in bytes: a minimum frame (60 bytes) rounded up to
	// a cache line.
	MinDataBytes = 64
	// MaxDataBytes is the largest data room in bytes, as in shm.
	MaxDataBytes = 65536

	// MinRingSize and MaxRingSize bound the per-edge ring capacity, in entries.
	MinRingSize, MaxRingSize = 64, 65536
	// DefaultRingSize is the per-edge ring capacity, in entries. ONVM's NF_QUEUE_RINGSIZE is
	// 16384, but ONVM has two rings per NF while we have one per edge, so less per ring.
	DefaultRingSize = 4096
	// MaxBurst is the largest burst in packets; burst loops keep a fixed array this size.
	MaxBurst = 64

	// MaxPortID is the largest port ID: ports are numbered like DPDK ports, and ONVM's port mask
	// is 32 bits wide.
	MaxPortID = 31
	// MinPktBytes and MaxPktBytes bound the null generator's frame size, in bytes without CRC:
	// the Ethernet minimum and ONVM's jumbo maximum.
	MinPktBytes, MaxPktBytes = 60, JumboFrameBytes
	// DefaultPktBytes is the null generator's frame size, in bytes: a minimum frame plus CRC,
	// as packet generators count it.
	DefaultPktBytes = 64

	// MaxChainLen is the longest service chain, in services. ONVM's ONVM_MAX_CHAIN_LENGTH is 4
	// with an off-by-one that leaves 3 usable entries; we do not copy that limit.
	MaxChainLen = 16
	// OutPortDrop as a chain's out_port drops packets at the end of the chain.
	OutPortDrop = -1
	// DefaultChainName is the chain that port traffic enters unless configured otherwise.
	DefaultChainName = "default"
	// DefaultServiceID is the one service of the built-in default chain. ONVM: DEFAULT_SERVICE_ID.
	DefaultServiceID = 1

	// DefaultDeadNFGraceMS is how long retain keeps a dead NF's rings and slots, in milliseconds.
	DefaultDeadNFGraceMS = 2000
	// DefaultHangTimeoutMS is how long an NF's loop may stand still before it is killed as hung,
	// in milliseconds: well above an idle NF's longest sleep (it marks itself asleep anyway)
	// and a busy VM's scheduling hiccups.
	DefaultHangTimeoutMS = 300

	// MaxCPUs bounds CPU numbers in core lists and masks: Linux's largest NR_CPUS is 8192.
	MaxCPUs = 8192

	// maxNesting bounds how deep tables, arrays and dotted keys nest in a file, in levels. Ours
	// need 3; BurntSushi/toml takes time quadratic in the depth (seconds at 10000).
	maxNesting = 32

	// maxSocketPathBytes is the longest Unix socket path: sun_path holds 108 bytes with the NUL.
	maxSocketPathBytes = 107
)
