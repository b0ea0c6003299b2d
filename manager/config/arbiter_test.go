package config

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/replicator/arbiter"
)

const arbBase = `
[manager]
default_chain = "c0"

[[port]]
id = 0

[[port]]
id = 1

[[chain]]
name = "c0"
services = [1]
`

func TestArbiterServerParses(t *testing.T) {
	cfg := wantOK(t, arbBase+`
[arbiter]
serve = "127.0.0.1:7500"
psk = "0123456789abcdef"
profile = "loaded"

[[arbiter.chain]]
chain = "c0"
members = ["a", "b"]
primary = "b"
ports = [1, 0]
addresses = ["10.0.1.2:7501", "[fd00::2]:7501"]
`)
	a := cfg.Arbiter
	if !a.IsServer() || a.IsMember() || a.Serve != netip.MustParseAddrPort("127.0.0.1:7500") || len(a.Chains) != 1 {
		t.Fatalf("%+v", a)
	}
	ac := a.Chains[0]
	if ac.Chain != "c0" || !slices.Equal(ac.Members, []string{"a", "b"}) || ac.Primary != "b" || !slices.Equal(ac.Ports, []int{1, 0}) ||
		ac.Addresses[1] != netip.MustParseAddrPort("[fd00::2]:7501") {
		t.Fatalf("%+v", ac)
	}
	if p, ok := cfg.ArbiterPort("c0", "b"); !ok || p != 0 {
		t.Fatalf("port of b: %d %v", p, ok)
	}
	if _, ok := cfg.ArbiterPort("c0", "z"); ok {
		t.Fatal("port of a non-member")
	}
	p, lease, margin := a.ArbiterProfile()
	if p != arbiter.ProfileLoaded || lease != arbiter.LoadedLease || margin != arbiter.DefaultMargin {
		t.Fatalf("profile %+v lease %v margin %v", p, lease, margin)
	}
	c2 := cfg.Clone()
	c2.Arbiter.Chains[0].Members[0] = "x"
	if cfg.Arbiter.Chains[0].Members[0] != "a" {
		t.Fatal("Clone shares arbiter chains")
	}
}

func TestArbiterMemberParses(t *testing.T) {
	cfg := wantOK(t, arbBase+`
[arbiter]
address = "10.0.0.1:7500"
member = "a"
local = "10.0.1.2:7501"
psk = "0123456789abcdef"
lease_ms = 9
margin_us = 500
`)
	a := cfg.Arbiter
	if a.IsServer() || !a.IsMember() || a.Member != "a" || a.Local != netip.MustParseAddrPort("10.0.1.2:7501") {
		t.Fatalf("%+v", a)
	}
	p, lease, margin := a.ArbiterProfile()
	if p != arbiter.ProfileDefault || lease != 9*time.Millisecond || margin != 500*time.Microsecond {
		t.Fatalf("profile %+v lease %v margin %v", p, lease, margin)
	}
	// No [arbiter]: nothing configured, and valid.
	if cfg := wantOK(t, arbBase); cfg.Arbiter.IsServer() || cfg.Arbiter.IsMember() {
		t.Fatal("arbiter configured by default")
	}
	// The BFD thread is real-time unless the table says otherwise.
	if got := a.ThreadPriority(); got != DefaultArbiterRTPriority || cfg.ArbiterClientConfig().RTPriority != got {
		t.Fatalf("default thread priority %d (client config %d)", got, cfg.ArbiterClientConfig().RTPriority)
	}
	off := wantOK(t, arbBase+`
[arbiter]
address = "10.0.0.1:7500"
member = "a"
psk = "0123456789abcdef"
rt_priority = 0
`)
	if off.Arbiter.ThreadPriority() != 0 {
		t.Fatalf("rt_priority = 0: thread priority %d", off.Arbiter.ThreadPriority())
	}
	wantErrors(t, arbBase+`
[arbiter]
address = "10.0.0.1:7500"
member = "a"
psk = "0123456789abcdef"
rt_priority = 120
`,
		`cfg.toml:19: arbiter.rt_priority: 120 out of range 0..99 (0: normal scheduling)`,
	)
}

