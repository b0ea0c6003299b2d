package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/manager"
	"github.com/reinforce-nfv/reinforce/pkt"
	"github.com/reinforce-nfv/reinforce/pkt/probe"
	"github.com/reinforce-nfv/reinforce/port"
	"github.com/reinforce-nfv/reinforce/shm"
	"github.com/reinforce-nfv/reinforce/shm/state"
	"github.com/reinforce-nfv/reinforce/tools/pktgen/gen"
	"github.com/reinforce-nfv/reinforce/tools/sink/check"
	"github.com/reinforce-nfv/reinforce/tools/testbed/lab"
	"github.com/reinforce-nfv/reinforce/tools/testbed/remotelab"
)

// Remote replication in the namespace lab (issue 10 item 5;
// docs/replicator.md, "Tests"): pktgen → primary manager (stamp → mutate,
// chain c0 replicated, policy "hold") → sink, and a standby manager in a
// server of its own, reached through tools/relay, which loses, duplicates
// and reorders the replication link's frames and blacks it out once. The
// test reads the sink's stamps live and the standby's state file from
// outside, and kills the standby mid-run.

const (
	repLabFlows = 32
	repLabRate  = 15000
	// repLabQuota is the latch quota: about 140 ms of traffic, so a
	// blackout of repLabBlackout fills it and RX drops.
	repLabQuota    = 2048
	repLabBlackout = 300 * time.Millisecond
	// repLabStampFlows is stamp's -c: the capacity of its "flows" map,
	// which the test needs to open the map in a state file.
	repLabStampFlows = 1024
	// repLabGuardEvery is the output-commit guard's period.
	repLabGuardEvery = 2 * time.Millisecond
	repLabPSK        = "lab replication key 0123456789"
	repLabPrimaryIP  = "10.77.7.1"
	repLabStandbyIP  = "10.77.7.2"
	repLabPort       = 7400
	// Instances of the chain's NFs (explicit: the replication lists them).
	repLabStampInst  = 1
	repLabMutateInst = 2
)

var (
	repBuildOnce sync.Once
	repBuildErr  error
)

