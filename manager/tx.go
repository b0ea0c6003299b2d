package manager

// The TX path, stage by stage (routineTX, one goroutine, owner ownerTX):
//
//	for each running NF: Peek its ring to the manager (ownership checked)
//	→ check every action, destination and chain index read from the region
//	  (an NF is never trusted: bad ones are counted and dropped)
//	→ OUT: per-port queue; TONF/NEXT: the instance's ring from TX
//	→ Release the NF's ring, then TxBurst ports / Send to NFs, free the rest
//	nothing to do → spin briefly, then sleep on bellTX (NFs ring it when
//	  they publish, the control plane when routes change, Close when it
//	  stops), at most txSafetyNet

import (
	"errors"
	"time"

	"github.com/reinforce-nfv/reinforce/ctlmsg"
	"github.com/reinforce-nfv/reinforce/port"
	"github.com/reinforce-nfv/reinforce/shm"
)

const (
	// txPollSpin is how long the TX loop polls before sleeping: about one
	// wake-up's cost (see nflib's pollSpin).
	txPollSpin = 50 * time.Microsecond
	// txSharedSpins is how often it polls in shared-core mode instead,
	// where spinning takes the CPU from an NF that has work.
	txSharedSpins = 64
	// txSafetyNet bounds a sleep: an NF is never trusted, and one that
	// writes its ring's indices without ringing (a scribble) must still be
	// seen and contained. Once a second costs nothing measurable.
	txSafetyNet = time.Second
)

