package manager_test

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/reinforce-nfv/reinforce/manager"
	"github.com/reinforce-nfv/reinforce/manager/config"
	"github.com/reinforce-nfv/reinforce/port"
	"github.com/reinforce-nfv/reinforce/port/pcap"
	"github.com/reinforce-nfv/reinforce/shm"
)

// readFrames returns every frame of a capture.
func readFrames(t *testing.T, path string) [][]byte {
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
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, slices.Clone(rec.Data))
	}
}

// gated holds a port's RX back until open is set, so a replay starts only
// once the chain's NFs are running.
type gated struct {
	port.Port
	open atomic.Bool
}

func (g *gated) RxBurst(c *shm.Cache, out []shm.Slot) int {
	if !g.open.Load() {
		return 0
	}
	return g.Port.RxBurst(c, out)
}

// TestPcapReplayThroughAChain replays real captures through a manager and
// an NF that passes packets along the chain, and checks the capture written
// on the way out holds every frame, unchanged and in order — malformed
// frames included (the manager only classifies them by their bytes).
func TestPcapReplayThroughAChain(t *testing.T) {
	for _, name := range []string{"http_ipv6.pcap", "badpackets.pcap", "ip_fragmented_garbage.pcap", "4in4tunnel.pcap"} {
		t.Run(name, func(t *testing.T) {
			in := filepath.Join("..", "testdata", "pcap", name)
			out := filepath.Join(t.TempDir(), "out.pcap")
			want := readFrames(t, in)
			pp, err := pcap.New(0, pcap.Options{Path: in, OutPath: out})
			if err != nil {
				t.Fatal(err)
			}
			g := &gated{Port: pp}
			cfg := config.DefaultConfig()
			cfg.Manager.Name = fmt.Sprintf("pc%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)
			cfg.Manager.RegionDir = "/dev/shm"
			cfg.Manager.PoolSlots = 4096
			cfg.Manager.Jumbo = true    // some captured frames are larger than 2 KiB
			cfg.Manager.RingSize = 4096 // holds a whole capture: a full-speed replay cannot overflow a ring
			cfg.Manager.StatsOut = config.StatsNone
			cfg.Ports[0].Driver = config.DriverPcap
			cfg.Ports[0].Path, cfg.Ports[0].OutPath = in, out
			m, err := manager.New(cfg, manager.Options{Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
				SocketPath: filepath.Join(t.TempDir(), "s"), Ports: []port.Port{g}})
			if err != nil {
				t.Fatal(err)
			}
			l := &lab{t: t, m: m}
			if err := m.Start(); err != nil {
				t.Fatal(err)
			}
			l.nf("-- -r 1 --", "pass")
			l.waitRunning(1)
			g.open.Store(true)
			waitFor(t, 20*time.Second, "every frame out", func() bool {
				s := m.Snapshot().Drops
				ps := pp.Stats()
				return ps.TxPkts+ps.RxDrops+s.RXNoNF+s.RXRingFull+s.TXBadMeta >= uint64(len(want))
			})
			m.Close()
			if err := pp.Err(); err != nil {
				t.Logf("reader stopped with: %v", err)
			}
			got := readFrames(t, out)
			if len(got) != len(want) {
				t.Fatalf("%d frames out of %d in (drops: %+v)", len(got), len(want), m.FinalSnapshot().Drops)
			}
			for i := range want {
				if !slices.Equal(got[i], want[i]) {
					t.Fatalf("frame %d changed on the way", i)
				}
			}
		})
	}
}
