package config

// The [replication] table: which chains this manager replicates to a remote standby, or
// keeps as the standby of (RESILIENCY.md, "Remote standby"; docs/replicator.md).
//
//	[replication]
//	psk = "at least 16 bytes, the same on both managers"
//	window = 3                     # transactions in flight
//	latch_quota = 4096             # packets held per chain before its RX drops
//	on_standby_lost = "hold"       # or "continue": release unprotected, under lease_ms
//	lease_ms = 0
//
//	[[replication.chain]]
//	chain = "c0"
//	role = "primary"               # or "standby"
//	local = "10.0.0.1:7400"
//	peer = "10.0.0.2:7400"
//	instances = [1, 2]             # the chain's NF instances, in chain order

import (
	"net/netip"
	"time"
)

// Replication roles of a chain (role).
type RepRole string

// Replication roles.
const (
	RepPrimary RepRole = "primary"
	RepStandby RepRole = "standby"
)

// StandbyLost is what a primary does with held output while its standby is gone
// (on_standby_lost).
type StandbyLost string

// Policies for a lost standby.
const (
	// LostHold keeps output held until the standby acknowledges again: nothing leaves
	// unprotected; the latch fills and the chain's RX drops.
	LostHold StandbyLost = "hold"
	// LostContinue releases output unprotected for at most the lease (lease_ms) after the
	// standby was lost, then holds. The lease is static until the arbiter grants them.
	LostContinue StandbyLost = "continue"
)

// Limits of the [replication] table.
const (
	MinPSKBytes       = 16
	MaxWindow         = 64
	MinLatchQuota     = 1
	MaxLatchQuota     = 1 << 20
	MaxRepInstances   = MaxChainLen * 8
	DefaultWindow     = 3
	DefaultLatchQuota = 4096
	DefaultRoundEvery = 100 * time.Microsecond
	// State file sizes of replicated NF instances (the manager creates
	// their files, so an NF's REINFORCE_STATE_BYTES/_LOG do not apply).
	DefaultStateBytes    = 64 << 20
	DefaultStateLogBytes = 4 << 20
	MinStateBytes        = 64 << 10
	MaxStateBytes        = 1 << 36
	MinStateLogBytes     = 64 << 10
	MaxStateLogBytes     = 1 << 30
)

// Replication is the [replication] table. The zero value (no chains) replicates nothing.
type Replication struct {
	// PSK is the pre-shared key of the replication handshake (psk), >= MinPSKBytes bytes.
	PSK string
	// Window is the number of transactions in flight (window), 1..MaxWindow; default 3.
	Window int
	// LatchQuota is the default per-chain latch quota in packets (latch_quota).
	LatchQuota int
	// OnStandbyLost is the policy while a primary's standby is gone (on_standby_lost).
	OnStandbyLost StandbyLost
	// Lease bounds how long "continue" releases unprotected output (lease_ms).
	Lease time.Duration
	// RoundEvery is the primary's round period when idle (round_us).
	RoundEvery time.Duration
	// StateBytes and StateLogBytes size the state files of replicated NF
	// instances (state_bytes, state_log_bytes): their containers' data
	// (sparse) and their undo/redo log.
	StateBytes, StateLogBytes int64
	// Chains is the [[replication.chain]] list (chain).
	Chains []RepChain
}

// RepChain is one [[replication.chain]] entry.
type RepChain struct {
	// Chain names a configured [[chain]] (chain).
	Chain string
	// Role is this manager's role for the chain (role).
	Role RepRole
	// Local and Peer are the UDP addresses of this manager's and the peer's replication
	// endpoints (local, peer).
	Local, Peer netip.AddrPort
	// Instances are the NF instance IDs whose state the chain replicates, in chain order
	// (instances). Empty: the [[nf]] entries whose service is in the chain, in chain order
	// (each must give an explicit instance).
	Instances []int
	// LatchQuota overrides the table's latch_quota for this chain (latch_quota); 0 = default.
	LatchQuota int
	// Epoch is the starting epoch (epoch), >= 1; default 1. The arbiter raises it later.
	Epoch int64
}

func defaultReplication() Replication {
	return Replication{Window: DefaultWindow, LatchQuota: DefaultLatchQuota, OnStandbyLost: LostHold,
		RoundEvery: DefaultRoundEvery, StateBytes: DefaultStateBytes, StateLogBytes: DefaultStateLogBytes}
}

// RepChain returns the replication entry of the chain named name.
func (c *Config) RepChain(name string) (RepChain, bool) {
	for _, rc := range c.Replication.Chains {
		if rc.Chain == name {
			return rc, true
		}
	}
	return RepChain{}, false
}

// RepInstances returns the NF instances of rc in chain order: its own list, or the [[nf]]
// entries whose service is in the chain.
func (c *Config) RepInstances(rc RepChain) []int {
	if len(rc.Instances) > 0 {
		return rc.Instances
	}
	ch, _ := c.Chain(rc.Chain)
	var ids []int
	for _, s := range ch.Services {
		for _, nf := range c.NFs {
			if nf.Service == s && nf.Instance != 0 {
				ids = append(ids, nf.Instance)
			}
		}
	}
	return ids
}

func (d *decoder) replication(rp *Replication, key string, t map[string]any) {
	d.fields(key, t, map[string]setter{
		"psk":             d.str(&rp.PSK),
		"window":          d.integer(&rp.Window),
		"latch_quota":     d.integer(&rp.LatchQuota),
		"on_standby_lost": d.str((*string)(&rp.OnStandbyLost)),
		"lease_ms":        d.duration(&rp.Lease, time.Millisecond),
		"round_us":        d.duration(&rp.RoundEvery, time.Microsecond),
		"state_bytes":     d.integer64(&rp.StateBytes),
		"state_log_bytes": d.integer64(&rp.StateLogBytes),
		"chain": func(key string, v any) {
			if ts, ok := d.tables(key, v); ok {
				rp.Chains = make([]RepChain, len(ts))
				for i, t := range ts {
					rp.Chains[i] = d.repChain(indexKey(key, i), t)
				}
			}
		},
	})
}

