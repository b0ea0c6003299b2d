package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/reinforce-nfv/reinforce/manager"
	"github.com/reinforce-nfv/reinforce/manager/config"
)

// syncBuf collects a child's output while it runs.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSpeedTesterCirculatesThroughSimpleForward runs the example binaries
// against a real manager: speed_tester (service 1) creates packets and
// sends them to simple_forward (service 2), which sends them back, forever.
func TestSpeedTesterCirculatesThroughSimpleForward(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/", "../../examples/speed_tester", "../../examples/simple_forward")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cfg := config.DefaultConfig()
	cfg.Manager.Name = filepath.Base(bin)
	cfg.Manager.RegionDir = "/dev/shm"
	cfg.Manager.StatsOut = config.StatsNone
	cfg.Chains = []config.Chain{{Name: "default", Services: []int{1, 2}, OutPort: -1}}
	cfg.Ports = nil // only the NFs' own packets
	sock := filepath.Join(bin, "ctl.sock")
	m, err := manager.New(cfg, manager.Options{Log: zerolog.Nop(), SocketPath: sock})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	env := append(os.Environ(), "REINFORCE_SOCKET="+sock)
	fwd := exec.Command(filepath.Join(bin, "simple_forward"), "--", "-r", "2", "--", "-d", "1", "-p", "0")
	fwd.Env = env
	fwd.Dir = bin // the NFs write <tag>_stats.csv on exit
	var fout, sout syncBuf
	fwd.Stdout, fwd.Stderr = &fout, &fout
	st := exec.Command(filepath.Join(bin, "speed_tester"), "--", "-r", "1", "--", "-d", "2", "-c", "64", "-p", "200000")
	st.Env = env
	st.Dir = bin
	st.Stdout, st.Stderr = &sout, &sout
	if err := fwd.Start(); err != nil {
		t.Fatal(err)
	}
	defer fwd.Process.Kill()
	for deadline := time.Now().Add(10 * time.Second); len(m.Snapshot().NFs) < 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("simple_forward did not register:\n%s", fout.String())
		}
	}
	if err := st.Start(); err != nil {
		t.Fatal(err)
	}
	defer st.Process.Kill()
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(sout.String(), "Total packets:"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("speed_tester printed no stats:\n%s\nsimple_forward:\n%s", sout.String(), fout.String())
		}
	}
	if !strings.Contains(sout.String(), "Initial packets created: 64") {
		t.Fatalf("speed_tester output:\n%s", sout.String())
	}
	var st1, fw uint64
	for _, n := range m.Snapshot().NFs {
		if n.Service == 1 {
			st1 = n.RX
		} else {
			fw = n.RX
		}
	}
	t.Logf("speed_tester rx %d, simple_forward rx %d", st1, fw)
	if st1 < 200000 || fw < 200000 {
		t.Fatalf("packets did not circulate: speed_tester rx %d, simple_forward rx %d", st1, fw)
	}
}
