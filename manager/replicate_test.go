package manager_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/reinforce-nfv/reinforce/internal/testenv"
	"github.com/reinforce-nfv/reinforce/manager"
	"github.com/reinforce-nfv/reinforce/manager/config"
	"github.com/reinforce-nfv/reinforce/port"
	"github.com/reinforce-nfv/reinforce/shm/state"
)

const repFlows = 4

// freeUDP returns a loopback UDP address nobody listens on right now,
// below the kernel's ephemeral range (32768 and up by default): a manager
// that rebinds its replication port (a demotion restarts its Node) must
// not find it taken by some other test's socket bound to port 0 meanwhile.
func freeUDP(t testing.TB) netip.AddrPort {
	t.Helper()
	for range 1000 {
		port := 20000 + rand.IntN(12000)
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err != nil {
			continue
		}
		c.Close()
		return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	}
	t.Fatal("no free UDP port in 20000..31999")
	return netip.AddrPort{}
}

// udpRelay forwards datagrams between two replication endpoints with a
// delay, loss and duplication: the primary's peer is relay.a, the
// standby's relay.b. The delay makes the standby lag, so output released
// early would show stamps the standby does not have yet.
type udpRelay struct {
	a, b  *net.UDPConn
	mu    sync.Mutex
	rng   *rand.Rand
	delay time.Duration
	loss  float64
	dup   float64
	wg    sync.WaitGroup
}

