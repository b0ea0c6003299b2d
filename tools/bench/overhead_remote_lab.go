package main

// The lab side of overhead -remote: the topology, the two managers
// (reinforce-mgr in servers pri and sb), pktgen in gen, the sink in this
// process (its socket opened in the sink server's network namespace), the
// UDP echo round trip, CPU and replication sampling.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/reinforce-nfv/reinforce/manager"
	"github.com/reinforce-nfv/reinforce/pkt"
	"github.com/reinforce-nfv/reinforce/pkt/probe"
	"github.com/reinforce-nfv/reinforce/port"
	"github.com/reinforce-nfv/reinforce/shm"
	"github.com/reinforce-nfv/reinforce/tools/pktgen/gen"
	"github.com/reinforce-nfv/reinforce/tools/sink/check"
	"github.com/reinforce-nfv/reinforce/tools/testbed/lab"
)

// The replication link's addresses and ports.
const (
	remotePrimaryIP = "10.77.0.1"
	remoteStandbyIP = "10.77.0.2"
	remoteRepPort   = 7400
	remoteEchoPort  = 7409
	remotePSK       = "bench overhead remote key 0123456789"
	// remoteSampleEvery is how often the primary's stats are read during a
	// window, in both configurations, so the control socket's cost is the
	// same in the baseline.
	remoteSampleEvery = 50 * time.Millisecond
	// remoteSinkIdle ends a phase's sink this long after its last frame
	// once pktgen has stopped.
	remoteSinkIdle = 300 * time.Millisecond
	// remoteIdleWindow is how long each session measures its processes'
	// CPU before any traffic.
	remoteIdleWindow = time.Second
	// remoteDrainMax bounds the wait for the chain to deliver what it
	// still holds after pktgen stopped.
	remoteDrainMax = 10 * time.Second
)

// remoteTopo is the lab of overhead -remote. sb's idle0 gives the standby
// manager a port that carries nothing.
func remoteTopo() lab.Config {
	return lab.Config{
		Servers: []lab.ServerConfig{{Name: "gen"}, {Name: "pri"}, {Name: "sb"}, {Name: "sink"}},
		Links: []lab.LinkConfig{
			{A: "gen:eth0", B: "pri:p0"},
			{A: "pri:p1", B: "sink:eth0"},
			{A: "pri:rep0", B: "sb:rep0", AddrA: remotePrimaryIP + "/24", AddrB: remoteStandbyIP + "/24"},
			{A: "sb:idle0", B: "sink:idle0"},
		},
	}
}

// remoteMgrConfig is a manager's TOML. role: "" (baseline: no
// [replication]), "primary" or "standby". The primary runs the chain's NFs
// (stamp, instance 1; mutate, instance 2) on afpacket p0 → p1; the standby
// has one idle port and, with standbyNFs, the same NFs, which it holds
// (docs/replicator.md, "Standby NFs and promotion").
func remoteMgrConfig(name, sock, bin, role string, roundUS, window int, standbyNFs bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, `[manager]
name = %q
region_dir = "/dev/shm"
control_socket = %q
stats_out = "none"
stats_interval_s = 1
`, name, sock)
	nfs := true
	if role == "standby" {
		nfs = standbyNFs
		b.WriteString(`
[[port]]
id = 0
driver = "afpacket"
iface = "idle0"

[[chain]]
name = "default"
services = [1, 2]
out_port = 0
`)
	} else {
		b.WriteString(`
[[port]]
id = 0
driver = "afpacket"
iface = "p0"

[[port]]
id = 1
driver = "afpacket"
iface = "p1"

[[chain]]
name = "default"
services = [1, 2]
out_port = 1
`)
	}
	if nfs {
		fmt.Fprintf(&b, `
[[nf]]
tag = "stamp"
service = 1
instance = 1
command = [%q, "-f", "0"]

[[nf]]
tag = "mutate"
service = 2
instance = 2
command = [%q]
`, filepath.Join(bin, "stamp"), filepath.Join(bin, "mutate"))
	}
	if role == "" {
		return b.String()
	}
	local, peer := remotePrimaryIP, remoteStandbyIP
	if role == "standby" {
		local, peer = peer, local
	}
	fmt.Fprintf(&b, "\n[replication]\npsk = %q\n", remotePSK)
	if roundUS > 0 {
		fmt.Fprintf(&b, "round_us = %d\n", roundUS)
	}
	if window > 0 {
		fmt.Fprintf(&b, "window = %d\n", window)
	}
	fmt.Fprintf(&b, `
[[replication.chain]]
chain = "default"
role = %q
local = "%s:%d"
peer = "%s:%d"
instances = [1, 2]
epoch = 1
`, role, local, remoteRepPort, peer, remoteRepPort)
	return b.String()
}

