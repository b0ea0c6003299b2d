package config

// The [arbiter] table: chain-level failover between servers (RESILIENCY.md, "Failure
// detection, arbitration and failover between servers"; docs/arbiter.md). A member manager
// names the arbiter it reports to; the manager that IS the arbiter (the ingress) serves and
// lists the chains it decides for.
//
//	# a member manager
//	[arbiter]
//	address = "10.0.0.1:7500"      # the arbiter
//	member = "a"                   # this manager's name in the arbiter's chains
//	local = "10.0.1.2:7501"        # optional: the address to send from
//	psk = "at least 16 bytes, the same everywhere"
//	profile = "default"            # BFD 1 ms x 3; "loaded": 2 ms x 3
//	lease_ms = 6                   # 0: the profile's (6 ms, loaded 12 ms)
//	rt_priority = 10               # the BFD thread's SCHED_FIFO priority; 0: normal scheduling
//	vip = ["10.0.0.100", "fd00::100"]   # optional: addresses taken over at promotion
//	vip_mac = "02:52:46:00:00:01"  # optional: default the vip_port's own MAC
//	vip_port = 1                   # the [[port]] facing the clients
//	vip_announce = 3               # announcements, 10 ms apart (0: 3)
//
//	# the arbiter (ingress)
//	[arbiter]
//	serve = "10.0.0.1:7500"
//	psk = "..."
//	profile = "default"
//
//	[[arbiter.chain]]
//	chain = "c0"
//	members = ["a", "b"]
//	primary = "a"                  # the initial primary
//	ports = [1, 2]                 # the ingress port leading to each member
//	addresses = ["10.0.1.2:7501", "10.0.2.2:7501"]   # optional, until each is heard

import (
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/reinforce-nfv/reinforce/replicator/arbiter"
)

// Limits of the [arbiter] table.
const (
	MaxArbiterLease  = time.Minute
	MaxArbiterMargin = time.Second
	// MaxVIPs bounds vip: the frames of one announcement fit one burst.
	MaxVIPs = 16
	// DefaultVIPAnnounce and MaxVIPAnnounce: how many times each address is
	// announced at a promotion (vip_announce); a few cover a lost frame,
	// more only delay nothing and flood the segment.
	DefaultVIPAnnounce = 3
	MaxVIPAnnounce     = 100
	// DefaultArbiterRTPriority is the SCHED_FIFO priority of the arbiter
	// driver's thread (rt_priority) when the table does not say: above
	// every normal task, so BFD keeps its millisecond timing however busy
	// the machine, and low among real-time priorities (the kernel's own
	// threads run at 50 and up).
	DefaultArbiterRTPriority = 10
)

// Arbiter is the [arbiter] table. The zero value configures no arbiter.
type Arbiter struct {
	// Address is the arbiter's UDP address (address): set on a member manager.
	Address netip.AddrPort
	// Member is this manager's member name (member), required with Address.
	Member string
	// Local is the UDP address a member sends from (local); zero: any.
	Local netip.AddrPort
	// Serve is the UDP address this manager serves as the arbiter on (serve).
	Serve netip.AddrPort
	// PSK authenticates messages and BFD (psk), >= MinPSKBytes bytes.
	PSK string
	// Profile names the BFD timing (profile): "default" (1 ms x 3) or "loaded" (2 ms x 3).
	Profile string
	// Lease is the lease D (lease_ms); 0 takes the profile's.
	Lease time.Duration
	// Margin is added to the arbiter's lease bound (margin_us); 0 takes the default.
	Margin time.Duration
	// RTPriority is the SCHED_FIFO priority of the driver's thread (rt_priority),
	// 0..99, 0 for normal scheduling; RTPrioritySet says the table gave it (else
	// DefaultArbiterRTPriority).
	RTPriority    int
	RTPrioritySet bool
	// Chains are the chains the arbiter decides for ([[arbiter.chain]]), with Serve only.
	Chains []ArbiterChain

	// VIP are the virtual addresses (vip, IPv4 and/or IPv6) this manager takes over
	// when one of its replicated chains is promoted here, where no ingress redirects
	// the traffic: gratuitous ARP / unsolicited neighbour advertisements out of
	// VIPPort. Not on the arbiter.
	VIP []netip.Addr
	// VIPMAC is the MAC the announcements bind VIP to (vip_mac); zero: VIPPort's own.
	VIPMAC [6]byte
	// VIPPort is the [[port]] facing the clients (vip_port), required with VIP.
	VIPPort int
	// VIPAnnounce is how many times the set is announced, 10 ms apart (vip_announce),
	// 1..MaxVIPAnnounce; 0 takes DefaultVIPAnnounce.
	VIPAnnounce int
}

