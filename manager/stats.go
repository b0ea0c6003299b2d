package manager

import (
	"encoding/json"
	"io"
	"os"
	"time"

	"github.com/shirou/gopsutil/v3/process"

	"github.com/reinforce-nfv/reinforce/ctlmsg"
	"github.com/reinforce-nfv/reinforce/manager/config"
	"github.com/reinforce-nfv/reinforce/manager/onvmstats"
	"github.com/reinforce-nfv/reinforce/port"
	"github.com/reinforce-nfv/reinforce/replicator/arbiter"
	"github.com/reinforce-nfv/reinforce/replicator/bfd"
	"github.com/reinforce-nfv/reinforce/shm/state"
)

// Snapshot is the manager's counters at one moment, for stats output and
// the control socket's "stats" request.
type Snapshot struct {
	Time  time.Time    `json:"time"`
	Ports []PortStats  `json:"ports"`
	NFs   []NFStats    `json:"nfs"`
	Drops ManagerDrops `json:"drops"`
	Pool  PoolStats    `json:"pool"`
	// Routes is the latest routes version; an NF whose Routes equals it has
	// applied every change.
	Routes uint64 `json:"routes_version"`
	// Manager is the manager process's own CPU and memory (its RSS includes
	// the pages of the region it has touched).
	Manager ProcStats `json:"manager"`
	// Replication is each replicated chain's status and counters
	// (docs/replicator.md).
	Replication []RepStats `json:"replication,omitempty"`
	// Arbiter is the chain-level failover's state and counters
	// (docs/arbiter.md): this manager's arbiter client or server; nil
	// without an [arbiter] table.
	Arbiter *ArbiterSnapshot `json:"arbiter,omitempty"`
}

// ArbiterSnapshot is the arbiter client's state (a member manager,
// [arbiter] address) or the arbiter server's (the ingress, [arbiter]
// serve), as of the driver's last event.
type ArbiterSnapshot struct {
	Client *ArbiterClientStats `json:"client,omitempty"`
	Server *ArbiterServerStats `json:"server,omitempty"`
}

// ArbiterClientStats is a member manager's view of the arbiter.
type ArbiterClientStats struct {
	Member string `json:"member"`
	// Scheduling is the BFD driver thread's policy, e.g. "SCHED_FIFO 10"
	// or "SCHED_OTHER (SCHED_FIFO refused: ...)".
	Scheduling string                 `json:"scheduling"`
	BFDState   string                 `json:"bfd_state"`
	BFD        bfd.Counters           `json:"bfd"`
	Wire       ArbiterWire            `json:"wire"`
	Counters   arbiter.MemberCounters `json:"counters"`
	Chains     []ArbiterMemberChain   `json:"chains"`
}

// ArbiterMemberChain is one chain as its member sees it.
type ArbiterMemberChain struct {
	Chain string `json:"chain"`
	Role  string `json:"role"`
	Epoch uint64 `json:"epoch"`
	// LeaseLeftUs is how long the arbiter's lease still runs (0: none).
	LeaseLeftUs int64 `json:"lease_left_us"`
	// StandbyReady: this member tells the arbiter it is a standby that
	// has the primary's state at Epoch.
	StandbyReady bool `json:"standby_ready"`
}

// ArbiterServerStats is the arbiter's state.
type ArbiterServerStats struct {
	Scheduling string              `json:"scheduling"`
	Counters   arbiter.Counters    `json:"counters"`
	Chains     []ArbiterChainState `json:"chains"`
	Members    []ArbiterMemberLink `json:"members"`
	Wire       ArbiterWire         `json:"wire"`
}

// ArbiterChainState is one chain as the arbiter sees it.
type ArbiterChainState struct {
	Chain   string `json:"chain"`
	Epoch   uint64 `json:"epoch"`
	Primary string `json:"primary"`
	Phase   string `json:"phase"` // normal, yielding, failover
	// The primary acknowledged its promotion, the standby its demotion,
	// at Epoch.
	PrimaryAcked bool `json:"primary_acked"`
	StandbyAcked bool `json:"standby_acked"`
	PrimaryLive  bool `json:"primary_live"`
	StandbyLive  bool `json:"standby_live"`
	// StandbyReady: the arbiter may fail over to the standby.
	StandbyReady bool `json:"standby_ready"`
}

// ArbiterMemberLink is the arbiter's BFD session with one member.
type ArbiterMemberLink struct {
	Member   string       `json:"member"`
	Addr     string       `json:"addr"` // where it was last heard from ("" before)
	BFDState string       `json:"bfd_state"`
	BFD      bfd.Counters `json:"bfd"`
}

// ArbiterWire counts what the arbiter driver's socket received and
// refused, and its thread's pauses (arbiter.WireCounters).
type ArbiterWire struct {
	Datagrams  uint64 `json:"datagrams"`
	Malformed  uint64 `json:"malformed"`
	AuthFailed uint64 `json:"auth_failed"`
	Replayed   uint64 `json:"replayed"`
	Unknown    uint64 `json:"unknown"`
	StepErrors uint64 `json:"step_errors"`
	SendErrors uint64 `json:"send_errors"`
	// Pauses: the driver's thread was held off the CPU for half a
	// detection time or more; MaxPauseUs the longest.
	Pauses     uint64 `json:"pauses"`
	MaxPauseUs int64  `json:"max_pause_us"`
	// NeighborDowns: members' sessions that went down by the member's
	// signal (server only).
	NeighborDowns uint64 `json:"neighbor_downs"`
}

