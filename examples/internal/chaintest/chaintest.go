// Package chaintest runs example NFs as real processes in a chain behind an
// in-process manager, for the examples' tests: the test binary re-executes
// itself as the NF (its TestMain hands the child's command line to the NF's
// run function), the manager receives the frames a test injects on a memory
// port and hands back what leaves the chain.
//
//	lab := chaintest.NewLab(t, config.DeadNFReclaim, []int{1, 2})
//	nf := lab.Start(t, nil, "--", "-r", "1", "--", "-f", "2")
//	lab.WaitRunning(t, 2)
//	lab.Port.Inject(frames...)
//	out := lab.WaitSent(t, len(frames))
package chaintest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/reinforce-nfv/reinforce/manager"
	"github.com/reinforce-nfv/reinforce/manager/config"
	"github.com/reinforce-nfv/reinforce/nflib"
	"github.com/reinforce-nfv/reinforce/pkt"
	"github.com/reinforce-nfv/reinforce/pkt/probe"
	"github.com/reinforce-nfv/reinforce/port"
	"github.com/reinforce-nfv/reinforce/shm"
)

// Environment of a child NF: its role and its command line (words joined
// by a unit separator, so arguments may hold spaces).
const (
	roleEnv = "REINFORCE_CHAINTEST_NF"
	argvEnv = "REINFORCE_CHAINTEST_ARGV"
	argvSep = "\x1f"
)

// ChildArgv returns the NF command line when this process is a child NF
// started by Lab.Start, and false in the test process. TestMain calls it
// first:
//
//	if argv, ok := chaintest.ChildArgv(); ok { os.Exit(run("stamp", argv, nfapp.Std())) }
func ChildArgv() ([]string, bool) {
	if os.Getenv(roleEnv) == "" {
		return nil, false
	}
	v := os.Getenv(argvEnv)
	if v == "" {
		return []string{}, true
	}
	return strings.Split(v, argvSep), true
}

// MemPort is an in-memory port: the test injects frames to receive and
// reads back the frames transmitted.
type MemPort struct {
	id  uint16
	mu  sync.Mutex
	in  [][]byte
	out [][]byte
	st  port.Stats
}

// ID is the port number.
func (p *MemPort) ID() uint16 { return p.id }

// Name names the port.
func (p *MemPort) Name() string { return fmt.Sprintf("mem%d", p.id) }

// Close does nothing.
func (p *MemPort) Close() error { return nil }

// Stats are the port's counters.
func (p *MemPort) Stats() port.Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.st
}

// RxBurst hands the manager the frames injected so far, in order.
func (p *MemPort) RxBurst(c *shm.Cache, out []shm.Slot) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := min(len(out), len(p.in))
	if n == 0 {
		return 0
	}
	n = c.Alloc(out[:n])
	r := c.Region()
	for i := 0; i < n; i++ {
		f := p.in[i]
		m := r.Meta(out[i])
		copy(r.Buf(out[i])[m.DataOff:], f)
		m.Len, m.Port = uint32(len(f)), p.id
	}
	p.in = p.in[n:]
	p.st.RxPkts += uint64(n)
	return n
}

// TxBurst keeps a copy of every frame sent and frees the slots.
func (p *MemPort) TxBurst(c *shm.Cache, s []shm.Slot) int {
	p.mu.Lock()
	for _, sl := range s {
		p.out = append(p.out, slices.Clone(c.Region().Packet(sl)))
	}
	p.st.TxPkts += uint64(len(s))
	p.mu.Unlock()
	for k := 0; k < len(s); {
		k += c.Free(s[k:])
	}
	return len(s)
}

// Inject queues frames for the manager to receive.
func (p *MemPort) Inject(f ...[]byte) {
	p.mu.Lock()
	p.in = append(p.in, f...)
	p.mu.Unlock()
}

// Sent returns copies of the frames transmitted so far.
func (p *MemPort) Sent() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.out)
}