func startRelay(t *testing.T, toA, toB netip.AddrPort, delay time.Duration, loss, dup float64) *udpRelay {
	t.Helper()
	listen := func() *net.UDPConn {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	r := &udpRelay{a: listen(), b: listen(), rng: testenv.Rand(t), delay: delay, loss: loss, dup: dup}
	// What arrives at a (from the primary) goes to the standby (toB), and
	// what arrives at b to the primary (toA).
	r.wg.Add(2)
	go r.pump(r.a, toB)
	go r.pump(r.b, toA)
	t.Cleanup(func() { r.a.Close(); r.b.Close(); r.wg.Wait() })
	return r
}

func (r *udpRelay) pump(in *net.UDPConn, to netip.AddrPort) {
	defer r.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, _, err := in.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		d := bytes.Clone(buf[:n])
		r.mu.Lock()
		lost, dup := r.rng.Float64() < r.loss, r.rng.Float64() < r.dup
		jitter := time.Duration(r.rng.Int64N(int64(r.delay)/2 + 1))
		r.mu.Unlock()
		if lost {
			continue
		}
		for k := range 1 + btoi(dup) {
			time.AfterFunc(r.delay+jitter+time.Duration(k)*r.delay/4, func() { in.WriteToUDPAddrPort(d, to) })
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (r *udpRelay) addrA() netip.AddrPort { return r.a.LocalAddr().(*net.UDPAddr).AddrPort() }
func (r *udpRelay) addrB() netip.AddrPort { return r.b.LocalAddr().(*net.UDPAddr).AddrPort() }

// repManager starts a manager with chain c0 = [1, 2] replicated in role
// role; the primary runs two txstamp NFs (instances 1 and 2).
func repManager(t *testing.T, role config.RepRole, local, peer netip.AddrPort, quota int) (*manager.Manager, *memPort) {
	t.Helper()
	return repManagerWith(t, role, local, peer, quota, nil)
}

func repManagerWith(t testing.TB, role config.RepRole, local, peer netip.AddrPort, quota int, edit func(*config.Config)) (*manager.Manager, *memPort) {
	t.Helper()
	cfg := config.DefaultConfig()
	cfg.Manager.Name = fmt.Sprintf("r%s%d-%d", role[:1], os.Getpid(), time.Now().UnixNano()%1e9)
	cfg.Manager.RegionDir = "/dev/shm"
	cfg.Manager.PoolSlots = 8192
	cfg.Manager.RingSize = 4096
	cfg.Manager.StatsOut = config.StatsNone
	cfg.Chains = []config.Chain{{Name: "c0", Services: []int{1, 2}, OutPort: 0}}
	cfg.Manager.DefaultChain = "c0"
	if role == config.RepPrimary {
		cfg.NFs = []config.NF{
			{Tag: "txstamp", Service: 1, Instance: 1, Command: []string{os.Args[0]}},
			{Tag: "txstamp", Service: 2, Instance: 2, Command: []string{os.Args[0]}},
		}
	}
	cfg.Replication.PSK = "replication test key 0123456789"
	cfg.Replication.LatchQuota = quota
	cfg.Replication.Chains = []config.RepChain{{Chain: "c0", Role: role, Local: local, Peer: peer, Instances: []int{1, 2}, Epoch: 1}}
	if edit != nil {
		edit(&cfg)
	}
	p := &memPort{id: 0}
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel).With().Str("mgr", cfg.Manager.Name).Logger()
	m, err := manager.New(cfg, manager.Options{Log: log,
		SocketPath: filepath.Join(t.TempDir(), "ctl.sock"), Ports: []port.Port{p},
		NFEnv: []string{"REINFORCE_TEST_CHILD=nf", "NF_DO=txstamp"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		m.Close()
		t.Fatal(err)
	}
	return m, p
}

func repStats(m *manager.Manager) manager.RepStats {
	s := m.Snapshot().Replication
	if len(s) != 1 {
		return manager.RepStats{}
	}
	return s[0]
}

// stateOf reads the txstamp state (per-flow counters, total) of instance
// inst in m's state file; ok false if it has no such containers yet.
func stateOf(m *manager.Manager, inst uint16) (flows [repFlows]uint64, total uint64, ok bool) {
	f, err := state.Prepare(state.PathFor(m.Region().Path(), m.Region().Huge(), inst))
	if err != nil {
		return flows, 0, false
	}
	defer f.Close()
	if dir, _ := f.Containers(); len(dir) < 2*128 {
		return flows, 0, false // txstamp's two containers not there yet
	}
	fm, err := state.NewMap[uint16, uint64](f, "flows", 256)
	if err != nil {
		return flows, 0, false
	}
	tv, err := state.NewValue[uint64](f, "total")
	if err != nil {
		return flows, 0, false
	}
	for i := range flows {
		flows[i], _ = fm.Get(uint16(1000 + i))
	}
	return flows, tv.Load(), true
}

// containers reads the directory and data of instance inst's state file.
func containers(m *manager.Manager, inst uint16) (dir, data []byte) {
	f, err := state.Prepare(state.PathFor(m.Region().Path(), m.Region().Huge(), inst))
	if err != nil {
		return nil, nil
	}
	defer f.Close()
	d, b := f.Containers()
	return bytes.Clone(d), bytes.Clone(b)
}

// checkCovered is guarantee 1 seen from outside: every stamp the port has
// sent must already be in the standby's state (read after the output, and
// the standby's counters only grow).
func checkCovered(t *testing.T, p *memPort, sb *manager.Manager) {
	t.Helper()
	var seen [repFlows]uint64
	for _, b := range p.sent() {
		f := int(binary.BigEndian.Uint16(b[34:])) - 1000
		if s := uint64(binary.BigEndian.Uint32(b[txStampAt:])); f >= 0 && f < repFlows && s > seen[f] {
			seen[f] = s
		}
	}
	// Read downstream first: counters only grow, so a standby whose state
	// is a closed cut at every moment passes the check below, and one that
	// ever holds a downstream count without its upstream one may fail it.
	var got [3][repFlows]uint64
	for _, inst := range []uint16{2, 1} {
		var ok bool
		got[inst], _, ok = stateOf(sb, inst)
		for f := range seen {
			if seen[f] > 0 && (!ok || got[inst][f] < seen[f]) {
				t.Fatalf("output released before its state was at the standby: flow %d stamp %d sent, standby instance %d has %d (ok %v)",
					f, seen[f], inst, got[inst][f], ok)
			}
		}
	}
	// Guarantee 4: the standby's state is a causally closed cut. Every
	// packet passes instance 1 before 2, so 2 never counts more.
	for f := range repFlows {
		if got[2][f] > got[1][f] {
			t.Fatalf("standby state not causally closed: flow %d counted %d times downstream, %d upstream", f, got[2][f], got[1][f])
		}
	}
}

// checkOutput: every flow's stamps count up by one from 1, each packet
// mutated by both NFs exactly once.
func checkOutput(t *testing.T, out [][]byte) {
	t.Helper()
	var next [repFlows]uint32
	for i, b := range out {
		f := int(binary.BigEndian.Uint16(b[34:])) - 1000
		stamp := binary.BigEndian.Uint32(b[txStampAt:])
		mut := binary.BigEndian.Uint32(b[txMutateAt:])
		if f < 0 || f >= repFlows || stamp != next[f]+1 || mut != 2 {
			t.Fatalf("packet %d: flow %d stamp %d (want %d) mutated %d times (want 2)", i, f, stamp, next[f]+1, mut)
		}
		next[f]++
	}
}

// converged waits until the standby's state files equal the primary's.
func converged(t *testing.T, pm, sb *manager.Manager) {
	t.Helper()
	waitFor(t, 10*time.Second, "the standby's state files equal to the primary's", func() bool {
		for _, inst := range []uint16{1, 2} {
			pd, pb := containers(pm, inst)
			sd, sbb := containers(sb, inst)
			if pd == nil || !bytes.Equal(pd, sd) || !bytes.Equal(pb, sbb) {
				return false
			}
		}
		return true
	})
}

// TestReplicationBetweenTwoManagers runs a primary manager (two txstamp NFs
// in chain c0) and a standby manager over loopback UDP. While traffic
// flows, every stamp the primary's port has sent is already in the
// standby's state; the standby's state files converge to the primary's.
// The link between them (a relay) delays every datagram 3-4.5 ms, loses
// 3 % and duplicates 3 %.
// Then the standby is stopped: output is held (policy hold), the latch
// fills to its quota and RX drops; a new standby manager joins, catches
// up by snapshot, the chain is protected again and the held output leaves.
func TestReplicationBetweenTwoManagers(t *testing.T) {
	pAddr, sAddr := freeUDP(t), freeUDP(t)
	relay := startRelay(t, pAddr, sAddr, 3*time.Millisecond, 0.03, 0.03)
	const quota = 500
	sb, _ := repManager(t, config.RepStandby, sAddr, relay.addrB(), quota)
	defer func() { sb.Close() }()
	pm, p := repManager(t, config.RepPrimary, pAddr, relay.addrA(), quota)
	defer pm.Close()

	waitFor(t, 20*time.Second, "two NFs running", func() bool {
		s := pm.Snapshot()
		return len(s.NFs) == 2 && s.NFs[0].Running && s.NFs[1].Running
	})
	waitFor(t, 10*time.Second, "chain c0 protected on both sides", func() bool {
		return repStats(pm).Status == manager.RepProtected && repStats(sb).Status == manager.RepProtected
	})
	if s := repStats(sb); s.SnapshotsApplied != 1 || s.Status != manager.RepProtected {
		t.Fatalf("standby after joining: %+v", s)
	}

	sent := 0
	feed := func(n int) {
		for i := 0; i < n; i++ {
			p.inject(frame(sent % repFlows))
			sent++
		}
	}
	defer func() {
		if t.Failed() {
			t.Logf("primary: %+v\nstandby: %+v\nsent %d", repStats(pm), repStats(sb), len(p.sent()))
		}
	}()
	for range 20 {
		feed(50)
		time.Sleep(5 * time.Millisecond)
		checkCovered(t, p, sb)
	}
	// Out, or dropped at RX if the latch reached its quota (the link's
	// round trip is ~8 ms; 50 packets every 5 ms stays below it).
	waitFor(t, 10*time.Second, "all 1000 packets out", func() bool {
		checkCovered(t, p, sb)
		return uint64(len(p.sent()))+repStats(pm).RXLatchDrops == uint64(sent)
	})
	checkOutput(t, p.sent())
	converged(t, pm, sb)
	s := repStats(pm)
	if s.Released != s.LatchedTotal || s.Released+s.RXLatchDrops != uint64(sent) || s.Rounds == 0 || s.Node.Replicator.Acks == 0 {
		t.Fatalf("primary counters after %d packets: %+v", sent, s)
	}
	if tx := p.Stats().TxPkts; tx > s.Released {
		t.Fatalf("port sent %d, latch released %d", tx, s.Released)
	}
	t.Logf("phase 1: %d packets (%d dropped at RX by the quota), %d rounds, %d writes read, %d sent, %d payload bytes, %d acks, %d transactions sent",
		sent, s.RXLatchDrops, s.Rounds, s.WritesRead, s.WritesSent, s.PayloadBytes, s.Node.Replicator.Acks, s.Node.Replicator.TxSent)

	// The standby goes away: output is held, never released on a timer.
	sb.Close()
	waitFor(t, 5*time.Second, "chain c0 unprotected", func() bool { return repStats(pm).Status == manager.RepUnprotected })
	before, dropped := len(p.sent()), repStats(pm).RXLatchDrops
	// The quota is checked at RX against what is latched, so fill the
	// latch first, then offer as much again: all of it is dropped.
	feed(quota)
	waitFor(t, 5*time.Second, "the latch at its quota", func() bool { return repStats(pm).Latched == quota })
	feed(quota)
	waitFor(t, 5*time.Second, "RX dropping", func() bool { return repStats(pm).RXLatchDrops-dropped == quota })
	time.Sleep(300 * time.Millisecond)
	if n := len(p.sent()); n != before {
		t.Fatalf("%d packets left while the standby was gone", n-before)
	}
	held := repStats(pm)
	if held.Latched != quota || held.ReleasedUnacked != 0 {
		t.Fatalf("held %d, quota %d (released unprotected %d)", held.Latched, quota, held.ReleasedUnacked)
	}
	if d := pm.Snapshot().Drops; d.TXPortDrop != 0 {
		t.Fatalf("port drops %d", d.TXPortDrop)
	}

	// A new standby manager (a restart: new region, empty state) joins and
	// catches up by snapshot.
	sb, _ = repManager(t, config.RepStandby, sAddr, relay.addrB(), quota)
	waitFor(t, 10*time.Second, "chain c0 protected again", func() bool {
		return repStats(pm).Status == manager.RepProtected && repStats(sb).Status == manager.RepProtected
	})
	want := before + int(held.Latched)
	waitFor(t, 10*time.Second, "the held output released", func() bool { return len(p.sent()) == want })
	checkCovered(t, p, sb)
	checkOutput(t, p.sent())
	converged(t, pm, sb)
	if s := repStats(sb); s.SnapshotsApplied != 1 {
		t.Fatalf("restarted standby: %+v", s)
	}
	// More traffic after the catch-up.
	dropped = repStats(pm).RXLatchDrops
	for range 5 {
		feed(40)
		time.Sleep(5 * time.Millisecond)
		checkCovered(t, p, sb)
	}
	waitFor(t, 10*time.Second, "the last packets out", func() bool {
		return len(p.sent())+int(repStats(pm).RXLatchDrops-dropped) == want+200
	})
	want = len(p.sent())
	checkOutput(t, p.sent())
	converged(t, pm, sb)
	_, total, _ := stateOf(sb, 2)
	if total != uint64(want) {
		t.Fatalf("standby's total %d, %d packets out", total, want)
	}
	s = repStats(pm)
	t.Logf("end: %d out, %d dropped at RX by the quota; %d rounds, %d acks, %d retransmits, %d snapshots",
		want, s.RXLatchDrops, s.Rounds, s.Node.Replicator.Acks, s.Node.Replicator.Retransmits, s.Node.Replicator.Snapshots)
}

// TestReplicationContinueUnderLease: with on_standby_lost = "continue" a
// primary whose standby is absent releases output unprotected (counted)
// while its static lease lasts, then holds it; a standby that joins gets
// the held output released on its acknowledgement.
func TestReplicationContinueUnderLease(t *testing.T) {
	pAddr, sAddr := freeUDP(t), freeUDP(t)
	const lease = 3 * time.Second
	start := time.Now()
	pm, p := repManagerWith(t, config.RepPrimary, pAddr, sAddr, 1000, func(c *config.Config) {
		c.Replication.OnStandbyLost = config.LostContinue
		c.Replication.Lease = lease
	})
	defer pm.Close()
	waitFor(t, 20*time.Second, "two NFs running", func() bool {
		s := pm.Snapshot()
		return len(s.NFs) == 2 && s.NFs[0].Running && s.NFs[1].Running
	})
	if time.Since(start) > lease/2 {
		t.Fatalf("NFs took %v to start: too little of the %v lease left for the test", time.Since(start), lease)
	}
	for f := range 100 {
		p.inject(frame(f % repFlows))
	}
	waitFor(t, lease, "output released unprotected under the lease", func() bool { return len(p.sent()) == 100 })
	if s := repStats(pm); s.ReleasedUnacked != 100 || s.Status != manager.RepUnprotected {
		t.Fatalf("under the lease: %+v", s)
	}
	// The lease counts from the replication's start inside Start, a little
	// after start: leave a margin for a loaded machine.
	time.Sleep(time.Until(start.Add(lease + 300*time.Millisecond)))
	for f := range 100 {
		p.inject(frame(f % repFlows))
	}
	waitFor(t, 5*time.Second, "output held after the lease", func() bool { return repStats(pm).Latched == 100 })
	time.Sleep(100 * time.Millisecond)
	if n := len(p.sent()); n != 100 {
		t.Fatalf("%d packets left after the lease ran out", n-100)
	}
	sb, _ := repManager(t, config.RepStandby, sAddr, pAddr, 1000)
	defer sb.Close()
	waitFor(t, 10*time.Second, "held output released once the standby joined", func() bool { return len(p.sent()) == 200 })
	checkCovered(t, p, sb)
	checkOutput(t, p.sent())
	converged(t, pm, sb)
	waitFor(t, 10*time.Second, "chain c0 protected", func() bool { return repStats(pm).Status == manager.RepProtected })
	if s := repStats(pm); s.ReleasedUnacked != 100 {
		t.Fatalf("after joining: %+v", s)
	}
}

// BenchmarkReplicationLatency measures one packet at a time through chain
// c0 (two txstamp NFs): "off" without replication, "on" with a standby
// manager over loopback UDP (output held until the acknowledgement). It
// reports the p50 and p99 of inject → port TX.
//
//	go test -run '^$' -bench ReplicationLatency -benchtime 2000x ./manager/
func BenchmarkReplicationLatency(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			pAddr, sAddr := freeUDP(b), freeUDP(b)
			var sb *manager.Manager
			edit := func(c *config.Config) {
				if !on {
					c.Replication.Chains = nil
				}
			}
			if on {
				sb, _ = repManagerWith(b, config.RepStandby, sAddr, pAddr, 4096, nil)
				defer sb.Close()
			}
			pm, p := repManagerWith(b, config.RepPrimary, pAddr, sAddr, 4096, edit)
			defer pm.Close()
			deadline := time.Now().Add(20 * time.Second)
			for {
				s := pm.Snapshot()
				ready := len(s.NFs) == 2 && s.NFs[0].Running && s.NFs[1].Running
				if on {
					ready = ready && len(s.Replication) == 1 && s.Replication[0].Status == manager.RepProtected
				}
				if ready {
					break
				}
				if time.Now().After(deadline) {
					b.Fatal("chain not ready")
				}
				time.Sleep(time.Millisecond)
			}
			// Warm up: the first packets create the flows' entries.
			lat := make([]time.Duration, 0, b.N)
			f := frame(0)
			for i := 0; i < 50+b.N; i++ {
				want := p.Stats().TxPkts + 1
				t0 := time.Now()
				p.inject(f)
				for p.Stats().TxPkts < want {
					if time.Since(t0) > 5*time.Second {
						b.Fatalf("packet %d not out after 5 s", i)
					}
				}
				if i >= 50 {
					lat = append(lat, time.Since(t0))
				}
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}