// ArbiterChain is one [[arbiter.chain]] entry.
type ArbiterChain struct {
	// Chain names a configured [[chain]] (chain).
	Chain string
	// Members are the two member managers' names (members).
	Members []string
	// Primary is the initial primary, one of Members (primary).
	Primary string
	// Ports are the ingress ports leading to each member, in Members' order (ports).
	Ports []int
	// Addresses are the members' UDP addresses until they are heard from (addresses),
	// optional; in Members' order.
	Addresses []netip.AddrPort
}

// IsServer reports whether this manager is the arbiter.
func (a *Arbiter) IsServer() bool { return a.Serve.IsValid() }

// IsMember reports whether this manager reports to an arbiter.
func (a *Arbiter) IsMember() bool { return a.Address.IsValid() }

// ArbiterProfile returns the BFD profile with the lease and margin in effect.
func (a *Arbiter) ArbiterProfile() (p arbiter.Profile, lease, margin time.Duration) {
	p, err := arbiter.ProfileNamed(a.Profile)
	if err != nil {
		p = arbiter.ProfileDefault // Validate refuses it; keep callers total
	}
	lease, margin = a.Lease, a.Margin
	if lease == 0 {
		lease = p.Lease
	}
	if margin == 0 {
		margin = arbiter.DefaultMargin
	}
	return p, lease, margin
}

// ThreadPriority returns the driver thread's SCHED_FIFO priority (0: normal).
func (a *Arbiter) ThreadPriority() int {
	if !a.RTPrioritySet {
		return DefaultArbiterRTPriority
	}
	return a.RTPriority
}

// VIPAnnouncements returns how many times the VIP set is announced at a promotion.
func (a *Arbiter) VIPAnnouncements() int {
	if a.VIPAnnounce == 0 {
		return DefaultVIPAnnounce
	}
	return a.VIPAnnounce
}

// ArbiterPort returns the ingress port leading to member for chain.
func (c *Config) ArbiterPort(chain, member string) (int, bool) {
	for _, ac := range c.Arbiter.Chains {
		if ac.Chain != chain {
			continue
		}
		for i, m := range ac.Members {
			if m == member && i < len(ac.Ports) {
				return ac.Ports[i], true
			}
		}
	}
	return 0, false
}

func (d *decoder) arbiter(a *Arbiter, key string, t map[string]any) {
	d.fields(key, t, map[string]setter{
		"address":   d.addrPort(&a.Address),
		"member":    d.str(&a.Member),
		"local":     d.addrPort(&a.Local),
		"serve":     d.addrPort(&a.Serve),
		"psk":       d.str(&a.PSK),
		"profile":   d.str(&a.Profile),
		"lease_ms":  d.duration(&a.Lease, time.Millisecond),
		"margin_us": d.duration(&a.Margin, time.Microsecond),
		"rt_priority": func(key string, v any) {
			a.RTPrioritySet = true
			d.integer(&a.RTPriority)(key, v)
		},
		"vip": func(key string, v any) {
			var ss []string
			d.strList(&ss)(key, v)
			a.VIP = make([]netip.Addr, len(ss))
			for i, s := range ss {
				ip, err := netip.ParseAddr(s)
				if err != nil && s != "" {
					d.r.fail(indexKey(key, i), "%q is not an IPv4 or IPv6 address (e.g. \"10.0.0.100\" or \"fd00::100\")", s)
				}
				a.VIP[i] = ip
			}
		},
		"vip_mac": func(key string, v any) {
			s, ok := v.(string)
			if !ok {
				d.r.fail(key, "must be a string \"xx:xx:xx:xx:xx:xx\", got %s", typeName(v))
				return
			}
			hw, err := net.ParseMAC(s)
			if err != nil || len(hw) != 6 {
				d.r.fail(key, "%q is not an Ethernet MAC address (e.g. \"02:52:46:00:00:01\")", s)
				return
			}
			a.VIPMAC = [6]byte(hw)
		},
		"vip_port":     d.integer(&a.VIPPort),
		"vip_announce": d.integer(&a.VIPAnnounce),
		"chain": func(key string, v any) {
			if ts, ok := d.tables(key, v); ok {
				a.Chains = make([]ArbiterChain, len(ts))
				for i, t := range ts {
					a.Chains[i] = d.arbiterChain(indexKey(key, i), t)
				}
			}
		},
	})
	_, hasVIP := t["vip"]
	if _, ok := t["vip_port"]; hasVIP && !ok {
		d.r.fail(joinKey(key, "vip_port"), "missing; vip needs vip_port, the [[port]] facing the clients")
	}
	for _, k := range []string{"vip_mac", "vip_port", "vip_announce"} {
		if _, ok := t[k]; ok && !hasVIP {
			d.r.fail(joinKey(key, k), "without vip: list the virtual addresses to take over")
		}
	}
}

