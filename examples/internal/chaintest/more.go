package chaintest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/reinforce-nfv/reinforce/manager"
	"github.com/reinforce-nfv/reinforce/manager/config"
	"github.com/reinforce-nfv/reinforce/nflib"
	"github.com/reinforce-nfv/reinforce/port"
)

// MultiLab is a lab with several memory ports (IDs 0..n-1), for NFs that
// choose an output port (l2fwd, l3fwd).
type MultiLab struct {
	M     *manager.Manager
	Ports []*MemPort
}

// Lab returns a Lab view on port 0, for Start, WaitRunning and Instance.
func (l *MultiLab) Lab() *Lab { return &Lab{M: l.M, Port: l.Ports[0]} }

// NewMultiLab is NewLab with nports memory ports; each chain ends out of
// port 0.
func NewMultiLab(t *testing.T, nports int, policy config.DeadNFPolicy, chains ...[]int) *MultiLab {
	t.Helper()
	cfg := config.DefaultConfig()
	cfg.Manager.Name = fmt.Sprintf("ct%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)
	cfg.Manager.RegionDir = "/dev/shm"
	cfg.Manager.PoolSlots = 8192
	cfg.Manager.RingSize = 1024
	cfg.Manager.StatsOut = config.StatsNone
	cfg.Manager.DeadNFPolicy = policy
	cfg.Chains = nil
	for i, c := range chains {
		cfg.Chains = append(cfg.Chains, config.Chain{Name: fmt.Sprintf("c%d", i), Services: c, OutPort: 0})
	}
	cfg.Manager.DefaultChain = "c0"
	ml := &MultiLab{}
	var ps []port.Port
	for i := 0; i < nports; i++ {
		p := &MemPort{id: uint16(i)}
		ml.Ports = append(ml.Ports, p)
		ps = append(ps, p)
	}
	dir := t.TempDir()
	t.Setenv(nflib.StateDirEnv, dir)
	m, err := manager.New(cfg, manager.Options{Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
		SocketPath: filepath.Join(dir, "ctl.sock"), Ports: ps})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	ml.M = m
	return ml
}

// Words that, as the first NF argument, make a child started by Start run
// a helper NF instead of the NF under test; TestMain checks for them:
//
//	if chaintest.IsNext(argv) { os.Exit(chaintest.RunNext(argv[1:])) }
//	if chaintest.IsOut(argv) { os.Exit(chaintest.RunOut(argv[1:])) }
const (
	// NextWord: every packet goes on along its chain (Next), so a chain can
	// end with the helper and leave through the chain's port.
	NextWord = "chaintest-next"
	// OutWord: every packet goes out of port 0, whatever its chain (for
	// packets an NF created, which have no place in a chain).
	OutWord = "chaintest-out"
)

// IsNext reports whether a child's argv asks for RunNext (argv[0] ==
// NextWord); the rest is the NF command line.
func IsNext(argv []string) bool { return len(argv) > 0 && argv[0] == NextWord }

// IsOut reports whether a child's argv asks for RunOut (argv[0] == OutWord).
func IsOut(argv []string) bool { return len(argv) > 0 && argv[0] == OutWord }

// RunNext is a minimal NF for tests: it registers with argv (ONVM syntax)
// and sends every packet on along its chain (Next). It returns the exit
// status.
func RunNext(argv []string) int { return runHelper(argv, nflib.Next) }

// RunOut is RunNext sending every packet out of port 0.
func RunOut(argv []string) int { return runHelper(argv, nflib.Out(0)) }

func runHelper(argv []string, a nflib.Action) int {
	nf, err := nflib.Init("next", argv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	nf.SetSummary(false)
	err = nf.Run(func(nflib.Packet) nflib.Action { return a })
	if cerr := nf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