// routineTX runs the TX path until Close sets stopping and rings bellTX.
func (m *Manager) routineTX() {
	defer m.loopWG.Done()
	m.log.Debug().Msg("tx loop started")
	defer m.log.Debug().Msg("tx loop stopped")
	c, r := m.txCache, m.region
	burst := m.cfg.Manager.Burst
	var (
		in       [shm.MaxBurst]shm.Slot
		drops    [shm.MaxBurst]shm.Slot
		portQ    [maxPorts]instQ
		nfQ      [ctlmsg.MaxNFs]instQ
		touchedP [shm.MaxBurst]uint16
		touchedN [shm.MaxBurst]InstanceID
		backlog  [maxPorts]txBacklog // frames ports refused, retried first (txbacklog.go)
		owed     int                 // frames in backlog, over every port
	)
	defer func() { // shutting down: what ports still owe is dropped
		for i := range backlog {
			m.Stats.TXPortDrop.Add(uint64(len(backlog[i].s)))
			for k := 0; k < len(backlog[i].s); {
				k += c.Free(backlog[i].s[k:])
			}
		}
	}()
	rings := ringHandles{r: make([]*shm.Ring, r.NumRings()), m: r}
	var dp *dataPlane
	ready := func() bool {
		if m.stopping.Load() || m.dp.Load() != dp || owed > 0 || (m.rep != nil && m.rep.releasable()) || m.vip.owed.Load() != 0 {
			return true
		}
		for _, src := range dp.txRings {
			if ring := rings.get(src.ring); ring != nil && ring.HasWork() {
				return true
			}
		}
		return false
	}
	w := shm.Waiter{Bell: m.txBell, SpinFor: txPollSpin, Max: txSafetyNet}
	if m.cfg.Manager.SharedCPU {
		w.SpinFor, w.Spins, w.Yields = 0, txSharedSpins, 2
	}
	// wakesRX marks the ports whose TX frames come back on their RX (loop):
	// the RX loop may sleep with no time limit on them, so TX rings it.
	var wakesRX [maxPorts]bool
	var wakesFor *dataPlane
	for !m.stopping.Load() {
		dp = m.dp.Load()
		if dp != wakesFor {
			wakesFor = dp
			for i := range wakesRX {
				_, wakesRX[i] = dp.portByID[i].(*port.Loop)
			}
		}
		got := 0
		if m.vip.owed.Load() != 0 {
			got += m.sendVIP(c, dp) // virtual address announcements at a promotion (vip.go)
		}
		if m.rep != nil {
			got += m.rep.flushLatches(c, dp) // output whose state the standby acknowledged
		}
		if owed > 0 {
			owed = 0
			for pid := range backlog {
				b := &backlog[pid]
				if len(b.s) == 0 {
					continue
				}
				if p := dp.portByID[pid]; p != nil {
					got += b.flush(c, p)
				} else { // the port is gone
					m.Stats.TXPortDrop.Add(uint64(len(b.s)))
					for k := 0; k < len(b.s); {
						k += c.Free(b.s[k:])
					}
					b.s = b.s[:0]
				}
				owed += len(b.s)
			}
		}
		for _, tsrc := range dp.txRings {
			src := tsrc.id
			ring := rings.get(tsrc.ring)
			if ring == nil {
				continue
			}
			bad := c.Bad
			n, err := c.Peek(ring, in[:burst])
			if err != nil {
				m.contain(src, err)
				ring.Sync()
				continue
			}
			if c.Bad != bad {
				m.Stats.BadHandovers.Add(c.Bad - bad)
			}
			got += n
			nd, np, nn := 0, 0, 0
			for i := 0; i < n; i++ {
				s := in[i]
				md := r.Meta(s)
				act, dest := md.Action, md.Destination
				if act == shm.ActionNext {
					act, dest = nextHop(dp, md)
				}
				switch {
				case act == shm.ActionOut && dest < maxPorts && dp.portByID[dest] != nil:
					if m.rep != nil && m.rep.holdOutput(c, s, md.Chain, dest) {
						continue // latched until its transaction is acknowledged (replicate.go)
					}
					q := &portQ[dest]
					if q.n == 0 {
						touchedP[np] = dest
						np++
					}
					q.buf[q.n] = s
					q.n++
				case act == shm.ActionToNF && int(dest) < ctlmsg.MaxServices && dp.svc[dest].ok:
					id := dp.svc[dest].buckets[ctlmsg.BucketIndex(md.FlowHash)]
					if md.MetaFlags&shm.FlagMessage != 0 {
						id = dp.svc[dest].first
					}
					q := &nfQ[id]
					if q.n == 0 {
						touchedN[nn] = id
						nn++
					}
					q.buf[q.n] = s
					q.n++
				case act == shm.ActionDrop:
					drops[nd] = s
					nd++
				case act == shm.ActionToNF && int(dest) < ctlmsg.MaxServices:
					m.Stats.TXNoNF.Add(1) // a valid service with no instance (yet)
					drops[nd] = s
					nd++
				default: // garbage action, destination or chain index
					m.Stats.TXBadMeta.Add(1)
					drops[nd] = s
					nd++
				}
			}
			ring.Release() // before any Free
			for _, pid := range touchedP[:np] {
				q := &portQ[pid]
				b := &backlog[pid]
				k := 0
				if len(b.s) == 0 { // else these go after what the port already owes
					k = dp.portByID[pid].TxBurst(c, q.buf[:q.n])
				}
				if k > 0 && wakesRX[pid] {
					m.rxBell.Ring()
				}
				if k < q.n {
					// Refused (a full kernel socket buffer): kept in order
					// and retried first, not dropped.
					over := b.add(q.buf[k:q.n])
					owed += q.n - k - len(over)
					m.Stats.TXPortDrop.Add(uint64(len(over)))
					nd += copy(drops[nd:], over)
				}
				q.n = 0
			}
			for _, id := range touchedN[:nn] {
				nd += sendQ(c, dp.nf[id].ok, rings.get(dp.nf[id].fromTX), &nfQ[id], drops[nd:], &m.Stats.TXRingFull)
			}
			for k := 0; k < nd && !m.stopping.Load(); {
				k += c.Free(drops[k:nd])
			}
		}
		if got == 0 {
			w.Wait(ready)
		}
	}
}

// nextHop resolves ActionNext for a packet handed to the manager, with every
// field read from the region checked (ONVM: onvm_sc_next_action).
func nextHop(dp *dataPlane, md *shm.Meta) (act uint8, dest uint16) {
	if int(md.Chain) >= len(dp.chains) {
		return 0xFF, 0
	}
	ch := &dp.chains[md.Chain]
	if i := int(md.ChainIndex); i < len(ch.Services) {
		md.ChainIndex++
		md.Action, md.Destination = shm.ActionToNF, ch.Services[i]
		return shm.ActionToNF, ch.Services[i]
	}
	if ch.OutPort < 0 {
		return shm.ActionDrop, 0
	}
	return shm.ActionOut, uint16(ch.OutPort)
}

// contain isolates an NF that corrupted a ring it produces: it is killed
// (its watcher then reclaims what it held); the manager and other NFs go on.
func (m *Manager) contain(id InstanceID, err error) {
	var ce *shm.CorruptError
	if !errors.As(err, &ce) {
		return
	}
	m.mu.Lock()
	nf := m.nfs[id]
	m.mu.Unlock()
	if nf != nil {
		m.log.Warn().Str("nf", nf.name()).Err(err).Msg("NF corrupted its ring: killing it")
		nf.kill()
	}
}