func (d *decoder) arbiterChain(key string, t map[string]any) ArbiterChain {
	var ac ArbiterChain
	d.require(key, t, "[[arbiter.chain]]", "chain", "members", "primary", "ports")
	d.fields(key, t, map[string]setter{
		"chain":   d.str(&ac.Chain),
		"members": d.strList(&ac.Members),
		"primary": d.str(&ac.Primary),
		"ports":   d.intList(&ac.Ports),
		"addresses": func(key string, v any) {
			var ss []string
			d.strList(&ss)(key, v)
			ac.Addresses = make([]netip.AddrPort, len(ss))
			for i, s := range ss {
				d.addrPort(&ac.Addresses[i])(indexKey(key, i), s)
			}
		},
	})
	return ac
}

func (c *Config) checkArbiter(r *reporter) {
	a := &c.Arbiter
	c.checkVIP(r)
	if !a.IsServer() && !a.IsMember() {
		if a.PSK != "" || a.Member != "" || a.Local.IsValid() || len(a.Chains) > 0 {
			r.errorf("arbiter", "needs address (this manager is a member) or serve (this manager is the arbiter)")
		}
		return
	}
	if a.IsServer() && a.IsMember() {
		r.errorf("arbiter.serve", "a manager is either the arbiter (serve) or a member reporting to one (address), not both")
	}
	if len(a.PSK) < arbiter.MinPSKBytes {
		r.errorf("arbiter.psk", "is %d bytes; the arbiter protocol needs a pre-shared key of at least %d", len(a.PSK), arbiter.MinPSKBytes)
	}
	if _, err := arbiter.ProfileNamed(a.Profile); err != nil {
		checkEnum(r, "arbiter.profile", a.Profile, arbiter.ProfileDefault.Name, arbiter.ProfileLoaded.Name)
	}
	if a.Lease < 0 || a.Lease > MaxArbiterLease || a.Lease%time.Millisecond != 0 {
		r.errorf("arbiter.lease_ms", "%s out of range 0..%d (0: the profile's)", inUnit(a.Lease, time.Millisecond), MaxArbiterLease/time.Millisecond)
	}
	if a.RTPriority < 0 || a.RTPriority > 99 {
		r.errorf("arbiter.rt_priority", "%d out of range 0..99 (0: normal scheduling)", a.RTPriority)
	}
	if a.Margin < 0 || a.Margin > MaxArbiterMargin {
		r.errorf("arbiter.margin_us", "%s out of range 0..%d (0: the default)", inUnit(a.Margin, time.Microsecond), MaxArbiterMargin/time.Microsecond)
	}
	if a.IsMember() {
		if a.Address.Port() == 0 {
			r.errorf("arbiter.address", "needs a non-zero port")
		}
		if !validName(a.Member) {
			r.errorf("arbiter.member", "%q must be 1..%d characters of A-Z a-z 0-9 _ -: this manager's name in the arbiter's [[arbiter.chain]] members", a.Member, MaxNameBytes)
		}
		if len(a.Chains) > 0 {
			r.errorf("arbiter.chain", "only the arbiter (serve) lists chains; a member learns its role from it")
		}
		return
	}
	if a.Serve.Port() == 0 {
		r.errorf("arbiter.serve", "needs a non-zero port")
	}
	if a.Member != "" || a.Local.IsValid() {
		r.errorf("arbiter.member", "member and local are a member manager's keys; the arbiter (serve) has neither")
	}
	if len(a.Chains) == 0 {
		r.errorf("arbiter.serve", "the arbiter decides for no chain: add [[arbiter.chain]] entries")
	}
	seen := map[string]int{}
	chainIDs := map[uint32]string{}
	memberIDs := map[uint32]string{}
	for i, ac := range a.Chains {
		key := indexKey("arbiter.chain", i)
		if _, ok := c.Chain(ac.Chain); !ok {
			r.errorf(key+".chain", "%q names no configured chain (chains: %s)", ac.Chain, c.chainNames())
		} else if j, dup := seen[ac.Chain]; dup {
			r.errorf(key+".chain", "chain %q is already arbitrated by arbiter.chain[%d]", ac.Chain, j)
		} else {
			seen[ac.Chain] = i
			if other, clash := chainIDs[arbiter.NameID(ac.Chain)]; clash {
				r.errorf(key+".chain", "chain %q has the same wire ID as %q: rename one", ac.Chain, other)
			}
			chainIDs[arbiter.NameID(ac.Chain)] = ac.Chain
		}
		if len(ac.Members) != 2 {
			r.errorf(key+".members", "lists %d members; a chain has exactly two (its primary and its standby)", len(ac.Members))
		} else if ac.Members[0] == ac.Members[1] {
			r.errorf(key+".members", "lists %q twice", ac.Members[0])
		}
		for k, m := range ac.Members {
			mk := indexKey(key+".members", k)
			if !validName(m) {
				r.errorf(mk, "%q must be 1..%d characters of A-Z a-z 0-9 _ -", m, MaxNameBytes)
				continue
			}
			if other, clash := memberIDs[arbiter.NameID(m)]; clash && other != m {
				r.errorf(mk, "member %q has the same wire ID as %q: rename one", m, other)
			}
			memberIDs[arbiter.NameID(m)] = m
		}
		// A missing primary is reported by the decoder already.
		if ac.Primary != "" && !slices.Contains(ac.Members, ac.Primary) {
			r.errorf(key+".primary", "%q is not one of the chain's members", ac.Primary)
		}
		if len(ac.Ports) != len(ac.Members) {
			r.errorf(key+".ports", "lists %d ports for %d members: one ingress port per member, in the same order", len(ac.Ports), len(ac.Members))
		}
		for k, p := range ac.Ports {
			if _, ok := c.Port(p); !ok {
				r.errorf(indexKey(key+".ports", k), "port %d is not a configured [[port]] (ports: %s)", p, c.portIDs())
			}
		}
		if len(ac.Addresses) != 0 && len(ac.Addresses) != len(ac.Members) {
			r.errorf(key+".addresses", "lists %d addresses for %d members: one per member, in the same order, or none", len(ac.Addresses), len(ac.Members))
		}
		for k, ap := range ac.Addresses {
			if ap.IsValid() && ap.Port() == 0 {
				r.errorf(indexKey(key+".addresses", k), "needs a non-zero port")
			}
		}
	}
}

