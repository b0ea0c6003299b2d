package config

import (
	"math"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/reinforce-nfv/reinforce/pkt"
)

// Validate checks c as Parse checks a file, so cmd/ can call it after applying flags. It
// returns every *Error found, joined with errors.Join, or nil. Errors carry no file or line;
// Key is the TOML key path. Validate does not clamp Cores to this machine's CPUs (it cannot
// return a warning): call ParseCPUList for that. It is safe for concurrent use.
func (c Config) Validate() error {
	r := &reporter{}
	c.check(r, false)
	return r.err()
}

// check reports every bad value of c to r. builtinChains says Chains are DefaultConfig's
// (a file gave [[port]] but no [[chain]]), which an out_port error then explains.
func (c *Config) check(r *reporter, builtinChains bool) {
	c.checkManager(r)
	c.checkPorts(r)
	c.checkChains(r, builtinChains)
	c.checkNFs(r)
	c.checkFlows(r)
	c.checkReplication(r)
	c.checkArbiter(r)
}

func (c *Config) checkManager(r *reporter) {
	m := &c.Manager
	if !validName(m.Name) {
		r.errorf("manager.name", "%q must be 1..%d characters of A-Z a-z 0-9 _ -, as it names files and sockets", m.Name, MaxNameBytes)
	}
	checkPath(r, "manager.region_dir", m.RegionDir, "NFs started from any directory find the region")
	checkPath(r, "manager.control_socket", m.ControlSocket, "NFs started from any directory find the socket")
	if len(m.ControlSocket) > maxSocketPathBytes {
		r.errorf("manager.control_socket", "path is %d bytes; a Unix socket path holds at most %d", len(m.ControlSocket), maxSocketPathBytes)
	}
	checkRange(r, "manager.pool_slots", int64(m.PoolSlots), MinPoolSlots, MaxPoolSlots)
	checkRange(r, "manager.data_bytes", int64(m.DataBytes), MinDataBytes, MaxDataBytes)
	if checkRange(r, "manager.ring_size", int64(m.RingSize), MinRingSize, MaxRingSize) && m.RingSize&(m.RingSize-1) != 0 {
		r.errorf("manager.ring_size", "%d is not a power of two", m.RingSize)
	}
	checkRange(r, "manager.burst", int64(m.Burst), 1, MaxBurst)
	if m.StatsInterval <= 0 {
		r.errorf("manager.stats_interval_s", "must be > 0, got %s", inUnit(m.StatsInterval, time.Second))
	}
	checkEnum(r, "manager.stats_out", string(m.StatsOut), StatsStdout, StatsStderr, StatsWeb, StatsNone)
	checkRange(r, "manager.verbosity", int64(m.Verbosity), MinVerbosity, MaxVerbosity)
	if m.TTL < 0 {
		r.errorf("manager.ttl_s", "must be >= 0 (0 is off), got %s", inUnit(m.TTL, time.Second))
	}
	checkRange(r, "manager.packet_limit_m", m.PacketLimitM, 0, math.MaxInt64/PacketLimitUnit)
	checkRange(r, "manager.num_services", int64(m.NumServices), 0, MaxServiceID+1)
	checkEnum(r, "manager.dead_nf_policy", string(m.DeadNFPolicy), DeadNFReclaim, DeadNFRetain)
	if m.HangTimeout < 0 {
		r.errorf("manager.hang_timeout_ms", "must be >= 0 (0 turns hang detection off), got %s", inUnit(m.HangTimeout, time.Millisecond))
	}
	if m.DeadNFGrace < 0 {
		r.errorf("manager.dead_nf_grace_ms", "must be >= 0, got %s", inUnit(m.DeadNFGrace, time.Millisecond))
	}
	if m.DefaultChain == "" {
		r.errorf("manager.default_chain", "must name a [[chain]]")
	} else if _, ok := c.Chain(m.DefaultChain); !ok {
		r.errorf("manager.default_chain", "%q names no configured chain (chains: %s); name a chain %q or set manager.default_chain", m.DefaultChain, c.chainNames(), m.DefaultChain)
	}
	if m.Cores != "" {
		// Syntax only: clamping to this machine's CPUs is a warning, which Parse adds.
		if _, _, err := ParseCPUList(m.Cores, MaxCPUs); err != nil {
			r.errorf("manager.cores", "%v", err)
		}
	}
}

