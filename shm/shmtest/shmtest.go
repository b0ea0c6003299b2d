// Package shmtest holds the harness shared by tests of shared-memory code:
// temporary regions and child processes that re-execute the test binary
// (the parent runs os.Args[0] -test.run '^TestName$' with
// REINFORCE_TEST_CHILD=<role>; the child plays its role and reports through
// file descriptor 3).
package shmtest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/shm"
)

// ChildEnv names the environment variable that carries a child's role.
const ChildEnv = "REINFORCE_TEST_CHILD"

var seq atomic.Uint64

// SmallOptions sizes a region for unit tests: small and quick to create.
func SmallOptions() shm.Options {
	return shm.Options{Slots: 4096, DataBytes: 256, Rings: 16, RingCap: 1024, Owners: 8, CacheCap: 256, Doorbells: 16}
}

// TempRegion creates a region with a unique name in o.Dir (default
// /dev/shm), closed when the test ends.
func TempRegion(t testing.TB, o shm.Options) *shm.Region {
	t.Helper()
	if o.Name == "" {
		o.Name = fmt.Sprintf("reinforce-test-%d-%d", os.Getpid(), seq.Add(1))
	}
	if o.Dir == "" {
		o.Dir = "/dev/shm"
	}
	r, err := shm.Create(o)
	if err != nil {
		t.Fatalf("create region: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// Role returns this process's child role, or "" in the parent.
func Role() string { return os.Getenv(ChildEnv) }

// Child is a re-executed test binary playing a role.
type Child struct {
	Cmd    *exec.Cmd
	Report *bufio.Reader // lines the child wrote to its fd 3
	pipe   *os.File
}

// StartChild re-executes the test binary to run only test (which must check
// Role() == role and play it), with extra environment variables env.
func StartChild(t testing.TB, test, role string, env ...string) *Child {
	t.Helper()
	rd, wr, err := os.Pipe()
	if err != nil {
		t.Fatalf("pipe: %v", err)
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^"+test+"$", "-test.count=1", "-test.timeout=10m")
	cmd.Env = append(append(os.Environ(), ChildEnv+"="+role), env...)
	cmd.ExtraFiles = []*os.File{wr}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child %s: %v", role, err)
	}
	wr.Close()
	c := &Child{Cmd: cmd, Report: bufio.NewReader(rd), pipe: rd}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		rd.Close()
	})
	return c
}

// ReadLine returns the child's next report line (without newline), failing
// the test if none comes within d.
func (c *Child) ReadLine(t testing.TB, d time.Duration) string {
	t.Helper()
	type res struct {
		s   string
		err error
	}
	ch := make(chan res, 1)
	go func() {
		s, err := c.Report.ReadString('\n')
		ch <- res{strings.TrimSuffix(s, "\n"), err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("child %d report: %v (got %q)", c.Cmd.Process.Pid, r.err, r.s)
		}
		return r.s
	case <-time.After(d):
		t.Fatalf("child %d sent no report within %v", c.Cmd.Process.Pid, d)
		return ""
	}
}

// Wait waits for the child and fails the test if it did not exit 0.
func (c *Child) Wait(t testing.TB) {
	t.Helper()
	if err := c.Cmd.Wait(); err != nil {
		t.Fatalf("child %d: %v", c.Cmd.Process.Pid, err)
	}
}

var (
	reportOnce sync.Once
	report     *os.File
)

// ReportFile is the child's end of the report pipe (fd 3). One *os.File for
// the process: a second one would close fd 3 when collected.
func ReportFile() *os.File {
	reportOnce.Do(func() { report = os.NewFile(3, "report") })
	return report
}

// Reportf writes one report line from a child.
func Reportf(format string, args ...any) {
	fmt.Fprintf(ReportFile(), format+"\n", args...)
}

// CheckPoolWhole fails t unless every cache freed all it allocated and
// refused nothing, and the pool is whole once their owners are reclaimed.
// It stops the pool's service loop.
func CheckPoolWhole(t testing.TB, r *shm.Region, caches ...*shm.Cache) {
	t.Helper()
	for _, c := range caches {
		if c.Allocs != c.Frees || c.Bad != 0 {
			t.Fatalf("owner %d: %d allocs, %d frees, %d bad", c.Owner(), c.Allocs, c.Frees, c.Bad)
		}
	}
	p := r.Pool()
	p.StopService()
	p.Service()
	for _, c := range caches {
		if _, err := p.Reclaim(c.Owner(), shm.ReclaimOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if p.FreeCount() != p.Capacity() {
		t.Fatalf("pool has %d of %d slots free", p.FreeCount(), p.Capacity())
	}
}
