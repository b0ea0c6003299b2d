package nflib

import (
	"slices"

	"github.com/reinforce-nfv/reinforce/ctlmsg"
	"github.com/reinforce-nfv/reinforce/shm"
)

// outQ collects one burst's packets for one output ring.
type outQ struct {
	ring  *shm.Ring
	buf   [shm.MaxBurst]shm.Slot
	n     int
	stage bool // in the touched list this burst
	pend  bool // staged entries await the scope's commit
}

// svcRoute is how the loop reaches one service.
type svcRoute struct {
	ok      bool
	buckets [ctlmsg.NumBuckets]uint16
	direct  [ctlmsg.MaxNFs]*outQ // by instance; nil: through the manager
}

// routeTable is the loop's compiled form of ctlmsg.Routes. Built and used by
// the loop goroutine only.
type routeTable struct {
	version uint64
	chains  []ctlmsg.ChainRoute
	svc     [ctlmsg.MaxServices]svcRoute
	inputs  []*shm.Ring
	outs    []*outQ // every ring the NF may send to, for the room check
}

// compile builds a route table from m, reusing ring handles (and their
// private cursors) the NF already has.
func (nf *NF) compile(m *ctlmsg.Routes) (*routeTable, error) {
	rt := &routeTable{version: m.Version, chains: m.Chains, outs: []*outQ{nf.toMgr}}
	for _, s := range m.Services {
		if int(s.Service) >= ctlmsg.MaxServices {
			continue
		}
		sr := &rt.svc[s.Service]
		sr.ok = true
		copy(sr.buckets[:], s.Buckets)
		for _, d := range s.Direct {
			if int(d.Instance) >= ctlmsg.MaxNFs {
				continue
			}
			q, err := nf.outRing(d.Ring)
			if err != nil {
				return nil, err
			}
			sr.direct[d.Instance] = q
			if !slices.Contains(rt.outs, q) {
				rt.outs = append(rt.outs, q)
			}
		}
	}
	for _, idx := range m.Inputs {
		r, err := nf.inRing(idx)
		if err != nil {
			return nil, err
		}
		rt.inputs = append(rt.inputs, r)
	}
	return rt, nil
}

func (nf *NF) outRing(idx uint32) (*outQ, error) {
	if q, ok := nf.outs[idx]; ok {
		return q, nil
	}
	r, err := nf.region.OpenRing(idx)
	if err != nil {
		return nil, err
	}
	q := &outQ{ring: r}
	nf.outs[idx] = q
	return q, nil
}

func (nf *NF) inRing(idx uint32) (*shm.Ring, error) {
	if r, ok := nf.ins[idx]; ok {
		return r, nil
	}
	r, err := nf.region.OpenRing(idx)
	if err != nil {
		return nil, err
	}
	nf.ins[idx] = r
	return r, nil
}
