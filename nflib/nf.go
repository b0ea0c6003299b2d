// Package nflib is the library NFs are written with: Init attaches to the
// manager (ONVM's onvm_nflib_init), Run drives the burst loop (ONVM's
// onvm_nflib_run) with a per-packet or per-burst handler.
//
// An NF process has two goroutines: the burst loop (Run's caller) and
// routineControl, which reads the control socket and hands routes and stop
// requests to the loop through atomics. The loop owns every ring handle and
// the pool cache.
package nflib

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reinforce-nfv/reinforce/ctlmsg"
	"github.com/reinforce-nfv/reinforce/shm"
	"github.com/reinforce-nfv/reinforce/shm/state"
)

// ErrManagerGone reports that the manager closed the control socket (it
// exited or died): the NF stops instead of spinning on a dead region.
var ErrManagerGone = errors.New("manager gone (control socket closed)")

// SocketEnv names the environment variable with the manager's control
// socket path; without it the default path of the manager "reinforce" is used.
const SocketEnv = "REINFORCE_SOCKET"

// NF is one registered network function. Its methods are for the goroutine
// that called Init unless they say otherwise.
type NF struct {
	Args Args // the parsed ONVM arguments; Args.AppArgs are the NF's own
	tag  string

	conn *net.UnixConn
	rd   *bufio.Reader
	wmu  sync.Mutex // serialises writes to conn

	region   *shm.Region
	cache    *shm.Cache
	ctr      *shm.Counters
	instance uint16
	owner    shm.OwnerID
	burst    int
	bell     shm.Doorbell
	toMgr    *outQ

	rings []ctlmsg.RingRef     // from the registration reply
	ins   map[uint32]*shm.Ring // owned by the loop
	outs  map[uint32]*outQ     // owned by the loop
	injRT *routeTable          // Inject's compiled routes

	returned uint64 // packets injected (ONVM's tx_returned); loop goroutine only
	reqMu    sync.Mutex
	flowRep  chan ctlmsg.FlowReply // routineControl → AddFlow
	summary  bool                  // print ONVM's exit summary and write <tag>_stats.csv on Close

	routes  atomic.Pointer[ctlmsg.Routes] // latest from the manager
	stop    atomic.Bool
	stopErr atomic.Pointer[error]
	ctlDone chan struct{}

	// State and transactions (state.go), loop goroutine only.
	st       *state.File
	tx       *state.Tx
	txOff    bool
	sc       scope
	recovery state.Report
	// A standby's active (standby.go).
	activePID   int
	activeStart uint64
	takeover    time.Time // when a standby saw its active die; zero otherwise
	firstCommit bool      // the next commit is a taker's first: time it
	prepared    *state.File
	// A remote standby (RegisterReply.Hold): the manager owns the state
	// file until it promotes the chain (standby.go).
	hold        bool
	promoted    chan struct{} // closed by routineControl on Promote
	promOnce    sync.Once
	queuesInput bool // Callbacks.QueuesInput
	sharedCPU   bool // the manager runs in shared-core mode (-c)

	closeOnce sync.Once
}

// Init parses ONVM's NF command line (argv without the program name: [EAL
// args] -- [ONVM args] -- [NF args]), connects to the manager, registers and
// attaches to the region. It returns when the manager has said the NF is
// running. The NF's own arguments are nf.Args.AppArgs.
func Init(tag string, argv []string) (*NF, error) {
	a, err := ParseArgs(argv)
	if err != nil {
		return nil, err
	}
	sock := os.Getenv(SocketEnv)
	if sock == "" {
		sock = ctlmsg.DefaultSocketPath("reinforce", os.Getenv("XDG_RUNTIME_DIR"), os.Getuid())
	}
	return Attach(tag, a, sock)
}

// Attach registers an NF with parsed arguments through the control socket at
// sock. Init is Attach with the command line and the default socket.
func Attach(tag string, a Args, sock string) (*NF, error) {
	if len(tag) > ctlmsg.TagSize-1 {
		tag = tag[:ctlmsg.TagSize-1] // ONVM truncates tags to 14 characters
	}
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("connect to manager at %s: %w", sock, err)
	}
	nf := &NF{Args: a, tag: tag, conn: c, rd: bufio.NewReader(c), summary: true,
		ins: map[uint32]*shm.Ring{}, outs: map[uint32]*outQ{}, ctlDone: make(chan struct{}), promoted: make(chan struct{}),
		flowRep: make(chan ctlmsg.FlowReply, 1)}
	if err := nf.register(); err != nil {
		c.Close()
		if nf.region != nil {
			nf.region.Close()
		}
		return nil, err
	}
	go nf.routineControl()
	if a.Standby || nf.hold {
		if err := nf.standBy(); err != nil {
			nf.Close()
			return nil, err
		}
	}
	return nf, nil
}

