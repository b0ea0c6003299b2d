// Package config holds the manager's configuration: the TOML file given with --config, the
// defaults used without one, and the checks that both must pass.
//
// The flow is: DefaultConfig (or Load / Parse of a file, which starts from the defaults), then
// cmd/ applies its flags on top, then Validate. Parse runs the same checks as Validate but
// reports every bad value with its file, line and key, all at once.
//
// The package reads no environment variables and no flags (STYLE.md §11): values that depend
// on the environment, such as the default control socket path, are computed from arguments.
package config

import (
	"net/netip"
	"slices"
	"time"

	"github.com/reinforce-nfv/reinforce/ctlmsg"
)

// Config is the whole manager configuration. It is a plain value with no locks: any number of
// goroutines may read one, but writes need the caller's synchronisation. Copies share their
// slices, so use Clone before changing a copy's lists.
type Config struct {
	// Manager is the [manager] table.
	Manager Manager
	// Ports is the [[port]] list; IDs are unique.
	Ports []Port
	// Chains is the [[chain]] list; names are unique.
	Chains []Chain
	// NFs is the [[nf]] list: NFs the manager launches itself. May be empty.
	NFs []NF
	// Flows is the [[flow]] list: the flow director's exact entries and rules, in file order
	// (which breaks ties between rules of equal priority). May be empty.
	Flows []Flow
	// Replication is the [replication] table: chains replicated to (or from) another
	// manager. No chains: nothing is replicated.
	Replication Replication
	// Arbiter is the [arbiter] table: the failover arbiter this manager reports to, or is.
	// The zero value: none.
	Arbiter Arbiter
}

// Manager is the [manager] table. Field comments give the TOML key.
type Manager struct {
	// Name is the region and control socket base name (name), [A-Za-z0-9_-]{1,32}.
	Name string
	// RegionDir is where the region file is created (region_dir); "" picks a hugetlbfs mount
	// if one is found, else /dev/shm. Absolute when set.
	RegionDir string
	// ControlSocket is the control socket path (control_socket); "" means the default from
	// ControlSocketPath. Absolute when set.
	ControlSocket string
	// PoolSlots is the packet pool size in slots (pool_slots).
	PoolSlots int
	// DataBytes is the per-slot data room in bytes (data_bytes). Slots are sized with
	// the SlotDataBytes method, which accounts for Jumbo.
	DataBytes int
	// Jumbo enables jumbo frames (jumbo), ONVM -j.
	Jumbo bool
	// RingSize is the per-edge ring capacity in entries (ring_size), a power of two.
	RingSize int
	// Burst is the burst size in packets (burst).
	Burst int
	// StatsInterval is the stats and control period (stats_interval_s), ONVM -z.
	StatsInterval time.Duration
	// StatsOut is where stats go (stats_out), ONVM -s.
	StatsOut StatsOut
	// Verbosity is ONVM's -v level (verbosity), 1..3.
	Verbosity int
	// TTL stops the manager after this long (ttl_s), ONVM -t; 0 is off.
	TTL time.Duration
	// PacketLimitM stops the manager after this many million port RX packets
	// (packet_limit_m), ONVM -l; 0 is off.
	PacketLimitM int64
	// SharedCPU turns on shared-core (sleep/wake) mode (shared_cpu), ONVM -c.
	SharedCPU bool
	// DeadNFPolicy says what happens to a dead NF's rings and slots (dead_nf_policy).
	DeadNFPolicy DeadNFPolicy
	// DeadNFGrace is how long DeadNFRetain keeps them for a restart (dead_nf_grace_ms).
	DeadNFGrace time.Duration
	// HangTimeout is how long an NF's loop may stand still, while awake or
	// while packets wait for it, before the manager kills it as hung
	// (hang_timeout_ms); 0 turns hang detection off.
	HangTimeout time.Duration
	// DefaultChain names the chain that port traffic enters (default_chain).
	DefaultChain string
	// NumServices bounds service IDs to 1..NumServices-1 (num_services), ONVM -r; 0 means
	// MaxServiceID+1. NFs asking for a larger service are refused with ONVM's NF_SERVICE_MAX.
	NumServices int
	// Cores is a CPU list such as "0-1,3" (cores); "" means no restriction. After Parse it
	// holds only CPUs present on the machine (see ParseCPUList).
	Cores string
}

// Port is one [[port]] entry. Field comments give the TOML key.
type Port struct {
	// ID is the port number (id), 0..31, unique.
	ID int
	// Driver is the port driver (driver).
	Driver Driver
	// Iface is the network interface (iface); required by afpacket, optional for dpdk.
	Iface string
	// Path is the pcap input file (path); pcap only.
	Path string
	// OutPath is the pcap output file (out_path); pcap only.
	OutPath string
	// RatePPS is the null generator's rate in packets per second (rate_pps); 0 is unpaced.
	RatePPS int64
	// PktBytes is the null generator's frame size in bytes (pkt_bytes), 60..9600.
	PktBytes int
	// Loop replays the pcap input file forever (loop); pcap only.
	Loop bool
}