func (d *decoder) repChain(key string, t map[string]any) RepChain {
	rc := RepChain{Epoch: 1}
	d.require(key, t, "[[replication.chain]]", "chain", "role", "local", "peer")
	d.fields(key, t, map[string]setter{
		"chain":       d.str(&rc.Chain),
		"role":        d.str((*string)(&rc.Role)),
		"local":       d.addrPort(&rc.Local),
		"peer":        d.addrPort(&rc.Peer),
		"instances":   d.intList(&rc.Instances),
		"latch_quota": d.integer(&rc.LatchQuota),
		"epoch":       d.integer64(&rc.Epoch),
	})
	return rc
}

func (d *decoder) addrPort(dst *netip.AddrPort) setter {
	return func(key string, v any) {
		s, ok := v.(string)
		if !ok {
			d.r.fail(key, "must be a string \"address:port\", got %s", typeName(v))
			return
		}
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			d.r.fail(key, "%q is not an address:port (e.g. \"10.0.0.2:7400\" or \"[fd00::2]:7400\")", s)
			return
		}
		*dst = ap
	}
}

func (c *Config) checkReplication(r *reporter) {
	rp := &c.Replication
	if len(rp.Chains) == 0 {
		return
	}
	if len(rp.PSK) < MinPSKBytes {
		r.errorf("replication.psk", "is %d bytes; the replication handshake needs a pre-shared key of at least %d", len(rp.PSK), MinPSKBytes)
	}
	checkRange(r, "replication.window", int64(rp.Window), 1, MaxWindow)
	checkRange(r, "replication.latch_quota", int64(rp.LatchQuota), MinLatchQuota, MaxLatchQuota)
	checkEnum(r, "replication.on_standby_lost", string(rp.OnStandbyLost), LostHold, LostContinue)
	if rp.Lease < 0 {
		r.errorf("replication.lease_ms", "must be >= 0, got %s", inUnit(rp.Lease, time.Millisecond))
	} else if rp.OnStandbyLost == LostContinue && rp.Lease == 0 {
		r.errorf("replication.on_standby_lost", "\"continue\" needs lease_ms > 0: output leaves unprotected only while the lease lasts")
	}
	checkRange(r, "replication.state_bytes", rp.StateBytes, MinStateBytes, MaxStateBytes)
	checkRange(r, "replication.state_log_bytes", rp.StateLogBytes, MinStateLogBytes, MaxStateLogBytes)
	if rp.RoundEvery < 10*time.Microsecond || rp.RoundEvery > time.Second {
		r.errorf("replication.round_us", "%s out of range 10..1000000", inUnit(rp.RoundEvery, time.Microsecond))
	}
	seen := map[string]int{}
	locals := map[netip.AddrPort]int{}
	insts := map[int]int{}
	for i, rc := range rp.Chains {
		key := indexKey("replication.chain", i)
		if _, ok := c.Chain(rc.Chain); !ok {
			r.errorf(key+".chain", "%q names no configured chain (chains: %s)", rc.Chain, c.chainNames())
		} else if j, dup := seen[rc.Chain]; dup {
			r.errorf(key+".chain", "chain %q is already replicated by replication.chain[%d]", rc.Chain, j)
		} else {
			seen[rc.Chain] = i
		}
		checkEnum(r, key+".role", string(rc.Role), RepPrimary, RepStandby)
		if !rc.Local.IsValid() || rc.Local.Port() == 0 {
			r.errorf(key+".local", "needs an address and a non-zero port")
		} else if j, dup := locals[rc.Local]; dup {
			r.errorf(key+".local", "%s is already used by replication.chain[%d]", rc.Local, j)
		} else {
			locals[rc.Local] = i
		}
		if !rc.Peer.IsValid() || rc.Peer.Port() == 0 {
			r.errorf(key+".peer", "needs an address and a non-zero port")
		} else if rc.Peer == rc.Local {
			r.errorf(key+".peer", "%s is this chain's own local address", rc.Peer)
		}
		if rc.LatchQuota != 0 {
			checkRange(r, key+".latch_quota", int64(rc.LatchQuota), MinLatchQuota, MaxLatchQuota)
		}
		if rc.Epoch < 1 {
			r.errorf(key+".epoch", "must be >= 1, got %d", rc.Epoch)
		}
		for k, id := range rc.Instances {
			ik := indexKey(key+".instances", k)
			if id < 1 || id > MaxInstanceID {
				r.errorf(ik, "instance %d out of range 1..%d", id, MaxInstanceID)
			} else if j, dup := insts[id]; dup {
				r.errorf(ik, "instance %d is already replicated by replication.chain[%d]", id, j)
			} else {
				insts[id] = i
			}
		}
		if len(rc.Instances) > MaxRepInstances {
			r.errorf(key+".instances", "lists %d instances; at most %d", len(rc.Instances), MaxRepInstances)
		}
		if len(rc.Instances) == 0 {
			if _, ok := c.Chain(rc.Chain); ok && len(c.RepInstances(rc)) == 0 {
				r.errorf(key+".instances", "not given, and no [[nf]] with an explicit instance serves chain %q: list the chain's NF instances (their state files are what is replicated)", rc.Chain)
			}
		}
	}
}
