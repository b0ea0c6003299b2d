package main

import (
	"os"
	"strconv"
	"testing"

	"github.com/reinforce-nfv/reinforce/examples/internal/chaintest"
	"github.com/reinforce-nfv/reinforce/examples/internal/nfapp"
	mgrconfig "github.com/reinforce-nfv/reinforce/manager/config"
)

// TestMain turns a child started by chaintest into the NF.
func TestMain(m *testing.M) {
	if argv, ok := chaintest.ChildArgv(); ok {
		os.Exit(run("mutate", argv, nfapp.Std()))
	}
	os.Exit(m.Run())
}

func TestParseArgs(t *testing.T) {
	for _, tt := range []struct {
		args []string
		err  string
	}{
		{nil, ""},
		{[]string{"-p", "1"}, "Unknown option `-p'."},
		{[]string{"x"}, `Unexpected argument "x"`},
	} {
		err := parseArgs(tt.args)
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if msg != tt.err {
			t.Errorf("parseArgs(%q) = %q, want %q", tt.args, msg, tt.err)
		}
	}
}

// mutateChain sends probes of a few flows, and packets without one, through
// a chain of n mutate NFs and checks every probe leaves with mutation
// counter n and a valid checksum, and the others unchanged.
func mutateChain(t *testing.T, n int) {
	services := make([]int, n)
	for i := range services {
		services[i] = i + 1
	}
	lab := chaintest.NewLab(t, mgrconfig.DeadNFReclaim, services)
	for _, s := range services {
		lab.Start(t, nil, "--", "-r", strconv.Itoa(s), "--")
	}
	lab.WaitRunning(t, n)
	var in [][]byte
	plain := map[string]bool{}
	for s := 0; s < 50; s++ {
		for f := 0; f < 3; f++ {
			in = append(in, chaintest.ProbeFrame(t, uint32(f), uint64(s), 3*f))
		}
		if s%10 == 0 {
			p := chaintest.PlainFrame(t, uint32(s), 64)
			plain[string(p)] = true
			in = append(in, p)
		}
	}
	lab.Port.Inject(in...)
	out := lab.WaitSent(t, len(in))
	seen := 0
	for i, b := range out {
		if plain[string(b)] {
			seen++
			continue
		}
		r := chaintest.ReadProbe(t, b)
		if r.Mutate != uint32(n) || r.Stamp != [4]uint32{} {
			t.Fatalf("frame %d (flow %d seq %d): mutated %d times, stamps %v; want %d and none", i, r.Flow, r.Seq, r.Mutate, r.Stamp, n)
		}
	}
	if seen != len(plain) {
		t.Fatalf("%d frames without a probe came out unchanged, want %d", seen, len(plain))
	}
}

func TestMutateIncrementsOnce(t *testing.T) { mutateChain(t, 1) }

func TestMutateTwiceIsVisible(t *testing.T) { mutateChain(t, 2) }