// checkVIP checks the virtual address set. It is a member's (or, promoted by an
// operator, any replicating manager's): the arbiter is the ingress, which moves
// traffic by redirecting it.
func (c *Config) checkVIP(r *reporter) {
	a := &c.Arbiter
	if len(a.VIP) == 0 {
		// The decoder reports these keys present without vip; this catches a
		// Config built in code (the reporter keeps one error per key).
		for _, f := range []struct {
			key string
			set bool
		}{{"arbiter.vip_mac", a.VIPMAC != [6]byte{}}, {"arbiter.vip_port", a.VIPPort != 0}, {"arbiter.vip_announce", a.VIPAnnounce != 0}} {
			if f.set {
				r.errorf(f.key, "without vip: list the virtual addresses to take over")
			}
		}
		return
	}
	if a.IsServer() {
		r.errorf("arbiter.vip", "the arbiter (serve) is the ingress: it redirects traffic, it takes over no address")
	}
	if len(c.Replication.Chains) == 0 {
		r.errorf("arbiter.vip", "this manager replicates no chain ([[replication.chain]]): no promotion here would announce it")
	}
	if len(a.VIP) > MaxVIPs {
		r.errorf("arbiter.vip", "lists %d addresses; at most %d", len(a.VIP), MaxVIPs)
	}
	for i, ip := range a.VIP {
		key := indexKey("arbiter.vip", i)
		switch {
		case !ip.IsValid():
			// reported by the decoder
		case ip.Zone() != "":
			r.errorf(key, "%s: no zone; the port says where it is announced", ip)
		case ip.Is4In6():
			r.errorf(key, "%s: write the IPv4 address as such", ip)
		case ip.IsUnspecified() || ip.IsMulticast() || ip.IsLoopback() || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
			r.errorf(key, "%s is not a unicast address a host can own", ip)
		case slices.Contains(a.VIP[:i], ip):
			r.errorf(key, "%s is listed twice", ip)
		}
	}
	if m := a.VIPMAC; m != ([6]byte{}) && m[0]&1 != 0 {
		r.errorf("arbiter.vip_mac", "%s is a multicast (group) address; an address binding needs a unicast MAC", net.HardwareAddr(m[:]))
	}
	if _, ok := c.Port(a.VIPPort); !ok {
		r.errorf("arbiter.vip_port", "port %d is not a configured [[port]] (ports: %s)", a.VIPPort, c.portIDs())
	}
	if a.VIPAnnounce < 0 || a.VIPAnnounce > MaxVIPAnnounce {
		r.errorf("arbiter.vip_announce", "%d out of range 0..%d (0: %d)", a.VIPAnnounce, MaxVIPAnnounce, DefaultVIPAnnounce)
	}
}

