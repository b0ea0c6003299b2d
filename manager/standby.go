package manager

// Local standbys and retained transactional NFs (RESILIENCY.md, "Local
// standby"; docs/state.md). An NF that runs transactions keeps everything
// it held when it dies: its owner stays active, its instance stays in the
// registry and the routes, so RX keeps filling its ring (overflow is
// counted), and flows keep their instance. Whoever takes over adopts the
// owner and recovers the state file's last transaction:
//
//   - a standby: a second process registered with Standby and the active's
//     instance ID, attached and idle, woken directly by the active's death
//     (its own pidfd; the manager is not in that path) — the manager only
//     updates its tables (promote);
//   - a restart with the same instance ID (adopt), within the grace period;
//   - nobody: at the grace period's end the manager reclaims everything and
//     deletes the state file.

import (
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reinforce-nfv/reinforce/ctlmsg"
	"github.com/reinforce-nfv/reinforce/internal/proc"
	"github.com/reinforce-nfv/reinforce/manager/config"
	"github.com/reinforce-nfv/reinforce/manager/onvmstats"
	"github.com/reinforce-nfv/reinforce/shm"
	"github.com/reinforce-nfv/reinforce/shm/state"
)

// takeOver handles a registration for an instance that a dead transactional
// NF holds (a restart, or a standby arriving after the death): the new
// process adopts the dead one's owner, rings and place in the registry.
// mu held.
func (m *Manager) takeOver(c *net.UnixConn, pid, pidfd int, req ctlmsg.Register, dead *nfProc) (*nfProc, ctlmsg.RegisterReply, error) {
	if err := m.pool.Adopt(dead.owner, pid); err != nil {
		unix.Close(pidfd)
		return nil, ctlmsg.RegisterReply{Status: ctlmsg.StatusNoIDs, Message: err.Error()}, err
	}
	nf := dead.successor(c, pid, pidfd, req)
	nf.adopted = true
	m.nfs[nf.id] = nf
	m.Stats.Takeovers.Add(1)
	m.log.Warn().Str("nf", nf.name()).Int("pid", pid).Bool("standby", req.Standby).Msg("NF took over a dead instance's rings and state")
	m.ctlWG.Add(1)
	go m.routineWatch(nf)
	m.markAttached(pid)
	return nf, m.registerReply(nf), nil
}

// successor is a new process for dead's instance: same ID, owner and rings.
func (dead *nfProc) successor(c *net.UnixConn, pid, pidfd int, req ctlmsg.Register) *nfProc {
	return &nfProc{id: dead.id, service: dead.service, tag: req.Tag, pid: pid, pidfd: pidfd, conn: c,
		owner: dead.owner, fromRX: dead.fromRX, fromTX: dead.fromTX, toMgr: dead.toMgr,
		gone: make(chan struct{}), transactional: req.Transactional}
}

// startStandby registers a standby for the active with the requested
// instance ID. mu held.
func (m *Manager) startStandby(c *net.UnixConn, pid, pidfd int, req ctlmsg.Register) (*nfProc, ctlmsg.RegisterReply, error) {
	id := InstanceID(req.Instance)
	refuse := func(why string) (*nfProc, ctlmsg.RegisterReply, error) {
		unix.Close(pidfd)
		return nil, ctlmsg.RegisterReply{Status: ctlmsg.StatusNoIDs, Message: why}, fmt.Errorf("standby for instance %d: %s", id, why)
	}
	if int(id) <= 0 || int(id) >= ctlmsg.MaxNFs {
		return refuse("a standby names the active's instance ID (-n)")
	}
	active := m.nfs[id]
	switch {
	case active == nil:
		return refuse("no NF with this instance ID to stand by for")
	case !active.transactional || !req.Transactional:
		return refuse("standbys need transactions (REINFORCE_TX=off on either process)")
	case active.service != ServiceID(req.Service):
		return refuse(fmt.Sprintf("the active is service %d, the standby asked for %d", active.service, req.Service))
	case active.dead:
		return m.takeOver(c, pid, pidfd, req, active) // nothing to wait for
	case m.standbys[id] != nil:
		return refuse("this instance already has a standby")
	}
	sb := active.successor(c, pid, pidfd, req)
	sb.standby = true
	m.standbys[id] = sb
	m.ctlWG.Add(1)
	go m.routineWatch(sb)
	m.markAttached(pid)
	rep := m.registerReply(sb)
	rep.ActivePID, rep.ActiveStart = active.pid, proc.StartTime(active.pid)
	m.log.Info().Str("nf", sb.name()).Int("pid", pid).Int("active_pid", active.pid).Msg("standby attached")
	return sb, rep, nil
}

