package e2e

import (
	"path/filepath"
	"strconv"
	"testing"
)

// pcapExtra sizes the manager's slots for 1kxun.pcap, captured with
// offloads on: frames up to 37506 bytes.
const pcapExtra = "data_bytes = 40960\npool_slots = 4096\n"

// pcapMTU lets those frames through the veths and the ports.
const pcapMTU = 40000

// TestPcapReplayThroughChain replays real captures through the chain:
// every frame of 1kxun.pcap arrives unchanged (the sink's count and digest
// sum match pktgen's); the malformed frames of badpackets.pcap and
// ip_fragmented_garbage.pcap crash nothing, arrive, and are counted as
// malformed by both ends; after each capture the chain still carries
// probe traffic exactly once and in order.
func TestPcapReplayThroughChain(t *testing.T) {
	bin := bins(t)
	l := upLab(t, chainTopo(pcapMTU))
	m := startMgr(t, l.Server("mgr"), bin, pcapExtra)
	gen, snk := l.Server("gen"), l.Server("sink")
	for _, name := range []string{"1kxun.pcap", "badpackets.pcap", "ip_fragmented_garbage.pcap"} {
		t.Run(name, func(t *testing.T) {
			path, err := filepath.Abs(filepath.Join("../../testdata/pcap", name))
			if err != nil {
				t.Fatal(err)
			}
			sp := startSink(t, snk, bin, "-i", "eth0", "-idle", "1s", "-duration", "30s", "-max-frame", "40000")
			g := pktgen(t, gen, bin, "", "-i", "eth0", "-pcap", path, "-rate", "20000")
			res := sp.wait(t)
			t.Logf("%s: pktgen sent %d frames (%d malformed); sink got %d (%d malformed), kernel drops %d",
				name, g.Frames, g.Malformed, res.Other, res.Malformed, res.KernelDrops)
			if g.Invalid != 0 || g.Sent != g.Frames {
				t.Fatalf("pktgen: %d of %d frames sent, %d invalid", g.Sent, g.Frames, g.Invalid)
			}
			if res.Other != g.Frames || res.OtherHashSum != g.HashSum {
				t.Errorf("sink got %d frames (digest sum %x), pktgen sent %d (%x)", res.Other, res.OtherHashSum, g.Frames, g.HashSum)
			}
			if res.Malformed != g.Malformed {
				t.Errorf("sink counted %d malformed frames, pktgen %d", res.Malformed, g.Malformed)
			}
			if res.KernelDrops != 0 {
				t.Errorf("sink kernel drops %d", res.KernelDrops)
			}
			st, err := m.stats()
			if err != nil {
				t.Fatalf("manager after %s: %v\n%s", name, err, m.out.String())
			}
			for _, nf := range st.NFs {
				if !nf.Running {
					t.Errorf("NF %s not running after %s", nf.Tag, name)
				}
			}
			if st.Drops.NFDeaths != 0 {
				t.Errorf("%d NF deaths; manager output:\n%s", st.Drops.NFDeaths, m.out.String())
			}

			// The chain still works.
			const probes = 2000
			sp = startSink(t, snk, bin, "-i", "eth0", "-idle", "500ms", "-duration", "30s", "-count", strconv.Itoa(probes))
			pktgen(t, gen, bin, "", "-i", "eth0", "-flows", "8", "-count", strconv.Itoa(probes), "-rate", "50000")
			after := sp.wait(t)
			if !after.OK || after.Received != probes {
				st, _ := m.stats()
				t.Errorf("probe traffic after %s: received %d of %d: %v\nmanager: %+v\nNFs: %+v\n%s",
					name, after.Received, probes, after.Violations, st.Drops, st.NFs, m.out.String())
			}
		})
	}
}
