package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/reinforce-nfv/reinforce/examples/internal/chaintest"
	"github.com/reinforce-nfv/reinforce/examples/internal/nfapp"
	mgrconfig "github.com/reinforce-nfv/reinforce/manager/config"
)

// TestMain turns a child started by chaintest into the NF.
func TestMain(m *testing.M) {
	if argv, ok := chaintest.ChildArgv(); ok {
		os.Exit(run("stamp", argv, nfapp.Std()))
	}
	os.Exit(m.Run())
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want config
		err  string
	}{
		{name: "defaults", want: config{field: 0, flows: defaultFlows}},
		{name: "field and flows", args: []string{"-f", "3", "-c", "16"}, want: config{field: 3, flows: 16}},
		{name: "attached", args: []string{"-f2"}, want: config{field: 2, flows: defaultFlows}},
		{name: "field too big", args: []string{"-f", "4"}, err: "Option -f must be at most 3, not 4"},
		{name: "field not a number", args: []string{"-f", "x"}, err: `Option -f needs a decimal number, not "x"`},
		{name: "no flows", args: []string{"-c", "0"}, err: "Option -c must be at least 1"},
		{name: "missing value", args: []string{"-f"}, err: "Option -f requires an argument."},
		{name: "unknown option", args: []string{"-d", "1"}, err: "Unknown option `-d'."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseArgs(tt.args)
			msg := ""
			if err != nil {
				msg = err.Error()
			}
			if got != tt.want || msg != tt.err {
				t.Errorf("parseArgs(%q) = %+v, %q; want %+v, %q", tt.args, got, msg, tt.want, tt.err)
			}
		})
	}
}

// Two stamps share a chain, each writing its own field: every probe
// leaves with both fields holding its flow's count so far (consecutive
// from 1, in order per flow), the other fields untouched and a valid UDP
// checksum; packets without a probe leave bit for bit as they came.
// With REINFORCE_TX=off (the overhead benchmark's baseline) the NF does the
// same.
func TestStampsCountPerFlowIntoTheirFields(t *testing.T) {
	for _, tx := range []string{"on", "off"} {
		t.Run("transactions "+tx, func(t *testing.T) { stampTwice(t, tx) })
	}
}

func stampTwice(t *testing.T, tx string) {
	lab := chaintest.NewLab(t, mgrconfig.DeadNFReclaim, []int{1, 2})
	env := []string{"REINFORCE_TX=" + tx}
	nf := lab.Start(t, env, "--", "-r", "1", "--", "-f", "1")
	lab.Start(t, env, "--", "-r", "2", "--", "-f", "3", "-c", "64")
	lab.WaitRunning(t, 2)
	if want := "Stamping field 1 of up to 65536 flows; transactions " + tx; !strings.Contains(nf.Output(), want) {
		t.Fatalf("NF output %q lacks %q", nf.Output(), want)
	}
	const flows, perFlow = 5, 40
	var in [][]byte
	plain := map[string]bool{}
	for s := 0; s < perFlow; s++ {
		for f := 0; f < flows; f++ {
			in = append(in, chaintest.ProbeFrame(t, uint32(100+f), uint64(s), f))
		}
		if s%8 == 0 {
			p := chaintest.PlainFrame(t, uint32(s), 20)
			plain[string(p)] = true
			in = append(in, p)
		}
	}
	lab.Port.Inject(in...)
	out := lab.WaitSent(t, len(in))
	next := map[uint32]uint64{}
	nPlain := 0
	for i, b := range out {
		if plain[string(b)] {
			nPlain++
			continue
		}
		r := chaintest.ReadProbe(t, b)
		want := next[r.Flow]
		if r.Seq != want {
			t.Fatalf("frame %d: flow %d seq %d, want %d (out of order)", i, r.Flow, r.Seq, want)
		}
		next[r.Flow]++
		if c := uint32(r.Seq + 1); r.Stamp != [4]uint32{0, c, 0, c} || r.Mutate != 0 {
			t.Fatalf("frame %d: flow %d seq %d: stamps %v mutate %d; want [0 %d 0 %d] and 0", i, r.Flow, r.Seq, r.Stamp, r.Mutate, c, c)
		}
	}
	if nPlain != len(plain) {
		t.Fatalf("%d frames without a probe came out unchanged, want %d", nPlain, len(plain))
	}
	for f := 0; f < flows; f++ {
		if next[uint32(100+f)] != perFlow {
			t.Fatalf("flow %d: %d probes out, want %d", 100+f, next[uint32(100+f)], perFlow)
		}
	}
}

// The counters are the NF's state: a second run of frames continues where
// the first stopped.
func TestStampContinuesItsCounters(t *testing.T) {
	lab := chaintest.NewLab(t, mgrconfig.DeadNFReclaim, []int{1})
	lab.Start(t, nil, "--", "-r", "1", "--", "-f", "0")
	lab.WaitRunning(t, 1)
	lab.Port.Inject(chaintest.ProbeFrame(t, 7, 0, 0), chaintest.ProbeFrame(t, 7, 1, 0))
	lab.WaitSent(t, 2)
	lab.Port.Inject(chaintest.ProbeFrame(t, 7, 2, 0))
	out := lab.WaitSent(t, 3)
	for i, b := range out {
		if r := chaintest.ReadProbe(t, b); r.Stamp[0] != uint32(i+1) {
			t.Fatalf("frame %d: stamp %d, want %d", i, r.Stamp[0], i+1)
		}
	}
	if bytes.Equal(out[0], out[1]) {
		t.Fatal("two frames came out identical")
	}
}
