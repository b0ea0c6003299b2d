package nflib

// The burst loop, stage by stage (one goroutine: Run's caller):
//
//	routes changed? → compile the route table (rare)
//	for each input ring: Peek a burst (private cursor; ownership checked)
//	  → handler → route each packet to an output queue or the drop list
//	  → Stage + Publish every touched output ring
//	  → Release the input (after publishing, before freeing)
//	  → Free the drops
//	nothing received → sleep on the NF's doorbell (spin first)
//
// Output rings are this NF's alone (it is their only producer), inputs are
// its alone to consume, so no locks. Nothing in the loop allocates.

import (
	"fmt"
	"time"

	"github.com/reinforce-nfv/reinforce/ctlmsg"
	"github.com/reinforce-nfv/reinforce/shm"
)

// Run runs the burst loop, calling h for every packet, until Stop, the
// manager's stop message, the TTL (-t) or packet limit (-l), or the manager's
// death (ErrManagerGone). A clean stop returns nil.
func (nf *NF) Run(h Handler) error { return nf.loop(h, nil, Callbacks{}) }

// RunBurst is Run with a handler that sees whole bursts.
func (nf *NF) RunBurst(h BurstHandler) error { return nf.loop(nil, h, Callbacks{}) }

// burstState is the loop's scratch, allocated once.
type burstState struct {
	in      [shm.MaxBurst]shm.Slot
	pk      [shm.MaxBurst]Packet
	acts    [shm.MaxBurst]Action
	drops   [shm.MaxBurst]shm.Slot
	touched [shm.MaxBurst]*outQ
	// per-burst counts, added to the shared counters once per burst
	drop, next, tonf, out uint64
	msgs                  int
	msg                   func(nf *NF, from uint16, data []byte)
}

func (nf *NF) loop(h Handler, bh BurstHandler, cb Callbacks) error {
	var rt *routeTable
	st := new(burstState)
	st.msg = cb.Msg
	ready := func() bool {
		if nf.stop.Load() || nf.routes.Load().Version != rt.version {
			return true
		}
		for _, r := range rt.inputs {
			if r.HasWork() {
				return true
			}
		}
		return false
	}
	w := nf.waiter()
	if cb.Setup != nil {
		cb.Setup(nf)
	}
	start := time.Now()
	var rxTotal uint64
	for iter := uint64(0); !nf.stop.Load(); iter++ {
		if p := nf.routes.Load(); rt == nil || p.Version != rt.version {
			next, err := nf.compile(p)
			if err != nil {
				return fmt.Errorf("apply routes %d: %w", p.Version, err)
			}
			rt = next
			nf.cache.SetConfigVersion(rt.version) // the manager sees when routes have converged
		}
		got := 0
		for _, r := range rt.inputs {
			got += nf.burstFrom(r, rt, st, h, bh)
		}
		rxTotal += uint64(got)
		if cb.Idle != nil {
			if cb.Idle(nf) {
				break
			}
		} else if got == 0 {
			w.Wait(ready)
		}
		if iter&1023 == 0 || got == 0 {
			if nf.Args.TTL > 0 && time.Since(start) >= nf.Args.TTL {
				fmt.Println("Time to live exceeded, shutting down")
				break
			}
		}
		if nf.Args.PktLimit > 0 && rxTotal >= nf.Args.PktLimit {
			fmt.Println("Packet limit exceeded, shutting down")
			break
		}
	}
	if p := nf.stopErr.Load(); p != nil {
		return *p
	}
	return nil
}

// burstFrom processes one burst from input ring r and returns its size.
func (nf *NF) burstFrom(r *shm.Ring, rt *routeTable, st *burstState, h Handler, bh BurstHandler) int {
	n, err := nf.cache.Peek(r, st.in[:nf.burst])
	if err != nil {
		// The producer scribbled the ring's indices: count, resync, go on.
		nf.ctr.RXDrop.Add(1)
		r.Sync()
		return 0
	}
	if n == 0 {
		r.Release() // consumes entries the ownership check refused, if any
		return 0
	}
	nd := 0
	n, nd = nf.takeMessages(st, n)
	if bh != nil {
		for i := 0; i < n; i++ {
			st.pk[i] = Packet{r: nf.region, slot: st.in[i]}
		}
		bh(st.pk[:n], st.acts[:n])
	} else {
		for i := 0; i < n; i++ {
			st.acts[i] = h(Packet{r: nf.region, slot: st.in[i]})
		}
	}
	nt := 0
	for i := 0; i < n; i++ {
		q := nf.route(rt, st, st.in[i], st.acts[i])
		if q == nil {
			st.drops[nd] = st.in[i]
			nd++
			continue
		}
		q.buf[q.n] = st.in[i]
		q.n++
		if !q.stage {
			q.stage = true
			st.touched[nt] = q
			nt++
		}
	}
	var tx, txDrop uint64
	for _, q := range st.touched[:nt] {
		k, _ := nf.cache.Stage(q.ring, q.buf[:q.n])
		q.ring.Publish()
		tx += uint64(k)
		for _, s := range q.buf[k:q.n] { // full ring: a counted drop
			st.drops[nd] = s
			nd++
			txDrop++
		}
		q.n, q.stage = 0, false
	}
	r.Release() // before Free: a freed slot must have left the ring's window
	nf.freeAll(st.drops[:nd])
	got := n + st.msgs
	st.msgs = 0
	c := nf.ctr
	c.RX.Add(uint64(got))
	c.TX.Add(tx)
	c.TXDrop.Add(txDrop)
	c.ActDrop.Add(st.drop)
	c.ActNext.Add(st.next)
	c.ActToNF.Add(st.tonf)
	c.ActOut.Add(st.out)
	st.drop, st.next, st.tonf, st.out = 0, 0, 0, 0
	return got
}