type remoteLab struct {
	l      *lab.Lab
	bin    string
	dir    string
	f      remoteFlags
	stderr io.Writer
	seq    int
}

func upRemoteLab(ws *workspace, f remoteFlags, stderr io.Writer) (*remoteLab, error) {
	l, err := lab.Up(remoteTopo(), lab.Options{})
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	return &remoteLab{l: l, bin: ws.bin, dir: ws.dir, f: f, stderr: stderr}, nil
}

func (rl *remoteLab) close() {
	if err := rl.l.Close(); err != nil {
		fmt.Fprintf(rl.stderr, "bench overhead -remote: close the lab: %v\n", err)
	}
}

// remoteMgr is a reinforce-mgr running in a server.
type remoteMgr struct {
	name string
	cmd  *exec.Cmd
	sock string
	out  *lockedBuf
	done chan struct{}
}

func (rl *remoteLab) startMgr(server, role string) (*remoteMgr, error) {
	rl.seq++
	name := fmt.Sprintf("%s%d", server, rl.seq)
	sock := filepath.Join(rl.dir, name+".sock") // /tmp is shared with the servers
	path := filepath.Join(rl.dir, name+".toml")
	if err := os.WriteFile(path, []byte(remoteMgrConfig(name, sock, rl.bin, role, rl.f.roundUS, rl.f.repWindow, rl.f.standbyNFs)), 0o644); err != nil {
		return nil, err
	}
	m := &remoteMgr{name: name, sock: sock, done: make(chan struct{})}
	m.out = &lockedBuf{}
	if rl.f.verbose {
		m.out.w = rl.stderr
	}
	m.cmd = rl.l.Server(server).Command(filepath.Join(rl.bin, "reinforce-mgr"), "--config", path)
	m.cmd.Dir = rl.dir // the NFs write their stats CSV files on exit
	m.cmd.Stdout, m.cmd.Stderr = m.out, m.out
	if err := m.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { m.cmd.Wait(); close(m.done) }()
	return m, nil
}

// stop ends the manager (and so its NFs) with SIGTERM, SIGKILL after 5 s.
func (m *remoteMgr) stop() {
	if m == nil {
		return
	}
	m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(5 * time.Second):
		m.cmd.Process.Kill()
		<-m.done
	}
}

func (m *remoteMgr) exited() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// stats asks the manager for its counters over its control socket.
func (m *remoteMgr) stats() (manager.Snapshot, error) {
	return manager.FetchSnapshot(m.sock, 5*time.Second)
}