// PortStats are one port's counters.
type PortStats struct {
	ID   uint16 `json:"id"`
	Name string `json:"name"`
	port.Stats
}

// NFStats are one NF's counters (ONVM's onvm_nf stats).
type NFStats struct {
	Instance uint16 `json:"instance"`
	Service  uint16 `json:"service"`
	Tag      string `json:"tag"`
	PID      int    `json:"pid"`
	RX       uint64 `json:"rx"`
	TX       uint64 `json:"tx"`
	RXDrop   uint64 `json:"rx_drop"`
	TXDrop   uint64 `json:"tx_drop"`
	ActOut   uint64 `json:"act_out"`
	ActToNF  uint64 `json:"act_tonf"`
	ActDrop  uint64 `json:"act_drop"`
	ActNext  uint64 `json:"act_next"`
	Bad      uint64 `json:"bad_handovers"`
	Running  bool   `json:"running"`
	// Dead: the process died and the instance waits for a taker (a
	// transactional NF's standby or restart). Protected: a standby waits.
	Dead      bool `json:"dead,omitempty"`
	Protected bool `json:"protected"`
	// Held: a remote standby chain's NF, idle until the chain is promoted here.
	Held bool `json:"held,omitempty"`
	// Tx are the NF's transaction counters from its state file (absent for
	// an NF without transactions).
	Tx     *TxStats  `json:"txn,omitempty"`
	Routes uint64    `json:"routes_version"` // the routes version the NF runs
	Proc   ProcStats `json:"proc"`
}

// TxStats are an NF's burst-transaction counters (docs/state.md).
type TxStats struct {
	Commits      uint64 `json:"commits"`
	Rollbacks    uint64 `json:"rollbacks"`
	RollForwards uint64 `json:"roll_forwards"`
	Redelivered  uint64 `json:"redelivered"`
	Takeovers    uint64 `json:"takeovers"`
	// TakeoverUs is the last takeover's time from the taker seeing the
	// death to its first commit, in microseconds (0 if none finished).
	TakeoverUs float64 `json:"takeover_us"`
}

// ProcStats are a process's CPU and memory use, read from /proc with
// gopsutil. Zero when the process could not be read (it just exited).
type ProcStats struct {
	CPUPercent float64 `json:"cpu_percent"` // since the process started, 100 = one CPU
	RSSBytes   uint64  `json:"rss_bytes"`
}

// ManagerDrops are the manager's drops by reason, and NF events.
type ManagerDrops struct {
	RXNoNF, RXRingFull, TXNoNF, TXBadMeta, TXRingFull, TXPortDrop, BadHandovers uint64
	NFDeaths, NFRegistrations                                                   uint64
	Failovers, Takeovers, Hangs                                                 uint64
	Promotions, Demotions, Redirects                                            uint64
	HeldInputDrops                                                              uint64
	VIPAnnouncements                                                            uint64
	// BucketFallbacks counts buckets of the old primary's tables that a
	// promotion here could not install: their instance does not run here,
	// so their flows go to another instance, without their state.
	BucketFallbacks uint64
}

// PoolStats describe the packet pool.
type PoolStats struct {
	Slots int `json:"slots"`
	Free  int `json:"free"`
}

