package nflib

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/reinforce-nfv/reinforce/internal/proc"
	"github.com/reinforce-nfv/reinforce/shm/state"
)

// ErrStandbyStopped reports a standby told to stop, or whose active
// stopped cleanly, before it took over.
var ErrStandbyStopped = errors.New("standby stopped before its active died")

// standBy waits, costing nothing, until the active dies, then takes over
// its state and rings: recovery of the active's last transaction and ring
// handles from the committed indices. The standby's own pidfd wakes it; the
// manager is not in that path.
func (nf *NF) standBy() error {
	if nf.hold {
		return nf.holdUntilPromoted()
	}
	// Map the active's state file now, so taking over is lock + recover.
	// An active still registering may not have made it yet.
	var perr error
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if nf.prepared, perr = state.Prepare(state.PathFor(nf.region.Path(), nf.region.Huge(), nf.instance)); perr == nil {
			break
		}
		if time.Now().After(deadline) || nf.stop.Load() {
			return fmt.Errorf("standby for instance %d: %w", nf.instance, perr)
		}
	}
	if nf.activePID != 0 {
		// If the active died before we opened the pidfd, its PID may name
		// another process by now: the start time tells, and then there is
		// nothing to wait for.
		if pfd, err := proc.OpenPidfd(nf.activePID, nf.activeStart); err == nil {
			// The timeout only bounds how late a stop request is seen.
			for !pfd.WaitExit(250 * time.Millisecond) {
				if nf.stop.Load() {
					pfd.Close()
					return ErrStandbyStopped
				}
			}
			pfd.Close()
		}
	}
	nf.takeover = time.Now()
	woke := state.MonoNs()
	path := state.PathFor(nf.region.Path(), nf.region.Huge(), nf.instance)
	if _, err := os.Stat(path); err != nil || (nf.prepared != nil && nf.prepared.Stopped()) {
		// A clean stop deletes the state file before the process exits (or
		// marks it stopped, when the manager replicates it): the NF was
		// stopped, not lost, and there is nothing to take over.
		if nf.prepared != nil {
			nf.prepared.Close()
			nf.prepared = nil
		}
		return ErrStandbyStopped
	}
	// The active's file lock goes with its process; allow the kernel a
	// moment if we got here first.
	var err error
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(100 * time.Microsecond) {
		err = nf.openState()
		if err == nil || !errors.Is(err, state.ErrBusy) || time.Now().After(deadline) || nf.stop.Load() {
			break
		}
	}
	if err != nil {
		if nf.prepared != nil {
			nf.prepared.Close()
			nf.prepared = nil
		}
		return fmt.Errorf("standby takeover: %w", err)
	}
	nf.st.MarkTakeover(woke)
	nf.firstCommit = true
	fmt.Fprintf(os.Stderr, "%s: standby took over instance %d in %v: %s\n", nf.tag, nf.instance,
		time.Since(nf.takeover).Round(time.Microsecond), nf.recovery)
	return nil
}

// TookOver is when this process, started as a standby, saw its active die
// (zero if it was not a standby). The takeover ends at its first commit.
func (nf *NF) TookOver() time.Time { return nf.takeover }

// holdUntilPromoted is a remote standby's wait (RegisterReply.Hold): the
// manager applies the primary server's transactions into the instance's
// state file and owns it until it promotes the chain; then it sends
// Promote, and the NF opens the file (recovering nothing: applied
// transactions are committed) and runs. Nothing is mapped before: a
// snapshot installed meanwhile replaces the file.
func (nf *NF) holdUntilPromoted() error {
	fmt.Fprintf(os.Stderr, "%s: instance %d is a remote standby: idle until the manager promotes its chain\n", nf.tag, nf.instance)
	for {
		select {
		case <-nf.promoted:
		case <-nf.ctlDone:
			// The manager went away or told us to stop before promoting.
			return ErrStandbyStopped
		case <-time.After(250 * time.Millisecond): // bounds how late Stop is seen
			if nf.stop.Load() {
				return ErrStandbyStopped
			}
			continue
		}
		break
	}
	nf.takeover = time.Now()
	woke := state.MonoNs()
	var err error
	// The manager closed its handle before it sent Promote; the lock is
	// free unless something else holds the file.
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(100 * time.Microsecond) {
		err = nf.openState()
		if err == nil || !errors.Is(err, state.ErrBusy) || time.Now().After(deadline) || nf.stop.Load() {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("promotion: %w", err)
	}
	// Timed like a local takeover: promotion seen → first commit (the
	// state file's takeover fields; T7 remote reads them).
	nf.st.MarkTakeover(woke)
	nf.firstCommit = true
	fmt.Fprintf(os.Stderr, "%s: promoted: instance %d runs from the replicated state in %v\n", nf.tag, nf.instance,
		time.Since(nf.takeover).Round(time.Microsecond))
	return nil
}