// session starts the managers (a standby too when on), waits until the
// chain runs (and is protected), and measures each phase in turn. Failures
// are recorded in the runs.
func (rl *remoteLab) session(ctx context.Context, on bool, phases []phaseSpec) []*RemoteRun {
	runs := make([]*RemoteRun, len(phases))
	for i, ph := range phases {
		runs[i] = &RemoteRun{Replication: on, Phase: ph.phase, OfferedPPS: ph.rate}
	}
	fail := func(err error) []*RemoteRun {
		for _, r := range runs {
			if r.Error == "" {
				setRunError(r, err)
			}
		}
		return runs
	}
	var sb, pri *remoteMgr
	var err error
	defer func() {
		pri.stop()
		sb.stop()
	}()
	role := ""
	if on {
		if sb, err = rl.startMgr("sb", "standby"); err != nil {
			return fail(err)
		}
		role = "primary"
	}
	if pri, err = rl.startMgr("pri", role); err != nil {
		return fail(err)
	}
	if err := waitChain(ctx, pri, sb, on, rl.f.standbyNFs); err != nil {
		return fail(err)
	}
	// What the processes cost with no traffic: the replication's fixed
	// cost (round ticks, BFD), apart from its per-packet one.
	if s, err := pri.stats(); err == nil {
		idle := sessionProcs(pri, sb, s)
		c0 := make([]float64, len(idle))
		v0 := make([]uint64, len(idle))
		for i, p := range idle {
			c0[i], v0[i] = procTimes(p.PID)
		}
		t0 := time.Now()
		select {
		case <-ctx.Done():
			return fail(ctx.Err())
		case <-time.After(remoteIdleWindow):
		}
		dt := time.Since(t0).Seconds()
		for i, p := range idle {
			c, v := procTimes(p.PID)
			idle[i].CPUPercent = round3(100 * (c - c0[i]) / dt)
			idle[i].Sleeps = round3(float64(v-v0[i]) / dt)
		}
		for _, r := range runs {
			r.IdleCPU = idle
		}
	}
	for i, ph := range phases {
		if err := rl.phase(ctx, pri, sb, runs[i], ph); err != nil {
			setRunError(runs[i], err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	return runs
}

// setRunError records err in r: its first line, and the whole when longer.
func setRunError(r *RemoteRun, err error) {
	full := strings.TrimSpace(err.Error())
	r.Error, _, _ = strings.Cut(full, "\n")
	if full != r.Error {
		r.ErrorDetail = full
	}
}

// waitChain waits until both NFs run and, with replication, the chain is
// protected (the standby acknowledged a snapshot).
func waitChain(ctx context.Context, pri, sb *remoteMgr, on, standbyNFs bool) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, err := pri.stats()
		ok := err == nil && len(s.NFs) == 2
		for _, nf := range s.NFs {
			ok = ok && nf.Running && nf.PID != 0
		}
		if on {
			ok = ok && len(s.Replication) == 1 && s.Replication[0].Status == manager.RepProtected
		}
		if ok && sb != nil && standbyNFs {
			ss, err := sb.stats()
			held := 0
			for _, nf := range ss.NFs {
				if nf.Held && nf.PID != 0 {
					held++
				}
			}
			ok = err == nil && held == 2
		}
		if ok {
			return nil
		}
		for _, m := range []*remoteMgr{pri, sb} {
			if m != nil && m.exited() {
				return fmt.Errorf("manager %s exited: %v: %s", m.name, m.cmd.ProcessState, tailString(m.out.String(), 2000))
			}
		}
		if time.Now().After(deadline) {
			st := ""
			if len(s.Replication) > 0 {
				st = ", replication " + s.Replication[0].Status
			}
			msg := fmt.Sprintf("chain not running after 30 s (last error %v, %d NFs%s)\nprimary manager:\n%s", err, len(s.NFs), st, tailString(pri.out.String(), 3000))
			if sb != nil {
				msg += "\nstandby manager:\n" + tailString(sb.out.String(), 3000)
			}
			return errors.New(msg)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func tailString(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// sessionProcs are the processes whose CPU time counts: the primary
// manager, its NFs (from s) and the standby manager.
func sessionProcs(pri, sb *remoteMgr, s manager.Snapshot) []ProcCPU {
	procs := []ProcCPU{{Name: "primary manager", PID: pri.cmd.Process.Pid}}
	for _, nf := range s.NFs {
		procs = append(procs, ProcCPU{Name: nf.Tag, PID: nf.PID})
	}
	if sb != nil {
		procs = append(procs, ProcCPU{Name: "standby manager", PID: sb.cmd.Process.Pid})
		if ss, err := sb.stats(); err == nil {
			for _, nf := range ss.NFs {
				if nf.PID != 0 {
					procs = append(procs, ProcCPU{Name: "standby " + nf.Tag, PID: nf.PID})
				}
			}
		}
	}
	return procs
}

// repSample is one reading of the primary's replication stats.
type repSample struct {
	latched, inFlight uint64
	protected         bool
}

// repSampleOf reads what the figures need from a snapshot; ok false
// without a replicated chain.
func repSampleOf(s manager.Snapshot) (manager.RepStats, repSample, bool) {
	if len(s.Replication) != 1 {
		return manager.RepStats{}, repSample{}, false
	}
	r := s.Replication[0]
	sm := repSample{latched: r.Latched, protected: r.Status == manager.RepProtected}
	if rel := uint64(r.Node.Replicator.Released); r.Rounds > rel {
		sm.inFlight = r.Rounds - rel
	}
	return r, sm, true
}

// repFigures computes the window's figures from the stats at its start
// and end and the samples in between; pps is the packets delivered per
// second, dt the window in seconds.
func repFigures(r0, r1 manager.RepStats, samples []repSample, pps, dt float64) *RepFigures {
	f := &RepFigures{Samples: len(samples), Status: r1.Status}
	for _, s := range samples {
		f.LatchMean += float64(s.latched)
		f.InFlightMean += float64(s.inFlight)
		f.LatchMax = max(f.LatchMax, s.latched)
		f.InFlightMax = max(f.InFlightMax, s.inFlight)
		if !s.protected {
			f.Unprotected++
		}
	}
	if len(samples) > 0 {
		f.LatchMean /= float64(len(samples))
		f.InFlightMean /= float64(len(samples))
	}
	f.Rounds = r1.Rounds - r0.Rounds
	if f.Rounds > 0 {
		f.BytesPerTxn = round3(float64(r1.PayloadBytes-r0.PayloadBytes) / float64(f.Rounds))
	}
	if dt > 0 {
		f.RoundsPerSec = round3(float64(f.Rounds) / dt)
	}
	if f.RoundsPerSec > 0 {
		f.ProposalToReleaseUs = round3(f.InFlightMean / f.RoundsPerSec * 1e6)
	}
	if pps > 0 {
		f.LatchResidenceUs = round3(f.LatchMean / pps * 1e6)
	}
	f.LatchMean, f.InFlightMean = round3(f.LatchMean), round3(f.InFlightMean)
	n0, n1 := r0.Node.Replicator, r1.Node.Replicator
	f.Retransmits = n1.Retransmits - n0.Retransmits
	f.TxSent = n1.TxSent - n0.TxSent
	f.Acks = n1.Acks - n0.Acks
	f.Backpressure = r1.Backpressure - r0.Backpressure
	f.RXLatchDrops = r1.RXLatchDrops - r0.RXLatchDrops
	return f
}

// phase runs pktgen at ph.rate through the chain into the sink and
// measures the window.
func (rl *remoteLab) phase(ctx context.Context, pri, sb *remoteMgr, res *RemoteRun, ph phaseSpec) error {
	s0, err := pri.stats()
	if err != nil {
		return err
	}
	procs := sessionProcs(pri, sb, s0)
	snk, err := rl.openSink()
	if err != nil {
		return err
	}
	defer snk.close()
	go snk.run()

	args := []string{"-n", "10", filepath.Join(rl.bin, "pktgen"), "-json", "-i", "eth0",
		"-flows", strconv.Itoa(rl.f.flows), "-size", strconv.Itoa(rl.f.size),
		"-rate", strconv.FormatUint(ph.rate, 10), "-duration", (rl.f.warmup + ph.window + 200*time.Millisecond).String()}
	if ph.rate > 0 {
		args = append(args, "-bucket", "64")
	}
	g := rl.l.Server("gen").Command("nice", args...)
	var gout, gerr bytes.Buffer
	g.Stdout, g.Stderr = &gout, &gerr
	if err := g.Start(); err != nil {
		return err
	}
	gdone := make(chan error, 1)
	go func() { gdone <- g.Wait() }()
	defer func() {
		select {
		case <-gdone:
		default:
			g.Process.Kill()
			<-gdone
		}
	}()
	sleep := func(d time.Duration) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-gdone:
			gdone <- err
			return fmt.Errorf("pktgen ended early: %v: %s", err, gerr.String())
		case <-time.After(d):
			return nil
		}
	}
	if err := sleep(rl.f.warmup); err != nil {
		return err
	}

	// The window.
	sa, err := pri.stats()
	if err != nil {
		return err
	}
	r0, _, on := repSampleOf(sa)
	cpu0 := make([]float64, len(procs))
	vcs0 := make([]uint64, len(procs))
	for i, p := range procs {
		cpu0[i], vcs0[i] = procTimes(p.PID)
	}
	t0 := time.Now()
	snk.winStart.Store(port.Nanotime())
	stopSampling := make(chan struct{})
	var samples []repSample
	var sampleWG sync.WaitGroup
	sampleWG.Add(1)
	go func() {
		defer sampleWG.Done()
		tk := time.NewTicker(remoteSampleEvery)
		defer tk.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-tk.C:
			}
			if s, err := pri.stats(); err == nil {
				if _, sm, ok := repSampleOf(s); ok {
					samples = append(samples, sm)
				}
			}
		}
	}()
	werr := sleep(ph.window)
	snk.winEnd.Store(port.Nanotime())
	dt := time.Since(t0).Seconds()
	total, primary, standby := 0.0, 0.0, 0.0
	for i, p := range procs {
		c, v := procTimes(p.PID)
		procs[i].CPUPercent = round3(100 * (c - cpu0[i]) / dt)
		procs[i].Sleeps = round3(float64(v-vcs0[i]) / dt)
		total += c - cpu0[i]
		if strings.HasPrefix(p.Name, "standby ") {
			standby += c - cpu0[i]
		} else {
			primary += c - cpu0[i]
		}
	}
	close(stopSampling)
	sampleWG.Wait()
	sb1, serr := pri.stats()
	if werr != nil {
		return werr
	}
	if serr != nil {
		return serr
	}
	res.CPU, res.Window = procs, round3(dt)
	inWin := snk.inWindow.Load()
	res.DeliveredPPS = round3(float64(inWin) / dt)
	if inWin > 0 {
		res.CPUNsPerPkt = round3(total * 1e9 / float64(inWin))
		res.PrimaryNsPerPkt = round3(primary * 1e9 / float64(inWin))
		res.StandbyNsPerPkt = round3(standby * 1e9 / float64(inWin))
	}
	if on {
		r1, _, _ := repSampleOf(sb1)
		res.Rep = repFigures(r0, r1, samples, res.DeliveredPPS, dt)
	}

	// The rest of the phase: pktgen's report, the sink's verdict.
	var gerrWait error
	select {
	case gerrWait = <-gdone:
		gdone <- gerrWait
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(rl.f.warmup + ph.window + 15*time.Second):
		return errors.New("pktgen did not stop")
	}
	if gerrWait != nil {
		return fmt.Errorf("pktgen: %v: %s", gerrWait, gerr.String())
	}
	var gr gen.Report
	if err := json.Unmarshal(gout.Bytes(), &gr); err != nil {
		return fmt.Errorf("pktgen output: %v: %s", err, gout.String())
	}
	expected := make(map[uint32]uint64, len(gr.PerFlow))
	for i, n := range gr.PerFlow {
		expected[uint32(i)] = n
	}
	res.MgrSent = rl.drain(ctx, pri, snk, portTx(s0, 1))
	if s, err := pri.stats(); err == nil {
		res.MgrRecv = portRx(s, 0) - portRx(s0, 0)
	}
	cr := snk.finish(expected)
	res.Sent, res.Forfeited = gr.Sent, gr.Forfeited
	res.Received, res.Lost, res.Duplicated, res.Reordered = cr.Received, cr.Lost, cr.Duplicated, cr.Reordered
	res.StampErrors, res.StampSkipsLost = stampErrors(cr)
	res.MutateErr = cr.MutateErrors
	if len(cr.Violations) > 0 {
		res.FirstBad = cr.Violations[0]
	}
	res.KernelDrops = snk.kernelDrops
	res.Latency = snk.latency()
	if s2, err := pri.stats(); err == nil {
		d0, d2 := s0.Drops, s2.Drops
		res.Drops = manager.ManagerDrops{RXNoNF: d2.RXNoNF - d0.RXNoNF, RXRingFull: d2.RXRingFull - d0.RXRingFull,
			TXNoNF: d2.TXNoNF - d0.TXNoNF, TXBadMeta: d2.TXBadMeta - d0.TXBadMeta, TXRingFull: d2.TXRingFull - d0.TXRingFull,
			TXPortDrop: d2.TXPortDrop - d0.TXPortDrop, NFDeaths: d2.NFDeaths - d0.NFDeaths,
			NFRegistrations: d2.NFRegistrations - d0.NFRegistrations, Failovers: d2.Failovers - d0.Failovers}
		d := res.Drops
		res.MgrDrops = d.RXNoNF + d.RXRingFull + d.TXNoNF + d.TXBadMeta + d.TXRingFull + d.TXPortDrop
		// An NF that died mid-phase (a new PID) explains TX-no-NF drops;
		// the manager's log says why.
		for _, a := range s0.NFs {
			for _, b := range s2.NFs {
				if a.Instance == b.Instance && a.PID != b.PID {
					res.NFRestarts++
				}
			}
		}
		if res.NFRestarts > 0 {
			res.MgrLog = tailString(pri.out.String(), 1500)
		}
		for i := range s2.Ports {
			if i < len(s0.Ports) {
				res.PortDrops += s2.Ports[i].RxDrops - s0.Ports[i].RxDrops
				res.PortTxDrops += s2.Ports[i].TxDrops - s0.Ports[i].TxDrops
			}
		}
	}
	return nil
}

// portTx is what port id has sent, from s.
func portTx(s manager.Snapshot, id uint16) uint64 {
	for _, p := range s.Ports {
		if p.ID == id {
			return p.TxPkts
		}
	}
	return 0
}

// portRx is what port id has received, from s.
func portRx(s manager.Snapshot, id uint16) uint64 {
	for _, p := range s.Ports {
		if p.ID == id {
			return p.RxPkts
		}
	}
	return 0
}

// drain waits, up to remoteDrainMax, until the primary has nothing left to
// send (its output port stopped moving, its latch is empty) and the sink
// has every frame it sent since tx0, so that what the latch held late is
// not counted lost. It returns the frames sent since tx0.
func (rl *remoteLab) drain(ctx context.Context, pri *remoteMgr, snk *remoteSink, tx0 uint64) uint64 {
	var last uint64
	moved := time.Now()
	for deadline := time.Now().Add(remoteDrainMax); time.Now().Before(deadline) && ctx.Err() == nil; time.Sleep(20 * time.Millisecond) {
		s, err := pri.stats()
		if err != nil {
			continue
		}
		tx := portTx(s, 1)
		if tx != last {
			last, moved = tx, time.Now()
		}
		latched := uint64(0)
		if len(s.Replication) == 1 {
			latched = s.Replication[0].Latched
		}
		if latched == 0 && time.Since(moved) >= 200*time.Millisecond && snk.frames.Load() >= tx-tx0 {
			break
		}
	}
	return last - tx0
}

// remoteSink receives on the sink server's eth0 in this process: the
// sink's verdict (tools/sink/check) over the whole phase, and the latency
// (with its mean) of the probes sent in the window.
type remoteSink struct {
	f    *gen.Iface
	ck   *check.Checker
	hist check.Hist
	sum  float64 // ns, of the latencies in hist

	winStart, winEnd atomic.Int64 // CLOCK_MONOTONIC ns
	inWindow         atomic.Uint64
	frames           atomic.Uint64 // every frame received
	stop, done       chan struct{}
	kernelDrops      uint64
}

func (rl *remoteLab) openSink() (*remoteSink, error) {
	ck, err := check.New(check.Options{Stamps: []int{0}, CheckMutate: true, Mutate: 1})
	if err != nil {
		return nil, err
	}
	s := &remoteSink{ck: ck, stop: make(chan struct{}), done: make(chan struct{})}
	s.winStart.Store(1<<63 - 1)
	s.winEnd.Store(1<<63 - 1)
	// The socket belongs to the namespace it was opened in; it can then
	// be read from any thread.
	err = rl.l.Server("sink").Do(func() error {
		var err error
		s.f, err = gen.OpenIface("eth0", 16384, 2048+shm.HeadroomBytes, gen.AfpacketDefaults())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	return s, nil
}

// run polls until finish asks it to stop and no frame came for
// remoteSinkIdle.
func (s *remoteSink) run() {
	defer close(s.done)
	var (
		slots    = make([]shm.Slot, 64)
		h        pkt.Headers
		rec      probe.Record
		r        = s.f.Region
		last     = port.Nanotime()
		stopping bool
	)
	for {
		s.f.Service()
		n := s.f.Port.RxBurst(s.f.Cache, slots)
		if n > 0 {
			ws, we := s.winStart.Load(), s.winEnd.Load()
			for _, sl := range slots[:n] {
				ts := r.Meta(sl).Timestamp
				frame := r.Packet(sl)
				off, ok := probe.Find(&h, frame)
				if !ok || !rec.Get(frame[off:]) {
					s.ck.AddOther(gen.FrameHash(frame), h.Decode(frame) != nil)
					continue
				}
				s.ck.Add(&rec, ts)
				if ts >= ws && ts < we {
					s.inWindow.Add(1)
				}
				if sent := int64(rec.SentNs); sent >= ws && sent < we && ts >= sent {
					s.hist.Add(uint64(ts - sent))
					s.sum += float64(ts - sent)
				}
			}
			s.f.Cache.Free(slots[:n])
			s.frames.Add(uint64(n))
			last = port.Nanotime()
			continue
		}
		if !stopping {
			select {
			case <-s.stop:
				stopping = true
			default:
			}
		}
		if stopping && port.Nanotime()-last >= int64(remoteSinkIdle) {
			break
		}
		time.Sleep(200 * time.Microsecond)
	}
	s.kernelDrops = s.f.Port.Detail().RxKernelDrops
}

// finish stops the sink once the chain has drained and returns the
// verdict against what pktgen sent.
func (s *remoteSink) finish(expected map[uint32]uint64) check.Report {
	close(s.stop)
	<-s.done
	return s.ck.Report(expected)
}

func (s *remoteSink) latency() Latency {
	p := s.hist.Percentiles()
	l := Latency{Count: p.Count, P50: p.P50, P90: p.P90, P99: p.P99, P999: p.P999, Max: p.Max}
	if p.Count > 0 {
		l.Mean = round3(s.sum / float64(p.Count))
	}
	return l
}

// close stops run if it still runs and closes the socket.
func (s *remoteSink) close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
	s.f.Close()
}

// udpRTT measures n UDP round trips from pri to an echo in sb over the
// replication link: Go sockets opened in the servers' network namespaces,
// one datagram in flight, as the replicator's Node sends.
func (rl *remoteLab) udpRTT(n int) (Latency, error) {
	var srv, cli *net.UDPConn
	err := rl.l.Server("sb").Do(func() error {
		var err error
		srv, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(remoteStandbyIP), Port: remoteEchoPort})
		return err
	})
	if err != nil {
		return Latency{}, err
	}
	defer srv.Close()
	go func() {
		buf := make([]byte, 64)
		for {
			k, from, err := srv.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			srv.WriteToUDPAddrPort(buf[:k], from)
		}
	}()
	err = rl.l.Server("pri").Do(func() error {
		var err error
		cli, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.ParseIP(remoteStandbyIP), Port: remoteEchoPort})
		return err
	})
	if err != nil {
		return Latency{}, err
	}
	defer cli.Close()
	var h check.Hist
	var sum float64
	out, in := make([]byte, 16), make([]byte, 64)
	const warm = 20 // ARP and first wake-ups, not counted
	for i := 0; i < n+warm; i++ {
		binary.BigEndian.PutUint64(out, uint64(i))
		t0 := time.Now()
		if _, err := cli.Write(out); err != nil {
			return Latency{}, err
		}
		cli.SetReadDeadline(t0.Add(time.Second))
		for {
			k, err := cli.Read(in)
			if err != nil {
				return Latency{}, fmt.Errorf("ping %d: %w", i, err)
			}
			if k >= 8 && binary.BigEndian.Uint64(in) == uint64(i) {
				break
			}
		}
		if d := time.Since(t0); i >= warm {
			h.Add(uint64(d))
			sum += float64(d)
		}
	}
	p := h.Percentiles()
	return Latency{Count: p.Count, Mean: round3(sum / float64(p.Count)), P50: p.P50, P90: p.P90, P99: p.P99, P999: p.P999, Max: p.Max}, nil
}

// stampErrors splits the stamp checks: repeats and regressions, and skips
// in flows that lost nothing, are violations (state applied twice, rolled
// back or lost); skips in a flow that lost packets are what a packet lost
// after stamp leaves, counted apart.
func stampErrors(cr check.Report) (bad, skipsWithLoss uint64) {
	for _, f := range cr.Flows {
		for _, v := range f.Stamps {
			bad += v.Repeated + v.Regressed
			if f.Lost == 0 {
				bad += v.Skipped
			} else {
				skipsWithLoss += v.Skipped
			}
		}
	}
	return bad, skipsWithLoss
}
