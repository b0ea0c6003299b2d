package manager_test

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/internal/crashpoint"
	"github.com/reinforce-nfv/reinforce/internal/testenv"
	"github.com/reinforce-nfv/reinforce/manager/config"
	"github.com/reinforce-nfv/reinforce/nflib"
	"github.com/reinforce-nfv/reinforce/shm/shmtest"
)

// Payload fields of the transaction tests' frames (after the 42-byte
// headers): the per-flow sequence number the test wrote, the stamp the NF
// writes (its per-flow counter) and the counter it increments.
const (
	txSeqAt    = 42
	txStampAt  = 46
	txMutateAt = 50
)

// txStamp is the crash-point tests' NF: per flow (UDP source port) a counter
// in a state map, a total in a state value; each packet gets the counter as
// its stamp and its mutation counter incremented; then Next. It reports
// what it recovered at start and its state when it stops.
func txStamp(nf *nflib.NF) error {
	flows, err := nflib.NewMap[uint16, uint64](nf, "flows", 256)
	if err != nil {
		return err
	}
	total, err := nflib.NewValue[uint64](nf, "total")
	if err != nil {
		return err
	}
	r := nf.Recovery()
	shmtest.Reportf("recovered seq=%d back=%v forward=%v redelivered=%d", r.Seq, r.RolledBack, r.RolledForward, r.Redelivered)
	// The test opens the gate once every frame waits in the NF's ring, so
	// none meets the gap between the death and the restart (the manager
	// does not route to a dead NF's ring yet).
	for gate := os.Getenv("NF_GATE"); gate != ""; time.Sleep(time.Millisecond) {
		if _, err := os.Stat(gate); err == nil {
			break
		}
	}
	err = nf.Run(func(p nflib.Packet) nflib.Action {
		d := p.Data()
		if len(d) < txMutateAt+4 {
			return nflib.Drop
		}
		flow := binary.BigEndian.Uint16(d[34:])
		c, _ := flows.Get(flow)
		c++
		if err := flows.Put(flow, c); err != nil {
			shmtest.Reportf("put: %v", err)
		}
		crashpoint.Hit(crashpoint.StateWrite)
		total.Store(total.Load() + 1)
		w := p.Writable()
		binary.BigEndian.PutUint32(w[txStampAt:], uint32(c))
		binary.BigEndian.PutUint32(w[txMutateAt:], binary.BigEndian.Uint32(w[txMutateAt:])+1)
		crashpoint.Hit(crashpoint.PacketWrite)
		return nflib.Next
	})
	var b strings.Builder
	fmt.Fprintf(&b, "state total=%d", total.Load())
	flows.Range(func(k uint16, v uint64) bool { fmt.Fprintf(&b, " %d=%d", k, v); return true })
	shmtest.Reportf("%s", b.String())
	return err
}

// TestCrashAtEveryStepOfABurst makes a real NF process SIGKILL itself at
// each named step of a burst transaction, at a random burst, then starts
// its successor with the same instance ID, which recovers from the state
// file: rolled back before the commit record, rolled forward after it.
// Every packet must leave exactly once, in order per flow, stamped with
// consecutive counters and mutated exactly once, and the NF's state must
// count each packet once. REINFORCE_CRASH_REPS sets the kills per step
// (the long tier); CI runs 3.
func TestCrashAtEveryStepOfABurst(t *testing.T) {
	reps := 3
	if v, err := strconv.Atoi(os.Getenv("REINFORCE_CRASH_REPS")); err == nil && v > 0 {
		reps = v
	}
	rng := testenv.Rand(t)
	for _, step := range crashpoint.Steps() {
		t.Run(step.String(), func(t *testing.T) {
			for i := 0; i < reps; i++ {
				crashOnce(t, step, 1+rng.IntN(6), false)
			}
		})
	}
}

// TestStandbyTakesOverAtEveryStep is the same with a local standby attached
// before the kill: the standby, woken by the active's death, recovers and
// carries on (no restart, no re-registration), and the manager counts a
// failover.
func TestStandbyTakesOverAtEveryStep(t *testing.T) {
	rng := testenv.Rand(t)
	for _, step := range crashpoint.Steps() {
		t.Run(step.String(), func(t *testing.T) {
			crashOnce(t, step, 1+rng.IntN(6), true)
		})
	}
}