// Lab is a manager with one memory port (ID 0) and the NF processes a test
// started.
type Lab struct {
	M    *manager.Manager
	Port *MemPort
}

// NewLab starts an in-process manager with chains (service lists, each
// ending out of port 0) on a memory port, in a private region, socket and
// state directory; policy is its dead_nf_policy.
func NewLab(t *testing.T, policy config.DeadNFPolicy, chains ...[]int) *Lab {
	t.Helper()
	cfg := config.DefaultConfig()
	cfg.Manager.Name = fmt.Sprintf("ct%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)
	cfg.Manager.RegionDir = "/dev/shm"
	cfg.Manager.PoolSlots = 8192
	cfg.Manager.RingSize = 1024
	cfg.Manager.StatsOut = config.StatsNone
	cfg.Manager.DeadNFPolicy = policy
	cfg.Chains = nil
	for i, c := range chains {
		cfg.Chains = append(cfg.Chains, config.Chain{Name: fmt.Sprintf("c%d", i), Services: c, OutPort: 0})
	}
	cfg.Manager.DefaultChain = "c0"
	p := &MemPort{}
	dir := t.TempDir()
	// The NFs' state files go to the test's directory, not beside the
	// region, so a crashed test leaves nothing in /dev/shm.
	t.Setenv(nflib.StateDirEnv, dir)
	m, err := manager.New(cfg, manager.Options{Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
		SocketPath: filepath.Join(dir, "ctl.sock"), Ports: []port.Port{p}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return &Lab{M: m, Port: p}
}

// NF is a child NF process.
type NF struct {
	Cmd  *exec.Cmd
	out  *lineBuf
	done chan struct{}
	err  error
}

// Start runs the test binary as an NF with command line argv (ONVM syntax:
// [EAL args] -- [ONVM args] -- [NF args]) attached to the lab's manager,
// with extra environment variables env.
func (l *Lab) Start(t *testing.T, env []string, argv ...string) *NF {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run", "^$", "-test.count=1")
	cmd.Env = append(os.Environ(), roleEnv+"=1", argvEnv+"="+strings.Join(argv, argvSep),
		nflib.SocketEnv+"="+l.M.SocketPath())
	cmd.Env = append(cmd.Env, env...)
	cmd.Dir = t.TempDir() // the NF writes <tag>_stats.csv when it stops
	nf := &NF{Cmd: cmd, out: &lineBuf{}, done: make(chan struct{})}
	cmd.Stdout = nf.out
	cmd.Stderr = nf.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start NF %q: %v", argv, err)
	}
	go func() { nf.err = cmd.Wait(); close(nf.done) }()
	t.Cleanup(func() {
		select {
		case <-nf.done:
		default:
			if t.Failed() {
				// A stuck NF: its goroutines' stacks go to the output.
				cmd.Process.Signal(syscall.SIGQUIT)
				select {
				case <-nf.done:
				case <-time.After(2 * time.Second):
				}
			}
			cmd.Process.Kill()
			<-nf.done
		}
		if t.Failed() {
			t.Logf("NF %q output:\n%s", argv, nf.Output())
		}
	})
	return nf
}

// Output is everything the NF printed so far (stdout and stderr).
func (nf *NF) Output() string { return nf.out.String() }

// Kill sends SIGKILL and waits for the process to be gone.
func (nf *NF) Kill(t *testing.T) {
	t.Helper()
	if err := nf.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-nf.done
}

// Stop sends SIGTERM (the NF stops cleanly) and returns its exit error.
func (nf *NF) Stop(t *testing.T, d time.Duration) error {
	t.Helper()
	nf.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-nf.done:
		return nf.err
	case <-time.After(d):
		t.Fatalf("NF %d did not stop within %v:\n%s", nf.Cmd.Process.Pid, d, nf.Output())
		return nil
	}
}

// lineBuf collects a process's output while it runs.
type lineBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lineBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lineBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// WaitFor polls cond until it holds or d passes.
func WaitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// WaitRunning waits until the manager lists n NFs, all running and on the
// latest routes.
func (l *Lab) WaitRunning(t *testing.T, n int) {
	t.Helper()
	WaitFor(t, 20*time.Second, fmt.Sprintf("%d running NFs on the latest routes", n), func() bool {
		s := l.M.Snapshot()
		if len(s.NFs) != n {
			return false
		}
		for _, nf := range s.NFs {
			if !nf.Running || nf.Routes != s.Routes {
				return false
			}
		}
		return true
	})
}

// Instance returns the instance ID of the NF whose process is nf.
func (l *Lab) Instance(t *testing.T, nf *NF) uint16 {
	t.Helper()
	for _, s := range l.M.Snapshot().NFs {
		if s.PID == nf.Cmd.Process.Pid {
			return s.Instance
		}
	}
	t.Fatalf("NF process %d is not registered", nf.Cmd.Process.Pid)
	return 0
}

// WaitSent waits until n frames have left through the port and returns
// them; it fails if more than n leave within a short grace period.
func (l *Lab) WaitSent(t *testing.T, n int) [][]byte {
	t.Helper()
	WaitFor(t, 20*time.Second, fmt.Sprintf("%d frames out", n), func() bool { return len(l.Port.Sent()) >= n })
	time.Sleep(20 * time.Millisecond) // a duplicate would show up by now
	out := l.Port.Sent()
	if len(out) != n {
		t.Fatalf("%d frames out, want %d", len(out), n)
	}
	return out
}

// ProbeFrame builds an Ethernet/IPv4/UDP frame of flow (source address
// 10.0.x.y and source port 1000+flow) whose payload starts with a probe
// record for flow and seq, followed by extra zero bytes; the UDP checksum
// is valid.
func ProbeFrame(t testing.TB, flow uint32, seq uint64, extra int) []byte {
	t.Helper()
	b := make([]byte, 2048)
	n, err := pkt.BuildUDP4(b, pkt.MAC{2, 0, 0, 0, 0, 1}, pkt.MAC{2, 0, 0, 0, 0, 2},
		[4]byte{10, 0, byte(flow >> 8), byte(flow)}, [4]byte{10, 1, 0, 1}, uint16(1000+flow), 5000, probe.Bytes+extra)
	if err != nil {
		t.Fatal(err)
	}
	b = b[:n]
	r := probe.Record{Flow: flow, Seq: seq, SentNs: 12345}
	r.Put(b[pkt.OffL4+pkt.UDPHeaderBytes:])
	var h pkt.Headers
	if err := h.Decode(b); err != nil {
		t.Fatal(err)
	}
	h.SetL4Checksum(b)
	return b
}

// PlainFrame builds an Ethernet/IPv4/UDP frame of flow with a zero payload
// of n bytes: no probe record.
func PlainFrame(t testing.TB, flow uint32, n int) []byte {
	t.Helper()
	b := make([]byte, 2048)
	k, err := pkt.BuildUDP4(b, pkt.MAC{2, 0, 0, 0, 0, 1}, pkt.MAC{2, 0, 0, 0, 0, 2},
		[4]byte{10, 0, byte(flow >> 8), byte(flow)}, [4]byte{10, 1, 0, 1}, uint16(1000+flow), 5000, n)
	if err != nil {
		t.Fatal(err)
	}
	return b[:k]
}

// ReadProbe decodes the probe in frame and checks its UDP checksum.
func ReadProbe(t testing.TB, frame []byte) probe.Record {
	t.Helper()
	var h pkt.Headers
	off, ok := probe.Find(&h, frame)
	if !ok {
		t.Fatalf("no probe in frame % x", frame)
	}
	if !h.VerifyL4Checksum(frame) {
		t.Fatalf("UDP checksum invalid in frame % x", frame)
	}
	var r probe.Record
	r.Get(frame[off:])
	return r
}
