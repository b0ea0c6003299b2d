// Package remotelab is the three-role lab of chain-level failover between
// servers (issue 11; RESILIENCY.md, "Failure detection, arbitration and
// failover between servers"; docs/arbiter.md; docs/lab.md, "Failover
// between servers"): the fault loops of tools/e2e and the failover bench
// build on it.
//
//	gen:eth0 ─ ing:p0   ing (the ingress manager, the arbiter)
//	           ing:p1 ─ a:p0   a:p1 ─ sink:eth0
//	           ing:p2 ─ b:p0   b:p1 ─ sink:eth1
//	a:rep0 ─ wire:a   [tools/relay]   wire:b ─ b:rep0   (replication link)
//	mgmt0 in every server: the management network (BFD and arbiter messages)
//
// The ingress runs chain c0 = stamp -f 3 (it returns Next; the chain's out
// port leads to the current primary, moved by the arbiter's Redirect). The
// members a and b run chain c0 = flow_tracker -d 2 → mutate → stamp -f 0
// (services [1, 3]: flow_tracker reaches mutate with ToService, mutate's
// Next continues at stamp, as in TestFaultLoopLocalStandby), replicated: a
// is the configured primary, b the standby, both report to the arbiter.
//
// Stamp field 3 (the ingress) numbers each flow's packets as they leave
// the ingress; stamp field 0 (the members) numbers them as the chain's
// state counts them. At the sink, between two consecutive packets of a
// flow, the field-0 gap (packets the chain counted but the sink never got:
// output lost with a server) can be no larger than the field-3 gap (the
// flow's packets that left the ingress and never arrived: lost in flight).
// Sink checks exactly that, per flow and per packet.
//
// Every method returns an error rather than failing a test, so the bench
// can use the lab too. All managers run with shared_cpu (a 2-CPU machine).
// Up needs root.
package remotelab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/reinforce-nfv/reinforce/manager"
	"github.com/reinforce-nfv/reinforce/replicator"
	"github.com/reinforce-nfv/reinforce/tools/testbed/lab"
	"github.com/vishvananda/netlink"
)

// Member names (the managers' names and their names at the arbiter).
const (
	A = "a"
	B = "b"
)

// Chain is the replicated chain's name, at the ingress and the members.
const Chain = "c0"

// Instance IDs of the members' chain (explicit: the replication lists them).
const (
	InstFlowTracker = 1
	InstMutate      = 2
	InstStamp       = 3
)

// Stamp fields: StampMember is the members' stamp (the replicated count),
// StampIngress the ingress's.
const (
	StampMember  = 0
	StampIngress = 3
)

// Addresses and ports.
const (
	mgmtSubnet  = "10.99.7.0/24"
	repA        = "10.77.8.1"
	repB        = "10.77.8.2"
	repPort     = 7400
	arbiterPort = 7500
	memberPort  = 7501
	psk         = "remote lab failover key 0123456789"
)

// Binaries Build makes, by package path (built from inside the module).
var Binaries = []string{
	"github.com/reinforce-nfv/reinforce/cmd/reinforce-mgr",
	"github.com/reinforce-nfv/reinforce/examples/stamp",
	"github.com/reinforce-nfv/reinforce/examples/mutate",
	"github.com/reinforce-nfv/reinforce/examples/flow_tracker",
	"github.com/reinforce-nfv/reinforce/tools/relay",
	"github.com/reinforce-nfv/reinforce/tools/pktgen",
}

// Build builds Binaries into dir. The working directory must be inside the
// module (go test runs in the package's directory).
func Build(dir string) error {
	args := append([]string{"build", "-o", dir + "/"}, Binaries...)
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	return nil
}