func TestArbiterServerErrorsNameLineAndKey(t *testing.T) {
	wantErrors(t, arbBase+`
[arbiter]
serve = "127.0.0.1:0"
psk = "short"
profile = "fast"
lease_ms = -1
member = "a"

[[arbiter.chain]]
chain = "nope"
members = ["a", "a", "b"]
primary = "z"
ports = [1, 7]

[[arbiter.chain]]
chain = "c0"
members = ["a", "b!"]
primary = "a"
ports = [0, 1]
addresses = ["10.0.0.1:1"]

[[arbiter.chain]]
chain = "c0"
members = ["a"]
ports = [0]
`,
		`cfg.toml:16: arbiter.serve: needs a non-zero port`,
		`cfg.toml:17: arbiter.psk: is 5 bytes; the arbiter protocol needs a pre-shared key of at least 16`,
		`cfg.toml:18: arbiter.profile: "fast" is not one of "default", "loaded"`,
		`cfg.toml:19: arbiter.lease_ms: -1 out of range 0..60000 (0: the profile's)`,
		`cfg.toml:20: arbiter.member: member and local are a member manager's keys; the arbiter (serve) has neither`,
		`cfg.toml:23: arbiter.chain[0].chain: "nope" names no configured chain (chains: "c0")`,
		`cfg.toml:24: arbiter.chain[0].members: lists 3 members; a chain has exactly two (its primary and its standby)`,
		`cfg.toml:25: arbiter.chain[0].primary: "z" is not one of the chain's members`,
		`cfg.toml:26: arbiter.chain[0].ports: lists 2 ports for 3 members: one ingress port per member, in the same order`,
		`cfg.toml:26: arbiter.chain[0].ports[1]: port 7 is not a configured [[port]] (ports: 0, 1)`,
		`cfg.toml:30: arbiter.chain[1].members[1]: "b!" must be 1..32 characters of A-Z a-z 0-9 _ -`,
		`cfg.toml:33: arbiter.chain[1].addresses: lists 1 addresses for 2 members: one per member, in the same order, or none`,
		`cfg.toml:35: arbiter.chain[2].primary: missing; every [[arbiter.chain]] needs primary`,
		`cfg.toml:36: arbiter.chain[2].chain: chain "c0" is already arbitrated by arbiter.chain[1]`,
		`cfg.toml:37: arbiter.chain[2].members: lists 1 members; a chain has exactly two (its primary and its standby)`,
	)
}

func TestArbiterMemberErrorsNameLineAndKey(t *testing.T) {
	wantErrors(t, arbBase+`
[arbiter]
address = "10.0.0.1:7500"
serve = "10.0.0.1:7501"
member = ""
psk = "0123456789abcdef"
margin_us = 2000000
bogus = 1
`,
		`cfg.toml:17: arbiter.serve: a manager is either the arbiter (serve) or a member reporting to one (address), not both`,
		`cfg.toml:18: arbiter.member: "" must be 1..32 characters of A-Z a-z 0-9 _ -: this manager's name in the arbiter's [[arbiter.chain]] members`,
		`cfg.toml:20: arbiter.margin_us: 2000000 out of range 0..1000000 (0: the default)`,
		`cfg.toml:21: arbiter.bogus: unknown key`,
	)
	wantErrors(t, arbBase+`
[arbiter]
psk = "0123456789abcdef"
`,
		`cfg.toml:15: arbiter: needs address (this manager is a member) or serve (this manager is the arbiter)`,
	)
}

func TestArbiterDriverConfigs(t *testing.T) {
	cfg := wantOK(t, arbBase+`
[arbiter]
serve = "127.0.0.1:7500"
psk = "0123456789abcdef"

[[arbiter.chain]]
chain = "c0"
members = ["a", "b"]
primary = "a"
ports = [0, 1]
addresses = ["10.0.1.2:7501", "10.0.2.2:7501"]
`)
	sc := cfg.ArbiterServerConfig()
	idA, idB := arbiter.MemberID(arbiter.NameID("a")), arbiter.MemberID(arbiter.NameID("b"))
	if len(sc.Members) != 2 || sc.Members[1].ID != idB || sc.Members[1].Addr != netip.MustParseAddrPort("10.0.2.2:7501") ||
		len(sc.Chains) != 1 || sc.Chains[0].Members != [2]arbiter.MemberID{idA, idB} || sc.Chains[0].Primary != idA ||
		sc.Lease != arbiter.DefaultLease || string(sc.PSK) != "0123456789abcdef" {
		t.Fatalf("%+v", sc)
	}
	mc := wantOK(t, repBase+`
[replication]
psk = "0123456789abcdef"

[[replication.chain]]
chain = "c0"
role = "standby"
local = "127.0.0.1:7400"
peer = "127.0.0.1:7401"

[arbiter]
address = "127.0.0.1:7500"
member = "b"
psk = "0123456789abcdef"
profile = "loaded"
`)
	cc := mc.ArbiterClientConfig()
	if cc.ID != idB || len(cc.Chains) != 1 || cc.Chains[0] != arbiter.ChainID(arbiter.NameID("c0")) || cc.Lease != arbiter.LoadedLease ||
		cc.Arbiter != netip.MustParseAddrPort("127.0.0.1:7500") {
		t.Fatalf("%+v", cc)
	}
}

const vipBase = repBase + `
[[port]]
id = 0

[[port]]
id = 1

[replication]
psk = "0123456789abcdef"

[[replication.chain]]
chain = "c0"
role = "standby"
local = "127.0.0.1:7400"
peer = "127.0.0.1:7401"
`

