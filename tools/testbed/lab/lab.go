// Package lab builds the test lab (docs/lab.md): simulated servers on one
// machine, each a network namespace and a mount namespace with private
// /dev/shm, /run and hugetlbfs mounts, joined by veth pairs and optionally a
// management bridge, all made with netlink.
//
// A server's namespaces are held by a holder process (sh, then sleep) that
// was cloned into them. Commands run in a server through nsenter on the
// holder: Go cannot move a multithreaded process into another mount
// namespace (setns(CLONE_NEWNS) refuses threaded callers), while nsenter is
// single-threaded and then execs the command, so the command is born inside.
//
// Nothing is created in the host's namespaces: veth ends are created
// directly in the servers' namespaces (IFLA_NET_NS_FD), so when the last
// process of a namespace dies the kernel deletes its links and mounts.
// Holders of an ordinary lab die with the process that made it
// (PR_SET_PDEATHSIG); processes started with Server.Command too. What could
// outlive a crashed run (a process that escaped its death signal) is found by
// Sweep, which Up calls first: each run records its owner and holders in
// /run/reinforce-testbed/<run>/state.json, and when the owner is gone the
// holders and every process that carries the run's marker (EnvRun=<run> in
// its environment, inherited by children) are killed.
package lab

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// StateDir holds one directory per live run (state.json) and the lock
// that serialises Up, Close and Sweep between processes.
const StateDir = "/run/reinforce-testbed"

// RunPrefix starts every run ID.
const RunPrefix = "rtb-"

// EnvRun is set to the run ID in the environment of every command started
// in a server; Sweep relies on it to tell the run's processes from others.
const EnvRun = "REINFORCE_TESTBED_RUN"

// hubName is the hidden server holding the management bridge.
const hubName = "_hub"

// bridgeName is the management bridge in the hub.
const bridgeName = "br0"

// readyTimeout bounds a holder's start.
const readyTimeout = 10 * time.Second

// Options change how Up builds a lab.
type Options struct {
	// Persistent labs outlive the process that made them (testbed up): the
	// holders get their own session and no death signal, and Sweep leaves
	// them alone; Down removes them.
	Persistent bool
	// Owner, when not 0, is the process whose death makes the lab stale
	// (a script that runs `testbed up -owner $$`): the holders are detached
	// as for Persistent, and Sweep removes the lab once Owner is gone.
	Owner int
}

// Lab is a running topology. Its methods are safe for concurrent use.
type Lab struct {
	run     string
	cfg     Config
	servers map[string]*Server
	order   []*Server
	hub     *Server
	st      state
}

// Server is one simulated server.
type Server struct {
	name  string
	run   string
	pid   int // the holder
	start uint64
	mgmt  string
	cmd   *exec.Cmd // nil when attached from state
}

// state is what a run records for Sweep, Down and the CLI.
type state struct {
	Run        string        `json:"run"`
	OwnerPID   int           `json:"owner_pid"`
	OwnerStart uint64        `json:"owner_start"`
	Persistent bool          `json:"persistent"`
	Created    time.Time     `json:"created"`
	Servers    []serverState `json:"servers"`
}

type serverState struct {
	Name  string `json:"name"`
	PID   int    `json:"pid"`
	Start uint64 `json:"start"` // /proc/<pid>/stat starttime, against PID reuse
	NetNS string `json:"netns"` // "net:[inode]"
	MntNS string `json:"mntns"`
	Mgmt  string `json:"mgmt,omitempty"`
}

