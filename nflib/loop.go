package nflib

// The burst loop, stage by stage (one goroutine: Run's caller):
//
//	routes changed? → compile the route table (rare)
//	for each input ring, one transaction (state.go):
//	  room = what every output ring can take; Peek ≤ room (private cursor)
//	  → begin; log the inputs; take them (ownership checked)
//	  → messages to the Msg callback; packets to the handler
//	  → route each packet: stage it on its output ring, or defer its free
//	  → commit: publish outputs, release the input, apply frees
//	nothing received → sleep on the NF's doorbell (spin first)
//
// Output rings are this NF's alone (it is their only producer), inputs are
// its alone to consume, so no locks. Nothing in the loop allocates.

import (
	"fmt"
	"time"

	"github.com/reinforce-nfv/reinforce/ctlmsg"
	"github.com/reinforce-nfv/reinforce/internal/crashpoint"
	"github.com/reinforce-nfv/reinforce/shm"
)

// Run runs the burst loop, calling h for every packet, until Stop, the
// manager's stop message, the TTL (-t) or packet limit (-l), or the manager's
// death (ErrManagerGone). A clean stop returns nil; a transaction that
// cannot commit (its state log overflows, say) is rolled back and returned.
func (nf *NF) Run(h Handler) error { return nf.loop(h, nil, Callbacks{}) }

// RunBurst is Run with a handler that sees whole bursts.
func (nf *NF) RunBurst(h BurstHandler) error { return nf.loop(nil, h, Callbacks{}) }

// burstState is the loop's scratch, allocated once.
type burstState struct {
	in      [shm.MaxBurst]shm.Slot
	pk      [shm.MaxBurst]Packet
	acts    [shm.MaxBurst]Action
	touched [shm.MaxBurst]*outQ
	actCounts
	msgs int
	msg  func(nf *NF, from uint16, data []byte)
}