// Snapshot reads every counter. Safe from any goroutine.
func (m *Manager) Snapshot() Snapshot {
	s := Snapshot{Time: m.opt.Now()}
	if m.rep != nil {
		for _, c := range m.rep.chains {
			s.Replication = append(s.Replication, c.stats())
		}
	}
	for id, p := range m.ports {
		if p != nil {
			s.Ports = append(s.Ports, PortStats{ID: uint16(id), Name: p.Name(), Stats: p.Stats()})
		}
	}
	m.mu.Lock()
	s.Routes = m.routesVer
	for _, nf := range m.nfs {
		if nf == nil {
			continue
		}
		c := m.pool.OwnerCounters(nf.owner)
		_, _, bad := m.pool.OwnerStats(nf.owner)
		s.NFs = append(s.NFs, NFStats{Instance: uint16(nf.id), Service: uint16(nf.service), Tag: nf.tag, PID: nf.pid,
			RX: c.RX.Load(), TX: c.TX.Load(), RXDrop: c.RXDrop.Load(), TXDrop: c.TXDrop.Load(),
			ActOut: c.ActOut.Load(), ActToNF: c.ActToNF.Load(), ActDrop: c.ActDrop.Load(), ActNext: c.ActNext.Load(), Bad: bad,
			Running: nf.running && !nf.dead, Routes: m.pool.OwnerConfigVersion(nf.owner),
			Dead: nf.dead, Protected: m.standbys[nf.id] != nil, Held: nf.held})
	}
	m.mu.Unlock()
	for i := range s.NFs {
		s.NFs[i].Proc = procStats(int32(s.NFs[i].PID))
		if st, err := state.ReadStats(state.PathFor(m.region.Path(), m.region.Huge(), s.NFs[i].Instance)); err == nil {
			tx := &TxStats{Commits: st.Commits, Rollbacks: st.Rollbacks, RollForwards: st.RollForwards,
				Redelivered: st.Redelivered, Takeovers: st.Takeovers}
			if st.FirstCommitNs > st.WokeNs && st.WokeNs != 0 {
				tx.TakeoverUs = float64(st.FirstCommitNs-st.WokeNs) / 1e3
			}
			s.NFs[i].Tx = tx
		}
	}
	s.Manager = procStats(int32(os.Getpid()))
	st := &m.Stats
	s.Drops = ManagerDrops{RXNoNF: st.RXNoNF.Load(), RXRingFull: st.RXRingFull.Load(), TXNoNF: st.TXNoNF.Load(), TXBadMeta: st.TXBadMeta.Load(),
		TXRingFull: st.TXRingFull.Load(), TXPortDrop: st.TXPortDrop.Load(), BadHandovers: st.BadHandovers.Load(),
		NFDeaths: st.NFDeaths.Load(), NFRegistrations: st.NFRegistrations.Load(),
		Failovers: st.Failovers.Load(), Takeovers: st.Takeovers.Load(), Hangs: st.Hangs.Load(),
		Promotions: st.Promotions.Load(), Demotions: st.Demotions.Load(), Redirects: st.Redirects.Load(), HeldInputDrops: st.HeldInputDrops.Load(),
		VIPAnnouncements: st.VIPAnnouncements.Load(), BucketFallbacks: m.rep.bucketFallbacks()}
	s.Pool = PoolStats{Slots: m.pool.Capacity(), Free: m.pool.FreeCount()}
	s.Arbiter = m.arbiterSnapshot()
	return s
}

// routineStats prints ONVM's stats (onvm_stats.c, ONVM-COMPAT.md §1.11) every
// StatsInterval: the console table at -v 1 or 2, the raw CSV at -v 3 (its
// header once at start). It stops when Close sets stopping. Unlike ONVM it
// does not wait 5 s before the first period.
func (m *Manager) routineStats() {
	defer m.loopWG.Done()
	mc := m.cfg.Manager
	var out io.Writer
	switch mc.StatsOut {
	case config.StatsStdout:
		out = os.Stdout
		if m.opt.Stdout != nil {
			out = m.opt.Stdout
		}
	case config.StatsStderr:
		out = os.Stderr
	}
	ren := onvmstats.New(onvmstats.Options{Verbosity: mc.Verbosity, SharedCore: mc.SharedCPU,
		PeriodSeconds: int(mc.StatsInterval / time.Second), Stdout: mc.StatsOut == config.StatsStdout})
	if out != nil && mc.Verbosity >= onvmstats.LevelRaw {
		out.Write(onvmstats.RawHeader())
	}
	tick := time.NewTicker(mc.StatsInterval)
	defer tick.Stop()
	for !m.stopping.Load() {
		select {
		case <-tick.C:
		case <-m.stopped:
			continue // Close: the loop condition ends it
		}
		if out != nil {
			out.Write(ren.Console(onvmTick(m.Snapshot())))
		}
		if m.web != nil {
			m.publishWeb(ren, onvmTick(m.Snapshot()))
		}
	}
}

// onvmTick converts a snapshot to the ONVM renderer's input: ports in
// port-ID order (ONVM's portmask order), NFs as ONVM counts them.
func onvmTick(s Snapshot) onvmstats.Tick {
	t := onvmstats.Tick{Time: s.Time}
	for i, p := range s.Ports {
		t.Ports = append(t.Ports, onvmstats.Port{Index: i, ID: p.ID, RX: p.RxPkts, TX: p.TxPkts})
	}
	for _, n := range s.NFs {
		t.NFs = append(t.NFs, onvmstats.NF{Tag: n.Tag, Instance: n.Instance, Service: n.Service,
			RX: n.RX, TX: n.TX, RXDrop: n.RXDrop, TXDrop: n.TXDrop, ActOut: n.ActOut, ActToNF: n.ActToNF,
			ActDrop: n.ActDrop, ActNext: n.ActNext})
	}
	return t
}

// procStats reads a process's CPU and memory; it is for the stats period
// and the control socket, never the data path.
func procStats(pid int32) ProcStats {
	p, err := process.NewProcess(pid)
	if err != nil {
		return ProcStats{}
	}
	var ps ProcStats
	if c, err := p.CPUPercent(); err == nil {
		ps.CPUPercent = c
	}
	if mem, err := p.MemoryInfo(); err == nil {
		ps.RSSBytes = mem.RSS
	}
	return ps
}

// FetchSnapshot asks the manager listening on the control socket sock for
// its Snapshot (the "stats" command).
func FetchSnapshot(sock string, timeout time.Duration) (Snapshot, error) {
	var s Snapshot
	resp, err := ctlmsg.Call(sock, ctlmsg.Request{Cmd: "stats"}, timeout)
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(resp.Data, &s)
}
