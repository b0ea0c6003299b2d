// Package nfapp is the life cycle the example NFs share, in the order of
// ONVM's example main()s:
//
//	Parse    ONVM's arguments (nflib.ParseArgs), then the NF's own; a refused
//	         command line prints usage and message and the NF exits 1
//	Register with the manager (nflib.Init); a refusal prints and exits 1
//	(setup)  the NF's own, e.g. speed_tester's packet creation
//	Serve    the burst loop until SIGINT/SIGTERM, the manager's stop, the
//	         TTL or packet limit, or the manager's death; then Close
//
// Parse checks the NF's arguments before registering, where ONVM registers
// first (onvm_nflib_init) and unregisters again when parse_app_args fails:
// a bad flag then never shows up in the manager as a short-lived NF.
//
// Output goes where ONVM's goes: usage text and periodic displays on
// stdout, error messages on stderr.
package nfapp

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/reinforce-nfv/reinforce/examples/internal/getopt"
	"github.com/reinforce-nfv/reinforce/nflib"
)

// IO is where an NF prints.
type IO struct {
	Stdout, Stderr io.Writer
}

// Std is the process's standard output and error.
func Std() IO { return IO{Stdout: os.Stdout, Stderr: os.Stderr} }

// Parse parses the ONVM part of argv (without the program name) and hands
// the NF's own arguments to parse. On a refused command line it prints what
// ONVM prints, the usage text (ONVM's for an ONVM argument, usage's for the
// NF's own, unless the *getopt.Error says NoUsage) on stdout and the message
// on stderr, and returns false. It prints nflib's notices about ignored
// arguments on stderr.
func Parse(prog string, argv []string, w IO, usage func(w io.Writer, prog string), parse func(app []string) error) bool {
	a, err := nflib.ParseArgs(argv)
	if err != nil {
		var ae *nflib.ArgError
		if errors.As(err, &ae) && ae.ShowUsage {
			io.WriteString(w.Stdout, nflib.UsageText(prog))
		}
		fmt.Fprintln(w.Stderr, err)
		return false
	}
	for _, n := range a.Notices {
		fmt.Fprintln(w.Stderr, n)
	}
	if err := parse(a.AppArgs); err != nil {
		var ge *getopt.Error
		if !errors.As(err, &ge) || !ge.NoUsage {
			usage(w.Stdout, prog)
		}
		fmt.Fprintln(w.Stderr, err)
		return false
	}
	return true
}

// Register registers the NF with the manager named by REINFORCE_SOCKET
// (nflib.Init). It prints the error on stderr and returns nil on failure.
func Register(tag string, argv []string, w IO) *nflib.NF {
	nf, err := nflib.Init(tag, argv)
	if err != nil {
		fmt.Fprintln(w.Stderr, err)
		return nil
	}
	return nf
}

// Fail closes nf after a failed setup step, prints msg on stderr and returns
// the exit status, 1.
func Fail(nf *nflib.NF, w IO, msg string) int {
	fmt.Fprintln(w.Stderr, msg)
	if cerr := nf.Close(); cerr != nil {
		fmt.Fprintln(w.Stderr, cerr)
	}
	return 1
}

// Serve runs nf's burst loop with h until it stops (nflib.NF.Run), with the
// first SIGINT or SIGTERM calling nf.Stop; a second one has its default
// effect, so a stuck NF can still be killed with Ctrl-C. It then closes nf
// and returns the exit status: 0 after a clean stop, 1 after an error,
// which it prints on stderr.
func Serve(nf *nflib.NF, h nflib.Handler, w IO) int {
	s := startSignalStop(nf)
	err := nf.Run(h)
	s.close()
	err = errors.Join(err, nf.Close())
	if err != nil {
		fmt.Fprintln(w.Stderr, err)
		return 1
	}
	return 0
}

// signalStop turns the first SIGINT or SIGTERM into nf.Stop (ONVM's
// onvm_nflib_start_signal_handler).
type signalStop struct {
	nf   *nflib.NF
	sig  chan os.Signal
	done chan struct{}
	wg   sync.WaitGroup
}

// startSignalStop starts the signal goroutine; close stops it.
func startSignalStop(nf *nflib.NF) *signalStop {
	s := &signalStop{nf: nf, sig: make(chan os.Signal, 1), done: make(chan struct{})}
	signal.Notify(s.sig, os.Interrupt, syscall.SIGTERM)
	s.wg.Add(1)
	go s.routineWait()
	return s
}

// routineWait waits for a signal or for close (s.done closed). On a signal
// it stops the NF and restores the signals' default handling.
func (s *signalStop) routineWait() {
	defer s.wg.Done()
	select {
	case <-s.sig:
		signal.Stop(s.sig)
		s.nf.Stop()
	case <-s.done:
	}
}

// close stops relaying signals and waits for routineWait to return.
func (s *signalStop) close() {
	signal.Stop(s.sig)
	close(s.done)
	s.wg.Wait()
}