func (c *Config) checkPorts(r *reporter) {
	first := make(map[int]int) // port ID → index of its first port
	for i, p := range c.Ports {
		key := indexKey("port", i)
		if checkRange(r, key+".id", int64(p.ID), 0, MaxPortID) {
			if j, dup := first[p.ID]; dup {
				r.errorf(key+".id", "duplicate port id %d, already used by port[%d]", p.ID, j)
			} else {
				first[p.ID] = i
			}
		}
		checkEnum(r, key+".driver", string(p.Driver), DriverNull, DriverLoop, DriverAFPacket, DriverPcap, DriverDPDK)
		switch {
		case p.Driver == DriverAFPacket && p.Iface == "":
			r.errorf(key+".iface", "driver afpacket needs an interface name")
		case p.Iface != "" && p.Driver != DriverAFPacket && p.Driver != DriverDPDK:
			r.errorf(key+".iface", "is used only by drivers afpacket and dpdk, not %s", p.Driver)
		}
		if p.Driver == DriverPcap {
			if p.Path == "" && p.OutPath == "" {
				r.errorf(key+".path", "driver pcap needs path (input) or out_path (output), or both")
			}
			if p.Loop && p.Path == "" {
				r.errorf(key+".loop", "needs a path to loop over")
			}
		} else {
			if p.Path != "" {
				r.errorf(key+".path", "is used only by driver pcap, not %s", p.Driver)
			}
			if p.OutPath != "" {
				r.errorf(key+".out_path", "is used only by driver pcap, not %s", p.Driver)
			}
			if p.Loop {
				r.errorf(key+".loop", "is used only by driver pcap, not %s", p.Driver)
			}
		}
		if p.RatePPS < 0 {
			r.errorf(key+".rate_pps", "must be >= 0 (0 is unpaced), got %d", p.RatePPS)
		}
		if checkRange(r, key+".pkt_bytes", int64(p.PktBytes), MinPktBytes, MaxPktBytes) {
			// Only against a valid data room: a bad data_bytes is reported once, on its own key.
			room := c.Manager.SlotDataBytes()
			if p.Driver == DriverNull && room >= MinDataBytes && room <= MaxDataBytes && p.PktBytes > room {
				r.errorf(key+".pkt_bytes", "%d exceeds the slot data room of %d bytes (set manager.jumbo = true or raise manager.data_bytes)", p.PktBytes, room)
			}
		}
	}
}

func (c *Config) checkChains(r *reporter, builtinChains bool) {
	first := make(map[string]int) // chain name → index of its first chain
	for i, ch := range c.Chains {
		key := indexKey("chain", i)
		if ch.Name == "" {
			r.errorf(key+".name", "must not be empty")
		} else if j, dup := first[ch.Name]; dup {
			r.errorf(key+".name", "duplicate chain name %q, already used by chain[%d]", ch.Name, j)
		} else {
			first[ch.Name] = i
		}
		switch n := len(ch.Services); {
		case n == 0:
			r.errorf(key+".services", "must list at least one service")
		case n > MaxChainLen:
			r.errorf(key+".services", "lists %d services; at most %d", n, MaxChainLen)
		}
		for k, s := range ch.Services {
			if s < 1 || s > c.Manager.ServiceLimit() {
				r.errorf(indexKey(key+".services", k), "service %d out of range 1..%d%s", s, c.Manager.ServiceLimit(), c.numServicesHint())
			}
		}
		if ch.OutPort != OutPortDrop {
			if _, ok := c.Port(ch.OutPort); !ok {
				hint := ""
				if builtinChains {
					hint = "; this is the built-in default chain, define [[chain]] to change it"
				}
				r.errorf(key+".out_port", "port %d is not configured (ports: %s; %d drops at chain end)%s", ch.OutPort, c.portIDs(), OutPortDrop, hint)
			}
		}
	}
}