// Up sweeps what dead runs left and builds cfg under a new run ID. On error
// nothing of the new run is left.
func Up(cfg Config, opt Options) (_ *Lab, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("the lab needs root (namespaces, mounts, netlink)")
	}
	if _, err := Sweep(); err != nil {
		return nil, fmt.Errorf("sweep stale runs: %w", err)
	}
	var rb [4]byte
	if _, err := rand.Read(rb[:]); err != nil {
		return nil, err
	}
	l := &Lab{run: RunPrefix + hex.EncodeToString(rb[:]), cfg: cfg, servers: map[string]*Server{}}
	owner := os.Getpid()
	if opt.Owner != 0 {
		owner = opt.Owner
	}
	ownerStart, err := procStart(owner)
	if err != nil {
		return nil, fmt.Errorf("owner %d: %w", owner, err)
	}
	l.st = state{Run: l.run, OwnerPID: owner, OwnerStart: ownerStart, Persistent: opt.Persistent, Created: time.Now().UTC()}
	if opt.Persistent {
		l.st.OwnerPID, l.st.OwnerStart = 0, 0
	}
	detach := opt.Persistent || opt.Owner != 0
	// The state goes down before anything else, under the lock, so a
	// concurrent Sweep never finds the run without its owner.
	unlock, err := lock()
	if err != nil {
		return nil, err
	}
	err = os.MkdirAll(filepath.Join(StateDir, l.run), 0o755)
	if err == nil {
		err = l.save()
	}
	unlock()
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	huge := hugetlbfsMounts()
	names := make([]string, 0, len(cfg.Servers)+1)
	for _, s := range cfg.Servers {
		names = append(names, s.Name)
	}
	if cfg.Mgmt != nil {
		names = append(names, hubName)
	}
	for _, name := range names {
		s, err := startHolder(l.run, name, huge, detach)
		if err != nil {
			return nil, fmt.Errorf("server %s: %w", name, err)
		}
		ss := serverState{Name: name, PID: s.pid, Start: s.start}
		ss.NetNS, _ = os.Readlink(fmt.Sprintf("/proc/%d/ns/net", s.pid))
		ss.MntNS, _ = os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", s.pid))
		l.st.Servers = append(l.st.Servers, ss)
		if err := l.save(); err != nil {
			return nil, err
		}
		if name == hubName {
			l.hub = s
		} else {
			l.servers[name] = s
			l.order = append(l.order, s)
		}
	}
	for _, s := range l.order {
		if err := s.setup(func(h *netlink.Handle) error { return linkUp(h, "lo") }); err != nil {
			return nil, fmt.Errorf("server %s: lo: %w", s.name, err)
		}
	}
	for i, lc := range cfg.Links {
		if err := l.addLink(lc); err != nil {
			return nil, fmt.Errorf("link[%d] %s-%s: %w", i, lc.A, lc.B, err)
		}
	}
	if cfg.Mgmt != nil {
		if err := l.addMgmt(); err != nil {
			return nil, fmt.Errorf("management network: %w", err)
		}
	}
	return l, l.save()
}

// Run is the run ID, unique per Up.
func (l *Lab) Run() string { return l.run }

// Server returns the server named name, or nil.
func (l *Lab) Server(name string) *Server { return l.servers[name] }

// Servers returns the servers in configuration order.
func (l *Lab) Servers() []*Server { return append([]*Server(nil), l.order...) }

// Close kills the holders and every process carrying the run's marker
// (commands and their children), which empties the namespaces, so the
// kernel deletes their links and mounts; and it removes the run's state.
// Idempotent.
func (l *Lab) Close() error {
	err := destroy(l.st)
	for _, s := range append(l.Servers(), l.hub) {
		if s != nil && s.cmd != nil {
			s.cmd.Wait() // reap; it was killed
			s.cmd = nil
		}
	}
	return err
}

// Name is the server's name.
func (s *Server) Name() string { return s.name }

// PID is the process holding the server's namespaces.
func (s *Server) PID() int { return s.pid }

// MgmtAddr is the server's management address (CIDR), "" without [mgmt].
func (s *Server) MgmtAddr() string { return s.mgmt }

