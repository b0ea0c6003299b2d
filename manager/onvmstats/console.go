package onvmstats

import (
	"fmt"
	"slices"
)

// Console renders one period as onvm_stats_display_all prints it to stats_out (the terminal,
// or ../onvm_web/onvm_stats.txt in web mode), in this order:
//
//	clear screen (Options.Stdout only) → PORTS block → NF header → NF rows
//	→ service totals (if a service has more than one NF) → "Shared core stats" (-c only)
//
// At LevelRaw it returns the same bytes as Raw. See Renderer for how rates are computed.
func (r *Renderer) Console(t Tick) []byte {
	f := r.frame(t)
	if r.opt.Verbosity == LevelRaw {
		return r.appendRaw(nil, &f)
	}
	var b []byte
	if r.opt.Stdout {
		b = append(b, clearScreen...)
	}
	b = appendPorts(b, &f)
	b = r.appendNFs(b, &f)
	b = r.appendServiceTotals(b, &f)
	if r.opt.SharedCore {
		// ONVM prints this section at levels 1 and 2 alike.
		b = append(b, sharedCoreHeading...)
		b = fmt.Appendf(b, fmtSharedTotals, f.wakeups, f.wakeupRate)
	}
	return b
}

// appendPorts is onvm_stats_display_ports at levels 1 and 2: every port's MAC on one line,
// then one counter line per port. Both print the port ID, not the portmask index.
func appendPorts(b []byte, f *frame) []byte {
	b = append(b, portsHeading...)
	for _, p := range f.ports {
		b = fmt.Appendf(b, fmtPortMAC, p.ID, p.MAC)
	}
	b = append(b, "\n\n"...)
	for _, p := range f.ports {
		b = fmt.Appendf(b, fmtPort, p.ID, p.RX, p.rxPPS, p.TX, p.txPPS)
	}
	return b
}

// appendNFs is the NF block of onvm_stats_display_nfs at levels 1 and 2.
func (r *Renderer) appendNFs(b []byte, f *frame) []byte {
	switch {
	case r.opt.Verbosity == LevelNormal:
		b = append(b, nfHeaderLevel1...)
	case r.opt.SharedCore:
		b = append(b, nfHeaderLevel2Shared...)
	default:
		b = append(b, nfHeaderLevel2...)
	}
	for i := range f.nfs {
		n := &f.nfs[i]
		b = appendTag(b, n.Tag)
		if r.opt.Verbosity == LevelNormal {
			b = fmt.Appendf(b, fmtNFLevel1, n.Instance, n.Service, n.Core,
				n.rxPPS, n.txPPS, n.RXDrop, n.TXDrop, n.ActOut, n.ActToNF, n.ActDrop)
			continue
		}
		b = fmt.Appendf(b, fmtNFLevel2, n.Instance, n.Service, n.Core,
			n.rxPPS, n.txPPS, n.RX, n.TX, n.ActOut, n.ActToNF, n.ActDrop,
			n.Parent, r.state(n.NF), children(n.Children),
			n.rxDropRate, n.txDropRate, n.RXDrop, n.TXDrop, n.ActNext, n.ActBuffer, n.ActReturned)
		if r.opt.SharedCore {
			b = fmt.Appendf(b, fmtNFShared, n.Wakeups, n.wakeupRate)
		}
		b = append(b, '\n')
	}
	return b
}

// serviceTotal is one service's sums (ONVM: the *_for_service arrays). Rates are sums of the
// NFs' already divided rates, as in ONVM.
type serviceTotal struct {
	id, count                                               uint16
	rxPPS, txPPS, rxDropRate, txDropRate                    uint64
	rx, tx, rxDrop, txDrop, out, toNF, drop, next, buf, ret uint64
}

// appendServiceTotals prints "Service id totals" when any service has more than one NF,
// one entry per service in ascending ID order. ONVM counts NFs per service in
// nf_per_service_count; here the count is the tick's NFs with that service ID.
func (r *Renderer) appendServiceTotals(b []byte, f *frame) []byte {
	var totals []serviceTotal
	multi := false
	for i := range f.nfs {
		n := &f.nfs[i]
		j := slices.IndexFunc(totals, func(s serviceTotal) bool { return s.id == n.Service })
		if j < 0 {
			totals = append(totals, serviceTotal{id: n.Service})
			j = len(totals) - 1
		}
		s := &totals[j]
		s.count++
		multi = multi || s.count > 1
		s.rxPPS += n.rxPPS
		s.txPPS += n.txPPS
		s.rxDropRate += n.rxDropRate
		s.txDropRate += n.txDropRate
		s.rx += n.RX
		s.tx += n.TX
		s.rxDrop += n.RXDrop
		s.txDrop += n.TXDrop
		s.out += n.ActOut
		s.toNF += n.ActToNF
		s.drop += n.ActDrop
		s.next += n.ActNext
		s.buf += n.ActBuffer
		s.ret += n.ActReturned
	}
	if !multi {
		return b
	}
	slices.SortFunc(totals, func(a, b serviceTotal) int { return int(a.id) - int(b.id) })
	b = append(b, serviceTotalsHeading...)
	for _, s := range totals {
		word := "NFs"
		if s.count == 1 {
			word = "NF "
		}
		if r.opt.Verbosity == LevelNormal {
			b = fmt.Appendf(b, fmtTotalsLevel1, s.id, s.count, word,
				s.rxPPS, s.txPPS, s.rxDrop, s.txDrop, s.out, s.toNF, s.drop)
			continue
		}
		b = fmt.Appendf(b, fmtTotalsLevel2, s.id, s.count, word,
			s.rxPPS, s.txPPS, s.rx, s.tx, s.out, s.toNF, s.drop,
			s.rxDropRate, s.txDropRate, s.rxDrop, s.txDrop, s.next, s.buf, s.ret)
	}
	return b
}

// appendTag appends tag as C's "%-14s" does: padded with spaces to 14 bytes, never cut. Go's
// %-14s would count runes, which differs for non-ASCII tags.
func appendTag(b []byte, tag string) []byte {
	b = append(b, tag...)
	for i := len(tag); i < 14; i++ {
		b = append(b, ' ')
	}
	return b
}
