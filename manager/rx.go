package manager

// The RX path, stage by stage (routineRX, one goroutine, owner ownerRX):
//
//	port RxBurst (slots allocated from the RX cache)
//	→ classify: flow hash; chain from the flow director (exact entry, then
//	  rules), else the default chain
//	→ first service of the chain → its instance by bucket
//	→ per-instance queue → Send into that instance's ring from RX
//	→ what did not fit, or has no NF, is freed and counted
//	nothing received for a few rounds → sleep on bellRX, for as long as
//	  the ports allow (rxIdle; docs/manager.md, "Idle and shared-core mode")

import (
	"sync/atomic"
	"time"

	"github.com/reinforce-nfv/reinforce/ctlmsg"
	"github.com/reinforce-nfv/reinforce/manager/config"
	"github.com/reinforce-nfv/reinforce/pkt"
	"github.com/reinforce-nfv/reinforce/port"
	"github.com/reinforce-nfv/reinforce/shm"
)

// How the RX loop idles. Ports have no doorbell, so the loop polls them a
// few empty rounds before it sleeps, and then sleeps only as long as its
// ports allow (rxIdle).
const (
	rxSpinRounds       = 64                     // empty rounds over the ports before sleeping (poll mode)
	rxSharedSpinRounds = 4                      // the same in shared-core mode, where spinning steals a CPU
	rxPollIdle         = time.Millisecond       // ports that cannot say when frames arrive
	rxMinPace          = 20 * time.Microsecond  // a paced null port's shortest sleep: futex round trips cost more
	rxMaxPace          = 100 * time.Millisecond // and its longest, so a paced port never drops for a sleep
)

// doneReporter is a port whose RX can end for good (pcap replay).
type doneReporter interface{ Done() bool }

// rxIdle returns how long the RX loop may sleep after an empty round over
// ports: 0 means until bellRX rings, which the TX loop does after sending
// into a loop port and Close does to stop. nullRate holds the configured
// rate of each null port by ID.
//
// What each port does when idle:
//   - no ports, a loop port with nothing in flight, a pcap replay that has
//     ended: nothing can arrive but by bellRX, so no limit;
//   - a null port paced at R pps: the next frame falls due within 1/R, so
//     at most that long (rxMinPace..rxMaxPace);
//   - a null port unpaced, or a loop port with frames in flight: RX came
//     back empty only because the pool cache was empty; the pool's service
//     refills it, so a short poll (rxPollIdle);
//   - afpacket, a pcap still replaying, anything else: rxPollIdle (the
//     kernel hands AF_PACKET blocks over after its 1 ms block timeout
//     anyway).
func rxIdle(ports []port.Port, nullRate *[maxPorts]uint64) time.Duration {
	var d time.Duration
	sooner := func(v time.Duration) {
		if d == 0 || v < d {
			d = v
		}
	}
	for _, p := range ports {
		switch v := p.(type) {
		case *port.Loop:
			if s := v.Stats(); s.TxPkts > s.RxPkts+s.RxDrops {
				sooner(rxPollIdle)
			}
		case *port.Null:
			r := nullRate[p.ID()%maxPorts]
			if r == 0 {
				sooner(rxPollIdle)
				continue
			}
			sooner(min(max(time.Duration(uint64(time.Second)/r), rxMinPace), rxMaxPace))
		case doneReporter:
			if !v.Done() {
				sooner(rxPollIdle)
			}
		default:
			sooner(rxPollIdle)
		}
	}
	return d
}

// nullRates reads each null port's configured rate from cfg; a port passed
// in Options.Ports without a [[port]] entry counts as unpaced.
func nullRates(cfg *config.Config) *[maxPorts]uint64 {
	var r [maxPorts]uint64
	for _, p := range cfg.Ports {
		if p.Driver == config.DriverNull && p.ID >= 0 && p.ID < maxPorts {
			r[p.ID] = uint64(p.RatePPS)
		}
	}
	return &r
}

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
	// The ports are polled by the loop itself (empty rounds); the waiter
	// only checks the stop flag, so it sleeps at once.
	w := shm.Waiter{Bell: m.rxBell, Spins: 1, Max: -1}
	spin := rxSpinRounds
	if m.cfg.Manager.SharedCPU {
		spin, w.Yields = rxSharedSpinRounds, 2
	}
	rates := nullRates(&m.cfg)
	empty := 0
	paused := func() bool { return stop() || !m.rxPaused.Load() }
	for !m.stopping.Load() {
		if m.rxPaused.Load() {
			// A planned switchover holds the input in the ports' own
			// queues (Manager.Switchover): nothing is polled meanwhile.
			w.WaitFor(paused, time.Millisecond)
			continue
		}
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
				if m.rep != nil && !m.rep.admit(c, s, chain) {
					continue // the chain's latch is at its quota (replicate.go)
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
		if got > 0 {
			empty = 0
			continue
		}
		if empty++; empty < spin && len(dp.ports) > 0 {
			continue
		}
		empty = 0
		w.WaitFor(stop, rxIdle(dp.ports, rates))
	}
}