func (nf *NF) send(m ctlmsg.Msg) error {
	nf.wmu.Lock()
	defer nf.wmu.Unlock()
	return ctlmsg.WriteMsg(nf.conn, m)
}

func (nf *NF) register() error {
	a := nf.Args
	err := nf.send(ctlmsg.Register{Service: a.Service, Instance: a.Instance, Tag: nf.tag, PID: os.Getpid(),
		ManualCore: a.ManualCore, ShareCore: a.ShareCore, Transactional: !strings.EqualFold(os.Getenv(TxEnv), "off"),
		Standby:    a.Standby,
		TTLSeconds: uint32(a.TTL / time.Second), PktLimitMillions: uint32(a.PktLimit / ctlmsg.PktLimitMultiplier)})
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	m, err := ctlmsg.ReadMsg(nf.rd)
	if err != nil {
		return fmt.Errorf("register: read reply: %w", err)
	}
	rep, ok := m.(ctlmsg.RegisterReply)
	if !ok {
		return fmt.Errorf("register: manager answered %v, want a registration reply", m.Type())
	}
	if rep.Status != ctlmsg.StatusStarting {
		return &RegisterError{Status: rep.Status, Detail: rep.Message}
	}
	nf.instance, nf.owner, nf.burst = rep.Instance, shm.OwnerID(rep.Owner), rep.Burst
	if nf.burst <= 0 || nf.burst > shm.MaxBurst {
		nf.burst = shm.BurstSize
	}
	if nf.region, err = shm.Attach(rep.RegionPath); err != nil {
		return err
	}
	if nf.cache, err = nf.region.OpenCache(nf.owner); err != nil {
		return err
	}
	nf.ctr = nf.cache.Counters()
	nf.rings = rep.Rings
	for _, rr := range rep.Rings {
		if rr.Role == ctlmsg.RoleTX && rr.Peer == "manager" {
			if nf.toMgr, err = nf.outRing(rr.Index); err != nil {
				return err
			}
			continue
		}
		if rr.Role == ctlmsg.RoleRX {
			r, err := nf.inRing(rr.Index)
			if err != nil {
				return err
			}
			nf.bell = r.Bell() // every ring into this NF rings its doorbell
		}
	}
	if nf.toMgr == nil {
		return errors.New("register: the manager gave no ring to send through")
	}
	nf.activePID, nf.activeStart = rep.ActivePID, rep.ActiveStart
	nf.sharedCPU = rep.SharedCPU // a -c manager puts every NF in shared-core mode, as ONVM does
	setManagerPorts(rep.Ports)
	nf.hold = rep.Hold
	if !a.Standby && !nf.hold {
		if err := nf.openState(); err != nil {
			return fmt.Errorf("register: %w", err)
		}
	}
	// The manager follows the reply with the first routes.
	if m, err = ctlmsg.ReadMsg(nf.rd); err != nil {
		return fmt.Errorf("register: read routes: %w", err)
	}
	r, ok := m.(ctlmsg.Routes)
	if !ok {
		return fmt.Errorf("register: manager sent %v, want routes", m.Type())
	}
	nf.routes.Store(&r)
	if err := nf.send(ctlmsg.Ready{}); err != nil {
		return fmt.Errorf("register: ready: %w", err)
	}
	for {
		m, err := ctlmsg.ReadMsg(nf.rd)
		if err != nil {
			return fmt.Errorf("register: wait for running: %w", err)
		}
		switch v := m.(type) {
		case ctlmsg.Running:
			return nil
		case ctlmsg.Promote:
			nf.promOnce.Do(func() { close(nf.promoted) })
		case ctlmsg.Routes:
			nf.routes.Store(&v)
		case ctlmsg.Error:
			return fmt.Errorf("register: manager: %s", v.Text)
		}
	}
}

// RegisterError is the manager's refusal, with ONVM's message for its status.
type RegisterError struct {
	Status ctlmsg.Status
	Detail string
}

