// Package crashpoint lets a test make a real NF process SIGKILL itself at a
// named step of a burst transaction, the n-th time it gets there:
//
//	REINFORCE_CRASH=after-commit:17
//
// Unarmed (the variable unset), a Hit is one load of a global and a
// compare. The process announces the kill on stderr first, so a test can
// tell the step was reached.
package crashpoint

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Step names a point in a burst transaction.
type Step uint8

// The steps, in the order a burst passes them.
const (
	None                Step = iota
	Inputs                   // after reading (and taking) the inputs
	StateWrite               // between two state writes (the NF calls Hit)
	PacketWrite              // after a packet write (the NF calls Hit)
	BeforeCommit             // outputs staged, commit record not written
	AfterCommit              // commit record written, nothing published
	BetweenPublications      // some index stores done, not all
	AfterPublication         // everything published and freed, transaction not marked done
	numSteps
)

var names = [numSteps]string{"", "inputs", "state-write", "packet-write", "before-commit", "after-commit",
	"between-publications", "after-publication"}

func (s Step) String() string {
	if s < numSteps {
		return names[s]
	}
	return "step " + strconv.Itoa(int(s))
}

// Steps lists every step (for tests that loop over them).
func Steps() []Step {
	return []Step{Inputs, StateWrite, PacketWrite, BeforeCommit, AfterCommit, BetweenPublications, AfterPublication}
}

// Env is the variable that arms a crash point.
const Env = "REINFORCE_CRASH"

var (
	armed     Step
	countdown int
)

func init() {
	v := os.Getenv(Env)
	if v == "" {
		return
	}
	name, n, _ := strings.Cut(v, ":")
	k, err := strconv.Atoi(n)
	if err != nil || k < 1 {
		k = 1
	}
	for s := Inputs; s < numSteps; s++ {
		if names[s] == name {
			armed, countdown = s, k
			return
		}
	}
	fmt.Fprintf(os.Stderr, "%s=%q: unknown step, nothing armed\n", Env, v)
}

// Hit kills the process if step s is armed and this is its n-th hit.
func Hit(s Step) {
	if armed != s {
		return
	}
	if countdown--; countdown > 0 {
		return
	}
	fmt.Fprintf(os.Stderr, "crashpoint: killing myself at %s\n", s)
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		p.Kill()
	}
	select {} // the signal is on its way
}