func (c *Config) checkNFs(r *reporter) {
	if len(c.NFs) > MaxNFs {
		r.errorf("nf", "%d NFs; at most %d (ONVM MAX_NFS)", len(c.NFs), MaxNFs)
	}
	first := make(map[int]int) // instance ID → index of its first NF
	for i, nf := range c.NFs {
		key := indexKey("nf", i)
		switch {
		case nf.Tag == "":
			r.errorf(key+".tag", "must not be empty")
		case len(nf.Tag) > MaxTagBytes:
			r.errorf(key+".tag", "%q is %d bytes; at most %d (ONVM TAG_SIZE)", nf.Tag, len(nf.Tag), MaxTagBytes)
		case strings.IndexByte(nf.Tag, 0) >= 0:
			r.errorf(key+".tag", "must not contain a NUL byte")
		}
		if nf.Service < 1 || nf.Service > c.Manager.ServiceLimit() {
			r.errorf(key+".service", "service %d out of range 1..%d%s", nf.Service, c.Manager.ServiceLimit(), c.numServicesHint())
		}
		if nf.Instance != 0 {
			if nf.Instance < 1 || nf.Instance > MaxInstanceID {
				r.errorf(key+".instance", "instance %d out of range 1..%d (0 picks one)", nf.Instance, MaxInstanceID)
			} else if j, dup := first[nf.Instance]; dup {
				r.errorf(key+".instance", "duplicate instance %d, already used by nf[%d]", nf.Instance, j)
			} else {
				first[nf.Instance] = i
			}
		}
		switch {
		case len(nf.Command) == 0:
			r.errorf(key+".command", "must name a program to run")
		case nf.Command[0] == "":
			r.errorf(indexKey(key+".command", 0), "program name must not be empty")
		}
		for k, arg := range nf.Command {
			if strings.IndexByte(arg, 0) >= 0 {
				r.errorf(indexKey(key+".command", k), "must not contain a NUL byte")
			}
		}
		checkEnum(r, key+".standby", string(nf.Standby), StandbyNone, StandbyLocal)
		if nf.Standby == StandbyLocal && nf.Instance == 0 {
			r.errorf(key+".standby", "a standby stands by for one instance: give this NF an explicit instance")
		}
	}
}

func (c *Config) checkFlows(r *reporter) {
	// An exact entry's 5-tuple → index of its first entry.
	type tuple struct {
		src, dst netip.Prefix
		sp, dp   [2]uint16
		proto    uint8
	}
	first := make(map[tuple]int)
	for i, f := range c.Flows {
		key := indexKey("flow", i)
		if f.Chain == "" {
			r.errorf(key+".chain", "must name a [[chain]]")
		} else if _, ok := c.Chain(f.Chain); !ok {
			r.errorf(key+".chain", "%q names no configured chain (chains: %s)", f.Chain, c.chainNames())
		}
		srcOK := checkPrefix(r, key+".src", f.Src)
		if checkPrefix(r, key+".dst", f.Dst) && srcOK && f.Src.IsValid() && f.Dst.IsValid() && isIPv4Prefix(f.Src) != isIPv4Prefix(f.Dst) {
			r.errorf(key+".dst", "%s is %s but src %s is %s; a flow has one address family", f.Dst, familyName(f.Dst), f.Src, familyName(f.Src))
		}
		for _, p := range []struct {
			name string
			r    [2]uint16
		}{{"src_port", f.SrcPorts}, {"dst_port", f.DstPorts}} {
			switch {
			case p.r[0] > p.r[1]:
				r.errorf(key+"."+p.name, "range %d-%d is backwards", p.r[0], p.r[1])
			case p.r != [2]uint16{} && f.Proto != 0 && f.Proto != pkt.ProtoTCP && f.Proto != pkt.ProtoUDP:
				r.errorf(key+"."+p.name, "only tcp and udp flows have ports, not proto %s", protoName(f.Proto))
			}
		}
		// ICMP is IPv4's and ICMPv6 IPv6's: the other family's prefix can never match.
		for _, p := range []netip.Prefix{f.Src, f.Dst} {
			if f.Proto == pkt.ProtoICMP && p.IsValid() && !isIPv4Prefix(p) {
				r.errorf(key+".proto", "IPv6 flows never carry icmp; use \"icmpv6\"")
				break
			}
			if f.Proto == pkt.ProtoICMPv6 && p.IsValid() && isIPv4Prefix(p) {
				r.errorf(key+".proto", "IPv4 flows never carry icmpv6; use \"icmp\"")
				break
			}
		}
		if f.Exact() {
			t := tuple{unmapped(f.Src), unmapped(f.Dst), f.SrcPorts, f.DstPorts, f.Proto}
			if j, dup := first[t]; dup {
				r.errorf(key, "duplicate exact flow, already given by flow[%d]", j)
			} else {
				first[t] = i
			}
		}
	}
}

