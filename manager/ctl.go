package manager

// The control socket, in the order a connection goes through it:
//
//	routineAccept: accept → routineConn
//	routineConn:   peer credentials (SO_PEERCRED: same user or root)
//	             → first message: Register (an NF) or Request (the CLI)
//	register:      registry Start → owner, rings → RegisterReply + Routes
//	             → wait for Ready → registry Ready, direct rings, routes to
//	               every NF → Running → routineWatch(pidfd)
//	             → read until EOF (the NF's death is the watcher's business)
//
// Registration is handled as the messages arrive (ONVM handles them on its
// 1 s stats tick, which is why its NFs take seconds to register).

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reinforce-nfv/reinforce/ctlmsg"
	"github.com/reinforce-nfv/reinforce/shm"
)

// ctlTimeout bounds how long a peer may take to send a control message that
// the manager waits for (Register, Ready).
const ctlTimeout = 5 * time.Second

func (m *Manager) listen() error {
	if err := defaultSocketDir(m.sock); err != nil {
		return fmt.Errorf("control socket %s: %w", m.sock, err)
	}
	// A socket file left by a dead manager is replaced; a live one refuses.
	if c, err := net.Dial("unix", m.sock); err == nil {
		c.Close()
		return fmt.Errorf("control socket %s: another manager is listening", m.sock)
	}
	os.Remove(m.sock)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: m.sock, Net: "unix"})
	if err != nil {
		return fmt.Errorf("control socket %s: %w", m.sock, err)
	}
	ln.SetUnlinkOnClose(true)
	os.Chmod(m.sock, 0o600)
	m.ln = ln
	return nil
}

// routineAccept accepts control connections until Close closes the listener.
func (m *Manager) routineAccept() {
	defer m.ctlWG.Done()
	m.log.Debug().Msg("accept loop started")
	defer m.log.Debug().Msg("accept loop stopped")
	for {
		c, err := m.ln.AcceptUnix()
		if err != nil {
			if m.stopping.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			m.log.Warn().Err(err).Msg("accept")
			continue
		}
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			c.Close()
			return
		}
		m.ctlWG.Add(1)
		m.mu.Unlock()
		go m.routineConn(c)
	}
}

func peerCred(c *net.UnixConn) (*unix.Ucred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	return cred, cerr
}

// routineConn serves one control connection until it closes.
func (m *Manager) routineConn(c *net.UnixConn) {
	defer m.ctlWG.Done()
	defer c.Close()
	cred, err := peerCred(c)
	if err != nil || (cred.Uid != uint32(os.Getuid()) && cred.Uid != 0) {
		ctlmsg.WriteMsg(c, ctlmsg.Error{Text: "permission denied: peer is neither this manager's user nor root"})
		m.log.Warn().Err(err).Msg("control connection refused: peer credentials")
		return
	}
	rd := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(ctlTimeout))
	msg, err := ctlmsg.ReadMsg(rd)
	if err != nil {
		m.log.Warn().Err(err).Int32("pid", cred.Pid).Msg("bad first control message")
		ctlmsg.WriteMsg(c, ctlmsg.Error{Text: err.Error()})
		return
	}
	switch v := msg.(type) {
	case ctlmsg.Register:
		m.serveNF(c, rd, int(cred.Pid), v)
	case ctlmsg.Request:
		c.SetReadDeadline(time.Time{})
		m.serveOperator(c, rd, v)
	default:
		ctlmsg.WriteMsg(c, ctlmsg.Error{Text: fmt.Sprintf("unexpected %v as first message", msg.Type())})
	}
}