// Options configure Up. The zero value is usable apart from Bin.
type Options struct {
	// Bin holds the Binaries (Build).
	Bin string
	// Profile is the arbiter's BFD profile: "default" (1 ms × 3) or
	// "loaded" (2 ms × 3); "" is "loaded".
	Profile string
	// Policy is the replication's on_standby_lost: "hold" ("" ) or "continue".
	Policy string
	// LeaseMs is [arbiter] lease_ms; 0 takes the profile's.
	LeaseMs int
	// RepLeaseMs is [replication] lease_ms: with Policy "continue", how
	// long a primary whose standby is gone releases unprotected; 0: none.
	RepLeaseMs int
	// Flows is how many probe flows pktgen sends (the stamp maps' size);
	// 0: 32.
	Flows int
	// LatchQuota is [replication] latch_quota; 0: 4096.
	LatchQuota int
	// RingSize and PoolSlots of the members; 0: 4096 and 16384.
	RingSize, PoolSlots int
	// Primary is the configured primary, A ("") or B.
	Primary string
	// RelayArgs are tools/relay's impairment flags at start ("-loss", "0.01"…).
	RelayArgs []string
	// Nice, when not 0, runs the managers (and so their NFs) at this nice
	// value (-20..19). On a machine shared with other work, a negative one
	// stands for the servers' own CPUs: BFD at 2 ms × 3 cannot tell a
	// starved manager from a dead one.
	Nice int
	// RTPrio, when not 0, runs the managers (and their NFs) under
	// SCHED_FIFO at this priority (chrt -f; 1..99): the lab's stand-in for
	// a BFD thread with a CPU of its own. The kernel's RT throttling
	// (sched_rt_runtime_us) still leaves 5 % to everything else.
	RTPrio int
	// Dir holds configs, sockets and logs; "": a new temporary directory,
	// removed by Close.
	Dir string
}

func (o *Options) fill() error {
	if o.Bin == "" {
		return errors.New("remotelab: Options.Bin names no directory (Build)")
	}
	if o.Profile == "" {
		o.Profile = "loaded"
	}
	if o.Policy == "" {
		o.Policy = "hold"
	}
	if o.Flows == 0 {
		o.Flows = 32
	}
	if o.LatchQuota == 0 {
		o.LatchQuota = 4096
	}
	if o.RingSize == 0 {
		o.RingSize = 4096
	}
	if o.PoolSlots == 0 {
		o.PoolSlots = 16384
	}
	if o.Primary == "" {
		o.Primary = A
	}
	if o.Primary != A && o.Primary != B {
		return fmt.Errorf("remotelab: Options.Primary %q: want %q or %q", o.Primary, A, B)
	}
	return nil
}

// Lab is a running remote lab. Its methods are safe for concurrent use
// unless they say otherwise.
type Lab struct {
	L     *lab.Lab
	Opt   Options
	Ing   *Manager
	Relay *Relay
	dir   string
	rmDir bool

	mu      sync.Mutex
	members map[string]*Manager
	sink    *Sink
	gen     *Pktgen
}

// Topology is the lab's lab.Config.
func Topology() lab.Config {
	return lab.Config{
		Servers: []lab.ServerConfig{{Name: "gen"}, {Name: "ing"}, {Name: A}, {Name: B}, {Name: "sink"}, {Name: "wire"}},
		Links: []lab.LinkConfig{
			{A: "gen:eth0", B: "ing:p0"},
			{A: "ing:p1", B: "a:p0"},
			{A: "ing:p2", B: "b:p0"},
			{A: "a:p1", B: "sink:eth0"},
			{A: "b:p1", B: "sink:eth1"},
			{A: "a:rep0", B: "wire:a", AddrA: repA + "/24"},
			{A: "wire:b", B: "b:rep0", AddrB: repB + "/24"},
		},
		Mgmt: &lab.MgmtConfig{Subnet: mgmtSubnet},
	}
}

