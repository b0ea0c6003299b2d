package main

import (
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/reinforce-nfv/reinforce/examples/internal/nfapp"
)

// cpuProfileEnv names a file for a pprof CPU profile of the whole run
// (tools/bench chain sets it, to explain a missed target). Not an ONVM flag,
// so an environment variable rather than an option.
const cpuProfileEnv = "REINFORCE_CPUPROFILE"

// startCPUProfile starts the profile cpuProfileEnv asks for and returns
// what stops it (nil when none was asked for or it could not start).
func startCPUProfile(w nfapp.IO) (stop func()) {
	path := os.Getenv(cpuProfileEnv)
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(w.Stderr, "%s: %v\n", cpuProfileEnv, err)
		return nil
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(w.Stderr, "%s: %v\n", cpuProfileEnv, err)
		f.Close()
		return nil
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
