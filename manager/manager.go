// Package manager is Reinforce's manager: it owns the region and the ports,
// registers NFs over the control socket, creates the rings between them and
// routes packets along service chains (ONVM's onvm_mgr).
//
// Goroutines, each started in Start and stopped by Close:
//   - routineRX: port RX → classify → first NF of the chain (rx.go)
//   - routineTX: NFs' rings to the manager → ports or NFs (tx.go)
//   - routineAccept and one routineConn per control connection (ctl.go)
//   - routineWatch per NF: its pidfd, so a death is seen at once (nfs.go)
//   - routineStats: periodic stats (stats.go)
//   - the pool's service loop (shm)
//
// Lock order: Manager.mu, then nfProc.wmu. The RX and TX loops take no lock:
// they read an immutable dataPlane snapshot through an atomic pointer that
// the control plane replaces under mu.
package manager

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/reinforce-nfv/reinforce/ctlmsg"
	"github.com/reinforce-nfv/reinforce/manager/config"
	"github.com/reinforce-nfv/reinforce/manager/flowdir"
	"github.com/reinforce-nfv/reinforce/port"
	"github.com/reinforce-nfv/reinforce/shm"
	"github.com/reinforce-nfv/reinforce/shm/state"
)

// Owner IDs and doorbells the manager reserves; NF instance i is owner
// ownerNFBase+i and sleeps on doorbell ownerNFBase+i.
const (
	ownerRX     shm.OwnerID = 1
	ownerTX     shm.OwnerID = 2
	ownerNFBase             = 8
	bellRX                  = 1
	bellTX                  = 2
	maxPorts                = 32
)

func ownerOf(id InstanceID) shm.OwnerID { return shm.OwnerID(ownerNFBase + int(id)) }

// Options are what cmd/ passes besides the configuration.
type Options struct {
	Log        zerolog.Logger
	SocketPath string      // control socket; "" = cfg's default for this user
	Stdout     *os.File    // where stats go (nil: os.Stdout)
	Stderr     *os.File    // where launched NFs' stderr goes (nil: os.Stderr)
	NFEnv      []string    // extra environment for launched NFs
	Ports      []port.Port // ports to use instead of opening the configuration's (tests); IDs must match it
	Now        func() time.Time
	// WebAddr is where web mode (stats_out = "web") serves the console's
	// JSON files: "" means ":8000" (ONVM's port), ":0" any free port.
	WebAddr string
	// WebDir is where web mode also writes them (ONVM: ../onvm_web); ""
	// for nowhere.
	WebDir string
}

// Manager is one running manager. Create it with New, run it with Start,
// stop it with Close.
type Manager struct {
	cfg    config.Config
	opt    Options
	log    zerolog.Logger
	region *shm.Region
	pool   *shm.Pool
	ports  [maxPorts]port.Port
	sock   string
	ln     *net.UnixListener

	rxCache, txCache *shm.Cache
	rxBell, txBell   shm.Doorbell

	mu        sync.Mutex // guards the fields below
	reg       Registry
	nfs       [ctlmsg.MaxNFs]*nfProc
	standbys  map[InstanceID]*nfProc // by the active's instance; guarded by mu
	stopped   chan struct{}          // closed when Close stops the loops
	edges     map[edge]uint32
	nextRing  uint32
	routesVer uint64
	launched  []*launchedNF
	closed    bool

	flows     *flowdir.Table // one writer (the control plane, under mu), one reader (RX)
	dp        atomic.Pointer[dataPlane]
	lastDeath atomic.Int64 // when the last NF death was seen, Unix ns
	shutdown  atomic.Bool  // Close has begun: NF exits are expected
	final     atomic.Pointer[Snapshot]
	stopping  atomic.Bool
	loopWG    sync.WaitGroup // RX, TX, stats
	ctlWG     sync.WaitGroup // accept, connections, watchers
	closeOnce sync.Once
	closeErr  error
	events    eventLog     // for the web console's onvm_json_events.json
	web       *webServer   // nil outside web mode
	rep       *replication // nil without [replication] chains (replicate.go)
	arb       *arbiterLink // nil without [arbiter] (arbiter.go)
	vip       vipAnnouncer // [arbiter] vip: announced at promotion (vip.go)
	rxPaused  atomic.Bool  // RX polls no port (Switchover)

	Stats Counters
}

