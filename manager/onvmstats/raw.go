package onvmstats

import "fmt"

// RawHeader returns the two "#YYYY-MM-DD HH:MM:SS,..." lines that onvm_stats_init prints once
// at LevelRaw, after the master thread's initial pause and before the first period (§1.3).
// The date in them is a literal placeholder, so no time is taken. ONVM prints them with
// printf, that is on stdout whatever -s says and even without -s; the caller decides where
// to write them. It returns a caller-owned copy and is safe from any goroutine.
func RawHeader() []byte {
	return []byte(rawHeader)
}

// Raw renders one period as LevelRaw's CSV rows: one
// "time,port_id,rx,rx_pps,tx,tx_pps" row per port, then one row per NF with the 24 columns
// named by RawHeader. The time is t.Time as strftime "%F %T". There are no headings, no
// service totals and no clear-screen sequence. Raw ignores Options.Verbosity; see Renderer
// for rates and periods.
func (r *Renderer) Raw(t Tick) []byte {
	f := r.frame(t)
	return r.appendRaw(nil, &f)
}

func (r *Renderer) appendRaw(b []byte, f *frame) []byte {
	ts := f.time.Format(layoutFT)
	for _, p := range f.ports {
		b = fmt.Appendf(b, fmtRawPort, ts, p.ID, p.RX, p.rxPPS, p.TX, p.txPPS)
	}
	for i := range f.nfs {
		n := &f.nfs[i]
		b = fmt.Appendf(b, fmtRawNF, ts, n.Tag, n.Instance, n.Service, n.Core,
			n.Parent, r.state(n.NF), children(n.Children),
			n.RX, n.TX, n.rxPPS, n.txPPS, n.RXDrop, n.TXDrop, n.rxDropRate, n.txDropRate,
			n.ActOut, n.ActToNF, n.ActDrop, n.ActNext, n.ActBuffer, n.ActReturned,
			n.Wakeups, n.wakeupRate)
	}
	return b
}
