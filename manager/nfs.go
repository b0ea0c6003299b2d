package manager

import (
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reinforce-nfv/reinforce/ctlmsg"
	"github.com/reinforce-nfv/reinforce/manager/config"
	"github.com/reinforce-nfv/reinforce/shm"
)

// nfProc is a registered NF process. Fields are set at registration and
// read-only after, except running (guarded by Manager.mu).
type nfProc struct {
	id      InstanceID
	service ServiceID
	tag     string
	pid     int
	pidfd   int // guarded by pidMu; -1 once closed
	pidMu   sync.Mutex
	conn    *net.UnixConn
	wmu     sync.Mutex // serialises writes to conn
	owner   shm.OwnerID
	fromRX  uint32 // ring: manager RX loop → NF
	fromTX  uint32 // ring: manager TX loop → NF
	toMgr   uint32 // ring: NF → manager TX loop
	running bool
	// transactional NFs keep everything they held when they die, for a
	// standby or restart that recovers from their state file (standby.go).
	transactional bool
	standby       bool          // an idle standby for the active with this ID
	adopted       bool          // took over a dead instance: already in the registry
	dead          bool          // died; kept (retained) for a taker
	held          bool          // a remote standby chain's NF, waiting for promotion (replicate_promote.go)
	heldIdle      bool          // held, and past Ready: promotion enters it in the registry
	holdReply     bool          // its registration reply said Hold: it waits for Promote
	gone          chan struct{} // closed once the manager has cleaned up after its death
	endOnce       sync.Once
	ended         atomic.Bool // set when the NF said Stopping and closed its socket
}

func (nf *nfProc) name() string { return nf.tag + "#" + strconv.Itoa(int(nf.id)) }

// send writes one control message, dropping it if the NF does not read
// within a second (it is then stuck or dying, and its watcher will know).
func (nf *nfProc) send(msg ctlmsg.Msg) {
	nf.wmu.Lock()
	defer nf.wmu.Unlock()
	nf.conn.SetWriteDeadline(time.Now().Add(time.Second))
	ctlmsg.WriteMsg(nf.conn, msg)
}

// kill sends SIGKILL through the pidfd (no PID-reuse race), unless the
// pidfd is already closed (its number could then name another file).
func (nf *nfProc) kill() {
	nf.pidMu.Lock()
	defer nf.pidMu.Unlock()
	if nf.pidfd >= 0 {
		unix.PidfdSendSignal(nf.pidfd, unix.SIGKILL, nil, 0)
	}
}

func (nf *nfProc) closePidfd() {
	nf.pidMu.Lock()
	defer nf.pidMu.Unlock()
	if nf.pidfd >= 0 {
		unix.Close(nf.pidfd)
		nf.pidfd = -1
	}
}

// routineWatch waits for the NF's process to end: a pidfd becomes readable
// the moment its process exits, so death is seen at once. It stops when the
// NF has died and been cleaned up; Close kills NFs first, so it always does.
func (m *Manager) routineWatch(nf *nfProc) {
	defer m.ctlWG.Done()
	nf.pidMu.Lock()
	fds := []unix.PollFd{{Fd: int32(nf.pidfd), Events: unix.POLLIN}} // only this goroutine closes it, below
	nf.pidMu.Unlock()
	defer nf.closePidfd()
	for !nf.ended.Load() {
		// The pidfd turns readable the instant the process ends; the timeout
		// only bounds how long an NF that unregistered but lives on (an
		// in-process NF) keeps this goroutine. Long, so an idle manager
		// does not wake for it.
		n, err := unix.Poll(fds, 1000)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n > 0 {
			break
		}
	}
	m.nfDied(nf, time.Now())
}

// nfDied returns everything the dead NF held to the pool and takes it out of
// the routes. With the retain policy its input rings keep their packets for
// DeadNFGrace, so an NF restarted with the same instance ID carries on.
func (m *Manager) nfDied(nf *nfProc, seen time.Time) {
	nf.endOnce.Do(func() { m.nfCleanup(nf, seen) })
}

func (m *Manager) nfCleanup(nf *nfProc, seen time.Time) {
	m.lastDeath.Store(seen.UnixNano())
	m.mu.Lock()
	if m.nfs[nf.id] != nf {
		// A standby that never took over (or one replaced meanwhile): it held
		// nothing but its connection.
		if m.standbys[nf.id] == nf {
			delete(m.standbys, nf.id)
		}
		m.mu.Unlock()
		nf.conn.Close()
		m.log.Info().Str("nf", nf.name()).Int("pid", nf.pid).Bool("standby", nf.standby).Msg("standby exited")
		close(nf.gone)
		return
	}
	if m.activeDied(nf, seen) {
		m.eventNFStopping(nf)
		m.mu.Unlock()
		nf.conn.Close()
		m.Stats.NFDeaths.Add(1)
		m.log.Warn().Str("nf", nf.name()).Int("pid", nf.pid).Dur("cleanup", time.Since(seen)).
			Msg("transactional NF exited: its rings, slots and state wait for its standby or a restart")
		close(nf.gone)
		return
	}
	keep := m.cfg.Manager.DeadNFPolicy == config.DeadNFRetain && !m.shutdown.Load()
	freed, err := m.pool.Reclaim(nf.owner, shm.ReclaimOptions{KeepInputs: keep})
	m.reg.Stop(nf.id)
	m.nfs[nf.id] = nil
	m.publishLocked()
	m.eventNFStopping(nf)
	m.mu.Unlock()
	nf.conn.Close()
	m.Stats.NFDeaths.Add(1)
	ev := m.log.Info()
	if !m.shutdown.Load() {
		ev = m.log.Warn()
	}
	ev.Str("nf", nf.name()).Int("pid", nf.pid).Int("slots_reclaimed", freed).Bool("inputs_kept", keep).
		Dur("cleanup", time.Since(seen)).AnErr("reclaim_err", err).Msg("NF exited")
	if keep {
		owner, grace := nf.owner, m.cfg.Manager.DeadNFGrace
		time.AfterFunc(grace, func() { m.dropRetained(owner) })
	}
	close(nf.gone)
}

// dropRetained frees the packets kept for a dead NF that did not come back.
func (m *Manager) dropRetained(o shm.OwnerID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || m.nfs[InstanceID(int(o)-ownerNFBase)] != nil {
		return // it came back (or we are gone)
	}
	if n, err := m.pool.DrainInputs(o); err == nil && n > 0 {
		m.log.Info().Int("owner", int(o)).Int("slots", n).Msg("dropped packets retained for an NF that did not restart")
	}
}

// StopNF asks the NF with instance id to stop cleanly (ONVM's MSG_STOP),
// as the manager does at shutdown: it finishes its burst, says Stopping
// and exits. A launched NF is then started again (a rolling restart); a
// replicated instance's successor continues from its state file.
func (m *Manager) StopNF(id uint16) error {
	m.mu.Lock()
	var nf *nfProc
	if int(id) < len(m.nfs) {
		nf = m.nfs[id]
	}
	m.mu.Unlock()
	if nf == nil || nf.dead {
		return fmt.Errorf("stop NF: no NF with instance %d", id)
	}
	nf.send(ctlmsg.Stop{Reason: "operator"})
	return nil
}
