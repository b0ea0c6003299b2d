package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reinforce-nfv/reinforce/ctlmsg"
	"github.com/reinforce-nfv/reinforce/manager"
	"github.com/reinforce-nfv/reinforce/replicator/arbiter"
	"github.com/reinforce-nfv/reinforce/replicator/bfd"
)

// fakeManager answers every request on a control socket with snap.
func fakeManager(t *testing.T, snap manager.Snapshot) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "ctl.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	data, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if _, err := ctlmsg.ReadMsg(bufio.NewReader(c)); err == nil {
				ctlmsg.WriteMsg(c, ctlmsg.Response{OK: true, Data: data})
			}
			c.Close()
		}
	}()
	return sock
}

// TestCtlStatsPrintsTheArbiter: reinforce ctl stats prints the JSON
// snapshot, then a readable arbiter section for a member and for the
// arbiter; -json prints the JSON alone, and so does a manager without an
// arbiter.
func TestCtlStatsPrintsTheArbiter(t *testing.T) {
	snap := manager.Snapshot{Arbiter: &manager.ArbiterSnapshot{
		Client: &manager.ArbiterClientStats{Member: "a", Scheduling: "SCHED_FIFO 10", BFDState: "Up",
			BFD: bfd.Counters{Sent: 120, Received: 118}, Counters: arbiter.MemberCounters{Requests: 40, Grants: 39, Promotions: 1},
			Wire:   manager.ArbiterWire{Datagrams: 160, Pauses: 2, MaxPauseUs: 42250},
			Chains: []manager.ArbiterMemberChain{{Chain: "c0", Role: "primary", Epoch: 7, LeaseLeftUs: 5500}}},
		Server: &manager.ArbiterServerStats{Scheduling: "SCHED_OTHER",
			Chains: []manager.ArbiterChainState{{Chain: "c0", Epoch: 7, Primary: "b", Phase: "failover", PrimaryLive: true,
				PrimaryAcked: true, StandbyReady: false}},
			Members:  []manager.ArbiterMemberLink{{Member: "a", BFDState: "Down"}, {Member: "b", Addr: "10.0.2.2:7501", BFDState: "Up"}},
			Counters: arbiter.Counters{Grants: 9, Promotions: 2, Failovers: 1},
			Wire:     manager.ArbiterWire{Datagrams: 900, NeighborDowns: 1}}}}
	sock := fakeManager(t, snap)
	var out, errb bytes.Buffer
	if rc := run([]string{"ctl", "-socket", sock, "stats"}, &out, &errb); rc != 0 {
		t.Fatalf("exit %d: %s", rc, errb.String())
	}
	js, text, ok := strings.Cut(out.String(), "\n\narbiter client:")
	if !ok {
		t.Fatalf("no arbiter section:\n%s", out.String())
	}
	var back manager.Snapshot
	if err := json.Unmarshal([]byte(js), &back); err != nil || back.Arbiter == nil || back.Arbiter.Client.Member != "a" {
		t.Fatalf("the JSON before the section (%v):\n%s", err, js)
	}
	for _, want := range []string{
		` member "a", BFD Up, thread SCHED_FIFO 10`,
		"  chain c0: primary, epoch 7, lease 5.5ms left\n",
		"40 lease requests, 39 grants (0 late), 1 promotions",
		"  bfd: 120 sent, 118 received",
		"2 thread pauses (longest 42.25ms)",
		"arbiter server: thread SCHED_OTHER\n",
		"  chain c0: primary b, epoch 7, failover; primary live; standby DOWN, not acked, not ready\n",
		"  member a: BFD Down (not heard from)",
		"  member b: BFD Up (10.0.2.2:7501)",
		"9 grants, 0 refused, 2 promotions (1 failovers",
		"; 1 sessions down by the member's signal\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in the arbiter section:\n%s", want, text)
		}
	}

	out.Reset()
	if rc := run([]string{"ctl", "-socket", sock, "-json", "stats"}, &out, &errb); rc != 0 || strings.Contains(out.String(), "arbiter client:") {
		t.Fatalf("-json: exit %d:\n%s", rc, out.String())
	}
	if err := json.Unmarshal(out.Bytes(), &back); err != nil {
		t.Fatalf("-json output is not JSON alone: %v", err)
	}
	out.Reset()
	if rc := run([]string{"ctl", "-socket", fakeManager(t, manager.Snapshot{}), "stats"}, &out, &errb); rc != 0 {
		t.Fatalf("exit %d", rc)
	}
	var none manager.Snapshot
	if err := json.Unmarshal(out.Bytes(), &none); err != nil || none.Arbiter != nil {
		t.Fatalf("stats without an arbiter (%v):\n%s", err, out.String())
	}
}