// Up builds the lab, starts the relay, the ingress (arbiter) and both
// members, and waits until chain c0 is protected with the configured
// primary leading. No traffic flows yet (StartPktgen, StartSink).
func Up(o Options) (_ *Lab, err error) {
	if err := o.fill(); err != nil {
		return nil, err
	}
	l := &Lab{Opt: o, members: map[string]*Manager{}, dir: o.Dir}
	if l.dir == "" {
		if l.dir, err = os.MkdirTemp("", "remotelab-"); err != nil {
			return nil, err
		}
		l.rmDir = true
	}
	if l.L, err = lab.Up(Topology(), lab.Options{}); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			// The managers' output goes with the lab: keep it in the
			// error, and whole in the lab's directory's parent.
			for _, m := range append([]*Manager{l.Ing}, l.members[A], l.members[B]) {
				if m != nil {
					path := filepath.Join(os.TempDir(), "remotelab-up-"+m.Name+".log")
					os.WriteFile(path, []byte(m.Output()), 0o644)
					err = fmt.Errorf("%w\n---- %s (whole in %s):\n%s", err, m.Name, path, Tail(m.Output(), 1500))
				}
			}
			l.Close()
		}
	}()
	// The relay forwards frames as the kernel handed them over: checksums
	// must be computed by the endpoints (TestReplicationRemoteStandbyLab).
	for _, s := range []string{A, B} {
		if out, err := l.L.Server(s).Command("ethtool", "-K", "rep0", "tx", "off").CombinedOutput(); err != nil {
			return nil, fmt.Errorf("ethtool in %s: %v\n%s", s, err, out)
		}
	}
	if l.Relay, err = StartRelay(l.L.Server("wire"), o.Bin, filepath.Join(l.dir, "relay"), append([]string{"-a", "a", "-b", "b", "-seed", "7"}, o.RelayArgs...)...); err != nil {
		return nil, err
	}
	ingCfg, err := l.ingConfig()
	if err != nil {
		return nil, err
	}
	if l.Ing, err = newManager(l, "ing", ingCfg); err != nil {
		return nil, err
	}
	if err := l.Ing.Start(); err != nil {
		return nil, err
	}
	if err := l.Ing.WaitStats(20*time.Second, "the ingress's NF running", func(s manager.Snapshot) bool {
		return len(s.NFs) == 1 && s.NFs[0].Running
	}); err != nil {
		return nil, err
	}
	standby := B
	if o.Primary == B {
		standby = A
	}
	for _, name := range []string{standby, o.Primary} {
		role := "standby"
		if name == o.Primary {
			role = "primary"
		}
		m, err := newManager(l, name, l.memberConfig(name, role))
		if err != nil {
			return nil, err
		}
		l.members[name] = m
		if err := m.Start(); err != nil {
			return nil, err
		}
	}
	if err := l.WaitProtected(30 * time.Second); err != nil {
		return nil, err
	}
	return l, nil
}

// Dir is the lab's directory (configs, sockets, logs).
func (l *Lab) Dir() string { return l.dir }

// Member returns member A's or B's manager.
func (l *Lab) Member(name string) *Manager {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.members[name]
}

// Other returns the other member's name.
func Other(name string) string {
	if name == A {
		return B
	}
	return A
}

// Close stops pktgen, the sink, the managers, the relay and the lab.
func (l *Lab) Close() error {
	l.mu.Lock()
	g, s := l.gen, l.sink
	l.gen, l.sink = nil, nil
	ms := []*Manager{l.Ing}
	for _, m := range l.members {
		ms = append(ms, m)
	}
	l.mu.Unlock()
	if g != nil {
		g.kill()
	}
	if s != nil {
		s.Close()
	}
	for _, m := range ms {
		if m != nil {
			m.Kill()
		}
	}
	if l.Relay != nil {
		l.Relay.Close()
	}
	var err error
	if l.L != nil {
		err = l.L.Close()
	}
	if l.rmDir {
		os.RemoveAll(l.dir)
	}
	return err
}

func (l *Lab) mgmtIP(server string) string {
	a := l.L.Server(server).MgmtAddr()
	ip, _, _ := strings.Cut(a, "/")
	return ip
}

// ingConfig is the ingress's TOML: ports p0 (from gen), p1 (to a), p2 (to
// b); chain c0 = stamp -f 3; the arbiter of c0.
func (l *Lab) ingConfig() (string, error) {
	o := &l.Opt
	out := 1
	if o.Primary == B {
		out = 2
	}
	var b strings.Builder
	fmt.Fprintf(&b, `[manager]
name = "ing"
region_dir = "/dev/shm"
control_socket = %q
stats_out = "none"
stats_interval_s = 1
shared_cpu = true
default_chain = %q
pool_slots = 16384
ring_size = 4096
`, filepath.Join(l.dir, "ing", "ctl.sock"), Chain)
	for i, iface := range []string{"p0", "p1", "p2"} {
		fmt.Fprintf(&b, "\n[[port]]\nid = %d\ndriver = \"afpacket\"\niface = %q\n", i, iface)
	}
	fmt.Fprintf(&b, `
[[nf]]
tag = "stamp"
service = 1
instance = 1
command = [%q, "-f", "%d", "-c", "%d"]

[[chain]]
name = %q
services = [1]
out_port = %d

[arbiter]
serve = "%s:%d"
psk = %q
profile = %q
%s
[[arbiter.chain]]
chain = %q
members = [%q, %q]
primary = %q
ports = [1, 2]
addresses = ["%s:%d", "%s:%d"]
`, filepath.Join(o.Bin, "stamp"), StampIngress, max(o.Flows, 64), Chain, out,
		l.mgmtIP("ing"), arbiterPort, psk, o.Profile, leaseLine(o.LeaseMs), Chain, A, B, o.Primary,
		l.mgmtIP(A), memberPort, l.mgmtIP(B), memberPort)
	return b.String(), nil
}