// serveNF registers an NF and then reads its connection until it closes.
func (m *Manager) serveNF(c *net.UnixConn, rd *bufio.Reader, pid int, req ctlmsg.Register) {
	t0 := time.Now()
	nf, reply, err := m.startNF(c, pid, req)
	if err != nil {
		m.log.Warn().Err(err).Int("pid", pid).Msg("registration failed")
	}
	if werr := ctlmsg.WriteMsg(c, reply); werr != nil || reply.Status != ctlmsg.StatusStarting {
		if nf != nil {
			m.abortNF(nf)
		}
		return
	}
	m.mu.Lock()
	routes := m.routesFor(nf)
	m.mu.Unlock()
	nf.send(routes)
	msg, err := ctlmsg.ReadMsg(rd)
	if _, ok := msg.(ctlmsg.Ready); err != nil || !ok {
		m.log.Warn().Err(err).Str("nf", nf.name()).Msg("NF did not send ready")
		m.abortNF(nf)
		return
	}
	c.SetReadDeadline(time.Time{})
	m.mu.Lock()
	if nf.standby && m.standbys[nf.id] == nf {
		// Idle until the active dies: no place in the registry or routes.
		m.mu.Unlock()
		nf.send(ctlmsg.Running{})
		m.serveNFConn(nf, rd)
		return
	}
	if m.nfs[nf.id] != nf { // it died while registering; its watcher cleaned up
		m.mu.Unlock()
		return
	}
	if nf.held {
		// A remote standby's NF: idle, outside the service lists and
		// routes, until PromoteChain.
		nf.heldIdle = true
		m.mu.Unlock()
		nf.send(ctlmsg.Running{})
		m.log.Info().Str("nf", nf.name()).Int("pid", pid).Msg("NF held: its chain is a remote standby here")
		m.serveNFConn(nf, rd)
		return
	}
	if !nf.adopted {
		m.reg.Ready(nf.id)
	}
	nf.running = true
	m.eventNFReady(nf, req.Core)
	m.connectDirect(nf)
	m.publishLocked()
	m.mu.Unlock()
	nf.send(ctlmsg.Running{})
	if nf.holdReply {
		nf.send(ctlmsg.Promote{}) // promoted while it registered
	}
	m.Stats.NFRegistrations.Add(1)
	m.log.Info().Str("nf", nf.name()).Uint16("service", uint16(nf.service)).Int("pid", pid).
		Dur("took", time.Since(t0)).Msg("NF running")
	m.serveNFConn(nf, rd)
}

// serveNFConn reads a registered NF's control messages until its connection
// closes.
func (m *Manager) serveNFConn(nf *nfProc, rd *bufio.Reader) {
	stopping := false
	for {
		msg, err := ctlmsg.ReadMsg(rd)
		if err != nil {
			if stopping {
				// It unregistered (ONVM's MSG_NF_STOPPING): clean up now, even if
				// its process lives on; a death is routineWatch's business.
				nf.ended.Store(true)
				m.nfDied(nf, time.Now())
			}
			return
		}
		switch v := msg.(type) {
		case ctlmsg.Stopping:
			stopping = true
			m.log.Info().Str("nf", nf.name()).Msg("NF stopping")
		case ctlmsg.FlowAdd:
			f, err := flowFromMsg(v)
			if err == nil {
				m.mu.Lock()
				err = m.addRuntimeFlow(f)
				m.mu.Unlock()
			}
			rep := ctlmsg.FlowReply{}
			if err != nil {
				rep.Error = err.Error()
			} else {
				m.log.Info().Str("nf", nf.name()).Str("chain", v.Chain).Msg("flow rule added by NF")
			}
			nf.send(rep)
		}
	}
}

