// Package testenv holds the skips and checks shared by every test package:
// root and hugepage requirements (which become failures under CI=true, so a
// green CI always means the privileged tests ran) and goroutine-leak checks.
package testenv

import (
	"flag"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/shm"

	"go.uber.org/goleak"
)

// InCI reports whether the tests run under CI (CI=true), where a skip for a
// missing privilege or resource is a failure instead.
func InCI() bool { return os.Getenv("CI") == "true" }

// Skip skips t with reason, or fails it under CI.
func Skip(t testing.TB, reason string) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI=true but the test cannot run: %s", reason)
	}
	t.Skipf("skipped: %s", reason)
}

// RequireRoot skips (fails under CI) unless the test runs as root; why names
// what root is needed for ("veth pairs", "hugetlbfs mount").
func RequireRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Skip(t, "needs root for "+why)
	}
}

// RequireHugepages returns a hugetlbfs mount the test may create files on, or
// skips (fails under CI) when none is mounted or writable.
func RequireHugepages(t testing.TB) string {
	t.Helper()
	m := shm.HugetlbfsMount()
	if m == "" {
		Skip(t, "no hugetlbfs mount (mount -t hugetlbfs nodev /dev/hugepages as root)")
		return ""
	}
	if err := unixAccessW(m); err != nil {
		Skip(t, "hugetlbfs mount "+m+" is not writable: "+err.Error())
	}
	return m
}

func unixAccessW(dir string) error {
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return err
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// CheckLeaks fails t if goroutines started by the test are still running
// when it ends. Call it first thing in a test that starts loops.
func CheckLeaks(t *testing.T) {
	t.Helper()
	before := goleak.IgnoreCurrent() // snapshot now: only goroutines the test starts count
	t.Cleanup(func() {
		if err := goleak.Find(before); err != nil {
			t.Errorf("goroutine leak: %v", err)
		}
	})
}

var seedFlag = flag.Uint64("seed", 0, "seed for randomised tests (0: from the clock, printed)")

// Seed returns -seed, or a clock-based seed, and logs it so a failing run
// can be replayed with -seed.
func Seed(t testing.TB) uint64 {
	t.Helper()
	s := *seedFlag
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay with -seed=%d)", s, s)
	return s
}

// Rand returns a generator seeded by Seed.
func Rand(t testing.TB) *rand.Rand {
	t.Helper()
	s := Seed(t)
	return rand.New(rand.NewPCG(s, s^0x9e3779b97f4a7c15))
}