func leaseLine(ms int) string {
	if ms == 0 {
		return ""
	}
	return fmt.Sprintf("lease_ms = %d\n", ms)
}

// memberConfig is member name's TOML: ports p0 (from ing), p1 (to sink),
// chain c0 replicated in role, reporting to the arbiter.
func (l *Lab) memberConfig(name, role string) string {
	o := &l.Opt
	local, peer := repA, repB
	if name == B {
		local, peer = repB, repA
	}
	var b strings.Builder
	fmt.Fprintf(&b, `[manager]
name = %q
region_dir = "/dev/shm"
control_socket = %q
stats_out = "none"
stats_interval_s = 1
shared_cpu = true
default_chain = %q
pool_slots = %d
ring_size = %d

[[port]]
id = 0
driver = "afpacket"
iface = "p0"

[[port]]
id = 1
driver = "afpacket"
iface = "p1"

[[nf]]
tag = "flow_tracker"
service = 1
instance = %d
command = [%q, "-d", "2", "-p", "0"]

[[nf]]
tag = "mutate"
service = 2
instance = %d
command = [%q]

[[nf]]
tag = "stamp"
service = 3
instance = %d
command = [%q, "-f", "%d", "-c", "%d"]

[[chain]]
name = %q
services = [1, 3]
out_port = 1

[replication]
psk = %q
latch_quota = %d
on_standby_lost = %q
%s
[[replication.chain]]
chain = %q
role = %q
local = "%s:%d"
peer = "%s:%d"
instances = [%d, %d, %d]

[arbiter]
address = "%s:%d"
member = %q
local = "%s:%d"
psk = %q
profile = %q
%s`, name, filepath.Join(l.dir, name, "ctl.sock"), Chain, o.PoolSlots, o.RingSize,
		InstFlowTracker, filepath.Join(o.Bin, "flow_tracker"),
		InstMutate, filepath.Join(o.Bin, "mutate"),
		InstStamp, filepath.Join(o.Bin, "stamp"), StampMember, max(o.Flows, 64),
		Chain, psk, o.LatchQuota, o.Policy, leaseLine(o.RepLeaseMs),
		Chain, role, local, repPort, peer, repPort, InstFlowTracker, InstMutate, InstStamp,
		l.mgmtIP("ing"), arbiterPort, name, l.mgmtIP(name), memberPort, psk, o.Profile, leaseLine(o.LeaseMs))
	return b.String()
}

// ---- managers ----

// Manager is one manager process (the ingress or a member) in its server.
type Manager struct {
	Name string
	srv  *lab.Server
	bin  string
	dir  string
	cfg  string
	sock string
	nice int
	rt   int

	mu     sync.Mutex
	cmd    *exec.Cmd
	out    *syncBuf
	exited chan struct{}
	starts int
}

