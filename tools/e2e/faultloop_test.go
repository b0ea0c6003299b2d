package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/manager"
	"github.com/reinforce-nfv/reinforce/tools/pktgen/gen"
	"github.com/reinforce-nfv/reinforce/tools/testbed/lab"
)

// The local-failover fault loops (issue 8 item 4, issue 13; docs/lab.md,
// "Fault loops"): chains of real NF processes in the lab, each NF with a
// local standby, traffic flowing from pktgen through the manager to the
// sink while NFs are SIGKILLed, SIGSTOPped and made to kill themselves at
// crash points. The sink must see every packet exactly once, in order, with
// consecutive stamps and single mutations.
//
// REINFORCE_FAULT_KILLS=N sets the kills per chain (the long tier,
// tools/e2e/faultloop.sh); the CI default is in faultChain.kills.
const faultKillsEnv = "REINFORCE_FAULT_KILLS"

// Traffic for the loops: a modest rate, so the veth lab is lossless and the
// two CPUs are left to the NFs, their standbys and the manager.
const (
	faultRate  = 30000
	faultFlows = 64
	// faultHangMs is the manager's hang_timeout_ms: a SIGSTOPped NF with
	// packets waiting is killed after it.
	faultHangMs = 100
	// faultCrashAt is the commit count at which an armed NF kills itself:
	// well past Setup's scope, so the crash lands in a burst of packets.
	faultCrashAt = 400
	// faultStopEvery: every this many kills is a SIGSTOP (a hang) instead.
	faultStopEvery = 6
	// faultMinAge is the least age of a process the loop kills (see the
	// loop).
	faultMinAge = 1100 * time.Millisecond
)

// faultNF is one NF of a fault-loop chain.
type faultNF struct {
	tag  string   // the binary's name, also the [[nf]] tag
	args []string // the NF's own arguments (after ONVM's "--")
	// crash arms the first process started for this NF (the active the
	// manager launches first) with REINFORCE_CRASH=<crash>:faultCrashAt.
	crash string
}

// faultChain is one loop: the chain, its kills and the sink's checks.
type faultChain struct {
	name  string
	nfs   []faultNF // services 1..n, instances 1..n, in chain order
	kills int       // SIGKILLs and SIGSTOPs in CI
	sink  []string  // the sink's checks (-stamps, -mutate)
	// chain is the [[chain]]'s services list; nil: 1..n. NFs that route
	// with ONVM's -d (ToService) do not move a packet along the chain, so
	// an NF they send to that routes with Next continues from the
	// sender's place.
	chain []int
}

// faultTotals sums what the loops did, for the run's totals.
type faultTotals struct {
	kills, stops, crashes, failovers, hangs    uint64
	rollbacks, redelivered, rollForwards, sent uint64
	chains                                     int
	elapsed                                    time.Duration
}

func (ft *faultTotals) add(r faultResult) {
	ft.kills += r.kills
	ft.stops += r.stops
	ft.crashes += r.crashes
	ft.failovers += r.failovers
	ft.hangs += r.hangs
	ft.rollbacks += r.tx.Rollbacks
	ft.redelivered += r.tx.Redelivered
	ft.rollForwards += r.tx.RollForwards
	ft.sent += r.sent
	ft.chains++
	ft.elapsed += r.elapsed
}

// faultResult is one chain's outcome.
type faultResult struct {
	kills, stops, crashes, failovers, hangs, sent uint64
	tx                                            manager.TxStats // summed over the chain's NFs
	elapsed                                       time.Duration
}

