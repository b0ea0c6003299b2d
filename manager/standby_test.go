package manager_test

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/reinforce-nfv/reinforce/manager"
	"github.com/reinforce-nfv/reinforce/manager/config"
	"github.com/reinforce-nfv/reinforce/port"
)

// TestLaunchedStandbyFailsOverAndReprotects runs the txstamp NF from an
// [[nf]] entry with standby = "local": the manager starts the active and its
// standby. Traffic flows while the active is SIGKILLed, and then its
// successor, and then a third time (a kill of a freshly promoted NF, and
// one by the hang detector: SIGSTOP): each time the standby takes over, the
// manager starts a new standby, and every packet leaves exactly once with
// consecutive stamps.
func TestLaunchedStandbyFailsOverAndReprotects(t *testing.T) {
	cfg := config.DefaultConfig()
	cfg.Manager.Name = fmt.Sprintf("t%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)
	cfg.Manager.RegionDir = "/dev/shm"
	cfg.Manager.PoolSlots = 8192
	cfg.Manager.RingSize = 4096
	cfg.Manager.StatsOut = config.StatsNone
	cfg.Manager.DeadNFPolicy = config.DeadNFRetain
	cfg.Manager.HangTimeout = 200 * time.Millisecond
	cfg.Chains = []config.Chain{{Name: "c0", Services: []int{1}, OutPort: 0}}
	cfg.Manager.DefaultChain = "c0"
	cfg.NFs = []config.NF{{Tag: "txstamp", Service: 1, Instance: 1, Command: []string{os.Args[0]}, Standby: config.StandbyLocal}}
	p := &memPort{id: 0}
	m, err := manager.New(cfg, manager.Options{Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
		SocketPath: filepath.Join(t.TempDir(), "ctl.sock"), Ports: []port.Port{p},
		NFEnv: []string{"REINFORCE_TEST_CHILD=nf", "NF_DO=txstamp"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	protected := func() (int, bool) {
		s := m.Snapshot()
		if len(s.NFs) != 1 || !s.NFs[0].Running || !s.NFs[0].Protected {
			return 0, false
		}
		return s.NFs[0].PID, true
	}
	const flows = 4
	seq := make([]uint32, flows)
	sent := 0
	feed := func(n int) {
		for i := 0; i < n; i++ {
			f := sent % flows
			b := frame(f)
			binary.BigEndian.PutUint32(b[txSeqAt:], seq[f])
			seq[f]++
			sent++
			p.inject(b)
		}
	}
	for round, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGKILL, syscall.SIGSTOP} {
		var pid int
		waitFor(t, 20*time.Second, fmt.Sprintf("round %d: the chain protected", round), func() bool {
			var ok bool
			pid, ok = protected()
			return ok
		})
		feed(200)
		time.Sleep(2 * time.Millisecond) // the kill lands mid-stream
		if err := syscall.Kill(pid, sig); err != nil {
			t.Fatal(err)
		}
		feed(200)
		want := uint64(round + 1)
		waitFor(t, 10*time.Second, fmt.Sprintf("round %d: failover %d", round, want), func() bool {
			return m.Snapshot().Drops.Failovers == want
		})
		if sig == syscall.SIGSTOP {
			if h := m.Snapshot().Drops.Hangs; h != 1 {
				t.Fatalf("the stopped NF was not killed as hung (hangs %d)", h)
			}
		}
	}
	waitFor(t, 20*time.Second, "the chain protected at the end", func() bool { _, ok := protected(); return ok })
	waitFor(t, 20*time.Second, "every packet out", func() bool { return len(p.sent()) >= sent })
	time.Sleep(20 * time.Millisecond)
	next := make([]uint32, flows)
	out := p.sent()
	for i, b := range out {
		f := int(binary.BigEndian.Uint16(b[34:])) - 1000
		s := binary.BigEndian.Uint32(b[txSeqAt:])
		stamp := binary.BigEndian.Uint32(b[txStampAt:])
		mut := binary.BigEndian.Uint32(b[txMutateAt:])
		if f < 0 || f >= flows || s != next[f] || stamp != s+1 || mut != 1 {
			t.Fatalf("packet %d: flow %d seq %d (want %d) stamp %d (want %d) mutated %d times", i, f, s, next[f], stamp, s+1, mut)
		}
		next[f]++
	}
	if len(out) != sent {
		t.Fatalf("%d packets out of %d", len(out), sent)
	}
	tx := m.Snapshot().NFs[0].Tx
	if tx == nil || tx.Takeovers != 3 || tx.TakeoverUs <= 0 {
		t.Fatalf("transaction stats after 3 failovers: %+v", tx)
	}
	t.Logf("%d packets through 3 failovers (one a hang), exactly once and in order; last takeover %.0f µs; %+v", sent, tx.TakeoverUs, *tx)
}