func newManager(l *Lab, name, cfg string) (*Manager, error) {
	dir := filepath.Join(l.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "mgr.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	return &Manager{Name: name, srv: l.L.Server(name), bin: l.Opt.Bin, nice: l.Opt.Nice, rt: l.Opt.RTPrio, dir: dir, cfg: path, sock: filepath.Join(dir, "ctl.sock"), out: &syncBuf{}}, nil
}

// Start runs the manager in its server, in a process group of its own
// (its NFs included), and waits until it answers on its control socket.
func (m *Manager) Start() error {
	m.mu.Lock()
	if m.cmd != nil {
		m.mu.Unlock()
		return fmt.Errorf("manager %s: already running", m.Name)
	}
	m.starts++
	fmt.Fprintf(m.out, "==== start %d at %s\n", m.starts, time.Now().Format("15:04:05.000"))
	cmd := m.srv.Command(filepath.Join(m.bin, "reinforce-mgr"), "--config", m.cfg)
	switch {
	case m.rt != 0:
		cmd = m.srv.Command("chrt", "-f", strconv.Itoa(m.rt), filepath.Join(m.bin, "reinforce-mgr"), "--config", m.cfg)
	case m.nice != 0:
		cmd = m.srv.Command("nice", "-n", strconv.Itoa(m.nice), filepath.Join(m.bin, "reinforce-mgr"), "--config", m.cfg)
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.Dir = m.dir
	cmd.Stdout, cmd.Stderr = m.out, m.out
	os.Remove(m.sock)
	if err := cmd.Start(); err != nil {
		m.mu.Unlock()
		return fmt.Errorf("manager %s: %w", m.Name, err)
	}
	exited := make(chan struct{})
	m.cmd, m.exited = cmd, exited
	m.mu.Unlock()
	go func() {
		cmd.Wait()
		close(exited)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := m.Stats()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("manager %s exited at start: %v\n%s", m.Name, cmd.ProcessState, Tail(m.out.String(), 4000))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("manager %s: no answer after 20 s: %v\n%s", m.Name, err, Tail(m.out.String(), 4000))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Running reports whether the manager's process is alive.
func (m *Manager) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return false
	}
	select {
	case <-m.exited:
		return false
	default:
		return true
	}
}

// PID is the manager's process (and process group) ID, 0 when stopped.
func (m *Manager) PID() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return 0
	}
	return m.cmd.Process.Pid
}

// Kill sends SIGKILL to the manager's whole process group (the manager
// and the NFs it launched: a server dying) and waits until no process of
// the group is left. Killing a stopped manager does nothing.
func (m *Manager) Kill() error { return <-m.KillAsync() }

// KillAsync sends the SIGKILL now and returns a channel that yields
// Kill's result once the group is gone. The processes stop running at
// once; their exit (the kernel tearing down their sockets and mappings)
// can take a second or more on a loaded machine, so a caller timing the
// failover starts its clock at the call.
func (m *Manager) KillAsync() <-chan error {
	res := make(chan error, 1)
	m.mu.Lock()
	cmd, exited := m.cmd, m.exited
	m.cmd = nil
	m.mu.Unlock()
	if cmd == nil {
		res <- nil
		return res
	}
	pg := cmd.Process.Pid
	syscall.Kill(-pg, syscall.SIGKILL)
	go func() {
		<-exited
		fmt.Fprintf(m.out, "==== killed at %s\n", time.Now().Format("15:04:05.000"))
		deadline := time.Now().Add(10 * time.Second)
		for syscall.Kill(-pg, 0) == nil {
			if time.Now().After(deadline) {
				res <- fmt.Errorf("manager %s: process group %d still alive 10 s after SIGKILL", m.Name, pg)
				return
			}
			syscall.Kill(-pg, syscall.SIGKILL)
			time.Sleep(5 * time.Millisecond)
		}
		res <- nil
	}()
	return res
}

// Restart starts a killed manager again with the same configuration, after
// deleting what the dead one left in its server's /dev/shm (its region and
// state files: RESILIENCY.md, a server that comes back has lost its memory).
func (m *Manager) Restart() error {
	if m.Running() {
		return fmt.Errorf("manager %s: restart of a running manager (Kill first)", m.Name)
	}
	shm := filepath.Join(fmt.Sprintf("/proc/%d/root", m.srv.PID()), "dev/shm")
	files, err := filepath.Glob(filepath.Join(shm, m.Name+".*"))
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("manager %s: remove %s: %w", m.Name, f, err)
		}
	}
	return m.Start()
}

// Output is everything the manager (and its NFs) printed, over all starts.
func (m *Manager) Output() string { return m.out.String() }

// Stats asks the manager for its counters over its control socket.
func (m *Manager) Stats() (manager.Snapshot, error) {
	return manager.FetchSnapshot(m.sock, 3*time.Second)
}

// Rep is the member's replication counters of chain c0.
func (m *Manager) Rep() (manager.RepStats, error) {
	s, err := m.Stats()
	if err != nil {
		return manager.RepStats{}, err
	}
	return RepOf(s)
}

