package manager

import (
	"fmt"
	"slices"

	"github.com/reinforce-nfv/reinforce/ctlmsg"
	"github.com/reinforce-nfv/reinforce/port"
	"github.com/reinforce-nfv/reinforce/shm"
)

// dataPlane is an immutable snapshot of routing for the RX and TX loops,
// replaced (never modified) under Manager.mu.
type dataPlane struct {
	version      uint64
	chains       []ctlmsg.ChainRoute
	defaultChain uint16
	svc          [ctlmsg.MaxServices]svcPlane
	nf           [ctlmsg.MaxNFs]nfPlane
	running      []InstanceID
	txRings      []txSource // every ring into the TX loop, dead NFs' included (drained)
	ports        []port.Port
	portByID     [maxPorts]port.Port
}

// txSource is a ring the TX loop consumes and the instance that produced it.
type txSource struct {
	id   InstanceID
	ring uint32
}

type svcPlane struct {
	ok      bool
	first   InstanceID // where messages to the service go (ONVM: its first instance)
	buckets [NumBuckets]InstanceID
}

type nfPlane struct {
	ok                    bool
	fromRX, fromTX, toMgr uint32
}

// ring returns the ring from prod to cons, assigning one the first time. The
// ring outlives both ends, so an NF re-registered with the same instance ID
// (and so the same owner) finds its rings, and what waits in them. mu held.
func (m *Manager) ring(prod, cons shm.OwnerID, bell uint32) (uint32, error) {
	e := edge{prod, cons}
	if idx, ok := m.edges[e]; ok {
		return idx, nil
	}
	if m.nextRing >= m.region.NumRings() {
		return 0, fmt.Errorf("ring table full (%d rings)", m.region.NumRings())
	}
	idx := m.nextRing
	if err := m.pool.AssignRing(idx, prod, cons, bell); err != nil {
		return 0, err
	}
	m.nextRing++
	m.edges[e] = idx
	return idx, nil
}

// connectDirect gives nf a direct ring to every running instance of the
// service after it in any chain, and every running instance of the service
// before it a ring to nf (ONVM_NF_HANDLE_TX: NFs pass packets straight on).
// mu held.
func (m *Manager) connectDirect(nf *nfProc) {
	for _, ch := range m.cfg.Chains {
		for i := 0; i+1 < len(ch.Services); i++ {
			a, b := ServiceID(ch.Services[i]), ServiceID(ch.Services[i+1])
			if nf.service == a {
				for _, id := range m.reg.Instances(b) {
					if peer := m.nfs[id]; peer != nil {
						m.ring(nf.owner, peer.owner, uint32(peer.owner))
					}
				}
			}
			if nf.service == b {
				for _, id := range m.reg.Instances(a) {
					if peer := m.nfs[id]; peer != nil {
						m.ring(peer.owner, nf.owner, uint32(nf.owner))
					}
				}
			}
		}
	}
}

func (m *Manager) chainRoutes() []ctlmsg.ChainRoute {
	out := make([]ctlmsg.ChainRoute, len(m.cfg.Chains))
	for i, ch := range m.cfg.Chains {
		s := make([]uint16, len(ch.Services))
		for k, v := range ch.Services {
			s[k] = uint16(v)
		}
		out[i] = ctlmsg.ChainRoute{Services: s, OutPort: ch.OutPort}
	}
	return out
}