// Chain is one [[chain]] entry. Field comments give the TOML key.
type Chain struct {
	// Name identifies the chain (name), unique and non-empty.
	Name string
	// Services lists service IDs in order (services), 1..MaxChainLen entries of 1..31.
	Services []int
	// OutPort is the port the chain exits on (out_port), or OutPortDrop.
	OutPort int
}

// NF is one [[nf]] entry: an NF the manager launches itself. Field comments give the TOML key.
type NF struct {
	// Tag is the NF's name (tag), 1..MaxTagBytes bytes (ONVM: TAG_SIZE).
	Tag string
	// Service is the NF's service ID (service), 1..31.
	Service int
	// Instance is the NF's instance ID (instance); 0 lets the manager pick one, else
	// 1..127 and unique among NFs.
	Instance int
	// Command is the program and its arguments (command); Command[0] is non-empty.
	Command []string
	// Standby asks for a standby process (standby).
	Standby Standby
}

// Flow is one [[flow]] entry: packets of the flows it matches enter Chain rather than the
// default chain (manager/flowdir). A zero field matches anything. An entry whose fields are
// all exact (Exact) is an exact 5-tuple entry; any other is a wildcard rule. Field comments
// give the TOML key.
type Flow struct {
	// Chain names the chain matching packets enter (chain), a configured [[chain]].
	Chain string
	// Src and Dst match the source and destination address (src, dst): an IPv4 or IPv6
	// prefix with no host bits set; a plain address in the file means /32 or /128. A
	// v4-mapped prefix (::ffff:a.b.c.d/96+n) is read as the IPv4 prefix a.b.c.d/n. The zero
	// Prefix matches any address. An IPv4 prefix matches IPv4 flows only, an IPv6 one IPv6
	// flows only, so Src and Dst, when both set, are of one family.
	Src, Dst netip.Prefix
	// SrcPorts and DstPorts are inclusive port ranges, low then high (src_port, dst_port:
	// 80 or "1000-2000"); [0, 0] matches any port. Only TCP and UDP flows have ports.
	SrcPorts, DstPorts [2]uint16
	// Proto is the IP protocol number (proto: "tcp", "udp", "icmp", "icmpv6" or 1..255); 0
	// matches any.
	Proto uint8
	// Priority orders rules (priority): a higher one is tried first, and among equals the
	// earlier entry. Exact entries ignore it: they win over every rule.
	Priority int
}

// Exact reports whether f names one flow in one direction: both addresses full-length, both
// ports single, Proto set. The manager puts such an entry in the flow director's exact table;
// any other is a rule. ICMP flows have no ports, so an ICMP entry is always a rule.
func (f Flow) Exact() bool {
	full := func(p netip.Prefix) bool { return p.IsValid() && p.Bits() == p.Addr().BitLen() }
	single := func(r [2]uint16) bool { return r[0] != 0 && r[0] == r[1] }
	return full(f.Src) && full(f.Dst) && single(f.SrcPorts) && single(f.DstPorts) && f.Proto != 0
}

// Driver names a port driver. The TOML spelling is the value, so it needs no String method.
type Driver string

// Port drivers (ARCHITECTURE.md, Ports).
const (
	// DriverNull generates frames on RX and discards TX; needs no NIC and no root.
	DriverNull Driver = "null"
	// DriverLoop sends TX frames back to RX.
	DriverLoop Driver = "loop"
	// DriverAFPacket uses a Linux AF_PACKET socket on Iface.
	DriverAFPacket Driver = "afpacket"
	// DriverPcap reads frames from Path and writes them to OutPath.
	DriverPcap Driver = "pcap"
	// DriverDPDK drives a NIC through DPDK (dpdk build tag).
	DriverDPDK Driver = "dpdk"
)

// StatsOut names where stats are written. The TOML spelling is the value.
type StatsOut string

// Stats outputs: ONVM -s stdout|stderr|web, plus none, ONVM's default when -s is absent.
const (
	// StatsStdout writes stats to standard output.
	StatsStdout StatsOut = "stdout"
	// StatsStderr writes stats to standard error.
	StatsStderr StatsOut = "stderr"
	// StatsWeb serves stats as JSON for the web console.
	StatsWeb StatsOut = "web"
	// StatsNone writes no stats.
	StatsNone StatsOut = "none"
)

// DeadNFPolicy says what the manager does with the rings and slots of an NF that died with no
// standby to take over (RESILIENCY.md, Local standby). The TOML spelling is the value.
type DeadNFPolicy string

// Dead-NF policies.
const (
	// DeadNFReclaim frees the dead NF's rings and slots at once.
	DeadNFReclaim DeadNFPolicy = "reclaim"
	// DeadNFRetain keeps them for Manager.DeadNFGrace so a restarted NF continues from them.
	DeadNFRetain DeadNFPolicy = "retain"
)

// Standby says whether an NF gets a standby process. The TOML spelling is the value.
type Standby string

