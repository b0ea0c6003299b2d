package manager

// The RX path, stage by stage (routineRX, one goroutine, owner ownerRX):
//
//	port RxBurst (slots allocated from the RX cache)
//	→ classify: flow hash; chain from the flow director (exact entry, then
//	  rules), else the default chain
//	→ first service of the chain → its instance by bucket
//	→ per-instance queue → Send into that instance's ring from RX
//	→ what did not fit, or has no NF, is freed and counted
//	nothing received → short sleep (ports have no doorbell)

import (
	"sync/atomic"
	"time"

	"github.com/reinforce-nfv/reinforce/ctlmsg"
	"github.com/reinforce-nfv/reinforce/pkt"
	"github.com/reinforce-nfv/reinforce/shm"
)

type instQ struct {
	buf [shm.MaxBurst]shm.Slot
	n   int
}

// sendQ sends q's packets into ring (when the NF is there to read it),
// moves what did not fit to drops, counting it in full, and empties q. It
// returns how many it moved to drops.
func sendQ(c *shm.Cache, ok bool, ring *shm.Ring, q *instQ, drops []shm.Slot, full *atomic.Uint64) int {
	k := 0
	if ok && ring != nil {
		k, _ = c.Send(ring, q.buf[:q.n])
	}
	full.Add(uint64(q.n - k))
	n := copy(drops, q.buf[k:q.n])
	q.n = 0
	return n
}

// routineRX runs the RX path until Close sets stopping and rings bellRX.
func (m *Manager) routineRX() {
	defer m.loopWG.Done()
	m.log.Debug().Msg("rx loop started")
	defer m.log.Debug().Msg("rx loop stopped")
	c, r := m.rxCache, m.region
	burst := m.cfg.Manager.Burst
	var (
		in      [shm.MaxBurst]shm.Slot
		drops   [shm.MaxBurst]shm.Slot
		qs      [ctlmsg.MaxNFs]instQ
		touched [shm.MaxBurst]InstanceID
		seq     [maxPorts]uint64
		cls     struct {
			ft    [shm.MaxBurst]pkt.FiveTuple
			hash  [shm.MaxBurst]uint32
			ip    [shm.MaxBurst]bool
			chain [shm.MaxBurst]uint16
			found [shm.MaxBurst]bool
		}
	)
	rings := ringHandles{r: make([]*shm.Ring, r.NumRings()), m: r}
	stop := func() bool { return m.stopping.Load() }
	w := shm.Waiter{Bell: m.rxBell, Spins: 200, Max: time.Millisecond}
	for !m.stopping.Load() {
		dp := m.dp.Load()
		got := 0
		for _, p := range dp.ports {
			n := p.RxBurst(c, in[:burst])
			if n == 0 {
				continue
			}
			got += n
			nd, nt := 0, 0
			pid := p.ID()
			// Classify the whole burst at once: the flow director's burst
			// lookup overlaps its cache misses (T9: a million flows cost
			// little more than 64).
			for i := 0; i < n; i++ {
				cls.hash[i], cls.ip[i] = flowKey(r.Packet(in[i]), &cls.ft[i])
			}
			m.flows.LookupBurst(cls.ft[:n], cls.chain[:n], cls.found[:n])
			for i := 0; i < n; i++ {
				s := in[i]
				md := r.Meta(s)
				md.FlowHash = cls.hash[i]
				chain := dp.defaultChain
				if cls.ip[i] && cls.found[i] {
					chain = cls.chain[i]
				}
				var first uint16
				if int(chain) < len(dp.chains) && len(dp.chains[chain].Services) > 0 {
					first = dp.chains[chain].Services[0]
				}
				sp := &dp.svc[first]
				md.MetaFlags |= shm.FlagHasHash | shm.FlagHasSeq
				seq[pid%maxPorts]++
				md.Seq = seq[pid%maxPorts]
				md.Src, md.Chain, md.ChainIndex = 0, chain, 1
				md.Action, md.Destination = shm.ActionToNF, first
				if !sp.ok {
					drops[nd] = s
					nd++
					continue
				}
				id := sp.buckets[ctlmsg.BucketIndex(md.FlowHash)]
				q := &qs[id]
				if q.n == 0 {
					touched[nt] = id
					nt++
				}
				q.buf[q.n] = s
				q.n++
			}
			m.Stats.RXNoNF.Add(uint64(nd))
			for _, id := range touched[:nt] {
				nd += sendQ(c, dp.nf[id].ok, rings.get(dp.nf[id].fromRX), &qs[id], drops[nd:], &m.Stats.RXRingFull)
			}
			for k := 0; k < nd && !m.stopping.Load(); {
				k += c.Free(drops[k:nd])
			}
		}
		if got == 0 {
			w.Wait(stop)
		}
	}
}