func crashOnce(t *testing.T, step crashpoint.Step, nth int, standby bool) {
	const flows, perFlow = 4, 60
	l := newLab(t, config.DeadNFRetain, []int{1})
	gate := filepath.Join(t.TempDir(), "gate")
	victim := shmtest.StartChild(t, "TestNone", "nf", "REINFORCE_SOCKET="+l.m.SocketPath(), "NF_ARGS=-r 1", "NF_DO=txstamp",
		fmt.Sprintf("%s=%s:%d", crashpoint.Env, step, nth), "NF_GATE="+gate)
	line := victim.ReadLine(t, 20*time.Second)
	var id int
	if _, err := fmt.Sscanf(line, "ready %d", &id); err != nil {
		t.Fatalf("victim: %s", line)
	}
	if line := victim.ReadLine(t, 10*time.Second); !strings.HasPrefix(line, "recovered seq=0 ") {
		t.Fatalf("fresh NF recovered something: %s", line)
	}
	waitFor(t, 10*time.Second, "the NF running", func() bool {
		s := l.m.Snapshot()
		return len(s.NFs) == 1 && s.NFs[0].Running
	})
	var heir *shmtest.Child
	if standby {
		heir = shmtest.StartChild(t, "TestNone", "nf", "REINFORCE_SOCKET="+l.m.SocketPath(),
			fmt.Sprintf("NF_ARGS=-r 1 -n %d --standby", id), "NF_DO=txstamp")
		waitFor(t, 10*time.Second, "the standby attached", func() bool {
			s := l.m.Snapshot()
			return len(s.NFs) == 1 && s.NFs[0].Protected
		})
	}
	var frames [][]byte
	for s := 0; s < perFlow; s++ {
		for f := 0; f < flows; f++ {
			b := frame(f)
			binary.BigEndian.PutUint32(b[txSeqAt:], uint32(s))
			frames = append(frames, b)
		}
	}
	l.port.inject(frames...)
	waitFor(t, 5*time.Second, "RX to take every frame", func() bool { return l.port.Stats().RxPkts == uint64(len(frames)) })
	time.Sleep(5 * time.Millisecond) // RX enqueues what it took
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	died := make(chan error, 1)
	go func() { died <- victim.Cmd.Wait() }()
	select {
	case err := <-died:
		if err == nil || !strings.Contains(err.Error(), "killed") {
			t.Fatalf("victim ended with %v, want killed at %s", err, step)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("victim never reached %s #%d", step, nth)
	}
	if !standby {
		waitFor(t, 5*time.Second, "the manager to see the death", func() bool {
			s := l.m.Snapshot()
			return len(s.NFs) == 1 && s.NFs[0].Dead
		})
		heir = shmtest.StartChild(t, "TestNone", "nf", "REINFORCE_SOCKET="+l.m.SocketPath(),
			fmt.Sprintf("NF_ARGS=-r 1 -n %d", id), "NF_DO=txstamp")
	}
	if line := heir.ReadLine(t, 20*time.Second); line != fmt.Sprintf("ready %d", id) {
		t.Fatalf("heir: %s", line)
	}
	rec := heir.ReadLine(t, 10*time.Second)
	var seq uint64
	var back, fwd bool
	var redelivered int
	if _, err := fmt.Sscanf(rec, "recovered seq=%d back=%t forward=%t redelivered=%d", &seq, &back, &fwd, &redelivered); err != nil {
		t.Fatalf("heir: %s", rec)
	}
	switch step {
	case crashpoint.AfterCommit, crashpoint.BetweenPublications, crashpoint.AfterPublication:
		if !fwd || back {
			t.Fatalf("killed %s: heir %s, want a roll forward", step, rec)
		}
	default:
		if !back || fwd || redelivered == 0 {
			t.Fatalf("killed %s: heir %s, want a rollback redelivering packets", step, rec)
		}
	}
	waitFor(t, 20*time.Second, "every packet out", func() bool { return len(l.port.sent()) >= len(frames) })
	time.Sleep(20 * time.Millisecond) // a duplicate would show up by now
	next := make([]uint32, flows)
	for i, b := range l.port.sent() {
		f := int(binary.BigEndian.Uint16(b[34:])) - 1000
		seq := binary.BigEndian.Uint32(b[txSeqAt:])
		stamp := binary.BigEndian.Uint32(b[txStampAt:])
		mut := binary.BigEndian.Uint32(b[txMutateAt:])
		if f < 0 || f >= flows || seq != next[f] || stamp != seq+1 || mut != 1 {
			t.Fatalf("killed %s #%d (%s): packet %d flow %d seq %d (want %d) stamp %d (want %d) mutated %d times",
				step, nth, rec, i, f, seq, next[f], stamp, seq+1, mut)
		}
		next[f]++
	}
	if got := len(l.port.sent()); got != len(frames) {
		t.Fatalf("killed %s: %d packets out of %d", step, got, len(frames))
	}
	snap := l.m.Snapshot()
	if f, tk := snap.Drops.Failovers, snap.Drops.Takeovers; standby && (f != 1 || tk != 0) || !standby && (f != 0 || tk != 1) {
		t.Fatalf("killed %s (standby %v): %d failovers, %d takeovers", step, standby, f, tk)
	}
	l.m.Close()
	want := fmt.Sprintf("state total=%d", len(frames))
	st := heir.ReadLine(t, 10*time.Second)
	if !strings.HasPrefix(st, want+" ") {
		t.Fatalf("killed %s: heir's state %q, want %q", step, st, want)
	}
	for f := 0; f < flows; f++ {
		if !strings.Contains(st+" ", fmt.Sprintf(" %d=%d ", 1000+f, perFlow)) {
			t.Fatalf("killed %s: heir's state %q lacks flow %d = %d", step, st, 1000+f, perFlow)
		}
	}
}