// TestFaultLoopLocalStandby runs chains of one, two and three NFs (stamp,
// mutate, flow_tracker), each NF with a local standby, through at least 50
// kills in all (SIGKILL, kills of freshly promoted NFs, SIGSTOP hangs that
// the hang detector ends) and crash-point self-kills between commit and
// publication and before commit; then the five-NF catalog chain of
// issue 13 (firewall → aes_encrypt → aes_decrypt → payload_scan → bridge).
func TestFaultLoopLocalStandby(t *testing.T) {
	bin := faultBins(t)
	dir := t.TempDir()
	rules := filepath.Join(dir, "allow-all.json")
	if err := os.WriteFile(rules, []byte(`{"all": {"ip": "0.0.0.0", "depth": 0, "action": 0}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	chains := []faultChain{
		{name: "stamp", kills: 14, sink: []string{"-stamps", "0", "-mutate", "0"},
			nfs: []faultNF{{tag: "stamp", args: []string{"-f", "0"}, crash: "after-commit"}}},
		{name: "mutate-stamp", kills: 16, sink: []string{"-stamps", "0", "-mutate", "1"},
			nfs: []faultNF{{tag: "mutate", crash: "before-commit"}, {tag: "stamp", args: []string{"-f", "0"}, crash: "after-commit"}}},
		{name: "flow_tracker-mutate-stamp", kills: 20, sink: []string{"-stamps", "0", "-mutate", "1"},
			// Not flow_tracker: its Idle callback commits a transaction
			// every loop iteration, so a commit count says nothing about
			// when its crash lands. flow_tracker sends to mutate (-d 2)
			// from the chain's first place, so mutate's Next is stamp.
			chain: []int{1, 3},
			nfs: []faultNF{{tag: "flow_tracker", args: []string{"-d", "2", "-p", "0"}},
				{tag: "mutate", crash: "between-publications"}, {tag: "stamp", args: []string{"-f", "0"}, crash: "before-commit"}}},
		// Issue 13: five different catalog NFs. payload_scan passes only
		// packets whose payload holds the probe's magic "RFPB", so a packet
		// decrypted wrongly (or twice) is dropped and shows as lost.
		{name: "catalog5", kills: 10, sink: []string{"-mutate", "0"},
			nfs: []faultNF{{tag: "firewall", args: []string{"-d", "2", "-f", rules, "-p", "1000000000"}, crash: "after-commit"},
				{tag: "aes_encrypt", args: []string{"-d", "3", "-p", "0"}},
				{tag: "aes_decrypt", args: []string{"-d", "4", "-p", "0"}, crash: "before-commit"},
				{tag: "payload_scan", args: []string{"-d", "5", "-s", "RFPB", "-p", "1000000000"}},
				{tag: "bridge", args: []string{"-p", "0"}}}},
	}
	if v := os.Getenv(faultKillsEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number of kills per chain", faultKillsEnv, v)
		}
		for i := range chains {
			chains[i].kills = n
		}
	}
	var tot faultTotals
	for _, fc := range chains {
		t.Run(fc.name, func(t *testing.T) {
			r := runFaultChain(t, bin, fc)
			tot.add(r)
		})
	}
	if t.Failed() || tot.chains != len(chains) { // a failure, or -run picked some chains
		return
	}
	t.Logf("totals over %d chains in %v: %d packets; %d kills (%d SIGSTOP), %d crash-point self-kills; %d failovers, %d hangs; txn: %d rollbacks, %d redelivered, %d roll-forwards",
		tot.chains, tot.elapsed.Round(time.Millisecond), tot.sent, tot.kills, tot.stops, tot.crashes, tot.failovers, tot.hangs, tot.rollbacks, tot.redelivered, tot.rollForwards)
	if tot.failovers < 50 {
		t.Errorf("%d failovers in all, want at least 50", tot.failovers)
	}
	if tot.rollbacks == 0 || tot.redelivered == 0 {
		t.Errorf("no rollback with redelivered packets: %d rollbacks, %d redelivered", tot.rollbacks, tot.redelivered)
	}
	if tot.rollForwards == 0 {
		t.Errorf("no roll-forward: no kill between commit and publication took effect")
	}
}

var (
	faultBuildOnce sync.Once
	faultBuildErr  error
)

// faultBins adds the fault loops' NFs to bins' directory.
func faultBins(t *testing.T) string {
	t.Helper()
	bin := bins(t)
	faultBuildOnce.Do(func() {
		args := []string{"build", "-o", bin + "/"}
		for _, nf := range []string{"stamp", "mutate", "flow_tracker", "firewall", "aes_encrypt", "aes_decrypt", "payload_scan"} {
			args = append(args, "../../examples/"+nf)
		}
		out, err := exec.Command("go", args...).CombinedOutput()
		if err != nil {
			faultBuildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if faultBuildErr != nil {
		t.Fatal(faultBuildErr)
	}
	return bin
}

// faultConfig is the manager's TOML for fc; commands are the wrappers.
func faultConfig(sock string, fc faultChain, wrappers []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `[manager]
name = "fault"
region_dir = "/dev/shm"
control_socket = %q
stats_out = "none"
stats_interval_s = 1
ring_size = 65536
pool_slots = 65536
dead_nf_policy = "retain"
hang_timeout_ms = %d

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
services = [`, sock, faultHangMs)
	services := fc.chain
	if services == nil {
		for i := range fc.nfs {
			services = append(services, i+1)
		}
	}
	for i, sid := range services {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(sid))
	}
	b.WriteString("]\nout_port = 1\n")
	for i, nf := range fc.nfs {
		fmt.Fprintf(&b, "\n[[nf]]\ntag = %q\nservice = %d\ninstance = %d\nstandby = \"local\"\ncommand = [%q",
			nf.tag, i+1, i+1, wrappers[i])
		for _, a := range nf.args {
			fmt.Fprintf(&b, ", %q", a)
		}
		b.WriteString("]\n")
	}
	return b.String()
}

// faultWrapper writes a shell wrapper that execs the NF binary with its
// output appended to nfN.log in dir: the NFs' output is kept apart from
// the manager's, and reinforce-mgr gives launched NFs /dev/null (its nil
// Options.Stdout is a typed nil in exec.Cmd's io.Writer). When the arm file exists
// it takes it (one process only: mv is atomic) and arms the crash point in
// that process's environment. The manager starts an NF's standby only after
// its active registered, so the armed process is the first active.
func faultWrapper(t *testing.T, dir, bin string, i int, nf faultNF) string {
	t.Helper()
	arm := filepath.Join(dir, fmt.Sprintf("arm%d", i+1))
	script := "#!/bin/sh\n"
	if nf.crash != "" {
		if err := os.WriteFile(arm, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		script += fmt.Sprintf("if mv %q %q 2>/dev/null; then REINFORCE_CRASH=%s:%d; export REINFORCE_CRASH; fi\n",
			arm, arm+".taken", nf.crash, faultCrashAt)
	}
	script += fmt.Sprintf("exec %q \"$@\" >>%q 2>&1\n", filepath.Join(bin, nf.tag), faultLog(dir, i))
	path := filepath.Join(dir, fmt.Sprintf("nf%d-%s.sh", i+1, nf.tag))
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// faultLog is where the wrapper puts the output of the chain's i-th NF.
func faultLog(dir string, i int) string { return filepath.Join(dir, fmt.Sprintf("nf%d.log", i+1)) }

// nfLogs is every NF's output so far, each under its name.
func (fm *faultMgr) nfLogs(fc faultChain) string {
	var b strings.Builder
	for i, nf := range fc.nfs {
		out, _ := os.ReadFile(faultLog(fm.dir, i))
		fmt.Fprintf(&b, "--- %s (instance %d):\n%s", nf.tag, i+1, tail(string(out), 3000))
	}
	return b.String()
}

// faultMgr is the manager of a fault loop and its NFs' directory.
type faultMgr struct {
	*mgrProc
	dir string
}

// startFaultMgr runs the manager for fc in srv and waits until every NF
// runs with a standby.
func startFaultMgr(t *testing.T, srv *lab.Server, bin string, fc faultChain) *faultMgr {
	t.Helper()
	dir := t.TempDir()
	wrappers := make([]string, len(fc.nfs))
	for i, nf := range fc.nfs {
		wrappers[i] = faultWrapper(t, dir, bin, i, nf)
	}
	sock := filepath.Join(dir, "ctl.sock")
	path := filepath.Join(dir, "mgr.toml")
	if err := os.WriteFile(path, []byte(faultConfig(sock, fc, wrappers)), 0o644); err != nil {
		t.Fatal(err)
	}
	m := &mgrProc{sock: sock, out: &syncBuf{}}
	m.cmd = srv.Command(filepath.Join(bin, "reinforce-mgr"), "--config", path)
	m.cmd.Dir = dir
	m.cmd.Stdout, m.cmd.Stderr = m.out, m.out
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.cmd.Process.Kill()
		m.cmd.Wait()
	})
	fm := &faultMgr{mgrProc: m, dir: dir}
	waitProtected(t, fm, len(fc.nfs), 30*time.Second, "at start")
	return fm
}

// chainProtected reports whether all n NFs run, each with a standby
// waiting, and returns the snapshot.
func chainProtected(m *faultMgr, n int) (manager.Snapshot, bool) {
	s, err := m.stats()
	if err != nil || len(s.NFs) != n {
		return s, false
	}
	for _, nf := range s.NFs {
		if !nf.Running || nf.Dead || !nf.Protected || nf.PID == 0 {
			return s, false
		}
	}
	return s, true
}

// waitProtected waits until the chain is protected again.
func waitProtected(t *testing.T, m *faultMgr, n int, d time.Duration, what string) manager.Snapshot {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		s, ok := chainProtected(m, n)
		if ok {
			return s
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(s.NFs, "", " ")
			t.Fatalf("chain not protected %s after %v: %s\nmanager output:\n%s", what, d, b, tail(m.out.String(), 4000))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// nfByInstance finds instance id in s.
func nfByInstance(s manager.Snapshot, id int) (manager.NFStats, bool) {
	for _, nf := range s.NFs {
		if int(nf.Instance) == id {
			return nf, true
		}
	}
	return manager.NFStats{}, false
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// runFaultChain is one chain's loop in a lab of its own.
func runFaultChain(t *testing.T, bin string, fc faultChain) faultResult {
	start := time.Now()
	l := upLab(t, chainTopo(0))
	m := startFaultMgr(t, l.Server("mgr"), bin, fc)
	n := len(fc.nfs)
	dir := t.TempDir()
	sentPath := filepath.Join(dir, "sent.json")
	before, _ := chainProtected(m, n)

	sp := startSink(t, l.Server("sink"), bin, append([]string{"-i", "eth0", "-idle", "3s", "-duration", "60m", "-sent", sentPath}, fc.sink...)...)
	g := startPktgen(t, l.Server("gen"), bin, "-i", "eth0", "-flows", strconv.Itoa(faultFlows), "-rate", strconv.Itoa(faultRate),
		"-bucket", "64", "-duration", "60m")

	genStart := time.Now()
	var events []string // what the loop did, for a failure's message
	event := func(format string, args ...any) {
		events = append(events, fmt.Sprintf("+%.3fs ", time.Since(genStart).Seconds())+fmt.Sprintf(format, args...))
	}

	// The crash points: each armed active kills itself at its
	// faultCrashAt-th commit, while protected and with packets flowing.
	var armed []int
	for i, nf := range fc.nfs {
		if nf.crash != "" {
			armed = append(armed, i+1)
		}
	}
	var res faultResult
	want := before.Drops.Failovers + uint64(len(armed))
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, ok := chainProtected(m, n)
		if ok && s.Drops.Failovers >= want {
			break
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(s.NFs, "", " ")
			t.Fatalf("the %d crash-point kills did not all fail over within 30 s (failovers %d → %d): %s\n%s\nmanager:\n%s",
				len(armed), before.Drops.Failovers, s.Drops.Failovers, b, m.nfLogs(fc), tail(m.out.String(), 6000))
		}
		time.Sleep(5 * time.Millisecond)
	}
	res.crashes = uint64(len(armed))
	event("%d crash-point self-kills failed over", len(armed))
	s, _ := chainProtected(m, n)
	if got := strings.Count(m.nfLogs(fc), "crashpoint: killing myself"); got != len(armed) {
		t.Fatalf("%d crash-point announcements, want %d:\n%s", got, len(armed), m.nfLogs(fc))
	}
	for i, nf := range fc.nfs {
		got, _ := nfByInstance(s, i+1)
		tx := got.Tx
		if tx == nil {
			t.Fatalf("NF %s (instance %d) has no transaction counters", nf.tag, i+1)
		}
		switch nf.crash {
		case "after-commit", "between-publications":
			if tx.RollForwards < 1 {
				t.Errorf("NF %s killed at %s: %d roll-forwards, want ≥ 1 (%+v)", nf.tag, nf.crash, tx.RollForwards, *tx)
			}
		case "before-commit":
			if tx.Rollbacks < 1 || tx.Redelivered < 1 {
				t.Errorf("NF %s killed at %s: %d rollbacks, %d redelivered, want ≥ 1 each (%+v)", nf.tag, nf.crash, tx.Rollbacks, tx.Redelivered, *tx)
			}
		}
	}

	// The kill loop: each NF twice in a row (the second kill hits the
	// standby just promoted), every faultStopEvery-th a SIGSTOP.
	rng := newFaultRand(fc.name)
	for k := 0; k < fc.kills; k++ {
		s := waitProtected(t, m, n, 30*time.Second, fmt.Sprintf("before kill %d", k+1))
		id := (k/2)%n + 1
		nf, _ := nfByInstance(s, id)
		sig := syscall.SIGKILL
		if k%faultStopEvery == faultStopEvery-1 {
			sig = syscall.SIGSTOP
			res.stops++
		}
		// The manager stops restarting an [[nf]] whose processes die
		// within a second of their launch five times in a row (a broken
		// binary; manager/launch.go restartLimit), and a standby's
		// launch, not its promotion, starts that second: so the victim
		// must have lived faultMinAge. Then a few milliseconds more, at
		// a varying point, so kills land in bursts as well as between.
		if age, err := procAge(nf.PID); err == nil && age < faultMinAge {
			time.Sleep(faultMinAge - age)
		}
		time.Sleep(time.Duration(rng.next()%8000) * time.Microsecond)
		if err := syscall.Kill(nf.PID, sig); err != nil {
			t.Fatalf("kill %d: %v", k+1, err)
		}
		res.kills++
		event("kill %d: %v to %s pid %d", k+1, sig, nf.Tag, nf.PID)
		want := s.Drops.Failovers + 1
		deadline := time.Now().Add(20 * time.Second)
		for {
			s2, err := m.stats()
			if err == nil {
				cur, _ := nfByInstance(s2, id)
				if s2.Drops.Failovers >= want && cur.PID != nf.PID && cur.PID != 0 {
					event("kill %d: failover to pid %d", k+1, cur.PID)
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("kill %d (%v of %s pid %d): no failover within 20 s\n%s", k+1, sig, nf.Tag, nf.PID, tail(m.out.String(), 4000))
			}
			time.Sleep(time.Millisecond)
		}
	}
	after := waitProtected(t, m, n, 30*time.Second, "at the end")
	time.Sleep(200 * time.Millisecond) // traffic through the last standby's promotion
	rep := g.stop(t, sentPath)
	r := sp.wait(t)
	final, err := m.stats()
	if err != nil {
		t.Fatalf("manager stats: %v", err)
	}
	res.failovers = final.Drops.Failovers - before.Drops.Failovers
	res.hangs = final.Drops.Hangs - before.Drops.Hangs
	res.sent = rep.Sent
	for _, nf := range after.NFs {
		if nf.Tx != nil {
			res.tx.Rollbacks += nf.Tx.Rollbacks
			res.tx.Redelivered += nf.Tx.Redelivered
			res.tx.RollForwards += nf.Tx.RollForwards
			res.tx.Takeovers += nf.Tx.Takeovers
		}
	}
	res.elapsed = time.Since(start)
	t.Logf("%s: %d NFs, %v: pktgen sent %d (%.0f pps, %d forfeited); sink received %d, lost %d, duplicated %d, reordered %d, stamp violations %d, mutate violations %d, kernel drops %d; latency µs p50 %.0f p99 %.0f max %.0f",
		fc.name, n, res.elapsed.Round(time.Millisecond), rep.Sent, rep.PPS, rep.Forfeited, r.Received, r.Lost, r.Duplicated, r.Reordered, r.StampErrors, r.MutateErrors, r.KernelDrops,
		float64(r.Latency.P50)/1e3, float64(r.Latency.P99)/1e3, float64(r.Latency.Max)/1e3)
	t.Logf("%s: %d kills (%d SIGSTOP), %d crash-point self-kills; manager: %d failovers, %d hangs, rx ring full %d; txn (summed): %d rollbacks, %d redelivered, %d roll-forwards, %d takeovers",
		fc.name, res.kills, res.stops, res.crashes, res.failovers, res.hangs, final.Drops.RXRingFull-before.Drops.RXRingFull,
		res.tx.Rollbacks, res.tx.Redelivered, res.tx.RollForwards, res.tx.Takeovers)
	for _, nf := range final.NFs {
		if nf.Tx != nil {
			t.Logf("%s: instance %d %s: rx %d tx %d rx_drop %d tx_drop %d; txn %+v", fc.name, nf.Instance, nf.Tag, nf.RX, nf.TX, nf.RXDrop, nf.TXDrop, *nf.Tx)
		}
	}
	t.Logf("%s: manager drops %+v", fc.name, final.Drops)
	for _, p := range final.Ports {
		t.Logf("%s: port %s: %+v", fc.name, p.Name, p.Stats)
	}
	if !r.OK || r.Lost != 0 || r.Duplicated != 0 || r.Reordered != 0 || r.Unexpected != 0 || r.StampErrors != 0 || r.MutateErrors != 0 ||
		r.Received != rep.Sent || r.Expected != rep.Sent {
		t.Errorf("%s: sink verdict not clean: sent %d, expected %d, received %d, lost %d, duplicated %d, reordered %d, unexpected %d, stamp violations %d, mutate violations %d: %v",
			fc.name, rep.Sent, r.Expected, r.Received, r.Lost, r.Duplicated, r.Reordered, r.Unexpected, r.StampErrors, r.MutateErrors, r.Violations)
		var lossy []string
		for _, f := range r.Flows {
			if f.Lost != 0 {
				lossy = append(lossy, fmt.Sprintf("%d:%d", f.Flow, f.Lost))
			}
		}
		t.Logf("%s: lost per flow (flow:lost): %s", fc.name, strings.Join(lossy, " "))
		// pktgen sends the flows round-robin: sequence number s of a
		// flow left about s*faultFlows/faultRate seconds after the start.
		t.Logf("%s: a flow's sequence number s left pktgen about s×%.4f s after it started; the loop's events:\n%s\nNFs:\n%s\nmanager:\n%s",
			fc.name, float64(faultFlows)/faultRate, strings.Join(events, "\n"), m.nfLogs(fc), tail(m.out.String(), 20000))
	}
	if r.KernelDrops != 0 || r.RxDrops != 0 {
		t.Errorf("%s: sink kernel drops %d, rx drops %d", fc.name, r.KernelDrops, r.RxDrops)
	}
	// Every manager drop is a loss the sink also sees; these say where.
	d, b0 := final.Drops, before.Drops
	if d.RXRingFull != b0.RXRingFull || d.TXRingFull != b0.TXRingFull || d.RXNoNF != b0.RXNoNF || d.TXNoNF != b0.TXNoNF ||
		d.TXBadMeta != b0.TXBadMeta || d.TXPortDrop != b0.TXPortDrop || d.BadHandovers != b0.BadHandovers {
		t.Errorf("%s: manager drops during the loop: rx ring full %d, tx ring full %d, rx no NF %d, tx no NF %d, tx bad meta %d, tx port drop %d, bad handovers %d",
			fc.name, d.RXRingFull-b0.RXRingFull, d.TXRingFull-b0.TXRingFull, d.RXNoNF-b0.RXNoNF, d.TXNoNF-b0.TXNoNF,
			d.TXBadMeta-b0.TXBadMeta, d.TXPortDrop-b0.TXPortDrop, d.BadHandovers-b0.BadHandovers)
	}
	for _, p := range final.Ports {
		if p.RxDrops != 0 || p.TxDrops != 0 {
			t.Errorf("%s: manager port %s: rx drops %d (kernel drops included), tx drops %d", fc.name, p.Name, p.RxDrops, p.TxDrops)
		}
	}
	if want := res.kills + res.crashes; res.failovers < want {
		t.Errorf("%s: %d failovers for %d kills and %d crash points", fc.name, res.failovers, res.kills, res.crashes)
	}
	if res.hangs < res.stops {
		t.Errorf("%s: %d hangs detected for %d SIGSTOPs", fc.name, res.hangs, res.stops)
	}
	return res
}

// procAge is how long process pid has run, from /proc.
func procAge(pid int) (time.Duration, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	up, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0, err
	}
	// Fields after the command (which may hold spaces) start at ")"; the
	// start time is field 22, the 20th after it, in clock ticks (USER_HZ,
	// 100 on Linux).
	i := bytes.LastIndexByte(stat, ')')
	f := strings.Fields(string(stat[i+1:]))
	if i < 0 || len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, stat)
	}
	ticks, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, err
	}
	upS, err := strconv.ParseFloat(strings.Fields(string(up))[0], 64)
	if err != nil {
		return 0, err
	}
	return time.Duration((upS - float64(ticks)/100) * float64(time.Second)), nil
}

// faultRand is a small deterministic generator (xorshift), seeded by name
// so a chain's kill timings repeat from run to run.
type faultRand struct{ s uint64 }

func newFaultRand(name string) *faultRand {
	r := &faultRand{s: 0x9e3779b97f4a7c15}
	for _, c := range []byte(name) {
		r.s = (r.s ^ uint64(c)) * 0x100000001b3
	}
	return r
}

func (r *faultRand) next() uint64 {
	r.s ^= r.s << 13
	r.s ^= r.s >> 7
	r.s ^= r.s << 17
	return r.s
}

// pktgenProc is a pktgen running until stopped.
type pktgenProc struct {
	cmd      *exec.Cmd
	out, err bytes.Buffer
}

// startPktgen runs pktgen (at nice 10, as the chain test does) in srv.
func startPktgen(t *testing.T, srv *lab.Server, bin string, args ...string) *pktgenProc {
	t.Helper()
	p := &pktgenProc{}
	p.cmd = srv.Command("nice", append([]string{"-n", "10", filepath.Join(bin, "pktgen"), "-json"}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.err
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
	})
	return p
}

// stop interrupts pktgen, writes its report for the sink and returns it.
func (p *pktgenProc) stop(t *testing.T, reportPath string) gen.Report {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("pktgen: %v\n%s", err, p.err.String())
	}
	if err := os.WriteFile(reportPath, p.out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var r gen.Report
	if err := json.Unmarshal(p.out.Bytes(), &r); err != nil {
		t.Fatalf("pktgen output: %v\n%s", err, p.out.String())
	}
	return r
}