// Command returns a command that runs name with args inside the server:
// its network and mount namespaces, the caller's working directory (or
// cmd.Dir), EnvRun and XDG_RUNTIME_DIR=/run (the server's
// private /run, so the manager's default control socket is per server) added
// to the environment. The process gets SIGKILL if the thread that starts it
// dies (PR_SET_PDEATHSIG), so a crashed test leaves no traffic running.
func (s *Server) Command(name string, args ...string) *exec.Cmd {
	// --wd=.: nsenter opens its own working directory (cmd.Dir, else the
	// caller's) before it enters the mount namespace, and returns to it
	// after; setns(CLONE_NEWNS) would otherwise leave it at the root.
	argv := append([]string{"-t", strconv.Itoa(s.pid), "-n", "-m", "--wd=.", "--", name}, args...)
	cmd := exec.Command(nsenterPath(), argv...)
	cmd.Env = append(os.Environ(), EnvRun+"="+s.run, "XDG_RUNTIME_DIR=/run")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// Do runs fn on a locked OS thread inside the server's network namespace
// (not its mount namespace), so sockets fn opens belong to the server.
func (s *Server) Do(fn func() error) error {
	ns, err := netns.GetFromPid(s.pid)
	if err != nil {
		return fmt.Errorf("server %s: %w", s.name, err)
	}
	defer ns.Close()
	return inNS(ns, fn)
}

// inNS runs fn on a locked thread in ns. A thread that cannot return home
// stays locked and Go discards it when the goroutine ends.
func inNS(ns netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		home, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer home.Close()
		if err := netns.Set(ns); err != nil {
			errc <- err
			return
		}
		ferr := fn()
		if err := netns.Set(home); err != nil {
			errc <- errors.Join(ferr, err)
			return // thread stays locked: discarded
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// setup runs fn with a netlink handle in the server's network namespace.
func (s *Server) setup(fn func(h *netlink.Handle) error) error {
	ns, err := netns.GetFromPid(s.pid)
	if err != nil {
		return err
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	return fn(h)
}

func linkUp(h *netlink.Handle, name string) error {
	ln, err := h.LinkByName(name)
	if err != nil {
		return err
	}
	return h.LinkSetUp(ln)
}

// addLink creates a veth pair with its ends directly in the two servers'
// namespaces.
func (l *Lab) addLink(lc LinkConfig) error {
	sa, ia, _ := endpoint(lc.A)
	sb, ib, _ := endpoint(lc.B)
	return l.veth(l.servers[sa], ia, lc.AddrA, l.servers[sb], ib, lc.AddrB, lc.MTU)
}

func (l *Lab) veth(a *Server, ia, addrA string, b *Server, ib, addrB string, mtu int) error {
	nsA, err := netns.GetFromPid(a.pid)
	if err != nil {
		return err
	}
	defer nsA.Close()
	nsB, err := netns.GetFromPid(b.pid)
	if err != nil {
		return err
	}
	defer nsB.Close()
	h, err := netlink.NewHandleAt(nsA)
	if err != nil {
		return err
	}
	defer h.Close()
	attrs := netlink.NewLinkAttrs()
	attrs.Name = ia
	attrs.MTU = mtu
	// PeerMTU: the peer takes the MTU only if asked (netlink sends
	// IFLA_MTU for the peer separately).
	v := &netlink.Veth{LinkAttrs: attrs, PeerName: ib, PeerNamespace: netlink.NsFd(int(nsB)), PeerMTU: uint32(mtu)}
	if err := h.LinkAdd(v); err != nil {
		return fmt.Errorf("add veth %s:%s - %s:%s: %w", a.name, ia, b.name, ib, err)
	}
	for _, end := range []struct {
		s          *Server
		iface, adr string
	}{{a, ia, addrA}, {b, ib, addrB}} {
		if err := end.s.setup(func(h *netlink.Handle) error {
			ln, err := h.LinkByName(end.iface)
			if err != nil {
				return err
			}
			if end.adr != "" {
				ad, err := netlink.ParseAddr(end.adr)
				if err != nil {
					return err
				}
				if err := h.AddrAdd(ln, ad); err != nil {
					return fmt.Errorf("address %s: %w", end.adr, err)
				}
			}
			return h.LinkSetUp(ln)
		}); err != nil {
			return fmt.Errorf("%s:%s: %w", end.s.name, end.iface, err)
		}
	}
	return nil
}

// addMgmt creates the bridge in the hub and one port per server.
func (l *Lab) addMgmt() error {
	if err := l.hub.setup(func(h *netlink.Handle) error {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = bridgeName
		if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
			return err
		}
		return linkUp(h, bridgeName)
	}); err != nil {
		return err
	}
	for i, s := range l.order {
		port := "p" + strconv.Itoa(i)
		s.mgmt = l.cfg.mgmtAddr(i).String()
		if err := l.veth(s, MgmtIface, s.mgmt, l.hub, port, "", 0); err != nil {
			return err
		}
		if err := l.hub.setup(func(h *netlink.Handle) error {
			br, err := h.LinkByName(bridgeName)
			if err != nil {
				return err
			}
			p, err := h.LinkByName(port)
			if err != nil {
				return err
			}
			return h.LinkSetMaster(p, br)
		}); err != nil {
			return err
		}
		l.st.Servers[i].Mgmt = s.mgmt
	}
	return nil
}

// holderScript makes the mount namespace private and mounts the server's
// own /dev/shm, /run, /sys (so /sys/class/net shows the server's links) and
// hugetlbfs instances (a fresh hugetlbfs mount is its own set of files), turns
// IPv6 off for the namespace's links (no router solicitations or MLD reports
// on the data links), says ready and waits forever. $@ are the hugetlbfs mount
// points.
const holderScript = `set -e
mount --make-rprivate /
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t sysfs sysfs /sys
for m in "$@"; do mount -t hugetlbfs none "$m"; done
echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6 || true
echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6 || true
echo ready
exec sleep infinity`

// startHolder clones a holder into new network and mount namespaces.
func startHolder(run, name string, huge []string, detach bool) (*Server, error) {
	args := append([]string{"-c", holderScript, run + "/" + name}, huge...)
	cmd := exec.Command("/bin/sh", args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", EnvRun + "=" + run}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET | syscall.CLONE_NEWNS}
	if detach {
		cmd.SysProcAttr.Setsid = true
	} else {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	// The death signal fires when the thread that forked dies, not only the
	// process: Go ends a thread only when a goroutine exits while locked to
	// it, which inNS does solely when it cannot leave a namespace, and then
	// the holder dies early and the lab fails loudly rather than leaks.
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start holder: %w", err)
	}
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(out).ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("holder said %q", line)
		}
		ready <- err
	}()
	select {
	case err = <-ready:
	case <-time.After(readyTimeout):
		err = errors.New("holder did not get ready in time")
	}
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("holder: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	start, err := procStart(cmd.Process.Pid)
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, err
	}
	return &Server{name: name, run: run, pid: cmd.Process.Pid, start: start, cmd: cmd}, nil
}

// hugetlbfsMounts lists the host's hugetlbfs mount points: the manager
// picks one for its region when it finds one, so each server needs its own.
func hugetlbfsMounts() []string {
	data, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[2] == "hugetlbfs" {
			out = append(out, f[1])
		}
	}
	return out
}

// procStart is a process's start time in clock ticks since boot.
func procStart(pid int) (uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces and parentheses: fields
	// after it are counted from the last ')'.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	return strconv.ParseUint(f[19], 10, 64) // field 22
}

// alive says whether pid is the process that started at start.
func alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	st, err := procStart(pid)
	return err == nil && st == start
}

func (l *Lab) save() error {
	data, err := json.MarshalIndent(l.st, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Join(StateDir, l.run)
	tmp := filepath.Join(dir, "state.json.tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "state.json"))
}

func nsenterPath() string {
	if p, err := exec.LookPath("nsenter"); err == nil {
		return p
	}
	return "/usr/bin/nsenter"
}

// ifaceNames lists the interfaces in the server's network namespace.
func (s *Server) ifaceNames() ([]string, error) {
	var names []string
	err := s.Do(func() error {
		ifs, err := net.Interfaces()
		for _, i := range ifs {
			names = append(names, i.Name)
		}
		return err
	})
	return names, err
}

// Interfaces lists the interfaces inside the server (lo included).
func (s *Server) Interfaces() ([]string, error) { return s.ifaceNames() }