// Counters are the manager's own drop and event counters.
type Counters struct {
	RXNoNF, RXRingFull, TXNoNF, TXBadMeta, TXRingFull, TXPortDrop atomic.Uint64
	NFDeaths, NFRegistrations, BadHandovers                       atomic.Uint64
	// Failovers: standbys promoted; Takeovers: dead instances adopted by a
	// restart; Hangs: NFs killed by the hang detector.
	Failovers, Takeovers, Hangs atomic.Uint64
	// Promotions: replicated standby chains promoted here (PromoteChain).
	Promotions, Demotions atomic.Uint64
	// Redirects: chains this ingress moved to a new primary (the arbiter's).
	Redirects atomic.Uint64
	// HeldInputDrops: stale packets found in a held NF's input rings when
	// it registered (ctl.go, startNF), dropped.
	HeldInputDrops atomic.Uint64
	// VIPAnnouncements: gratuitous ARPs and neighbour advertisements of the
	// virtual addresses sent at promotions (vip.go).
	VIPAnnouncements atomic.Uint64
}

type edge struct{ prod, cons shm.OwnerID }

// New creates the region, opens the ports and listens on the control
// socket. Nothing runs until Start.
func New(cfg config.Config, opt Options) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	spareProcs()
	fewerCollections()
	if opt.Now == nil {
		opt.Now = time.Now
	}
	m := &Manager{cfg: cfg, opt: opt, log: opt.Log.With().Str("component", "manager").Logger(),
		edges: map[edge]uint32{}, nextRing: 1,
		standbys: map[InstanceID]*nfProc{}, stopped: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			m.release()
		}
	}()
	mc := cfg.Manager
	rings := uint32(2048)
	var err error
	m.region, err = shm.Create(shm.Options{
		Name: mc.Name + ".region", Dir: mc.RegionDir, Slots: uint32(mc.PoolSlots),
		DataBytes: uint32(mc.SlotDataBytes()), Rings: rings, RingCap: uint32(mc.RingSize),
		Owners: 256, CacheCap: 2048, Doorbells: 256, Log: &m.log,
	})
	if err != nil {
		return nil, err
	}
	m.pool = m.region.Pool()
	for _, o := range []shm.OwnerID{ownerRX, ownerTX} {
		if err := m.pool.AddOwner(o, os.Getpid()); err != nil {
			return nil, err
		}
	}
	m.rxCache, _ = m.region.OpenCache(ownerRX)
	m.txCache, _ = m.region.OpenCache(ownerTX)
	m.rxBell, _ = m.region.Doorbell(bellRX)
	m.txBell, _ = m.region.Doorbell(bellTX)
	for _, p := range opt.Ports {
		if int(p.ID()) >= maxPorts {
			return nil, fmt.Errorf("port %d: ID out of range", p.ID())
		}
		m.ports[p.ID()] = p
	}
	for _, pc := range cfg.Ports {
		if m.ports[pc.ID] != nil {
			continue
		}
		p, err := port.Open(port.Desc{ID: uint16(pc.ID), Driver: string(pc.Driver), Iface: pc.Iface, Path: pc.Path,
			OutPath: pc.OutPath, RatePPS: uint64(pc.RatePPS), PktBytes: pc.PktBytes, Loop: pc.Loop})
		if err != nil {
			return nil, fmt.Errorf("open port %d: %w", pc.ID, err)
		}
		m.ports[pc.ID] = p
	}
	if m.rep, err = newReplication(m); err != nil {
		return nil, err
	}
	if m.flows, err = flowdir.New(flowCapacity); err != nil {
		return nil, err
	}
	for _, f := range cfg.Flows {
		if err := m.addFlow(f); err != nil {
			return nil, err
		}
	}
	m.sock = opt.SocketPath
	if m.sock == "" {
		m.sock = mc.ControlSocketPath(os.Getenv("XDG_RUNTIME_DIR"), os.Getuid())
	}
	if err := m.listen(); err != nil {
		return nil, err
	}
	if mc.StatsOut == config.StatsWeb {
		if m.web, err = newWebServer(opt.WebAddr, opt.WebDir); err != nil {
			return nil, err
		}
	}
	m.publishLocked()
	ok = true
	return m, nil
}

