package main

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/examples/internal/chaintest"
	"github.com/reinforce-nfv/reinforce/examples/internal/nfapp"
	mgrconfig "github.com/reinforce-nfv/reinforce/manager/config"
	"github.com/reinforce-nfv/reinforce/pkt"
	"github.com/reinforce-nfv/reinforce/shm/state"
)

// TestMain turns a child started by chaintest into the NF.
func TestMain(m *testing.M) {
	if argv, ok := chaintest.ChildArgv(); ok {
		if chaintest.IsOut(argv) {
			os.Exit(chaintest.RunOut(argv[1:]))
		}
		os.Exit(run("simple_fwd_tb", argv, nfapp.Std()))
	}
	os.Exit(m.Run())
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		args []string
		want config
		err  string
	}{
		{args: []string{"-d", "2"}, want: config{dst: 2, printDelay: 1000000, depth: 10000, rate: 1000}},
		{args: []string{"-d2", "-D", "1500", "-R", "5", "-p", "9"}, want: config{dst: 2, printDelay: 9, depth: 1500, rate: 5}},
		{args: []string{"-D", "1"}, err: "Simple Forward NF requires destination flag -d."},
		{args: []string{"-d", "1", "-R", "0"}, err: "Option -R must be at least 1 MBps"},
	}
	for _, tt := range tests {
		got, err := parseArgs(tt.args)
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if got != tt.want || msg != tt.err {
			t.Errorf("parseArgs(%q) = %+v, %q; want %+v, %q", tt.args, got, msg, tt.want, tt.err)
		}
	}
}

func TestRefill(t *testing.T) {
	f, err := state.Open(filepath.Join(t.TempDir(), "tb.state"), state.Options{DataBytes: 1 << 16, LogBytes: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v, err := state.NewValue[bucket](f, "tb_bucket")
	if err != nil {
		t.Fatal(err)
	}
	s := newShaper(config{depth: 10000, rate: 3}, v, nil, nil)
	b := s.refill(bucket{}, 5e9)
	if b.Tokens != 10000 || b.LastNs != 5e9 {
		t.Fatalf("first refill %+v, want a full bucket at 5e9", b)
	}
	b.Tokens = 0
	// 3 bytes per µs, in calls 100 ns apart: 0.3 bytes each.
	for now := int64(5e9 + 100); now <= 5e9+1e6; now += 100 {
		b = s.refill(b, now)
	}
	if b.Tokens < 2990 || b.Tokens > 3000 {
		t.Errorf("after 1 ms at 3 MBps in 100-ns steps: %d tokens, want 3000", b.Tokens)
	}
	b = s.refill(b, 6e9)
	if b.Tokens != 10000 {
		t.Errorf("after a second: %d tokens, want the depth, 10000", b.Tokens)
	}
}

func frame(t *testing.T, seq int, payload int) []byte {
	b := make([]byte, 2048)
	n, err := pkt.BuildUDP4(b, pkt.MAC{2}, pkt.MAC{4}, [4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, uint16(seq), 9, payload)
	if err != nil {
		t.Fatal(err)
	}
	return b[:n]
}

// At 1 MBps with a 2000-byte bucket, 200 frames of 1000 bytes take about
// 0.2 s to pass, in order; frames longer than the bucket are dropped.
func TestTokenBucketShapesInAChain(t *testing.T) {
	lab := chaintest.NewLab(t, mgrconfig.DeadNFReclaim, []int{1})
	lab.Start(t, nil, chaintest.OutWord, "--", "-r", "2", "--")
	lab.WaitRunning(t, 1)
	tb := lab.Start(t, nil, "--", "-r", "1", "--", "-d", "2", "-D", "2000", "-R", "1", "-p", "0")
	lab.WaitRunning(t, 2)
	var in [][]byte
	for i := 0; i < 200; i++ {
		in = append(in, frame(t, i, 1000-42))
		if i%50 == 0 {
			in = append(in, frame(t, 1000+i, 2001-42)) // longer than the bucket
		}
	}
	start := time.Now()
	lab.Port.Inject(in...)
	chaintest.WaitFor(t, 10*time.Second, "the first frames", func() bool { return len(lab.Port.Sent()) > 0 })
	time.Sleep(50 * time.Millisecond)
	if n := len(lab.Port.Sent()); n > 100 {
		t.Errorf("%d frames out 50 ms after the first: the bucket does not hold them back", n)
	}
	out := lab.WaitSent(t, 200)
	took := time.Since(start)
	t.Logf("200 kB through a 1 MBps bucket in %v", took)
	if took < 150*time.Millisecond {
		t.Errorf("200 frames of 1000 bytes passed in %v, want about 200 ms at 1 MBps", took)
	}
	for i, f := range out {
		if len(f) != 1000 || int(f[34])<<8|int(f[35]) != i {
			t.Fatalf("frame %d out: %d bytes, source port %d; want 1000 bytes, %d (in order)", i, len(f), int(f[34])<<8|int(f[35]), i)
		}
	}
	if err := tb.Stop(t, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

// The queued packets and the tokens are the NF's state: after a SIGKILL,
// the NF restarted with the same instance ID sends the packets its
// predecessor held, each exactly once and in order.
func TestTokenBucketSurvivesSIGKILL(t *testing.T) {
	lab := chaintest.NewLab(t, mgrconfig.DeadNFRetain, []int{1})
	lab.Start(t, nil, chaintest.OutWord, "--", "-r", "2", "--")
	lab.WaitRunning(t, 1)
	args := []string{"-d", "2", "-D", "1000", "-R", "1", "-p", "0"}
	first := lab.Start(t, nil, append([]string{"--", "-r", "1", "--"}, args...)...)
	lab.WaitRunning(t, 2)
	id := lab.Instance(t, first)
	const n = 300 // 300 kB: 0.3 s at 1 MBps
	var in [][]byte
	for i := 0; i < n; i++ {
		in = append(in, frame(t, i, 1000-42))
	}
	lab.Port.Inject(in...)
	chaintest.WaitFor(t, 10*time.Second, "50 frames out", func() bool { return len(lab.Port.Sent()) >= 50 })
	first.Kill(t)
	before := len(lab.Port.Sent())
	if before >= n {
		t.Fatalf("all %d frames out before the kill: the bucket did not hold any", before)
	}
	heir := lab.Start(t, nil, append([]string{"--", "-r", "1", "-n", strconv.Itoa(int(id)), "--"}, args...)...)
	out := lab.WaitSent(t, n)
	t.Logf("killed with %d of %d frames out", before, n)
	for i, f := range out {
		if got := int(f[34])<<8 | int(f[35]); got != i {
			t.Fatalf("frame %d out is frame %d: lost, repeated or reordered across the restart", i, got)
		}
	}
	if err := heir.Stop(t, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}