// registerReply is the reply that gives nf its instance, region and rings.
func (m *Manager) registerReply(nf *nfProc) ctlmsg.RegisterReply {
	return ctlmsg.RegisterReply{Status: ctlmsg.StatusStarting, Instance: uint16(nf.id), RegionPath: m.region.Path(),
		RegionName: m.cfg.Manager.Name, Burst: m.cfg.Manager.Burst, SharedCPU: m.cfg.Manager.SharedCPU,
		Owner: uint16(nf.owner), Rings: []ctlmsg.RingRef{
			{Role: ctlmsg.RoleRX, Peer: "manager-rx", Index: nf.fromRX},
			{Role: ctlmsg.RoleRX, Peer: "manager-tx", Index: nf.fromTX},
			{Role: ctlmsg.RoleTX, Peer: "manager", Index: nf.toMgr},
		}, Ports: m.portRefs()}
}

// portRefs lists the manager's ports for NFs: a driver that knows its MAC
// address says so; others get the locally administered 02:00:00:00:00:<id>.
func (m *Manager) portRefs() []ctlmsg.PortRef {
	var refs []ctlmsg.PortRef
	for id, p := range m.ports {
		if p == nil {
			continue
		}
		mac := net.HardwareAddr{0x02, 0, 0, 0, byte(id >> 8), byte(id)}
		if hw, ok := p.(interface{ HardwareAddr() net.HardwareAddr }); ok && len(hw.HardwareAddr()) == 6 {
			mac = hw.HardwareAddr()
		}
		refs = append(refs, ctlmsg.PortRef{ID: uint16(id), MAC: mac.String()})
	}
	return refs
}

// activeDied decides what a dead active's instance becomes: its standby's
// (promote), retained for a taker, or gone (false: clean up as before).
// mu held.
func (m *Manager) activeDied(nf *nfProc, seen time.Time) (kept bool) {
	if m.shutdown.Load() || !nf.transactional || nf.ended.Load() || nf.held {
		return false // a clean stop (it said Stopping and deleted its state): nothing to take over
	}
	if sb := m.standbys[nf.id]; sb != nil && !sb.ended.Load() {
		delete(m.standbys, nf.id)
		m.pool.Adopt(nf.owner, sb.pid)
		sb.standby = false
		sb.running = true
		m.nfs[nf.id] = sb
		m.Stats.Failovers.Add(1)
		m.log.Warn().Str("nf", nf.name()).Int("dead_pid", nf.pid).Int("standby_pid", sb.pid).
			Dur("noticed_after", time.Since(seen)).Msg("failover: the standby takes over")
		m.RecordEvent(onvmstats.Event{Message: "NF Failover", Source: []onvmstats.Field{
			onvmstats.NumField("instance_id", int64(nf.id)), onvmstats.NumField("dead_pid", int64(nf.pid)),
			onvmstats.NumField("standby_pid", int64(sb.pid))}})
		return true
	}
	if m.cfg.Manager.DeadNFPolicy != config.DeadNFRetain {
		return false
	}
	nf.dead = true
	o, id, grace := nf.owner, nf.id, m.cfg.Manager.DeadNFGrace
	time.AfterFunc(grace, func() { m.dropDead(o, id, nf) })
	return true
}

