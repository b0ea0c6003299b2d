package nflib

import "github.com/reinforce-nfv/reinforce/shm"

// Callbacks are the hooks of ONVM's function table besides the packet
// handler (onvm_nflib_init_nf_function_table). Each runs on the burst loop's
// goroutine, so it may use NewPacket, Inject, SendMsg and the NF's state
// without locks.
type Callbacks struct {
	// Setup runs once before the first burst (ONVM: setup); it may create
	// and inject packets.
	Setup func(nf *NF)
	// Idle runs on every loop iteration, busy or not (ONVM: user_actions); a
	// true return stops the NF. An NF with an Idle callback polls instead of
	// sleeping when it has no packets, as ONVM's NFs always do.
	Idle func(nf *NF) bool
	// Msg receives messages other NFs sent to this NF's service (ONVM:
	// msg_handler). data is valid during the call only; from is the sender's
	// instance ID.
	Msg func(nf *NF, from uint16, data []byte)
	// QueuesInput says the handler keeps its input (pushes packets onto a
	// Queue and returns Keep) and sends later within SendRoom: bursts are
	// then not limited to what the output rings can take, so a backlog
	// builds in the NF's queues, where it decides what to send (a fair
	// queue), instead of in its input ring. A packet the handler does send
	// and that finds its ring full is dropped and counted inside the burst.
	QueuesInput bool
}

// RunWith is Run with callbacks.
func (nf *NF) RunWith(h Handler, cb Callbacks) error { return nf.loop(h, nil, cb) }

// RunBurstWith is RunBurst with callbacks.
func (nf *NF) RunBurstWith(h BurstHandler, cb Callbacks) error { return nf.loop(nil, h, cb) }

// ErrMsgTooLarge reports a message larger than a packet slot's room.
type msgError string

func (e msgError) Error() string { return string(e) }

// Message errors.
const (
	ErrMsgTooLarge msgError = "message larger than a packet slot"
	ErrNoSlot      msgError = "no free packet slot for the message"
	ErrMsgDropped  msgError = "message dropped: the ring to the manager is full"
)

// SendMsg sends data to the first instance of service (ONVM's
// onvm_nflib_send_msg_to_nf). The message travels as a pool slot through
// the manager, in order with this NF's packets, and leaves when the burst
// or callback commits. Call it from the loop's goroutine (a handler or
// callback) or before Run.
func (nf *NF) SendMsg(service uint16, data []byte) error {
	return nf.inScope(func() error {
		p, ok := nf.NewPacket()
		if !ok {
			return ErrNoSlot
		}
		room := p.Room()[shm.HeadroomBytes:]
		if len(data) > len(room) {
			nf.Free(p)
			return ErrMsgTooLarge
		}
		copy(room, data)
		m := p.Meta()
		m.Len = uint32(len(data))
		m.MetaFlags |= shm.FlagMessage
		m.Src = nf.instance
		m.Action, m.Destination = shm.ActionToNF, service
		one := [1]shm.Slot{p.slot}
		if nf.stage(nf.toMgr, one[:]) == 0 {
			nf.deferFree(p.slot)
			return ErrMsgDropped
		}
		return nil
	})
}

// Free returns a packet the NF holds (one it created, or kept) to the pool
// when the burst or callback commits.
func (nf *NF) Free(p Packet) {
	nf.inScope(func() error { nf.deferFree(p.slot); return nil })
}

// InjectBulk sends packets the NF created or kept with action a (ONVM's
// onvm_nflib_return_pkt_bulk) and returns how many it sent, from the front
// of pkts; the rest stay the caller's (a full ring). A drop verdict frees
// the packet. They leave when the burst or callback commits.
func (nf *NF) InjectBulk(pkts []Packet, a Action) int {
	sent := 0
	nf.inScope(func() error {
		rt := nf.injectRoutes()
		var c actCounts
		for sent < len(pkts) {
			s := pkts[sent].slot
			q := nf.route(rt, &c, s, a)
			if q == nil {
				nf.deferFree(s)
				sent++
				continue
			}
			one := [1]shm.Slot{s}
			if nf.stage(q, one[:]) == 0 {
				nf.ctr.TXDrop.Add(1)
				break
			}
			sent++
			nf.returned++
			nf.ctr.TX.Add(1)
		}
		return nil
	})
	return sent
}
