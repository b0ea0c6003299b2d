package manager

// Virtual address takeover (docs/arbiter.md, "Virtual address takeover"):
// without an ingress to redirect a chain's traffic, the clients reach the
// chain at virtual addresses ([arbiter] vip), and the manager where the
// chain is promoted announces them out of the port facing the clients, so
// the neighbours' ARP and neighbour caches move to it at once: a
// gratuitous ARP per IPv4 address, an unsolicited neighbour advertisement
// per IPv6 address (pkt.BuildGARP, pkt.BuildUnsolicitedNA).
//
// The TX loop owns the ports and its pool cache, so the control plane
// never transmits: the frames are built once, immutable, and the control
// plane only adds a round to owed and rings the TX bell. The TX loop pays
// one atomic load per iteration for it; when rounds are owed it allocates
// slots through its cache, copies the frames in, and sends them
// (sendVIP). A round is the whole set, so the hand-off is a counter, not a
// queue: nothing to allocate, nothing to overflow.
//
// The manager itself answers no ARP or neighbour solicitation, for the
// virtual addresses or any other: that is an NF's business (for example
// examples/arp_response). So a demoted manager has nothing to withdraw;
// announcements it still owed for the chain are cancelled (each round
// checks the chain is still primary in the epoch it was promoted in).

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reinforce-nfv/reinforce/manager/config"
	"github.com/reinforce-nfv/reinforce/pkt"
	"github.com/reinforce-nfv/reinforce/shm"
)

// vipSpacing separates the announcement rounds: a frame lost to a busy
// switch or a neighbour's full input queue is covered by the next, which
// comes after such a burst has drained. RFC 5227 §2.3 spaces its two
// announcements by 2 s; a failover cannot wait that long for the second.
const vipSpacing = 10 * time.Millisecond

// vipAnnouncer is the manager's virtual address set and its hand-off to
// the TX loop.
type vipAnnouncer struct {
	once   sync.Once
	frames [config.MaxVIPs][]byte // the set, one frame per address, built once; read-only after
	n      int                    // frames in the set
	port   uint16
	owed   atomic.Int32 // rounds the TX loop owes; added by the control plane, taken by TX
}

// portMAC is the MAC port id has, as NFs are told (portRefs): the driver's,
// or the locally administered 02:00:00:00:00:<id>.
func (m *Manager) portMAC(id int) pkt.MAC {
	mac := pkt.MAC{0x02, 0, 0, 0, byte(id >> 8), byte(id)}
	if id >= 0 && id < maxPorts && m.ports[id] != nil {
		if hw, ok := m.ports[id].(interface{ HardwareAddr() net.HardwareAddr }); ok && len(hw.HardwareAddr()) == 6 {
			mac = pkt.MAC(hw.HardwareAddr())
		}
	}
	return mac
}

// build writes the announcement set from the configuration.
func (v *vipAnnouncer) build(m *Manager) {
	a := &m.cfg.Arbiter
	v.port = uint16(a.VIPPort)
	mac := pkt.MAC(a.VIPMAC)
	if mac == (pkt.MAC{}) {
		mac = m.portMAC(a.VIPPort)
	}
	for _, ip := range a.VIP {
		if v.n == len(v.frames) {
			break // Validate bounds the set; keep this total
		}
		var b []byte
		var err error
		if ip.Is4() {
			b = make([]byte, pkt.GARPFrameBytes)
			_, err = pkt.BuildGARP(b, mac, ip.As4())
		} else {
			b = make([]byte, pkt.UnsolicitedNAFrameBytes)
			_, err = pkt.BuildUnsolicitedNA(b, mac, ip.As16())
		}
		if err != nil {
			m.log.Error().Err(err).Stringer("vip", ip).Msg("virtual address: no announcement built")
			continue
		}
		v.frames[v.n] = b
		v.n++
	}
}

// announceVIP announces the virtual address set out of vip_port,
// vip_announce rounds vipSpacing apart, after chain was promoted here. A
// round still to come is cancelled if the chain is no longer primary in
// the epoch it was promoted in (demoted: the other server announces now)
// or the manager stops.
func (m *Manager) announceVIP(chain string) {
	a := &m.cfg.Arbiter
	if len(a.VIP) == 0 || m.rep == nil {
		return
	}
	var c *repChain
	for _, rc := range m.rep.chains {
		if rc.cfg.Chain == chain {
			c = rc
		}
	}
	if c == nil {
		return
	}
	v := &m.vip
	v.once.Do(func() { v.build(m) })
	if v.n == 0 {
		return
	}
	epoch := c.epoch.Load()
	rounds := a.VIPAnnouncements()
	m.log.Info().Str("chain", chain).Uint64("epoch", epoch).Int("addresses", v.n).Int("rounds", rounds).
		Int("port", a.VIPPort).Msg("taking over the virtual addresses")
	var round func(left int)
	round = func(left int) {
		if m.stopping.Load() || !c.primary.Load() || c.epoch.Load() != epoch {
			return
		}
		v.owed.Add(1) // publishes the frames built above to the TX loop
		m.txBell.Ring()
		if left > 1 {
			time.AfterFunc(vipSpacing, func() { round(left - 1) })
		}
	}
	round(rounds)
}

// sendVIP sends the rounds owed (TX loop only: it owns the ports and c)
// and returns how many frames the port took. What the port refuses is
// freed: the next round repeats it.
func (m *Manager) sendVIP(c *shm.Cache, dp *dataPlane) int {
	v := &m.vip
	rounds := v.owed.Swap(0)
	if rounds <= 0 || v.n == 0 {
		return 0
	}
	p := dp.portByID[v.port]
	if p == nil {
		return 0 // Validate requires the port; it may be gone at shutdown
	}
	r := c.Region()
	var s [config.MaxVIPs]shm.Slot
	sent := 0
	for range rounds {
		k := c.Alloc(s[:v.n])
		for i := 0; i < k; i++ {
			md, b := r.Meta(s[i]), r.Buf(s[i])
			f := v.frames[i]
			if int(md.DataOff) < len(b) {
				md.Len = uint32(copy(b[md.DataOff:], f)) // all of it: a slot's data room is far above 86 bytes
			}
			md.Port = v.port
		}
		n := p.TxBurst(c, s[:k])
		sent += n
		for j := n; j < k && !m.stopping.Load(); {
			j += c.Free(s[j:k])
		}
	}
	m.Stats.VIPAnnouncements.Add(uint64(sent))
	return sent
}
