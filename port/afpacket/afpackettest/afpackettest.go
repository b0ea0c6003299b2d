// Package afpackettest gives tests a wire: a veth pair in a network
// namespace of its own, created with iproute2's ip command and removed when
// the test ends, whatever its outcome (ARCHITECTURE.md, Testing topology).
// The namespace keeps the host's network daemons and traffic off the pair;
// IPv6 is disabled on both ends so the kernel sends nothing on them
// (no router or neighbour solicitations, no MLD reports). Creating one
// needs root. Namespaces that a killed test binary left behind are deleted
// by the next NewVethPair.
package afpackettest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/reinforce-nfv/reinforce/internal/testenv"
	"golang.org/x/sys/unix"
)

// Pair is a veth pair in its own network namespace: a frame sent on A
// arrives on B and the other way round.
type Pair struct {
	NS   string // namespace name (ip netns: /run/netns/<NS>)
	A, B string // interface names, unique on the host
}

var (
	seq       atomic.Uint32
	sweepOnce sync.Once
)

// NewVethPair creates a namespace holding a veth pair with MTU mtu (0 keeps
// the kernel's 1500), both ends up. It skips t without root (fails under
// CI=true) and deletes the namespace, and with it the pair, in t's cleanup.
// Sockets opened in it (Do) must be closed by cleanups registered after
// this call, so that they run first. Safe for concurrent use.
func NewVethPair(t testing.TB, mtu int) *Pair {
	t.Helper()
	testenv.RequireRoot(t, "veth pairs")
	sweepOnce.Do(sweep)
	// Names stay within IFNAMSIZ-1 = 15 bytes: "rft" + pid (≤ 7 digits) +
	// "-" + counter (≤ 3 digits) + end.
	base := nsPrefix + strconv.Itoa(os.Getpid()) + "-" + strconv.Itoa(int(seq.Add(1)%1000))
	p := &Pair{NS: base, A: base + "a", B: base + "b"}
	ip(t, "netns", "add", p.NS)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", p.NS).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", p.NS, err, strings.TrimSpace(string(out)))
		}
	})
	ip(t, "-n", p.NS, "link", "add", p.A, "type", "veth", "peer", "name", p.B)
	if err := p.Do(func() error {
		for _, name := range []string{p.A, p.B} {
			if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+name+"/disable_ipv6", []byte("1"), 0); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err // ErrNotExist: a kernel without IPv6 sends nothing anyway
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("disable IPv6 on %s, %s: %v", p.A, p.B, err)
	}
	for _, name := range []string{p.A, p.B} {
		if mtu != 0 {
			ip(t, "-n", p.NS, "link", "set", name, "mtu", strconv.Itoa(mtu))
		}
		ip(t, "-n", p.NS, "link", "set", name, "up")
	}
	return p
}

// Do runs fn on a locked OS thread that has entered the pair's namespace,
// so the sockets fn creates belong to it (a socket keeps its namespace for
// life; other threads of the process stay where they are). If the thread
// cannot return to its namespace it stays locked, and Go discards it when
// the goroutine exits rather than run other goroutines there. Safe for
// concurrent use.
func (p *Pair) Do(fn func() error) error {
	runtime.LockOSThread()
	home, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open own namespace: %w", err)
	}
	defer home.Close()
	ns, err := os.Open("/run/netns/" + p.NS)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open namespace %s: %w", p.NS, err)
	}
	defer ns.Close()
	if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter namespace %s: %w", p.NS, err)
	}
	ferr := fn()
	if err := unix.Setns(int(home.Fd()), unix.CLONE_NEWNET); err != nil {
		return errors.Join(ferr, fmt.Errorf("leave namespace %s: %w", p.NS, err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// nsPrefix starts the names of the namespaces and interfaces this package
// creates: nsPrefix, the creating process's ID, "-", a counter.
const nsPrefix = "rft"

// sweep deletes the namespaces (and so the pairs) that processes which are
// gone left behind: a test binary killed by -timeout runs no cleanup.
func sweep() {
	ents, _ := os.ReadDir("/run/netns") // none yet: nothing to sweep
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), nsPrefix)
		pidText, _, ok2 := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || !ok2 || err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if errors.Is(unix.Kill(pid, 0), unix.ESRCH) {
			exec.Command("ip", "netns", "del", e.Name()).Run() // best effort: another sweeper may race us
		}
	}
}

// ip runs the ip command with args, failing t with its output on error.
func ip(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
}
