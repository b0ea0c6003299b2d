package manager

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/reinforce-nfv/reinforce/manager/config"
	"github.com/reinforce-nfv/reinforce/port"
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
	Routes   uint64 `json:"routes_version"` // the routes version the NF runs
}

// ManagerDrops are the manager's drops by reason, and NF events.
type ManagerDrops struct {
	RXNoNF, RXRingFull, TXNoNF, TXBadMeta, TXRingFull, TXPortDrop, BadHandovers uint64
	NFDeaths, NFRegistrations                                                   uint64
}

// PoolStats describe the packet pool.
type PoolStats struct {
	Slots int `json:"slots"`
	Free  int `json:"free"`
}

// Snapshot reads every counter. Safe from any goroutine.
func (m *Manager) Snapshot() Snapshot {
	s := Snapshot{Time: m.opt.Now()}
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
			Running: nf.running, Routes: m.pool.OwnerConfigVersion(nf.owner)})
	}
	m.mu.Unlock()
	st := &m.Stats
	s.Drops = ManagerDrops{RXNoNF: st.RXNoNF.Load(), RXRingFull: st.RXRingFull.Load(), TXNoNF: st.TXNoNF.Load(), TXBadMeta: st.TXBadMeta.Load(),
		TXRingFull: st.TXRingFull.Load(), TXPortDrop: st.TXPortDrop.Load(), BadHandovers: st.BadHandovers.Load(),
		NFDeaths: st.NFDeaths.Load(), NFRegistrations: st.NFRegistrations.Load()}
	s.Pool = PoolStats{Slots: m.pool.Capacity(), Free: m.pool.FreeCount()}
	return s
}

// routineStats prints stats every StatsInterval until Close sets stopping.
func (m *Manager) routineStats() {
	defer m.loopWG.Done()
	var out io.Writer
	switch m.cfg.Manager.StatsOut {
	case config.StatsStdout:
		out = os.Stdout
		if m.opt.Stdout != nil {
			out = m.opt.Stdout
		}
	case config.StatsStderr:
		out = os.Stderr
	}
	prev := m.Snapshot()
	tick := time.NewTicker(m.cfg.Manager.StatsInterval)
	defer tick.Stop()
	for !m.stopping.Load() {
		select {
		case <-tick.C:
		case <-time.After(100 * time.Millisecond):
			continue // notice stopping promptly
		}
		cur := m.Snapshot()
		if out != nil {
			io.WriteString(out, formatStats(prev, cur))
		}
		prev = cur
	}
}

// formatStats renders one period: totals and rates per port and per NF.
func formatStats(prev, cur Snapshot) string {
	dt := cur.Time.Sub(prev.Time).Seconds()
	if dt <= 0 {
		dt = 1
	}
	rate := func(a, b uint64) float64 { return float64(b-a) / dt }
	var b strings.Builder
	b.WriteString("PORTS\n-----\n")
	for i, p := range cur.Ports {
		var q port.Stats
		if i < len(prev.Ports) {
			q = prev.Ports[i].Stats
		}
		fmt.Fprintf(&b, "Port %d (%s): rx %d (%.0f pps)  tx %d (%.0f pps)  tx_drop %d\n",
			p.ID, p.Name, p.RxPkts, rate(q.RxPkts, p.RxPkts), p.TxPkts, rate(q.TxPkts, p.TxPkts), p.TxDrops)
	}
	b.WriteString("NFS\n---\n")
	for _, n := range cur.NFs {
		var q NFStats
		for _, o := range prev.NFs {
			if o.Instance == n.Instance && o.PID == n.PID {
				q = o
			}
		}
		fmt.Fprintf(&b, "NF %d %-14s svc %2d: rx %d (%.0f pps)  tx %d (%.0f pps)  rx_drop %d  tx_drop %d  out %d  tonf %d  drop %d  next %d\n",
			n.Instance, n.Tag, n.Service, n.RX, rate(q.RX, n.RX), n.TX, rate(q.TX, n.TX), n.RXDrop, n.TXDrop,
			n.ActOut, n.ActToNF, n.ActDrop, n.ActNext)
	}
	d := cur.Drops
	fmt.Fprintf(&b, "MANAGER: no_nf %d  rx_ring_full %d  bad_meta %d  tx_ring_full %d  port_drop %d  bad_handover %d  nf_deaths %d  pool free %d/%d\n\n",
		d.RXNoNF+d.TXNoNF, d.RXRingFull, d.TXBadMeta, d.TXRingFull, d.TXPortDrop, d.BadHandovers, d.NFDeaths, cur.Pool.Free, cur.Pool.Slots)
	return b.String()
}