// Standby kinds.
const (
	// StandbyNone runs the NF alone.
	StandbyNone Standby = ""
	// StandbyLocal runs a second process of the NF on this server, attached and idle, that
	// takes over when the active dies (RESILIENCY.md, Local standby).
	StandbyLocal Standby = "local"
)

// DefaultConfig returns the configuration used without a file: one null port (ID 0) and a
// chain "default" of service 1 that exits on it, so the manager runs with no file, no NIC and
// no root. It returns a fresh value each call; the caller owns its slices.
func DefaultConfig() Config {
	return Config{
		Manager: Manager{
			Name:          DefaultName,
			PoolSlots:     DefaultPoolSlots,
			DataBytes:     DefaultDataBytes,
			RingSize:      DefaultRingSize,
			Burst:         DefaultBurst,
			StatsInterval: DefaultStatsIntervalS * time.Second,
			StatsOut:      StatsStdout,
			Verbosity:     MinVerbosity,
			DeadNFPolicy:  DeadNFReclaim,
			DeadNFGrace:   DefaultDeadNFGraceMS * time.Millisecond,
			HangTimeout:   DefaultHangTimeoutMS * time.Millisecond,
			DefaultChain:  DefaultChainName,
			NumServices:   MaxServiceID + 1,
		},
		Ports:       []Port{defaultPort()},
		Chains:      []Chain{{Name: DefaultChainName, Services: []int{DefaultServiceID}, OutPort: 0}},
		Replication: defaultReplication(),
	}
}

// defaultPort is a [[port]] entry before its keys are applied: a null port with ID 0.
func defaultPort() Port {
	return Port{ID: 0, Driver: DriverNull, PktBytes: DefaultPktBytes}
}

// Clone returns a deep copy of c that shares no slices with it, so cmd/ can change lists
// without touching the original.
func (c Config) Clone() Config {
	out := c
	out.Ports = slices.Clone(c.Ports)
	out.Chains = slices.Clone(c.Chains)
	for i := range out.Chains {
		out.Chains[i].Services = slices.Clone(out.Chains[i].Services)
	}
	out.NFs = slices.Clone(c.NFs)
	for i := range out.NFs {
		out.NFs[i].Command = slices.Clone(out.NFs[i].Command)
	}
	out.Flows = slices.Clone(c.Flows)
	out.Replication.Chains = slices.Clone(c.Replication.Chains)
	for i := range out.Replication.Chains {
		out.Replication.Chains[i].Instances = slices.Clone(out.Replication.Chains[i].Instances)
	}
	out.Arbiter.Chains = slices.Clone(c.Arbiter.Chains)
	out.Arbiter.VIP = slices.Clone(c.Arbiter.VIP)
	for i := range out.Arbiter.Chains {
		ac := &out.Arbiter.Chains[i]
		ac.Members, ac.Ports, ac.Addresses = slices.Clone(ac.Members), slices.Clone(ac.Ports), slices.Clone(ac.Addresses)
	}
	return out
}

// SlotDataBytes returns the data room to size pool slots with, in bytes: DataBytes, raised to
// JumboDataBytes when Jumbo is set (jumbo = true means 9728, as ONVM -j sizes its mbufs for
// 9600-byte frames). Slot sizing MUST use it rather than DataBytes.
func (m Manager) SlotDataBytes() int {
	if m.Jumbo && m.DataBytes < JumboDataBytes {
		return JumboDataBytes
	}
	return m.DataBytes
}

// ControlSocketPath returns the control socket path: ControlSocket when set, else
// <xdgRuntimeDir>/reinforce/<name>.sock, or /tmp/reinforce-<uid>/<name>.sock when
// xdgRuntimeDir is "". The caller passes $XDG_RUNTIME_DIR and the user ID, because nothing
// below cmd/ reads the environment (STYLE.md §11).
func (m Manager) ControlSocketPath(xdgRuntimeDir string, uid int) string {
	if m.ControlSocket != "" {
		return m.ControlSocket
	}
	return ctlmsg.DefaultSocketPath(m.Name, xdgRuntimeDir, uid)
}

// ServiceLimit returns the largest service ID this configuration admits: NumServices-1,
// or MaxServiceID when NumServices is 0 (unset) or larger.
func (m Manager) ServiceLimit() int {
	if m.NumServices <= 0 || m.NumServices > MaxServiceID+1 {
		return MaxServiceID
	}
	return m.NumServices - 1
}

// Port returns the port with the given ID, and whether there is one.
func (c *Config) Port(id int) (Port, bool) {
	for _, p := range c.Ports {
		if p.ID == id {
			return p, true
		}
	}
	return Port{}, false
}

// Chain returns the chain with the given name, and whether there is one. Its Services slice
// is shared with c.
func (c *Config) Chain(name string) (Chain, bool) {
	for _, ch := range c.Chains {
		if ch.Name == name {
			return ch, true
		}
	}
	return Chain{}, false
}