// dropDead ends a retained NF's grace period: if nobody took its instance
// over, everything it held is reclaimed and its state file deleted.
func (m *Manager) dropDead(o shm.OwnerID, id InstanceID, nf *nfProc) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || m.nfs[id] != nf {
		return // taken over (or we are gone)
	}
	m.reg.Stop(id)
	m.nfs[id] = nil
	m.publishLocked()
	n, _ := m.pool.Reclaim(o, shm.ReclaimOptions{})
	if !m.rep.ownsFile(id) { // a replicated instance's file is the chain's
		os.Remove(state.PathFor(m.region.Path(), m.region.Huge(), uint16(id)))
	}
	m.log.Warn().Str("nf", nf.name()).Int("slots", n).Msg("no NF took over a dead instance within the grace period: its packets and state are dropped")
}

// routineHangWatch kills NFs whose loop stopped moving while awake or while
// work waits for them (RESILIENCY.md: hang detection). Recovery starts from
// the death, as for any other: never from the timeout alone. An NF whose
// loop has not started yet is not judged, and one that is runnable (state
// R: perhaps only waiting for a CPU, with 127 NFs on 2) gets three times the
// timeout: a spinning, stuck NF is still caught. An NF is killed once.
func (m *Manager) routineHangWatch() {
	defer m.loopWG.Done()
	limit := m.cfg.Manager.HangTimeout
	if limit <= 0 {
		return
	}
	type seen struct {
		iter   uint64
		since  time.Time
		pid    int
		killed bool
	}
	last := map[InstanceID]seen{}
	rings := map[uint32]*shm.Ring{}
	pending := func(idx uint32) bool {
		r := rings[idx]
		if r == nil {
			var err error
			if r, err = m.region.OpenRing(idx); err != nil {
				return false
			}
			rings[idx] = r
		}
		return r.Count() > 0
	}
	tick := time.NewTicker(max(limit/2, time.Millisecond))
	defer tick.Stop()
	for range tick.C {
		if m.stopping.Load() {
			return
		}
		now := time.Now()
		type suspect struct {
			nf    *nfProc
			iter  uint64
			stuck time.Duration
		}
		var suspects []suspect
		m.mu.Lock()
		for id, nf := range m.nfs {
			if nf == nil || nf.dead || !nf.running || nf.ended.Load() {
				delete(last, InstanceID(id))
				continue
			}
			iter, sleeping := m.pool.OwnerLoop(nf.owner)
			s, ok := last[nf.id]
			if !ok || s.iter != iter || s.pid != nf.pid || iter == 0 {
				last[nf.id] = seen{iter: iter, since: now, pid: nf.pid}
				continue
			}
			if s.killed {
				continue // killed already: its death is on its way
			}
			stuck := now.Sub(s.since)
			// Work waits for it in any ring it consumes: the manager's and
			// the direct ones from upstream NFs.
			busy := pending(nf.fromRX) || pending(nf.fromTX)
			for e, idx := range m.edges {
				if !busy && e.cons == nf.owner {
					busy = pending(idx)
				}
			}
			if stuck < limit || (sleeping && !busy) {
				continue
			}
			suspects = append(suspects, suspect{nf: nf, iter: iter, stuck: stuck})
		}
		m.mu.Unlock()
		// Outside the lock: reading /proc/PID/stat waits for the process's
		// address space lock, which an exiting process holds while it is
		// torn down.
		for _, sp := range suspects {
			if sp.stuck < 3*limit && proc.State(sp.nf.pid) == 'R' {
				continue
			}
			m.Stats.Hangs.Add(1)
			m.log.Warn().Str("nf", sp.nf.name()).Int("pid", sp.nf.pid).Dur("stuck_for", sp.stuck).Msg("NF hung: killing it")
			sp.nf.kill()
			last[sp.nf.id] = seen{iter: sp.iter, since: now, pid: sp.nf.pid, killed: true}
		}
	}
}