// startNF runs the registry's admission and gives the NF an owner, a pidfd
// and its rings. On refusal it returns the reply to send and a nil NF.
func (m *Manager) startNF(c *net.UnixConn, pid int, req ctlmsg.Register) (*nfProc, ctlmsg.RegisterReply, error) {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, ctlmsg.RegisterReply{Status: ctlmsg.StatusNoIDs, Message: "cannot watch the NF process: " + err.Error()}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if lim := m.cfg.Manager.ServiceLimit(); int(req.Service) > lim { // ONVM -r (num_services)
		unix.Close(pidfd)
		return nil, ctlmsg.RegisterReply{Status: ctlmsg.StatusServiceMax,
			Message: fmt.Sprintf("this manager admits services 1..%d (-r %d)", lim, lim+1)}, nil
	}
	if req.Standby {
		return m.startStandby(c, pid, pidfd, req)
	}
	if dead := m.nfs[InstanceID(req.Instance)]; req.Instance != 0 && int(req.Instance) < ctlmsg.MaxNFs && dead != nil && dead.dead &&
		dead.service == ServiceID(req.Service) && req.Transactional {
		return m.takeOver(c, pid, pidfd, req, dead)
	}
	id, st := m.reg.Start(StartReq{Service: ServiceID(req.Service), Instance: InstanceID(req.Instance),
		Standby: req.Standby, Tag: req.Tag, PID: pid})
	if st != ctlmsg.StatusStarting {
		unix.Close(pidfd)
		return nil, ctlmsg.RegisterReply{Status: st, Message: ctlmsg.StatusMessage(st)}, nil
	}
	nf := &nfProc{id: id, service: ServiceID(req.Service), tag: req.Tag, pid: pid, pidfd: pidfd, conn: c,
		owner: ownerOf(id), gone: make(chan struct{}), transactional: req.Transactional}
	fail := func(err error) (*nfProc, ctlmsg.RegisterReply, error) {
		m.reg.Stop(id)
		unix.Close(pidfd)
		return nil, ctlmsg.RegisterReply{Status: ctlmsg.StatusNoIDs, Message: err.Error()}, err
	}
	if m.rep.holds(id) {
		// A held NF's chain is a standby here: nothing waiting in its input
		// rings is input of this server's chain. What is there was sent
		// into them by a neighbour NF after the last process with this
		// instance ID was reclaimed at a demotion (the ring outlives both
		// ends); promoted later, the NF would process that stale input after
		// newer state came in by replication (output out of order, stamps
		// regressing). Emptied before the owner is active again.
		n, err := m.pool.DrainInputs(nf.owner)
		switch {
		case err != nil:
			m.log.Warn().Err(err).Int("instance", int(id)).Msg("held NF: its input rings could not be emptied")
		case n > 0:
			m.Stats.HeldInputDrops.Add(uint64(n))
			m.log.Info().Int("instance", int(id)).Int("slots", n).Msg("held NF: dropped stale packets left in its input rings")
		}
	}
	if err := m.pool.AddOwner(nf.owner, pid); err != nil {
		return fail(err)
	}
	bell := uint32(nf.owner)
	if nf.fromRX, err = m.ring(ownerRX, nf.owner, bell); err == nil {
		if nf.fromTX, err = m.ring(ownerTX, nf.owner, bell); err == nil {
			nf.toMgr, err = m.ring(nf.owner, ownerTX, bellTX)
		}
	}
	if err != nil {
		m.pool.Reclaim(nf.owner, shm.ReclaimOptions{})
		return fail(err)
	}
	m.nfs[id] = nf
	m.eventNFStarting(nf, req.Core)
	m.ctlWG.Add(1)
	go m.routineWatch(nf)
	m.markAttached(pid)
	rep := m.registerReply(nf)
	if m.rep.holds(id) {
		nf.held, nf.holdReply, rep.Hold = true, true, true
	}
	return nf, rep, nil
}

// abortNF gives up on an NF that failed to finish registering: it is killed,
// and its watcher cleans up as for any death.
func (m *Manager) abortNF(nf *nfProc) { nf.kill() }

// serveOperator answers the CLI's requests on one connection.
func (m *Manager) serveOperator(c *net.UnixConn, rd *bufio.Reader, req ctlmsg.Request) {
	for {
		resp := ctlmsg.Response{OK: true}
		switch req.Cmd {
		case "stats":
			b, err := json.Marshal(m.Snapshot())
			if err != nil {
				resp = ctlmsg.Response{Error: err.Error()}
			} else {
				resp.Data = b
			}
		case "stop":
			id, err := strconv.ParseUint(strings.Join(req.Args, ""), 10, 16)
			if err == nil && len(req.Args) == 1 {
				err = m.StopNF(uint16(id))
			} else {
				err = errors.New("stop takes one argument: the NF's instance ID")
			}
			if err != nil {
				resp = ctlmsg.Response{Error: err.Error()}
			}
		case "switchover":
			if len(req.Args) != 1 {
				resp = ctlmsg.Response{Error: "switchover takes one argument: the chain's name"}
			} else if err := m.Switchover(req.Args[0]); err != nil {
				resp = ctlmsg.Response{Error: err.Error()}
			}
		case "promote":
			// A manual promotion of a remote standby chain (replicate_promote.go).
			if len(req.Args) != 1 {
				resp = ctlmsg.Response{Error: "promote takes one argument: the chain's name"}
				break
			}
			missing, err := m.PromoteChain(req.Args[0])
			if err != nil {
				resp = ctlmsg.Response{Error: err.Error()}
				break
			}
			resp.Data, _ = json.Marshal(map[string]any{"chain": req.Args[0], "instances_without_nf": missing})
		default:
			resp = ctlmsg.Response{Error: fmt.Sprintf("unknown command %q", req.Cmd)}
		}
		if ctlmsg.WriteMsg(c, resp) != nil {
			return
		}
		msg, err := ctlmsg.ReadMsg(rd)
		if err != nil {
			return
		}
		r, ok := msg.(ctlmsg.Request)
		if !ok {
			return
		}
		req = r
	}
}