// Region is the manager's region.
func (m *Manager) Region() *shm.Region { return m.region }

// FinalSnapshot is the counters as Close left them (nil before Close): the
// ports' and the manager's at the end, the NFs' as they were when Close began.
func (m *Manager) FinalSnapshot() *Snapshot { return m.final.Load() }

// LastDeathSeen is when the manager last saw an NF's process end.
func (m *Manager) LastDeathSeen() time.Time { return time.Unix(0, m.lastDeath.Load()) }

// SocketPath is the control socket NFs connect to.
func (m *Manager) SocketPath() string { return m.sock }

// Start starts the data path, the control socket and the NFs the
// configuration lists.
func (m *Manager) Start() error {
	// The arbiter's gates go on the latches before anything is latched.
	if err := m.startArbiter(); err != nil {
		return err
	}
	if m.rep != nil {
		// Before any NF runs: the log readers must see their first write.
		if err := m.rep.start(); err != nil {
			return err
		}
	}
	m.startArbiterActions()
	m.pool.StartService()
	m.loopWG.Add(1)
	go m.routineRX()
	m.loopWG.Add(1)
	go m.routineTX()
	m.startEvents()
	m.loopWG.Add(1)
	go m.routineStats()
	m.loopWG.Add(1)
	go m.routineHangWatch()
	if m.web != nil {
		m.publishFirstWeb()
		m.loopWG.Add(1)
		go m.routineWeb()
	}
	m.ctlWG.Add(1)
	go m.routineAccept()
	m.log.Info().Str("socket", m.sock).Str("region", m.region.Path()).Msg("manager started")
	return m.launchNFs()
}

// Close stops NFs first (a stop message, then a kill after a grace period),
// then the data path and control socket, then frees the region. Idempotent.
func (m *Manager) Close() error {
	m.closeOnce.Do(func() {
		m.shutdown.Store(true)
		beforeStop := m.Snapshot() // the NFs' last counters, before they exit
		m.stopNFs(2 * time.Second)
		m.stopping.Store(true)
		close(m.stopped)
		if m.ln != nil {
			m.ln.Close()
		}
		m.rxBell.Ring()
		m.txBell.Ring()
		if m.web != nil {
			m.web.srv.Close()
		}
		m.loopWG.Wait()
		m.closeArbiter()
		if m.rep != nil {
			m.rep.close()
		}
		m.mu.Lock()
		m.closed = true
		for _, nf := range m.nfs {
			if nf != nil {
				nf.conn.Close()
			}
		}
		m.mu.Unlock()
		m.ctlWG.Wait()
		final := m.Snapshot()
		final.NFs = beforeStop.NFs
		m.final.Store(&final)
		m.closeErr = m.release()
		m.log.Info().Msg("manager stopped")
	})
	return m.closeErr
}