// ArbiterServerConfig returns the arbiter.ServerConfig of a manager that is the arbiter
// (IsServer): members, chains, key and timing from the table; the caller adds the callbacks
// (OnRedirect: map the member to its ingress port with ArbiterPort) and a seed.
func (c *Config) ArbiterServerConfig() arbiter.ServerConfig {
	a := &c.Arbiter
	p, lease, margin := a.ArbiterProfile()
	sc := arbiter.ServerConfig{Listen: a.Serve, PSK: []byte(a.PSK), Profile: p, Lease: lease, Margin: margin,
		RTPriority: a.ThreadPriority()}
	seen := map[string]bool{}
	for _, ac := range a.Chains {
		cc := arbiter.ChainConfig{ID: arbiter.ChainID(arbiter.NameID(ac.Chain)), Name: ac.Chain,
			Primary: arbiter.MemberID(arbiter.NameID(ac.Primary)), Epoch: 1}
		for i, m := range ac.Members {
			if i < 2 {
				cc.Members[i] = arbiter.MemberID(arbiter.NameID(m))
			}
			if !seen[m] {
				seen[m] = true
				sm := arbiter.ServerMember{ID: arbiter.MemberID(arbiter.NameID(m)), Name: m}
				if i < len(ac.Addresses) {
					sm.Addr = ac.Addresses[i]
				}
				sc.Members = append(sc.Members, sm)
			}
		}
		sc.Chains = append(sc.Chains, cc)
	}
	return sc
}

// ArbiterClientConfig returns the arbiter.ClientConfig of a member manager (IsMember): the
// chains are those of [[replication.chain]]; the caller adds the callbacks and a seed.
func (c *Config) ArbiterClientConfig() arbiter.ClientConfig {
	a := &c.Arbiter
	p, lease, _ := a.ArbiterProfile()
	cc := arbiter.ClientConfig{Local: a.Local, Arbiter: a.Address, ID: arbiter.MemberID(arbiter.NameID(a.Member)),
		PSK: []byte(a.PSK), Profile: p, Lease: lease, RTPriority: a.ThreadPriority()}
	for _, rc := range c.Replication.Chains {
		cc.Chains = append(cc.Chains, arbiter.ChainID(arbiter.NameID(rc.Chain)))
	}
	return cc
}