// takeMessages hands the messages among the n slots in st.in to the
// message callback, moves them to the front of st.drops (a message is freed
// once handled) and compacts the packets; it returns the packet count and
// the number of drops so far.
func (nf *NF) takeMessages(st *burstState, n int) (packets, drops int) {
	k := 0
	for i := 0; i < n; i++ {
		s := st.in[i]
		m := nf.region.Meta(s)
		if m.MetaFlags&shm.FlagMessage == 0 {
			st.in[k] = s
			k++
			continue
		}
		if st.msg != nil {
			st.msg(nf, m.Src, nf.region.Packet(s))
		}
		st.drops[drops] = s
		drops++
		st.msgs++
	}
	return k, drops
}

// freeAll frees s, waiting for the manager's pool service if the drain ring
// is full; it gives up (and the slots wait for reclaim) if the NF is stopping.
func (nf *NF) freeAll(s []shm.Slot) {
	for k := 0; k < len(s); {
		k += nf.cache.Free(s[k:])
		if k < len(s) && nf.stop.Load() {
			return
		}
	}
}

// route applies action a to slot s's metadata and returns the output queue,
// or nil to drop it.
func (nf *NF) route(rt *routeTable, st *burstState, s shm.Slot, a Action) *outQ {
	m := nf.region.Meta(s)
	m.Src = nf.instance
	switch a.Kind() {
	case shm.ActionDrop:
		st.drop++
		return nil
	case shm.ActionOut:
		st.out++
		m.Action, m.Destination = shm.ActionOut, a.Dest()
		return nf.toMgr
	case shm.ActionToNF:
		st.tonf++
		return nf.toService(rt, m, a.Dest())
	case shm.ActionNext:
		st.next++
		return nf.next(rt, m)
	default:
		st.drop++
		return nil
	}
}

// next resolves ActionNext along the packet's chain (ONVM: onvm_sc_next_action).
func (nf *NF) next(rt *routeTable, m *shm.Meta) *outQ {
	c := int(m.Chain)
	if c >= len(rt.chains) {
		return nil
	}
	ch := &rt.chains[c]
	if i := int(m.ChainIndex); i < len(ch.Services) {
		m.ChainIndex++
		return nf.toService(rt, m, ch.Services[i])
	}
	if ch.OutPort < 0 {
		return nil
	}
	m.Action, m.Destination = shm.ActionOut, uint16(ch.OutPort)
	return nf.toMgr
}

// toService sends to the flow's instance of svc: directly when this NF has a
// ring to it, else through the manager (which drops it if svc has no instance).
func (nf *NF) toService(rt *routeTable, m *shm.Meta, svc uint16) *outQ {
	m.Action, m.Destination = shm.ActionToNF, svc
	if int(svc) < ctlmsg.MaxServices && rt.svc[svc].ok {
		inst := rt.svc[svc].buckets[ctlmsg.BucketIndex(m.FlowHash)]
		if int(inst) < ctlmsg.MaxNFs {
			if q := rt.svc[svc].direct[inst]; q != nil {
				return q
			}
		}
	}
	return nf.toMgr
}

// NewPacket allocates an empty packet from the NF's cache, or false if the
// pool has none to give right now. Call it from the loop's goroutine (a
// handler) or before Run.
func (nf *NF) NewPacket() (Packet, bool) {
	var s [1]shm.Slot
	if nf.cache.Alloc(s[:]) == 0 {
		return Packet{}, false
	}
	return Packet{r: nf.region, slot: s[0]}, true
}

// Inject sends a packet the NF created or held (ONVM's
// onvm_nflib_return_pkt) with action a, or frees it and returns false when
// its destination ring is full. Same goroutine rules as NewPacket.
func (nf *NF) Inject(p Packet, a Action) bool {
	rt := nf.injectRoutes()
	var st burstState
	q := nf.route(rt, &st, p.slot, a)
	if q == nil {
		nf.freeAll([]shm.Slot{p.slot})
		return false
	}
	var one [1]shm.Slot
	one[0] = p.slot
	k, _ := nf.cache.Stage(q.ring, one[:])
	q.ring.Publish()
	if k == 0 {
		nf.freeAll(one[:])
		nf.ctr.TXDrop.Add(1)
		return false
	}
	nf.ctr.TX.Add(1)
	nf.returned++
	return true
}

func (nf *NF) injectRoutes() *routeTable {
	if nf.injRT == nil || nf.injRT.version != nf.routes.Load().Version {
		rt, err := nf.compile(nf.routes.Load())
		if err != nil {
			return &routeTable{}
		}
		nf.injRT = rt
	}
	return nf.injRT
}
