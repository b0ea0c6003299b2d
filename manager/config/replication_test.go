package config

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

const repBase = `
[manager]
default_chain = "c0"

[[chain]]
name = "c0"
services = [1, 2]

[[nf]]
tag = "a"
service = 1
instance = 3
command = ["a"]

[[nf]]
tag = "b"
service = 2
instance = 4
command = ["b"]
`

func TestReplicationParses(t *testing.T) {
	cfg := wantOK(t, repBase+`
[replication]
psk = "0123456789abcdef"
latch_quota = 100
on_standby_lost = "continue"
lease_ms = 250
state_bytes = 1048576

[[replication.chain]]
chain = "c0"
role = "primary"
local = "127.0.0.1:7400"
peer = "[::1]:7401"
`)
	rp := cfg.Replication
	if rp.Window != DefaultWindow || rp.LatchQuota != 100 || rp.OnStandbyLost != LostContinue || rp.Lease != 250*time.Millisecond ||
		rp.RoundEvery != DefaultRoundEvery || len(rp.Chains) != 1 || rp.StateBytes != 1<<20 || rp.StateLogBytes != DefaultStateLogBytes {
		t.Fatalf("%+v", rp)
	}
	rc := rp.Chains[0]
	if rc.Role != RepPrimary || rc.Local != netip.MustParseAddrPort("127.0.0.1:7400") || rc.Peer != netip.MustParseAddrPort("[::1]:7401") || rc.Epoch != 1 {
		t.Fatalf("%+v", rc)
	}
	// Instances come from the [[nf]] entries serving the chain, in chain order.
	if got := cfg.RepInstances(rc); !slices.Equal(got, []int{3, 4}) {
		t.Fatalf("instances %v", got)
	}
	c2 := cfg.Clone()
	c2.Replication.Chains[0].Instances = append(c2.Replication.Chains[0].Instances, 9)
	if len(cfg.Replication.Chains[0].Instances) != 0 {
		t.Fatal("Clone shares replication chains")
	}
}

func TestReplicationErrorsNameLineAndKey(t *testing.T) {
	wantErrors(t, `[manager]
default_chain = "c0"
[[chain]]
name = "c0"
services = [1]

[replication]
psk = "short"
window = 0
on_standby_lost = "continue"
state_log_bytes = 1000

[[replication.chain]]
chain = "nope"
role = "leader"
local = "127.0.0.1:7400"
peer = "127.0.0.1:7400"
instances = [0, 200]

[[replication.chain]]
chain = "c0"
role = "standby"
local = "127.0.0.1"
peer = "h:1"
`,
		`cfg.toml:8: replication.psk: is 5 bytes; the replication handshake needs a pre-shared key of at least 16`,
		`cfg.toml:9: replication.window: 0 out of range 1..64`,
		`cfg.toml:10: replication.on_standby_lost: "continue" needs lease_ms > 0: output leaves unprotected only while the lease lasts`,
		`cfg.toml:11: replication.state_log_bytes: 1000 out of range 65536..1073741824`,
		`cfg.toml:14: replication.chain[0].chain: "nope" names no configured chain (chains: "c0")`,
		`cfg.toml:15: replication.chain[0].role: "leader" is not one of "primary", "standby"`,
		`cfg.toml:17: replication.chain[0].peer: 127.0.0.1:7400 is this chain's own local address`,
		`cfg.toml:18: replication.chain[0].instances[0]: instance 0 out of range 1..127`,
		`cfg.toml:18: replication.chain[0].instances[1]: instance 200 out of range 1..127`,
		`cfg.toml:20: replication.chain[1].instances: not given, and no [[nf]] with an explicit instance serves chain "c0": list the chain's NF instances (their state files are what is replicated)`,
		`cfg.toml:23: replication.chain[1].local: "127.0.0.1" is not an address:port (e.g. "10.0.0.2:7400" or "[fd00::2]:7400")`,
		`cfg.toml:24: replication.chain[1].peer: "h:1" is not an address:port (e.g. "10.0.0.2:7400" or "[fd00::2]:7400")`,
	)
}