// RepOf finds chain c0's replication counters in a snapshot.
func RepOf(s manager.Snapshot) (manager.RepStats, error) {
	for _, r := range s.Replication {
		if r.Chain == Chain {
			return r, nil
		}
	}
	return manager.RepStats{}, fmt.Errorf("no replication of chain %s in the stats", Chain)
}

// WaitStats polls the manager's stats until cond holds.
func (m *Manager) WaitStats(d time.Duration, what string, cond func(manager.Snapshot) bool) error {
	deadline := time.Now().Add(d)
	for {
		s, err := m.Stats()
		if err == nil && cond(s) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %s: not after %v (last error %v)", m.Name, what, d, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Leads reports whether a member's chain is primary here now (its
// replicator Node in the primary role), with the epoch.
func Leads(r manager.RepStats) (bool, uint64) {
	return r.Node.Role == replicator.RolePrimary, r.Epoch
}

// Primary returns the member that leads chain c0 now: the running member
// whose Node is primary, the higher epoch if both say so (a restarted
// configured primary before its demotion), or an error when none does.
func (l *Lab) Primary() (string, error) {
	best, bestEpoch := "", uint64(0)
	for _, n := range []string{A, B} {
		m := l.Member(n)
		if m == nil || !m.Running() {
			continue
		}
		r, err := m.Rep()
		if err != nil {
			continue
		}
		if ok, e := Leads(r); ok && (best == "" || e > bestEpoch) {
			best, bestEpoch = n, e
		}
	}
	if best == "" {
		return "", errors.New("no member leads chain " + Chain)
	}
	return best, nil
}

// Protected reports whether chain c0 is protected: both members run, one
// leads at an epoch the other follows (its Node is a standby that joined),
// and both report protected.
func (l *Lab) Protected() (primary string, ok bool) {
	var rs [2]manager.RepStats
	for i, n := range []string{A, B} {
		m := l.Member(n)
		if m == nil || !m.Running() {
			return "", false
		}
		r, err := m.Rep()
		if err != nil || r.Status != manager.RepProtected {
			return "", false
		}
		rs[i] = r
	}
	pa, _ := Leads(rs[0])
	pb, _ := Leads(rs[1])
	if pa == pb || rs[0].Epoch != rs[1].Epoch {
		return "", false
	}
	primary, sb, joined := A, B, rs[1].Node.Joined
	if pb {
		primary, sb, joined = B, A, rs[0].Node.Joined
	}
	return primary, joined && l.ArbiterReady(sb, rs[0].Epoch)
}

// ArbiterReady reports whether the arbiter counts member as a live, ready
// standby at epoch, from the arbiter's events in the ingress's log: the
// latest readiness event for member is "standby-ready" at epoch, and the
// latest liveness event is "member-up" (not "standby-down" or
// "primary-down"). The arbiter promotes only a live, ready standby, and
// both reach it after the member itself reports protected: readiness a
// status message later, liveness a BFD session later (a session that went
// down comes back at the slow, 1 s transmit rate RFC 5880 requires while
// not Up), so a fault injected in between finds no standby to promote.
// (The log is the only place the ingress shows the arbiter's view:
// manager.Snapshot has no arbiter section.)
func (l *Lab) ArbiterReady(member string, epoch uint64) bool {
	return arbiterReadyIn(l.Ing.Output(), member, epoch)
}

// arbiterReadyIn is ArbiterReady on the log out.
func arbiterReadyIn(out, member string, epoch uint64) bool {
	tag := " member=" + member
	var ready, live *bool
	set := func(p **bool, v bool) {
		if *p == nil {
			*p = &v
		}
	}
	for out != "" && (ready == nil || live == nil) {
		i := strings.LastIndexByte(out, '\n')
		line := out[i+1:]
		out = out[:max(i, 0)]
		if !strings.HasSuffix(line, tag) && !strings.Contains(line, tag+" ") || !strings.Contains(line, " arbiter ") {
			continue
		}
		switch {
		case strings.Contains(line, "event=standby-ready"):
			set(&ready, strings.Contains(line, fmt.Sprintf(" epoch=%d ", epoch)))
		case strings.Contains(line, "event=standby-not-ready"), strings.Contains(line, "event=promoting"),
			strings.Contains(line, "event=state-lost"):
			set(&ready, false)
		case strings.Contains(line, "event=member-up"):
			set(&live, true)
		case strings.Contains(line, "event=standby-down"), strings.Contains(line, "event=primary-down"):
			set(&live, false)
			set(&ready, false)
		}
	}
	return ready != nil && *ready && live != nil && *live
}

// WaitProtected waits until Protected.
func (l *Lab) WaitProtected(d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		if _, ok := l.Protected(); ok {
			return nil
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, n := range []string{A, B} {
				if m := l.Member(n); m != nil {
					r, err := m.Rep()
					fmt.Fprintf(&b, "%s (running %v): role %s status %s epoch %d node %v joined %v err %v\n", n, m.Running(), r.Role, r.Status, r.Epoch, r.Node.Role, r.Node.Joined, err)
					nd := r.Node
					fmt.Fprintf(&b, "  node: epoch %d, BFD %v, sessions %d, datagrams %d, unauthenticated %d, handshake errors %d, step errors %d, send errors %d, recv dropped %d; replicator %+v\n",
						nd.Epoch, nd.BFDState, nd.Sessions, nd.Datagrams, nd.Unauthenticated, nd.HandshakeErrors, nd.StepErrors, nd.SendErrors, nd.RecvDropped, nd.Replicator)
				}
			}
			return fmt.Errorf("chain %s not protected after %v:\n%s", Chain, d, b.String())
		}
		time.Sleep(50 * time.Millisecond) // each poll asks the members for their stats: keep their load down
	}
}

// Counters are the failover counters of the whole lab.
type Counters struct {
	// Redirects: the ingress moved the chain (one per arbiter failover).
	Redirects uint64
	// Promotions and Demotions: summed over the members' current processes
	// (a restarted manager starts at zero), by member.
	Promotions, Demotions map[string]uint64
}

// Counters reads the lab's failover counters; a member that is down counts
// zero.
func (l *Lab) Counters() (Counters, error) {
	c := Counters{Promotions: map[string]uint64{}, Demotions: map[string]uint64{}}
	s, err := l.Ing.Stats()
	if err != nil {
		return c, err
	}
	c.Redirects = s.Drops.Redirects
	for _, n := range []string{A, B} {
		m := l.Member(n)
		if m == nil || !m.Running() {
			continue
		}
		if s, err := m.Stats(); err == nil {
			c.Promotions[n], c.Demotions[n] = s.Drops.Promotions, s.Drops.Demotions
		}
	}
	return c, nil
}

// ---- links ----

// Links say which of a member's links Cut and Restore act on.
type Links uint8

const (
	Mgmt Links = 1 << iota // mgmt0: BFD and the arbiter's messages
	Data                   // p0 and p1: from the ingress, to the sink
	Rep                    // rep0: the replication link
	All  = Mgmt | Data | Rep
)

func (k Links) ifaces() []string {
	var out []string
	if k&Mgmt != 0 {
		out = append(out, lab.MgmtIface)
	}
	if k&Data != 0 {
		out = append(out, "p0", "p1")
	}
	if k&Rep != 0 {
		out = append(out, "rep0")
	}
	return out
}

// Cut sets a server's links down (ip link set down, in its namespace).
func (l *Lab) Cut(server string, k Links) error { return l.setLinks(server, k, false) }

// Restore sets them up again.
func (l *Lab) Restore(server string, k Links) error { return l.setLinks(server, k, true) }

func (l *Lab) setLinks(server string, k Links, up bool) error {
	srv := l.L.Server(server)
	if srv == nil {
		return fmt.Errorf("no server %q", server)
	}
	return srv.Do(func() error {
		for _, name := range k.ifaces() {
			link, err := netlink.LinkByName(name)
			if err != nil {
				return fmt.Errorf("%s:%s: %w", server, name, err)
			}
			if up {
				err = netlink.LinkSetUp(link)
			} else {
				err = netlink.LinkSetDown(link)
			}
			if err != nil {
				return fmt.Errorf("%s:%s up=%v: %w", server, name, up, err)
			}
		}
		return nil
	})
}

// ---- helpers ----

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Tail is the last n bytes of s.
func Tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