// routesFor computes the Routes message for nf. mu held.
func (m *Manager) routesFor(nf *nfProc) ctlmsg.Routes {
	r := ctlmsg.Routes{Version: m.routesVer, Chains: m.chainRoutes(), Inputs: []uint32{nf.fromRX, nf.fromTX}}
	for s := 1; s < ctlmsg.MaxServices; s++ {
		inst := m.reg.Instances(ServiceID(s))
		if len(inst) == 0 {
			continue
		}
		b := m.reg.Buckets(ServiceID(s))
		sr := ctlmsg.ServiceRoute{Service: uint16(s), Buckets: make([]uint16, NumBuckets)}
		for i, id := range b {
			sr.Buckets[i] = uint16(id)
		}
		for _, id := range inst {
			if peer := m.nfs[id]; peer != nil {
				if idx, ok := m.edges[edge{nf.owner, peer.owner}]; ok {
					sr.Direct = append(sr.Direct, ctlmsg.DirectRing{Instance: uint16(id), Ring: idx})
				}
			}
		}
		r.Services = append(r.Services, sr)
	}
	for e, idx := range m.edges {
		if e.cons == nf.owner && e.prod >= ownerNFBase {
			r.Inputs = append(r.Inputs, idx)
		}
	}
	return r
}

// publishLocked builds a new data-plane snapshot for the loops and sends
// every running NF its routes. mu held.
func (m *Manager) publishLocked() {
	m.rep.noteBuckets() // every registry change is published: replicate its tables
	m.routesVer++
	dp := &dataPlane{version: m.routesVer, chains: m.chainRoutes()}
	for i, ch := range m.cfg.Chains {
		if ch.Name == m.cfg.Manager.DefaultChain {
			dp.defaultChain = uint16(i)
		}
	}
	for s := 1; s < ctlmsg.MaxServices; s++ {
		if inst := m.reg.Instances(ServiceID(s)); len(inst) > 0 {
			dp.svc[s] = svcPlane{ok: true, first: inst[0], buckets: m.reg.Buckets(ServiceID(s))}
		}
	}
	for id, nf := range m.nfs {
		if nf != nil && nf.running {
			dp.nf[id] = nfPlane{ok: true, fromRX: nf.fromRX, fromTX: nf.fromTX, toMgr: nf.toMgr}
			dp.running = append(dp.running, InstanceID(id))
		}
	}
	for e, idx := range m.edges {
		if e.cons == ownerTX && e.prod >= ownerNFBase {
			dp.txRings = append(dp.txRings, txSource{id: InstanceID(int(e.prod) - ownerNFBase), ring: idx})
		}
	}
	slices.SortFunc(dp.txRings, func(a, b txSource) int { return int(a.id) - int(b.id) })
	for id, p := range m.ports {
		if p != nil {
			dp.ports = append(dp.ports, p)
			dp.portByID[id] = p
		}
	}
	m.dp.Store(dp)
	for _, nf := range m.nfs {
		if nf != nil && nf.running && !nf.dead {
			nf.send(m.routesFor(nf))
		}
	}
	for _, sb := range m.standbys {
		sb.send(m.routesFor(sb)) // a standby runs with the active's routes from its first burst
	}
	m.txBell.Ring()
}

// ringHandles is a loop's private table of ring handles, opened on first use
// and kept (with their cursors) for the loop's life.
type ringHandles struct {
	r []*shm.Ring
	m *shm.Region
}

func (h *ringHandles) get(idx uint32) *shm.Ring {
	if idx == 0 || idx >= uint32(len(h.r)) {
		return nil
	}
	if h.r[idx] == nil {
		r, err := h.m.OpenRing(idx)
		if err != nil {
			return nil
		}
		h.r[idx] = r
	}
	return h.r[idx]
}

// SetChainOutPort makes chain leave through port from now on (an ingress
// manager redirecting a chain's traffic to the server that leads it after
// a failover: the arbiter's Redirect). NFs and the TX loop get it with the
// next routes.
func (m *Manager) SetChainOutPort(chain string, port int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if port < 0 || port >= maxPorts || m.ports[port] == nil {
		return fmt.Errorf("chain %q: no port %d", chain, port)
	}
	for i := range m.cfg.Chains {
		if m.cfg.Chains[i].Name == chain {
			if m.cfg.Chains[i].OutPort != port {
				m.cfg.Chains[i].OutPort = port
				m.publishLocked() // NFs get the new routes with it
				m.log.Warn().Str("chain", chain).Int("port", port).Msg("chain redirected")
			}
			return nil
		}
	}
	return fmt.Errorf("no chain %q", chain)
}