func (nf *NF) loop(h Handler, bh BurstHandler, cb Callbacks) error {
	var rt *routeTable
	st := new(burstState)
	st.msg = cb.Msg
	nf.queuesInput = cb.QueuesInput
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
	idleW := w
	idleW.Max = time.Millisecond
	if cb.Setup != nil {
		if err := nf.inScope(func() error { cb.Setup(nf); return nil }); err != nil {
			return fmt.Errorf("setup: %w", err)
		}
	}
	start := time.Now()
	var rxTotal uint64
	for iter := uint64(0); !nf.stop.Load(); iter++ {
		nf.cache.SetLoop(iter+1, false) // the manager's hang detector watches this move (0: not started)
		if p := nf.routes.Load(); rt == nil || p.Version != rt.version {
			next, err := nf.compile(p)
			if err != nil {
				return fmt.Errorf("apply routes %d: %w", p.Version, err)
			}
			rt = next
			nf.cache.SetConfigVersion(rt.version) // the manager sees when routes have converged
		}
		got, blocked := 0, false
		for _, r := range rt.inputs {
			n, err := nf.burstFrom(r, rt, st, h, bh)
			if err != nil {
				return err
			}
			if n < 0 {
				blocked = true
				continue
			}
			got += n
		}
		rxTotal += uint64(got)
		if cb.Idle != nil {
			stop := false
			if err := nf.inScope(func() error { stop = cb.Idle(nf); return nil }); err != nil {
				return fmt.Errorf("idle callback: %w", err)
			}
			if stop {
				break
			}
			if got == 0 && !blocked {
				// No packets: run the callback about every millisecond, not
				// millions of times a second on a CPU other processes need.
				nf.cache.SetLoop(iter+1, true)
				idleW.Wait(ready)
			}
		} else if got == 0 && !blocked {
			nf.cache.SetLoop(iter+1, true)
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

// burstFrom runs one burst from input ring r as a transaction and returns
// its size, or -1 when an output ring has no room (the NF then polls
// instead of sleeping: the consumer frees room without a doorbell).
func (nf *NF) burstFrom(r *shm.Ring, rt *routeTable, st *burstState, h Handler, bh BurstHandler) (int, error) {
	max := nf.burst
	if !nf.queuesInput {
		if max = min(max, nf.outRoom(rt)); max == 0 {
			return -1, nil
		}
	}
	n, err := r.Peek(st.in[:max])
	if err != nil {
		// The producer scribbled the ring's indices: count, resync, go on.
		nf.ctr.RXDrop.Add(1)
		r.Sync()
		return 0, nil
	}
	if n == 0 {
		return 0, nil
	}
	if err := nf.begin(); err != nil {
		r.Rewind()
		nf.endScope()
		return 0, err
	}
	if nf.tx != nil && !nf.txOff {
		if err := nf.tx.Inputs(r.ID(), st.in[:n]); err != nil {
			nf.sc.ins = append(nf.sc.ins, r)
			nf.fail(err)
			return 0, nf.abort()
		}
	}
	nf.sc.ins = append(nf.sc.ins, r)
	n = nf.cache.TakeFrom(r, st.in[:n]) // refused entries are counted and skipped
	crashpoint.Hit(crashpoint.Inputs)
	n = nf.takeMessages(st, n)
	if bh != nil {
		for i := 0; i < n; i++ {
			st.pk[i] = Packet{r: nf.region, slot: st.in[i], nf: nf}
		}
		bh(st.pk[:n], st.acts[:n])
	} else {
		for i := 0; i < n; i++ {
			st.acts[i] = h(Packet{r: nf.region, slot: st.in[i], nf: nf})
		}
	}
	nt := 0
	for i := 0; i < n; i++ {
		s := st.in[i]
		if st.acts[i].Kind() == actionKeep && nf.isKept(s) {
			continue
		}
		q := nf.route(rt, &st.actCounts, s, st.acts[i])
		if q == nil {
			nf.deferFree(s)
			continue
		}
		q.buf[q.n] = s
		q.n++
		if !q.stage {
			q.stage = true
			st.touched[nt] = q
			nt++
		}
	}
	var tx uint64
	for _, q := range st.touched[:nt] {
		k := nf.stage(q, q.buf[:q.n])
		tx += uint64(k)
		nf.deferFree(q.buf[k:q.n]...) // cannot happen (room was checked); if it does, a counted drop before commit
		nf.ctr.TXDrop.Add(uint64(q.n - k))
		q.n, q.stage = 0, false
	}
	if err := nf.commit(); err != nil {
		return 0, err
	}
	got := n + st.msgs
	st.msgs = 0
	c := nf.ctr
	c.RX.Add(uint64(got))
	c.TX.Add(tx)
	c.ActDrop.Add(st.drop)
	c.ActNext.Add(st.next)
	c.ActToNF.Add(st.tonf)
	c.ActOut.Add(st.out)
	st.drop, st.next, st.tonf, st.out = 0, 0, 0, 0
	return got, nil
}

// actCounts are a burst's verdict counts, added to the shared counters once
// per burst.
type actCounts struct{ drop, next, tonf, out uint64 }

// takeMessages hands the messages among the n slots in st.in to the
// message callback (inside the burst's transaction), defers their frees and
// compacts the packets; it returns the packet count.
func (nf *NF) takeMessages(st *burstState, n int) int {
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
		nf.deferFree(s)
		st.msgs++
	}
	return k
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
func (nf *NF) route(rt *routeTable, st *actCounts, s shm.Slot, a Action) *outQ {
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
// pool has none to give right now. Inside a burst or callback the
// allocation is part of its transaction (returned to the pool on
// rollback). Call it from the loop's goroutine (a handler or callback) or
// before Run.
func (nf *NF) NewPacket() (Packet, bool) {
	var s [1]shm.Slot
	got := 0
	nf.inScope(func() error {
		if nf.tx == nil || nf.txOff {
			got = nf.cache.Alloc(s[:])
			return nil
		}
		if nf.cache.AllocPeek(s[:]) == 0 {
			return nil
		}
		if err := nf.tx.Alloc(s[:]); err != nil {
			nf.fail(err)
			return err
		}
		got = nf.cache.AllocTake(s[:])
		return nil
	})
	if got == 0 {
		return Packet{}, false
	}
	return Packet{r: nf.region, slot: s[0], nf: nf}, true
}

// Inject sends a packet the NF created or held (ONVM's
// onvm_nflib_return_pkt) with action a, or frees it and returns false when
// its destination ring is full. The packet leaves when the burst or
// callback commits. Same goroutine rules as NewPacket.
func (nf *NF) Inject(p Packet, a Action) bool {
	one := [1]Packet{p}
	return nf.InjectBulk(one[:], a) == 1
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