// repBins adds stamp, mutate and the relay to bins' directory.
func repBins(t *testing.T) string {
	t.Helper()
	bin := bins(t)
	repBuildOnce.Do(func() {
		out, err := exec.Command("go", "build", "-o", bin+"/", "../../examples/stamp", "../../examples/mutate", "../relay").CombinedOutput()
		if err != nil {
			repBuildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if repBuildErr != nil {
		t.Fatal(repBuildErr)
	}
	return bin
}

// repTopo: gen → pri (p0, p1) → sink on the data path; pri:rep0 ↔ wire:a,
// wire:b ↔ sb:rep0 for replication, one subnet across the relay.
func repTopo() lab.Config {
	return lab.Config{
		Servers: []lab.ServerConfig{{Name: "gen"}, {Name: "pri"}, {Name: "sink"}, {Name: "wire"}, {Name: "sb"}},
		Links: []lab.LinkConfig{
			{A: "gen:eth0", B: "pri:p0"},
			{A: "pri:p1", B: "sink:eth0"},
			{A: "pri:rep0", B: "wire:a", AddrA: repLabPrimaryIP + "/24"},
			{A: "wire:b", B: "sb:rep0", AddrB: repLabStandbyIP + "/24"},
		},
	}
}

// repLabConfig is a manager's TOML: chain c0 = stamp (service 1) → mutate
// (service 2) replicated in role. The primary has the afpacket ports and
// runs the NFs; the standby has neither (its NFs are not attached yet:
// docs/replicator.md, "Not done yet"), only the chain and its instances.
func repLabConfig(bin, name, sock, role string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `[manager]
name = %q
region_dir = "/dev/shm"
control_socket = %q
stats_out = "none"
stats_interval_s = 1
shared_cpu = true
default_chain = "c0"
`, name, sock)
	local, peer, out := repLabStandbyIP, repLabPrimaryIP, -1
	if role == "primary" {
		local, peer, out = repLabPrimaryIP, repLabStandbyIP, 1
		fmt.Fprintf(&b, `pool_slots = 16384
ring_size = 8192

[[port]]
id = 0
driver = "afpacket"
iface = "p0"

[[port]]
id = 1
driver = "afpacket"
iface = "p1"

[[nf]]
tag = "stamp"
service = 1
instance = %d
command = [%q, "-f", "0", "-c", "%d"]

[[nf]]
tag = "mutate"
service = 2
instance = %d
command = [%q]
`, repLabStampInst, filepath.Join(bin, "stamp"), repLabStampFlows, repLabMutateInst, filepath.Join(bin, "mutate"))
	} else {
		b.WriteString("pool_slots = 2048\nring_size = 1024\n")
	}
	fmt.Fprintf(&b, `
[[chain]]
name = "c0"
services = [1, 2]
out_port = %d

[replication]
psk = %q
latch_quota = %d
on_standby_lost = "hold"

[[replication.chain]]
chain = "c0"
role = %q
local = "%s:%d"
peer = "%s:%d"
instances = [%d, %d]
`, out, repLabPSK, repLabQuota, role, local, repLabPort, peer, repLabPort, repLabStampInst, repLabMutateInst)
	return b.String()
}

// startRepMgr runs a manager named name in srv, in a process group of its
// own (the test kills it with its group), and waits until ready says so.
func startRepMgr(t *testing.T, srv *lab.Server, bin, name, role string, ready func(manager.Snapshot) bool) *mgrProc {
	t.Helper()
	dir := t.TempDir()
	sock := filepath.Join(dir, "ctl.sock")
	path := filepath.Join(dir, "mgr.toml")
	if err := os.WriteFile(path, []byte(repLabConfig(bin, name, sock, role)), 0o644); err != nil {
		t.Fatal(err)
	}
	m := &mgrProc{sock: sock, out: &syncBuf{}}
	m.cmd = srv.Command(filepath.Join(bin, "reinforce-mgr"), "--config", path)
	m.cmd.SysProcAttr.Setpgid = true
	m.cmd.Dir = dir
	m.cmd.Stdout, m.cmd.Stderr = m.out, m.out
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
		m.cmd.Wait()
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		s, err := m.stats()
		if err == nil && ready(s) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("manager %s not ready after 20 s (last error %v):\n%s", name, err, tail(m.out.String(), 6000))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rep is the manager's one replicated chain's counters.
func (m *mgrProc) rep() (manager.RepStats, error) {
	s, err := m.stats()
	if err != nil {
		return manager.RepStats{}, err
	}
	if len(s.Replication) != 1 {
		return manager.RepStats{}, fmt.Errorf("%d replicated chains in stats, want 1", len(s.Replication))
	}
	return s.Replication[0], nil
}

// waitRep polls m's replication counters until cond holds.
func waitRep(t *testing.T, m *mgrProc, d time.Duration, what string, cond func(manager.RepStats) bool) manager.RepStats {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		r, err := m.rep()
		if err == nil && cond(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v (last error %v, counters %+v)\nmanager:\n%s", what, d, err, r, tail(m.out.String(), 6000))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ---- the live sink ----

// liveSink is the sink's receive side (tools/sink's loop, feeding
// tools/sink/check) run in the test process on a socket opened in the sink
// server's network namespace, so the output-commit guard reads each flow's
// highest stamp the instant it checks, with no report in between.
type liveSink struct {
	f     *gen.Iface
	ck    *check.Checker
	max   []atomic.Uint32 // per flow: the highest stamp 0 received so far
	got   atomic.Uint64   // probes received
	stop  chan struct{}
	done  chan struct{}
	other uint64 // frames without a probe (loop's until done)
	stats port.Stats
	kdrop uint64
	// per flow, the loop's until done: probes received, stamps that did not
	// rise by exactly one (with the first packet's distance from 1), and
	// the sum of the gaps they left.
	recv, jumps, gapSum []uint64
	last                []uint32
	bad                 []string // repeats, regressions, unknown flows
}

func startLiveSink(t *testing.T, srv *lab.Server, iface string, flows int) *liveSink {
	t.Helper()
	ck, err := check.New(check.Options{Stamps: []int{0}, CheckMutate: true, Mutate: 1})
	if err != nil {
		t.Fatal(err)
	}
	s := &liveSink{ck: ck, max: make([]atomic.Uint32, flows), stop: make(chan struct{}), done: make(chan struct{}),
		recv: make([]uint64, flows), jumps: make([]uint64, flows), gapSum: make([]uint64, flows), last: make([]uint32, flows)}
	// Only the socket needs the namespace: it stays bound to the sink's
	// eth0 when the goroutine below polls it from any thread.
	if err := srv.Do(func() (err error) {
		s.f, err = gen.OpenIface(iface, 16384, 9600+shm.HeadroomBytes, gen.AfpacketDefaults())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	go s.loop()
	t.Cleanup(func() { s.close() })
	return s
}

func (s *liveSink) loop() {
	defer close(s.done)
	var (
		slots = make([]shm.Slot, 64)
		h     pkt.Headers
		rec   probe.Record
		r     = s.f.Region
	)
	for {
		s.f.Service()
		n := s.f.Port.RxBurst(s.f.Cache, slots)
		for _, sl := range slots[:n] {
			m := r.Meta(sl)
			frame := r.Packet(sl)
			off, ok := probe.Find(&h, frame)
			if !ok || !rec.Get(frame[off:]) {
				s.other++
				s.ck.AddOther(gen.FrameHash(frame), h.Decode(frame) != nil)
				continue
			}
			s.ck.Add(&rec, m.Timestamp)
			s.track(&rec)
		}
		if n > 0 {
			s.f.Cache.Free(slots[:n])
			continue
		}
		select {
		case <-s.stop:
			s.stats = s.f.Port.Stats()
			s.kdrop = s.f.Port.Detail().RxKernelDrops
			return
		default:
			time.Sleep(200 * time.Microsecond)
		}
	}
}

// track keeps the per-flow stamp bookkeeping; the highest stamp is
// published after the packet is counted.
func (s *liveSink) track(rec *probe.Record) {
	f := int(rec.Flow)
	if f >= len(s.max) {
		if len(s.bad) < 20 {
			s.bad = append(s.bad, fmt.Sprintf("probe of flow %d (only %d sent)", rec.Flow, len(s.max)))
		}
		return
	}
	v := rec.Stamp[0]
	switch prev := s.last[f]; {
	case v == prev+1:
	case v > prev+1:
		s.jumps[f]++
		s.gapSum[f] += uint64(v - prev - 1)
	default:
		if len(s.bad) < 20 {
			s.bad = append(s.bad, fmt.Sprintf("flow %d seq %d: stamp %d after %d", f, rec.Seq, v, prev))
		}
	}
	if v > s.last[f] {
		s.last[f] = v
	}
	s.recv[f]++
	if v > s.max[f].Load() {
		s.max[f].Store(v)
	}
	s.got.Add(1)
}

// close stops the loop (once) and closes the socket.
func (s *liveSink) close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
}

// ---- state files, read from outside ----

// stampKey is examples/stamp's state map key (its flowKey: probe flow ID,
// and 1 for probes).
type stampKey struct {
	ID    uint32
	Probe uint32
}

// State file directory entries (shm/state's layout: 128-byte entries
// whose first 48 bytes are the NUL-padded name).
const (
	stateDirEntry = 128
	stateDirName  = 48
)

// hasContainer reports whether f's directory lists name. The test must not
// open a container that is not there: opening creates it, and f is
// another process's file.
func hasContainer(f *state.File, name string) bool {
	dir, _ := f.Containers()
	for i := 0; i+stateDirEntry <= len(dir); i += stateDirEntry {
		if string(bytes.TrimRight(dir[i:i+stateDirName], "\x00")) == name {
			return true
		}
	}
	return false
}

// inServer is path as seen inside srv's mount namespace, reached through
// its namespace holder's /proc root.
func inServer(srv *lab.Server, path string) string {
	return filepath.Join(fmt.Sprintf("/proc/%d/root", srv.PID()), path)
}

// mgrStatePath is instance inst's state file of the manager named name in
// srv (state.PathFor of its region in /dev/shm), seen from the host.
func mgrStatePath(srv *lab.Server, name string, inst uint16) string {
	return inServer(srv, state.PathFor("/dev/shm/"+name+".region", false, inst))
}

// stampReader reads the stamp NF's per-flow counters from a state file,
// mapped once (the guard reads every few milliseconds) and mapped again
// when the path names another file (a snapshot is installed by rename).
type stampReader struct {
	path string
	ino  uint64
	f    *state.File
	m    *state.Map[stampKey, uint64]
}

// read fills out (0 for a flow not in the map) from the file at path.
func (r *stampReader) read(path string, out []uint64) error {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		r.close()
		return err
	}
	if r.f == nil || r.path != path || r.ino != st.Ino {
		r.close()
		f, err := state.Prepare(path)
		if err != nil {
			return err
		}
		if !hasContainer(f, "flows") {
			f.Close()
			return fmt.Errorf("%s: no \"flows\" map yet", path)
		}
		m, err := state.NewMap[stampKey, uint64](f, "flows", repLabStampFlows)
		if err != nil {
			f.Close()
			return err
		}
		r.path, r.ino, r.f, r.m = path, st.Ino, f, m
	}
	for i := range out {
		out[i], _ = r.m.Get(stampKey{ID: uint32(i), Probe: 1})
	}
	return nil
}

func (r *stampReader) close() {
	if r.f != nil {
		r.f.Close()
		r.f, r.m = nil, nil
	}
}

// readStamps returns the stamp NF's per-flow counters in the state file at
// path.
func readStamps(path string, flows int) ([]uint64, error) {
	var r stampReader
	defer r.close()
	out := make([]uint64, flows)
	if err := r.read(path, out); err != nil {
		return nil, err
	}
	return out, nil
}

// stateContainers reads the directory and data of the state file at path.
func stateContainers(path string) (dir, data []byte, err error) {
	f, err := state.Prepare(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	d, b := f.Containers()
	return bytes.Clone(d), bytes.Clone(b), nil
}

// ---- the output-commit guard ----

// commitGuard checks guarantee 1 from outside, every repLabGuardEvery:
// each flow's highest stamp at the sink, read first, must not exceed the
// standby's applied counter for that flow, read after (counters only
// grow, so reading the standby later can only help a correct system; a
// primary that releases output early is caught whenever the standby lags
// at that moment).
//
// The witnesses are the standbys' stamp state files. While a new standby
// joins after the old one died, both count: output held since the death is
// released when the new one acknowledged its snapshot, and the guard
// cannot switch files at that very instant; the dead standby applies
// nothing more, so whatever the sink gets beyond its state must be in the
// new one's. Once the new standby protects the chain, its file alone is
// the witness.
type commitGuard struct {
	sink      *liveSink
	flows     int
	witnesses atomic.Pointer[[]string]
	phase     atomic.Pointer[string] // what the run is doing, for counts and messages
	stop      chan struct{}
	done      chan struct{}
	rd        map[string]*stampReader // the loop's
	applied   []uint64                // the loop's
	one       []uint64                // the loop's

	mu         sync.Mutex
	checks     map[string]uint64 // per phase
	violations uint64
	examples   []string
}

func startGuard(sink *liveSink, flows int, phase string, witnesses ...string) *commitGuard {
	g := &commitGuard{sink: sink, flows: flows, stop: make(chan struct{}), done: make(chan struct{}), checks: map[string]uint64{},
		rd: map[string]*stampReader{}, applied: make([]uint64, flows), one: make([]uint64, flows)}
	g.setWitnesses(witnesses...)
	g.setPhase(phase)
	go g.loop()
	return g
}

func (g *commitGuard) setWitnesses(paths ...string) { g.witnesses.Store(&paths) }
func (g *commitGuard) setPhase(p string)            { g.phase.Store(&p) }

func (g *commitGuard) loop() {
	defer close(g.done)
	defer func() {
		for _, r := range g.rd {
			r.close()
		}
	}()
	tk := time.NewTicker(repLabGuardEvery)
	defer tk.Stop()
	for {
		g.check()
		select {
		case <-g.stop:
			g.check() // once more, after everything stopped
			return
		case <-tk.C:
		}
	}
}

func (g *commitGuard) check() {
	seen := make([]uint32, g.flows)
	any := false
	for f := range seen {
		seen[f] = g.sink.max[f].Load()
		any = any || seen[f] > 0
	}
	paths, phase := *g.witnesses.Load(), *g.phase.Load()
	clear(g.applied)
	var errs []string
	for _, p := range paths {
		r := g.rd[p]
		if r == nil {
			r = &stampReader{}
			g.rd[p] = r
		}
		if err := r.read(p, g.one); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		for f, v := range g.one {
			g.applied[f] = max(g.applied[f], v)
		}
	}
	var msg string
	switch {
	case len(errs) == len(paths) && any:
		msg = fmt.Sprintf("the sink has stamps but no standby state is readable: %s", strings.Join(errs, "; "))
	case len(errs) < len(paths):
		for f, s := range seen {
			if uint64(s) > g.applied[f] {
				msg = fmt.Sprintf("flow %d: the sink received stamp %d, the standby has applied %d", f, s, g.applied[f])
				break
			}
		}
	}
	g.mu.Lock()
	g.checks[phase]++
	if msg != "" {
		g.violations++
		if len(g.examples) < 10 {
			g.examples = append(g.examples, phase+": "+msg)
		}
	}
	g.mu.Unlock()
}

// result stops the guard (once) and returns its counts.
func (g *commitGuard) result() (checks map[string]uint64, violations uint64, examples []string) {
	select {
	case <-g.stop:
	default:
		close(g.stop)
	}
	<-g.done
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.checks, g.violations, g.examples
}

// failed reports the guard's violations so far, without stopping it.
func (g *commitGuard) failed() (uint64, []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.violations, append([]string(nil), g.examples...)
}

// ---- the test ----

// TestReplicationRemoteStandbyLab is issue 10's acceptance in the lab:
//
//  1. pktgen sends repLabFlows flows at repLabRate through the primary's
//     chain (stamp → mutate) while the relay loses, duplicates and
//     reorders 5 % of the replication link's frames each way, and blacks
//     it out once for repLabBlackout;
//  2. all along, the output-commit guard checks that the sink never holds
//     a stamp the standby has not applied;
//  3. the standby manager is killed (SIGKILL, its process group): the
//     chain goes unprotected, output is held (the sink's count stands
//     still), the latch fills and RX drops; a new standby manager joins,
//     the chain is protected again and the held output leaves;
//  4. the verdict: no duplicate, no reordering, stamps +1 per flow except
//     across packets lost after stamp, every packet mutated once, and the
//     loss equal to the primary's counted drops; the standby's state equals
//     the primary's; the relay really impaired the link and the replicator
//     retransmitted.
func TestReplicationRemoteStandbyLab(t *testing.T) {
	start := time.Now()
	bin := repBins(t)
	l := upLab(t, repTopo())
	// The relay forwards frames as the kernel handed them over, and a veth
	// sender leaves UDP checksums to "offload" (docs/replication.md,
	// "Relay"): the replication endpoints compute them.
	for _, s := range []string{"pri", "sb"} {
		if out, err := l.Server(s).Command("ethtool", "-K", "rep0", "tx", "off").CombinedOutput(); err != nil {
			t.Fatalf("ethtool in %s: %v\n%s", s, err, out)
		}
	}
	relay, err := remotelab.StartRelay(l.Server("wire"), bin, t.TempDir(), "-a", "a", "-b", "b", "-seed", "7",
		"-loss", "0.05", "-dup", "0.05", "-reorder", "0.05")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(relay.Close)
	sbSrv := l.Server("sb")
	var (
		events       []string
		eventsLogged bool
		genStart     = time.Now()
		pm, sb, sb2  *mgrProc
	)
	event := func(format string, args ...any) {
		events = append(events, fmt.Sprintf("+%.3fs ", time.Since(genStart).Seconds())+fmt.Sprintf(format, args...))
	}
	defer func() {
		if !t.Failed() {
			return
		}
		if !eventsLogged {
			t.Logf("events:\n%s", strings.Join(events, "\n"))
		}
		for _, m := range []struct {
			name string
			m    *mgrProc
		}{{"primary", pm}, {"standby sb1", sb}, {"standby sb2", sb2}} {
			if m.m != nil {
				t.Logf("%s manager:\n%s", m.name, tail(m.m.out.String(), 6000))
			}
		}
		st, err := relay.Stats()
		t.Logf("relay: %+v %v\n%s", st, err, tail(relay.Output(), 2000))
	}()
	hasRep := func(s manager.Snapshot) bool { return len(s.Replication) == 1 }
	sb = startRepMgr(t, sbSrv, bin, "sb1", "standby", hasRep)
	pm = startRepMgr(t, l.Server("pri"), bin, "pri", "primary", func(s manager.Snapshot) bool {
		return hasRep(s) && len(s.NFs) == 2 && s.NFs[0].Running && s.NFs[1].Running
	})
	protected := func(r manager.RepStats) bool { return r.Status == manager.RepProtected }
	waitRep(t, pm, 20*time.Second, "primary: chain c0 protected at start", protected)
	waitRep(t, sb, 5*time.Second, "standby: chain c0 protected at start", protected)
	priStamp := mgrStatePath(l.Server("pri"), "pri", repLabStampInst)
	if _, err := os.Stat(priStamp); err != nil {
		t.Fatalf("the primary's stamp state file: %v", err)
	}
	setup := time.Since(start)

	dir := t.TempDir()
	sentPath := filepath.Join(dir, "sent.json")
	sink := startLiveSink(t, l.Server("sink"), "eth0", repLabFlows)
	sb1Stamp, sb2Stamp := mgrStatePath(sbSrv, "sb1", repLabStampInst), mgrStatePath(sbSrv, "sb2", repLabStampInst)
	guard := startGuard(sink, repLabFlows, "traffic", sb1Stamp)
	defer guard.result()
	g := startPktgen(t, l.Server("gen"), bin, "-i", "eth0", "-flows", strconv.Itoa(repLabFlows), "-rate", strconv.Itoa(repLabRate),
		"-bucket", "64", "-duration", "60m")
	genStart = time.Now()
	// guardOK fails the test now if the guard saw a violation.
	guardOK := func(when string) {
		t.Helper()
		if n, ex := guard.failed(); n > 0 {
			t.Fatalf("output commit violated (%s): %d checks failed, e.g.:\n%s", when, n, strings.Join(ex, "\n"))
		}
	}
	// flowing waits until the sink's count rises by n.
	flowing := func(what string, n uint64, d time.Duration) {
		t.Helper()
		from := sink.got.Load()
		deadline := time.Now().Add(d)
		for sink.got.Load() < from+n {
			if time.Now().After(deadline) {
				r, _ := pm.rep()
				t.Fatalf("%s: the sink got %d packets in %v, want %d (primary %+v)", what, sink.got.Load()-from, d, n, r)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	// 1. Traffic over the impaired link.
	flowing("traffic through the chain", repLabRate/2, 5*time.Second)
	time.Sleep(time.Second)
	guardOK("under loss, duplication and reordering")
	event("traffic flowing, sink %d, p0 rx drops %d", sink.got.Load(), p0Drops(pm))

	// The blackout: nothing crosses the link, so nothing is acknowledged
	// and output stays latched, and BFD (5 ms × 5) declares the standby
	// lost: the chain must show unprotected.
	guard.setPhase("blackout")
	atBlackout, _ := pm.rep()
	sinkAtBlackout := sink.got.Load()
	if _, err := relay.Ctl(fmt.Sprintf("blackout %v", repLabBlackout)); err != nil {
		t.Fatal(err)
	}
	event("blackout %v: sink %d, %d rx latch drops, p0 rx drops %d", repLabBlackout, sinkAtBlackout, atBlackout.RXLatchDrops, p0Drops(pm))
	var sawUnprotected bool
	var maxLatched uint64
	for bStart := time.Now(); time.Since(bStart) < repLabBlackout; time.Sleep(5 * time.Millisecond) {
		if r, err := pm.rep(); err == nil {
			sawUnprotected = sawUnprotected || r.Status == manager.RepUnprotected
			maxLatched = max(maxLatched, r.Latched)
		}
	}
	guard.setPhase("after blackout")
	event("blackout over: the sink got %d during it; unprotected seen %v, latched up to %d", sink.got.Load()-sinkAtBlackout, sawUnprotected, maxLatched)
	if !sawUnprotected {
		t.Fatalf("the chain never showed unprotected during a %v blackout of the replication link", repLabBlackout)
	}
	r := waitRep(t, pm, 10*time.Second, "primary: chain c0 protected after the blackout", protected)
	event("protected again: %d latched, %d rx latch drops, p0 rx drops %d", r.Latched, r.RXLatchDrops, p0Drops(pm))
	flowing("traffic after the blackout", repLabRate/2, 5*time.Second)
	guardOK("during and after the blackout")

	// 2. The standby dies.
	guard.setPhase("standby killed")
	before, _ := pm.rep()
	if err := syscall.Kill(-sb.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	sb.cmd.Wait()
	event("standby killed (sink %d, primary released %d)", sink.got.Load(), before.Released)
	waitRep(t, pm, 5*time.Second, "primary: chain c0 unprotected after the standby's death", func(r manager.RepStats) bool {
		return r.Status == manager.RepUnprotected
	})
	event("unprotected")
	full := waitRep(t, pm, 3*time.Second, "the latch at its quota, RX dropping", func(r manager.RepStats) bool {
		return r.Latched >= repLabQuota && r.RXLatchDrops > before.RXLatchDrops
	})
	heldSink := sink.got.Load()
	event("latch full: %d latched, %d rx latch drops, sink %d", full.Latched, full.RXLatchDrops, heldSink)
	time.Sleep(500 * time.Millisecond)
	held, err := pm.rep()
	if err != nil {
		t.Fatal(err)
	}
	if n := sink.got.Load(); n != heldSink {
		t.Fatalf("output not held while the standby is dead: the sink got %d packets in 500 ms with the latch full", n-heldSink)
	}
	if held.Released != full.Released || held.ReleasedUnacked != 0 {
		t.Fatalf("the primary released output without a standby: released %d → %d, unprotected %d", full.Released, held.Released, held.ReleasedUnacked)
	}
	if held.Latched < repLabQuota || held.RXLatchDrops <= full.RXLatchDrops {
		t.Fatalf("while held: %d latched (quota %d), rx latch drops %d → %d: RX should drop at the quota",
			held.Latched, repLabQuota, full.RXLatchDrops, held.RXLatchDrops)
	}
	event("held for 500 ms: sink %d, %d latched, %d rx latch drops", sink.got.Load(), held.Latched, held.RXLatchDrops)
	guardOK("while the standby was dead")

	// 3. A new standby manager (new region, empty state) joins.
	guard.setWitnesses(sb1Stamp, sb2Stamp)
	guard.setPhase("standby joining")
	sb2 = startRepMgr(t, sbSrv, bin, "sb2", "standby", hasRep)
	event("standby sb2 started")
	// "Protected" must name the new standby: the primary counts a standby
	// as joined only after it confirmed itself in the current transport
	// session (replicator.Node), so the dead standby's join does not count.
	// The primary's join count tells the new join apart.
	joinsBefore := held.Node.Replicator.Joins
	back := waitRep(t, pm, 15*time.Second, "primary: chain c0 protected by the new standby", func(r manager.RepStats) bool {
		if r.Status == manager.RepProtected && r.Node.Replicator.Joins == joinsBefore {
			_, err := os.Stat(sb2Stamp)
			t.Fatalf("the primary reports protected before the new standby joined (joins %d, released %d, %d latched; sb2's state file: %v)",
				r.Node.Replicator.Joins, r.Released, r.Latched, err)
		}
		return protected(r) && r.Node.Replicator.Joins > joinsBefore
	})
	waitRep(t, sb2, 5*time.Second, "standby sb2: chain c0 protected", protected)
	guard.setWitnesses(sb2Stamp)
	guard.setPhase("after rejoin")
	event("protected by sb2: %d latched, released %d", back.Latched, back.Released)
	waitRep(t, pm, 5*time.Second, "the held output released", func(r manager.RepStats) bool {
		return r.Released >= held.Released+held.Latched
	})
	flowing("the held output at the sink", held.Latched, 5*time.Second)
	event("held output released, sink %d, p0 rx drops %d", sink.got.Load(), p0Drops(pm))
	flowing("traffic after the rejoin", repLabRate, 5*time.Second)
	guardOK("after the new standby joined")

	// 4. Stop, drain, verdict.
	guard.setPhase("drain")
	rep := g.stop(t, sentPath)
	event("pktgen stopped: sent %d", rep.Sent)
	deadline := time.Now().Add(10 * time.Second)
	var last uint64
	var lastChange time.Time
	for {
		r, err := pm.rep()
		n := sink.got.Load()
		if n != last {
			last, lastChange = n, time.Now()
		}
		if err == nil && r.Latched == 0 && time.Since(lastChange) > 300*time.Millisecond {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not drained 10 s after pktgen stopped: %+v, sink %d", r, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	checks, violations, examples := guard.result()
	sink.close()
	res := sink.ck.Report(perFlow(rep.PerFlow))
	final, err := pm.stats()
	if err != nil {
		t.Fatal(err)
	}
	fr := final.Replication[0]
	event("drained: sink %d", sink.got.Load())

	// The standby's state equals the primary's.
	var priFlows, sbFlows []uint64
	convDeadline := time.Now().Add(10 * time.Second)
	for {
		priFlows, err = readStamps(priStamp, repLabFlows)
		if err != nil {
			t.Fatal(err)
		}
		sbFlows, _ = readStamps(sb2Stamp, repLabFlows)
		same := sbFlows != nil && fmt.Sprint(priFlows) == fmt.Sprint(sbFlows)
		for _, inst := range []uint16{repLabStampInst, repLabMutateInst} {
			pd, pb, err1 := stateContainers(mgrStatePath(l.Server("pri"), "pri", inst))
			sd, sbb, err2 := stateContainers(mgrStatePath(sbSrv, "sb2", inst))
			same = same && err1 == nil && err2 == nil && bytes.Equal(pd, sd) && bytes.Equal(pb, sbb)
		}
		if same {
			for _, inst := range []uint16{repLabStampInst, repLabMutateInst} {
				d, b, _ := stateContainers(mgrStatePath(sbSrv, "sb2", inst))
				t.Logf("instance %d: the standby's state file equals the primary's: %d containers, %d data bytes", inst, len(d)/stateDirEntry, len(b))
			}
			break
		}
		if time.Now().After(convDeadline) {
			t.Fatalf("the standby's state files differ from the primary's 10 s after traffic stopped:\nprimary stamps %v\nstandby stamps %v", priFlows, sbFlows)
		}
		time.Sleep(20 * time.Millisecond)
	}

	rc, err := relay.Stats()
	if err != nil {
		t.Fatal(err)
	}
	sb2Rep, _ := sb2.rep()

	// Where the packets went. Before stamp: dropped at p0 (the kernel's
	// ring included), RX ring into stamp full, no NF, the latch's quota.
	// After stamp (a stamp gap at the sink): the TX ring into mutate full,
	// the latch ring overflowing, latched output discarded (a demotion: none
	// here), the port refusing or dropping at TX.
	var p0, p1 port.Stats
	for _, p := range final.Ports {
		switch p.ID {
		case 0:
			p0 = p.Stats
		case 1:
			p1 = p.Stats
		}
	}
	d := final.Drops
	preStamp := p0.RxDrops + d.RXRingFull + d.RXNoNF + fr.RXLatchDrops
	postStamp := d.TXRingFull + d.TXNoNF + d.TXBadMeta + fr.TXLatchOverflows + fr.Discarded + d.TXPortDrop + p1.TxDrops
	var stamped, gaps, jumps uint64
	for f := range repLabFlows {
		stamped += priFlows[f]
		gaps += sink.gapSum[f]
		jumps += sink.jumps[f]
	}

	t.Logf("setup %v, traffic %v, total %v", setup.Round(time.Millisecond), time.Since(genStart).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	t.Logf("pktgen: sent %d (%.0f pps, %d forfeited); sink: received %d, lost %d, duplicated %d, reordered %d, stamp jumps %d (%d stamps skipped), mutate violations %d, other %d, kernel drops %d, rx drops %d",
		rep.Sent, rep.PPS, rep.Forfeited, res.Received, res.Lost, res.Duplicated, res.Reordered, jumps, gaps, res.MutateErrors, sink.other, sink.kdrop, sink.stats.RxDrops)
	t.Logf("primary drops: before stamp %d (p0 rx %d, rx ring full %d, rx no NF %d, rx latch %d); after stamp %d (tx ring full %d, tx no NF %d, tx bad meta %d, latch overflow %d, latch discarded %d, tx port %d, p1 tx %d); stamp counted %d",
		preStamp, p0.RxDrops, d.RXRingFull, d.RXNoNF, fr.RXLatchDrops, postStamp, d.TXRingFull, d.TXNoNF, d.TXBadMeta, fr.TXLatchOverflows, fr.Discarded, d.TXPortDrop, p1.TxDrops, stamped)
	t.Logf("primary replication: latched %d, released %d, rounds %d, writes read %d sent %d, payload %d B, backpressure %d; replicator %+v; BFD %+v",
		fr.LatchedTotal, fr.Released, fr.Rounds, fr.WritesRead, fr.WritesSent, fr.PayloadBytes, fr.Backpressure, fr.Node.Replicator, fr.Node.BFD)
	t.Logf("standby sb2: applied %d, snapshots %d, digest mismatches %d; replicator %+v", sb2Rep.Applied, sb2Rep.SnapshotsApplied, sb2Rep.DigestMismatches, sb2Rep.Node.Replicator)
	t.Logf("relay: in %d, out %d, lost %d, duplicated %d, reordered %d, blackholed %d", rc.In, rc.Out, rc.Lost, rc.Duplicated, rc.Reordered, rc.Blackholed)
	t.Logf("output-commit guard: %d violations; checks per phase %v", violations, checks)
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	sb2Snap, _ := sb2.stats()
	cpu := fmt.Sprintf("primary manager %.0f%%", final.Manager.CPUPercent)
	for _, nf := range final.NFs {
		cpu += fmt.Sprintf(", %s %.0f%%", nf.Tag, nf.Proc.CPUPercent)
	}
	t.Logf("CPU (since each process started, 100%% = one CPU): %s, standby sb2 %.0f%%; the test process (sink and guard) %.1f s over %v",
		cpu, sb2Snap.Manager.CPUPercent, time.Duration(ru.Utime.Nano()+ru.Stime.Nano()).Seconds(), time.Since(start).Round(time.Millisecond))
	t.Logf("events:\n%s", strings.Join(events, "\n"))
	eventsLogged = true

	if violations > 0 {
		t.Errorf("output commit violated: %d of the guard's checks failed, e.g.:\n%s", violations, strings.Join(examples, "\n"))
	}
	for _, ph := range []string{"traffic", "blackout", "standby killed", "after rejoin"} {
		if checks[ph] < 20 {
			t.Errorf("the output-commit guard ran %d checks in phase %q, want at least 20 (checks %v)", checks[ph], ph, checks)
		}
	}
	if res.Duplicated != 0 || res.Reordered != 0 || res.Unexpected != 0 || res.Untracked != 0 || res.MutateErrors != 0 || len(sink.bad) > 0 {
		t.Errorf("sink verdict: duplicated %d, reordered %d, unexpected %d, untracked %d, mutate violations %d; %v; %v",
			res.Duplicated, res.Reordered, res.Unexpected, res.Untracked, res.MutateErrors, sink.bad, res.Violations)
	}
	if sink.other != 0 || sink.kdrop != 0 || sink.stats.RxDrops != 0 {
		t.Errorf("the sink lost or got frames the primary cannot account for: %d without a probe, %d kernel drops, %d rx drops", sink.other, sink.kdrop, sink.stats.RxDrops)
	}
	if res.Expected != rep.Sent {
		t.Errorf("the sink expected %d packets, pktgen sent %d", res.Expected, rep.Sent)
	}
	// Exact accounting: every packet pktgen sent was stamped or dropped
	// before stamp; every stamped one reached the sink or was dropped after
	// stamp, which shows as a stamp gap.
	if rep.Sent != stamped+preStamp {
		t.Errorf("pktgen sent %d, stamp counted %d and the primary dropped %d before stamp: %d unaccounted", rep.Sent, stamped, preStamp, int64(rep.Sent)-int64(stamped+preStamp))
	}
	if stamped != res.Received+gaps || gaps != postStamp {
		t.Errorf("stamp counted %d, the sink received %d with %d stamps skipped; the primary dropped %d after stamp", stamped, res.Received, gaps, postStamp)
	}
	if res.Lost != preStamp+postStamp {
		t.Errorf("the sink lost %d packets, the primary counted %d drops (%d before stamp, %d after)", res.Lost, preStamp+postStamp, preStamp, postStamp)
	}
	if fr.RXLatchDrops == 0 {
		t.Errorf("no RX drop at the latch quota: the test did not fill the latch")
	}
	if d.BadHandovers != 0 {
		t.Errorf("%d bad handovers in the primary", d.BadHandovers)
	}
	if rc.Lost == 0 || rc.Duplicated == 0 || rc.Reordered == 0 || rc.Blackholed == 0 {
		t.Errorf("the relay did not impair the link: %+v", rc)
	}
	if fr.Node.Replicator.Retransmits == 0 {
		t.Errorf("the replicator never retransmitted: %+v", fr.Node.Replicator)
	}
	if sb2Rep.SnapshotsApplied == 0 {
		t.Errorf("the new standby applied no snapshot: %+v", sb2Rep)
	}
	if time.Since(start) > 60*time.Second {
		t.Logf("warning: the test took %v, more than its 60 s budget", time.Since(start).Round(time.Millisecond))
	}
}

// p0Drops is the primary's p0 RX drops (the kernel's included), for the
// events.
func p0Drops(m *mgrProc) uint64 {
	s, err := m.stats()
	if err != nil {
		return 0
	}
	for _, p := range s.Ports {
		if p.ID == 0 {
			return p.RxDrops
		}
	}
	return 0
}

// perFlow turns pktgen's per-flow counts into the checker's map.
func perFlow(n []uint64) map[uint32]uint64 {
	m := make(map[uint32]uint64, len(n))
	for i, v := range n {
		m[uint32(i)] = v
	}
	return m
}
