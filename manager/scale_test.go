package manager_test

import (
	"fmt"
	"math/bits"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/reinforce-nfv/reinforce/ctlmsg"
	"github.com/reinforce-nfv/reinforce/manager"
	"github.com/reinforce-nfv/reinforce/manager/config"
	"github.com/reinforce-nfv/reinforce/port"
	"github.com/reinforce-nfv/reinforce/shm/shmtest"
)

// Scale of TestMaxNFsAndServicesPassTraffic: ONVM's limits (ONVM-COMPAT.md:
// MAX_NFS 128 with ID 0 reserved, MAX_SERVICES 32 with ID 0 reserved).
const (
	scaleNFs      = ctlmsg.MaxNFs - 1      // 127
	scaleServices = ctlmsg.MaxServices - 1 // 31
	// scaleRate paces the null port. Every frame visits 15 or 16 services,
	// so this is up to 16 × as many NF wake-ups a second on 2 vCPUs.
	scaleRate  = 1000
	scaleFlows = 4096 // enough flows that every instance's buckets get some
)

// TestMaxNFsAndServicesPassTraffic attaches 127 NF processes over 31
// services in shared-core mode (manager -c, NFs -s), sends paced traffic
// from a null port along two chains that cover every service, and checks that
// every NF's RX counter rises (T9's scale row).
func TestMaxNFsAndServicesPassTraffic(t *testing.T) {
	if testing.Short() || raceEnabled {
		// 127 race-instrumented processes take minutes to start on 2 vCPUs;
		// the plain run covers T9, the other tests the data path's races.
		t.Skip("starts 127 processes (skipped in -short and -race runs)")
	}
	cfg := config.DefaultConfig()
	cfg.Manager.Name = fmt.Sprintf("scale%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)
	cfg.Manager.RegionDir = "/dev/shm"
	cfg.Manager.RingSize = 1024
	cfg.Manager.StatsOut = config.StatsNone
	cfg.Manager.SharedCPU = true
	// 127 processes starting and running on 2 vCPUs wait for a CPU far
	// longer than the default 300 ms hang timeout, which would kill healthy
	// NFs as hung; hang detection stays on, with a limit for this load.
	cfg.Manager.HangTimeout = 10 * time.Second
	cfg.Ports[0].RatePPS = scaleRate
	// A chain holds at most config.MaxChainLen services: services 1..16
	// take the first half of the null port's flows (sources 10.0.0.0 +
	// flow), 17..31 the second half through a flow rule.
	var lo, hi []int
	for s := 1; s <= scaleServices; s++ {
		if s <= config.MaxChainLen {
			lo = append(lo, s)
		} else {
			hi = append(hi, s)
		}
	}
	cfg.Chains = []config.Chain{{Name: "lo", Services: lo, OutPort: 0}, {Name: "hi", Services: hi, OutPort: 0}}
	cfg.Manager.DefaultChain = "lo"
	cfg.Flows = []config.Flow{{Chain: "hi", Src: netip.MustParsePrefix(fmt.Sprintf("10.0.%d.0/%d", scaleFlows/256/2, 32-bits.Len(scaleFlows/2-1)))}}
	null, err := port.NewNull(0, port.NullOptions{RatePPS: scaleRate, Flows: scaleFlows})
	if err != nil {
		t.Fatal(err)
	}
	m, err := manager.New(cfg, manager.Options{Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
		SocketPath: filepath.Join(t.TempDir(), "ctl.sock"), Ports: []port.Port{null}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	defer m.Close() // stop the NFs cleanly before their cleanups kill them

	start := time.Now()
	kids := make([]*shmtest.Child, scaleNFs)
	for i := range kids {
		svc := i%scaleServices + 1
		kids[i] = shmtest.StartChild(t, "TestNone", "nf", "REINFORCE_SOCKET="+m.SocketPath(),
			fmt.Sprintf("NF_ARGS=-- -r %d -s --", svc), "NF_DO=pass")
	}
	for i, c := range kids {
		var id int
		if line := c.ReadLine(t, 45*time.Second); func() bool { _, err := fmt.Sscanf(line, "ready %d", &id); return err != nil }() {
			t.Fatalf("NF %d (service %d): %s", i, i%scaleServices+1, line)
		}
	}
	waitFor(t, 20*time.Second, fmt.Sprintf("%d running NFs on the latest routes", scaleNFs), func() bool {
		s := m.Snapshot()
		if len(s.NFs) != scaleNFs {
			return false
		}
		for _, nf := range s.NFs {
			if !nf.Running || nf.Routes != s.Routes {
				return false
			}
		}
		return true
	})
	t.Logf("%d NFs over %d services attached in %v", scaleNFs, scaleServices, time.Since(start).Round(time.Millisecond))

	// Every NF must show traffic, and more of it a moment later.
	first := map[uint16]uint64{}
	waitFor(t, 20*time.Second, "traffic at every NF", func() bool {
		for _, nf := range m.Snapshot().NFs {
			if nf.RX == 0 {
				return false
			}
			first[nf.Instance] = nf.RX
		}
		return true
	})
	services := map[uint16]int{}
	waitFor(t, 20*time.Second, "every NF's counters to rise", func() bool {
		s := m.Snapshot()
		clear(services)
		for _, nf := range s.NFs {
			if nf.RX <= first[nf.Instance] {
				return false
			}
			services[nf.Service]++
		}
		return true
	})
	if len(services) != scaleServices {
		t.Fatalf("traffic reached %d services, want %d", len(services), scaleServices)
	}
	s := m.Snapshot()
	var minRX, maxRX uint64 = ^uint64(0), 0
	for _, nf := range s.NFs {
		minRX, maxRX = min(minRX, nf.RX), max(maxRX, nf.RX)
	}
	p := s.Ports[0]
	t.Logf("after %v: port rx %d tx %d; per-NF rx %d..%d; drops: ring full %d, no NF %d; pool %d of %d free",
		time.Since(start).Round(time.Millisecond), p.RxPkts, p.TxPkts, minRX, maxRX,
		s.Drops.RXRingFull+s.Drops.TXRingFull, s.Drops.RXNoNF+s.Drops.TXNoNF, s.Pool.Free, s.Pool.Slots)
	if p.TxPkts == 0 {
		t.Fatalf("no frame came out of the chains")
	}
}
