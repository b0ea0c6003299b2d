// Command bench measures Reinforce against the references of
// /work/shared/spec/TARGETS.md. The machines are shared and noisy, so an
// absolute figure means little: every subcommand runs its reference (DPDK)
// in the same invocation and reports a ratio, met or missed per row, as a
// table on stdout and optionally as JSON.
//
// Usage:
//
//	go run ./tools/bench <subcommand> [flags]
//	go run ./tools/bench ring -json ring.json -profile /tmp/prof
//
// Each subcommand is one entry of the commands table; run
// `go run ./tools/bench help` for the list.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
)

// Exit codes shared by every subcommand.
const (
	exitOK    = 0 // measured and reported, whether targets were met or not
	exitError = 1 // a benchmark or reference could not be run
	exitUsage = 2 // bad subcommand or flags, as the flag package does
)

// command is one subcommand. run receives the arguments after the
// subcommand's name and returns the process exit code.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

// commands is the dispatch table. The later targets (chain, replication,
// failover) each add one line here and one file named for the subcommand.
var commands = []command{
	{name: "ring", summary: "T1: shm ring benchmarks vs DPDK rte_ring (ring_perf_autotest)", run: runRing},
	{name: "chain", summary: "T2–T4: speed_tester loops and chains vs dpdk-testpmd null and a ping-pong floor", run: runChain},
	{name: "overhead", summary: "T5 local: the stamping chain with burst transactions vs REINFORCE_TX=off; -remote: T5/T6 remote, replicated to a standby manager in the lab (root)", run: runOverhead},
	{name: "failover-local", summary: "T7 local: kill -9 of an NF → its standby's first commit; latency; a plot around a failover", run: runFailoverLocal},
	{name: "failover-remote", summary: "T7 remote: kill -9 of the primary server's manager → the standby's first commit and first output at the sink, both BFD profiles, in the lab (root); a plot", run: runFailoverRemote},
}

func main() {
	// Cancelling the context on ^C kills go test and dpdk-test, which
	// exec.CommandContext started, instead of leaving them spinning on
	// both vCPUs.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// dispatch runs the subcommand named by args[0]. No subcommand or an
// unknown one prints the usage and returns exitUsage; "help" prints it to
// stdout and returns exitOK.
func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return exitOK
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "bench: unknown subcommand %q\n", args[0])
	usage(stderr)
	return exitUsage
}

// usage lists the subcommands from the dispatch table, so it cannot drift
// from what dispatch accepts.
func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: go run ./tools/bench <subcommand> [flags]")
	fmt.Fprintln(w, "       go run ./tools/bench <subcommand> -h   (flags of one subcommand)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "subcommands:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
}
