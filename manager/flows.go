package manager

import (
	"fmt"
	"net/netip"

	"github.com/reinforce-nfv/reinforce/ctlmsg"
	"github.com/reinforce-nfv/reinforce/manager/config"
	"github.com/reinforce-nfv/reinforce/manager/flowdir"
	"github.com/reinforce-nfv/reinforce/pkt"
)

// flowCapacity bounds the flow director's exact entries (ONVM's
// SDN_FT_ENTRIES is 1024).
const flowCapacity = 1 << 16

// chainIndex is the index of the chain called name, the value RX writes to
// Meta.Chain.
func (m *Manager) chainIndex(name string) (uint16, bool) {
	for i, ch := range m.cfg.Chains {
		if ch.Name == name {
			return uint16(i), true
		}
	}
	return 0, false
}

// addFlow puts f in the flow director: an exact entry when it names one
// flow, a rule otherwise. The control plane serialises calls (mu held, or
// before Start): the flow director takes one writer.
func (m *Manager) addFlow(f config.Flow) error {
	chain, ok := m.chainIndex(f.Chain)
	if !ok {
		return fmt.Errorf("flow rule: unknown chain %q", f.Chain)
	}
	if f.Exact() {
		ft := flowTuple(f)
		return m.flows.Insert(&ft, chain)
	}
	return m.flows.AddRule(flowRule(f, chain))
}

// flowTuple is the 5-tuple of an exact flow (f.Exact()).
func flowTuple(f config.Flow) pkt.FiveTuple {
	return pkt.FiveTuple{SrcIP: f.Src.Addr().As16(), DstIP: f.Dst.Addr().As16(),
		SrcPort: f.SrcPorts[0], DstPort: f.DstPorts[0], Proto: f.Proto}
}

// flowRule is the rule of a flow that is not exact.
func flowRule(f config.Flow, chain uint16) flowdir.Rule {
	return flowdir.Rule{SrcPrefix: f.Src, DstPrefix: f.Dst,
		SrcPorts: flowdir.PortRange{Lo: f.SrcPorts[0], Hi: f.SrcPorts[1]},
		DstPorts: flowdir.PortRange{Lo: f.DstPorts[0], Hi: f.DstPorts[1]},
		Proto:    f.Proto, Priority: f.Priority, Chain: chain}
}

// flowFromMsg converts an NF's request; every field is checked (it is input).
func flowFromMsg(r ctlmsg.FlowAdd) (config.Flow, error) {
	f := config.Flow{Chain: r.Chain, SrcPorts: r.SrcPorts, DstPorts: r.DstPorts, Proto: r.Proto, Priority: r.Priority}
	for _, p := range []struct {
		s   string
		dst *netip.Prefix
	}{{r.Src, &f.Src}, {r.Dst, &f.Dst}} {
		if p.s == "" {
			continue
		}
		pfx, err := netip.ParsePrefix(p.s)
		if err != nil {
			addr, aerr := netip.ParseAddr(p.s)
			if aerr != nil {
				return f, fmt.Errorf("flow rule: bad prefix %q", p.s)
			}
			pfx = netip.PrefixFrom(addr, addr.BitLen())
		}
		*p.dst = pfx.Masked()
	}
	return f, nil
}

// flowKey decodes frame's 5-tuple into ft and returns its symmetric flow
// hash, ok false for non-IP frames (hashed by their first bytes, and never
// looked up in the flow director).
func flowKey(frame []byte, ft *pkt.FiveTuple) (hash uint32, ok bool) {
	var h pkt.Headers
	if h.Decode(frame) == nil {
		if *ft, ok = h.FiveTuple(frame); ok {
			return pkt.SymmetricHash(*ft), true
		}
	}
	*ft = pkt.FiveTuple{}
	var x uint32 = 2166136261
	for i := 0; i < len(frame) && i < 14; i++ {
		x = (x ^ uint32(frame[i])) * 16777619
	}
	return x, false
}