// checkPrefix reports a set prefix that is invalid or has host bits set, and returns whether
// p is usable (the zero Prefix is: it matches any address).
func checkPrefix(r *reporter, key string, p netip.Prefix) bool {
	switch {
	case p == netip.Prefix{}:
	case !p.IsValid(): // only from code: netip.PrefixFrom with a bad length keeps the address
		r.errorf(key, "prefix of %s has a length out of range 0..%d", p.Addr(), p.Addr().BitLen())
		return false
	case p != p.Masked():
		r.errorf(key, "%s has host bits set; did you mean %s?", p, p.Masked())
		return false
	}
	return true
}

// checkRange reports v outside lo..hi and returns whether v is inside.
func checkRange(r *reporter, key string, v, lo, hi int64) bool {
	if v < lo || v > hi {
		r.errorf(key, "%d out of range %d..%d", v, lo, hi)
		return false
	}
	return true
}

// checkEnum reports v not among allowed, listing them.
func checkEnum[T ~string](r *reporter, key, v string, allowed ...T) {
	names := make([]string, len(allowed))
	for i, a := range allowed {
		if string(a) == v {
			return
		}
		names[i] = strconv.Quote(string(a))
	}
	r.errorf(key, "%q is not one of %s", v, strings.Join(names, ", "))
}

// checkPath reports a path that is set but not absolute; why says what an absolute path buys.
func checkPath(r *reporter, key, path, why string) {
	switch {
	case path == "":
	case strings.IndexByte(path, 0) >= 0:
		r.errorf(key, "must not contain a NUL byte")
	case !filepath.IsAbs(path):
		r.errorf(key, "%q must be an absolute path, so %s", path, why)
	}
}

// validName reports whether s matches [A-Za-z0-9_-]{1,MaxNameBytes}.
func validName(s string) bool {
	return len(s) <= MaxNameBytes && isBareKey(s)
}

// inUnit formats d as a whole number of unit when it is one (the TOML key's unit), else as a
// Go duration.
func inUnit(d, unit time.Duration) string {
	if d%unit == 0 {
		return strconv.FormatInt(int64(d/unit), 10)
	}
	return d.String()
}

// numServicesHint explains a service bound lowered by manager.num_services.
func (c *Config) numServicesHint() string {
	if c.Manager.ServiceLimit() < MaxServiceID {
		return " (manager.num_services = " + strconv.Itoa(c.Manager.NumServices) + ")"
	}
	return ""
}

func (c *Config) chainNames() string {
	if len(c.Chains) == 0 {
		return "none"
	}
	names := make([]string, len(c.Chains))
	for i, ch := range c.Chains {
		names[i] = strconv.Quote(ch.Name)
	}
	return strings.Join(names, ", ")
}

func (c *Config) portIDs() string {
	if len(c.Ports) == 0 {
		return "none"
	}
	ids := make([]string, len(c.Ports))
	for i, p := range c.Ports {
		ids[i] = strconv.Itoa(p.ID)
	}
	return strings.Join(ids, ", ")
}