func (e *RegisterError) Error() string {
	s := ctlmsg.StatusMessage(e.Status)
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

// routineControl reads the control socket until it closes: routes replace
// the loop's, Stop stops it, EOF means the manager is gone. It stops when
// the socket closes (Close, or the manager's end).
func (nf *NF) routineControl() {
	defer close(nf.ctlDone)
	for {
		m, err := ctlmsg.ReadMsg(nf.rd)
		if err != nil {
			if !nf.stop.Load() {
				nf.halt(ErrManagerGone)
			}
			return
		}
		switch v := m.(type) {
		case ctlmsg.Routes:
			nf.routes.Store(&v)
			nf.bell.Ring()
		case ctlmsg.Stop:
			nf.halt(nil)
		case ctlmsg.Promote:
			nf.promOnce.Do(func() { close(nf.promoted) })
		case ctlmsg.FlowReply:
			select {
			case nf.flowRep <- v:
			default: // nobody asked: ignore
			}
		}
	}
}

// halt stops the loop with err (nil: a clean stop). Safe from any goroutine.
func (nf *NF) halt(err error) {
	if err != nil {
		nf.stopErr.CompareAndSwap(nil, &err)
	}
	nf.stop.Store(true)
	nf.bell.Ring()
}

// Stop asks the loop to return after its current burst. Safe from any
// goroutine and from signal handlers' goroutines.
func (nf *NF) Stop() { nf.halt(nil) }

// InstanceID is the instance ID the manager assigned.
func (nf *NF) InstanceID() uint16 { return nf.instance }

// ServiceID is the NF's service ID.
func (nf *NF) ServiceID() uint16 { return nf.Args.Service }

// Tag is the NF's tag.
func (nf *NF) Tag() string { return nf.tag }

// Region is the manager's region (for packet access beyond Packet).
func (nf *NF) Region() *shm.Region { return nf.region }

// RingRefs are the rings the manager gave the NF at registration (for
// diagnostics and tools; the burst loop needs none of it).
func (nf *NF) RingRefs() []ctlmsg.RingRef { return nf.rings }

// Owner is the pool owner ID the NF allocates as.
func (nf *NF) Owner() shm.OwnerID { return nf.owner }

// Counters are the NF's packet counters as the manager sees them.
func (nf *NF) Counters() *shm.Counters { return nf.ctr }

// Close prints ONVM's exit summary and writes <tag>_stats.csv (unless
// SetSummary(false)), tells the manager the NF is stopping and releases the
// region. Call it after Run has returned. Idempotent.
func (nf *NF) Close() error {
	var err error
	nf.closeOnce.Do(func() {
		nf.stop.Store(true)
		if nf.summary {
			if serr := nf.writeSummary(os.Stdout); serr != nil {
				fmt.Fprintf(os.Stderr, "%s: stats csv: %v\n", nf.tag, serr)
			}
		}
		nf.send(ctlmsg.Stopping{})
		nf.conn.Close()
		<-nf.ctlDone
		if nf.st != nil {
			// A clean stop: nothing to recover, and the next NF given this
			// instance ID must not inherit this one's containers, unless the
			// manager replicates them (it reads the log): then the file is
			// the chain's state, kept for the next NF as on the standby
			// server (state.File.Retire).
			nf.st.Retire()
		}
		err = nf.region.Close()
	})
	return err
}

func (nf *NF) String() string {
	return nf.tag + "#" + strconv.Itoa(int(nf.instance))
}

// AddFlow asks the manager's flow director to classify matching packets
// onto a chain, and waits for its answer. Safe from any goroutine (requests
// are serialised).
func (nf *NF) AddFlow(r ctlmsg.FlowAdd) error {
	nf.reqMu.Lock()
	defer nf.reqMu.Unlock()
	select { // a reply to an abandoned request must not answer this one
	case <-nf.flowRep:
	default:
	}
	if err := nf.send(r); err != nil {
		return fmt.Errorf("add flow: %w", err)
	}
	select {
	case rep := <-nf.flowRep:
		if rep.Error != "" {
			return fmt.Errorf("add flow: %s", rep.Error)
		}
		return nil
	case <-nf.ctlDone:
		return ErrManagerGone
	case <-time.After(5 * time.Second):
		return errors.New("add flow: no answer from the manager within 5 s")
	}
}