func TestVIPParses(t *testing.T) {
	cfg := wantOK(t, vipBase+`
[arbiter]
address = "10.0.0.1:7500"
member = "b"
psk = "0123456789abcdef"
vip = ["10.0.0.100", "fd00::100"]
vip_mac = "02:52:46:00:00:01"
vip_port = 1
vip_announce = 5
`)
	a := cfg.Arbiter
	if !slices.Equal(a.VIP, []netip.Addr{netip.MustParseAddr("10.0.0.100"), netip.MustParseAddr("fd00::100")}) ||
		a.VIPMAC != [6]byte{2, 0x52, 0x46, 0, 0, 1} || a.VIPPort != 1 || a.VIPAnnouncements() != 5 {
		t.Fatalf("%+v", a)
	}
	c2 := cfg.Clone()
	c2.Arbiter.VIP[0] = netip.MustParseAddr("10.9.9.9")
	if cfg.Arbiter.VIP[0] != netip.MustParseAddr("10.0.0.100") {
		t.Fatal("Clone shares the VIP list")
	}
	// Without an arbiter (promotions by the operator), the MAC and the count
	// defaulted; vip_port 0 is a port like any other.
	cfg = wantOK(t, vipBase+`
[arbiter]
vip = ["fd00::100"]
vip_port = 0
`)
	if a := cfg.Arbiter; len(a.VIP) != 1 || a.VIPMAC != ([6]byte{}) || a.VIPPort != 0 || a.VIPAnnouncements() != DefaultVIPAnnounce {
		t.Fatalf("%+v", a)
	}
	if cfg := wantOK(t, vipBase); len(cfg.Arbiter.VIP) != 0 {
		t.Fatal("a VIP by default")
	}
}

func TestVIPErrorsNameLineAndKey(t *testing.T) {
	// vipBase ends on line 34.
	wantErrors(t, vipBase+`
[arbiter]
vip = ["10.0.0.100", "nope", "224.0.0.1", "10.0.0.100", "::", "fe80::1%eth0", "::ffff:10.0.0.1", "127.0.0.1"]
vip_mac = "01:00:5e:00:00:01"
vip_port = 7
vip_announce = 101
`,
		`cfg.toml:37: arbiter.vip[1]: "nope" is not an IPv4 or IPv6 address (e.g. "10.0.0.100" or "fd00::100")`,
		`cfg.toml:37: arbiter.vip[2]: 224.0.0.1 is not a unicast address a host can own`,
		`cfg.toml:37: arbiter.vip[3]: 10.0.0.100 is listed twice`,
		`cfg.toml:37: arbiter.vip[4]: :: is not a unicast address a host can own`,
		`cfg.toml:37: arbiter.vip[5]: fe80::1%eth0: no zone; the port says where it is announced`,
		`cfg.toml:37: arbiter.vip[6]: ::ffff:10.0.0.1: write the IPv4 address as such`,
		`cfg.toml:37: arbiter.vip[7]: 127.0.0.1 is not a unicast address a host can own`,
		`cfg.toml:38: arbiter.vip_mac: 01:00:5e:00:00:01 is a multicast (group) address; an address binding needs a unicast MAC`,
		`cfg.toml:39: arbiter.vip_port: port 7 is not a configured [[port]] (ports: 0, 1)`,
		`cfg.toml:40: arbiter.vip_announce: 101 out of range 0..100 (0: 3)`,
	)
	wantErrors(t, vipBase+`
[arbiter]
vip = ["10.0.0.100"]
vip_mac = "02:52:46"
`,
		`cfg.toml:36: arbiter.vip_port: missing; vip needs vip_port, the [[port]] facing the clients`,
		`cfg.toml:38: arbiter.vip_mac: "02:52:46" is not an Ethernet MAC address (e.g. "02:52:46:00:00:01")`,
	)
	wantErrors(t, vipBase+`
[arbiter]
vip_port = 1
vip_announce = 2
`,
		`cfg.toml:37: arbiter.vip_port: without vip: list the virtual addresses to take over`,
		`cfg.toml:38: arbiter.vip_announce: without vip: list the virtual addresses to take over`,
	)
	// A manager replicating nothing is never promoted; the arbiter takes over nothing.
	wantErrors(t, arbBase+`
[arbiter]
vip = ["10.0.0.100"]
vip_port = 1
`,
		`cfg.toml:16: arbiter.vip: this manager replicates no chain ([[replication.chain]]): no promotion here would announce it`,
	)
	wantErrors(t, arbBase+`
[arbiter]
serve = "127.0.0.1:7500"
psk = "0123456789abcdef"
vip = ["10.0.0.100"]
vip_port = 1

[[arbiter.chain]]
chain = "c0"
members = ["a", "b"]
primary = "a"
ports = [1, 0]
`,
		`cfg.toml:18: arbiter.vip: the arbiter (serve) is the ingress: it redirects traffic, it takes over no address`,
	)
}