// release frees what New acquired, in reverse order.
func (m *Manager) release() error {
	var errs []error
	if m.ln != nil {
		m.ln.Close()
		os.Remove(m.sock)
	}
	if m.web != nil {
		m.web.ln.Close() // Close has stopped the server; this covers a failed New
	}
	for _, p := range m.ports {
		if p != nil {
			if err := p.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if m.region != nil {
		for _, p := range state.FilesFor(m.region.Path(), m.region.Huge()) {
			os.Remove(p) // NFs killed at shutdown leave theirs
		}
		if err := m.region.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// stopNFs sends every NF a stop message, waits up to grace for all of them
// to die, then kills the rest (ONVM: MSG_STOP, then the manager exits).
func (m *Manager) stopNFs(grace time.Duration) {
	m.mu.Lock()
	live := []*nfProc{}
	for _, nf := range m.nfs {
		if nf != nil {
			live = append(live, nf)
			nf.send(ctlmsg.Stop{Reason: "manager shutting down"})
		}
	}
	for _, sb := range m.standbys {
		live = append(live, sb)
		sb.send(ctlmsg.Stop{Reason: "manager shutting down"})
	}
	launched := m.launched
	m.mu.Unlock()
	deadline := time.After(grace)
	for _, nf := range live {
		select {
		case <-nf.gone:
		case <-deadline:
			nf.kill()
			<-nf.gone
		}
	}
	for _, l := range launched {
		l.stop(grace)
	}
}

func defaultSocketDir(path string) error {
	return os.MkdirAll(filepath.Dir(path), 0o700)
}

// Wait blocks until a signal arrives on sig, the TTL passes or the port RX
// packet limit is reached, and returns ONVM's message for why.
func (m *Manager) Wait(sig <-chan os.Signal) string {
	start := m.opt.Now()
	mc := m.cfg.Manager
	// Tick only when there is something to check: an idle manager must not
	// wake 100 times a second (docs/manager.md, "Idle and shared-core mode").
	var tickC <-chan time.Time
	if mc.TTL > 0 || mc.PacketLimitM > 0 {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		tickC = tick.C
	}
	for {
		select {
		case s := <-sig:
			return fmt.Sprintf("Received %v, shutting down", s)
		case <-tickC:
		}
		if mc.TTL > 0 && m.opt.Now().Sub(start) >= mc.TTL {
			return "Time to live exceeded, shutting down"
		}
		if mc.PacketLimitM > 0 {
			var rx uint64
			for _, p := range m.ports {
				if p != nil {
					rx += p.Stats().RxPkts
				}
			}
			if rx >= uint64(mc.PacketLimitM)*ctlmsg.PktLimitMultiplier {
				return "Packet limit exceeded, shutting down"
			}
		}
	}
}

// Summary renders the totals printed when the manager exits.
func Summary(s Snapshot) string {
	var b strings.Builder
	b.WriteString("Reinforce summary\n-----------------\n")
	for _, p := range s.Ports {
		fmt.Fprintf(&b, "Port %d (%s): rx %d  tx %d  tx_drop %d\n", p.ID, p.Name, p.RxPkts, p.TxPkts, p.TxDrops)
	}
	for _, n := range s.NFs {
		fmt.Fprintf(&b, "NF %d %s (service %d): rx %d  tx %d  drops %d\n", n.Instance, n.Tag, n.Service, n.RX, n.TX, n.RXDrop+n.TXDrop+n.ActDrop)
	}
	d := s.Drops
	fmt.Fprintf(&b, "Manager: %d NF registrations, %d NF exits; drops: no NF %d, ring full %d, bad metadata %d, port %d\n",
		d.NFRegistrations, d.NFDeaths, d.RXNoNF+d.TXNoNF, d.RXRingFull+d.TXRingFull, d.TXBadMeta, d.TXPortDrop)
	return b.String()
}

// fewerCollections raises the garbage collector's target (GOGC 800 unless
// GOGC is set). A manager's live heap is a few MB, so GOGC 100 collects at
// 4 MB: a replicating primary in tools/testbed/remotelab collected 7 times
// a second. Each collection stops the world twice, and on a busy machine a
// stop waits for every thread holding a P to be scheduled, which held the
// arbiter driver's real-time thread off for 6-8 ms (longer than BFD's
// 2 ms × 3 detection) with no CPU stalled. A few tens of MB more heap is
// cheap next to the region.
func fewerCollections() {
	if os.Getenv("GOGC") != "" {
		return
	}
	debug.SetGCPercent(800)
}

// spareProcs gives the Go runtime more Ps than CPUs. The RX and TX loops
// (and a port's) sleep in futex system calls, which keep their P until the
// runtime's monitor takes it back — after up to 10 ms when it has been
// idle. With GOMAXPROCS = CPUs, two sleeping loops on a 2-CPU machine left
// the replication rounds, the replicator's goroutines and the control
// socket waiting that long to run (T6 remote: milliseconds in the latch).
// Spare Ps cost nothing while unused. An explicit GOMAXPROCS is kept.
func spareProcs() {
	if os.Getenv("GOMAXPROCS") != "" {
		return
	}
	if want := runtime.NumCPU() + 4; runtime.GOMAXPROCS(0) < want {
		runtime.GOMAXPROCS(want)
	}
}
