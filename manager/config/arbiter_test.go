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
