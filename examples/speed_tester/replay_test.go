package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reinforce-nfv/reinforce/examples/internal/chaintest"
	"github.com/reinforce-nfv/reinforce/examples/internal/nfapp"
	mgrconfig "github.com/reinforce-nfv/reinforce/manager/config"
	"github.com/reinforce-nfv/reinforce/port/pcap"
)

// TestMain turns a child started by chaintest into the NF.
func TestMain(m *testing.M) {
	if argv, ok := chaintest.ChildArgv(); ok {
		if chaintest.IsOut(argv) {
			os.Exit(chaintest.RunOut(argv[1:]))
		}
		os.Exit(run("speed_tester", argv, nfapp.Std()))
	}
	os.Exit(m.Run())
}

// testPcap is a capture from the repository's testdata.
func testPcap(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "testdata", "pcap", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// readFrames reads the first n frames of a capture (all when n < 0).
func readFrames(t *testing.T, path string, n int) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcap.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for n < 0 || len(out) < n {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, append([]byte(nil), rec.Data...))
	}
	return out
}

func TestLoadCapture(t *testing.T) {
	c, err := loadCapture(testPcap(t, "1kxun.pcap"), 50)
	if err != nil {
		t.Fatal(err)
	}
	want := readFrames(t, testPcap(t, "1kxun.pcap"), 50)
	if len(c.frames) != 50 || len(c.hashes) != 50 {
		t.Fatalf("%d frames, %d hashes; want 50", len(c.frames), len(c.hashes))
	}
	distinct := map[uint32]bool{}
	for i := range want {
		if string(c.frames[i]) != string(want[i]) {
			t.Fatalf("frame %d differs from the capture", i)
		}
		distinct[c.hashes[i]] = true
	}
	if len(distinct) < 2 {
		t.Errorf("every frame has flow hash %v: the 5-tuple hash is not applied", distinct)
	}
	if _, err := loadCapture(testPcap(t, "../../go.mod"), 5); err == nil || !strings.Contains(err.Error(), "not a pcap or pcapng capture") {
		t.Errorf("a non-capture: %v", err)
	}
}

// -o replays the capture: the first -c frames leave the chain once each,
// byte for byte (service 2 sends them out instead of back).
func TestSpeedTesterReplaysACapture(t *testing.T) {
	for _, tc := range []struct {
		file  string
		count int
	}{{"1kxun.pcap", 300}, {"dns.pcap", 16384}, {"tcp_scan.pcapng", 16384}} {
		t.Run(tc.file, func(t *testing.T) {
			path := testPcap(t, tc.file)
			want := readFrames(t, path, tc.count)
			lab := chaintest.NewLab(t, mgrconfig.DeadNFReclaim, []int{1})
			args := []string{"--", "-r", "1", "--", "-d", "2", "-o", path}
			if tc.count != 16384 {
				args = append(args, "-c", "300")
			}
			// The destination first: packets injected toward a service
			// with no instance yet are dropped.
			lab.Start(t, nil, chaintest.OutWord, "--", "-r", "2", "--")
			lab.WaitRunning(t, 1)
			st := lab.Start(t, nil, args...)
			out := lab.WaitSent(t, len(want))
			seen := map[string]int{}
			for _, f := range out {
				seen[string(f)]++
			}
			for i, f := range want {
				if seen[string(f)] == 0 {
					t.Fatalf("frame %d of %s never left the chain", i, tc.file)
				}
				seen[string(f)]--
			}
			if err := st.Stop(t, 10e9); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(st.Output(), "Replaying ") {
				t.Errorf("output lacks the replay line:\n%s", st.Output())
			}
		})
	}
}
