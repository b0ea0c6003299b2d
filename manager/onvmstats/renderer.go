package onvmstats

import (
	"cmp"
	"slices"
	"time"
)

// Options configure a Renderer. They mirror onvm_mgr's stats flags (ONVM-COMPAT.md §1.2).
type Options struct {
	// Verbosity is -v: LevelNormal, LevelVerbose or LevelRaw. Values below 1 render as 1 and
	// above 3 as 3. [quirk] ONVM indexes an array with -v 4 and up; we do not.
	Verbosity int
	// SharedCore is -c: the third NF header line, the wakeup row, the S|W state and the
	// "Shared core stats" section.
	SharedCore bool
	// PeriodSeconds is -z, the divisor of every rate. Values below 1 count as 1 (ONVM
	// rejects them at parse time).
	PeriodSeconds int
	// Stdout reports that Console's text goes to the terminal (-s stdout). Only then does it
	// start with the clear-screen sequence (ONVM: onvm_stats_display_all clears only when
	// stats_out == stdout, so not for stderr nor for onvm_stats.txt).
	Stdout bool
}

// Renderer formats ONVM's stats output from cumulative counters. It keeps the previous
// period's counters to compute rates and does no I/O: each method returns a caller-owned
// byte slice to write. It is not safe for concurrent use; one goroutine (the manager's
// stats loop) owns it.
//
// Rates follow ONVM (§1.11): rate = (current − previous) / PeriodSeconds with integer
// division. The previous value of a port is matched by Port.Index and of an NF by
// NF.Instance; on the first period it is 0, as in ONVM's zeroed static arrays.
//
// Decisions where ONVM's unsigned arithmetic would print garbage:
//   - A counter value of 0 resets its previous value, so the rate is 0 (§1.11). More
//     generally a counter below its previous value (an NF restarted under the same ID and
//     cleared by onvm_stats_clear_nf) is taken to have restarted from 0: rate = current /
//     period. ONVM would print the wrapped 64-bit difference.
//   - An NF missing from a tick is forgotten, so an NF that later reuses its instance ID
//     starts from 0. ONVM keeps the stale value in nf_rx_last[i].
//   - Per-NF wakeup rates use the previous period's count in raw mode too. [quirk] ONVM
//     only advances prev_num_wakeups in the "Shared core stats" section, which raw mode
//     skips, so its raw wakeup_rate column is num_wakeups / period.
//
// Console, Raw and WebStatsJSON each render one period. Calls whose Tick has the same Time
// render the same period against the same previous counters, so the manager in web mode may
// call Console (for onvm_stats.txt) and WebStatsJSON for one tick in either order and get the
// same rates. A call with a new Time starts a new period: the counters of the last call
// become the previous ones.
type Renderer struct {
	opt Options

	// started is false until the first call; at is the Time of the current period.
	started bool
	at      time.Time

	// prevPorts and prevNFs hold the previous period's counters; curPorts and curNFs the
	// current period's, which become the previous ones when a new period starts.
	prevPorts, curPorts map[int]portCounters
	prevNFs, curNFs     map[uint16]nfCounters
}

type portCounters struct{ rx, tx uint64 }

type nfCounters struct{ rx, tx, rxDrop, txDrop, wakeups uint64 }

// New returns a Renderer with no previous counters. opt is copied; see Options for how
// out-of-range values are treated. Safe from any goroutine; the Renderer it returns is not.
func New(opt Options) *Renderer {
	opt.Verbosity = min(max(opt.Verbosity, LevelNormal), LevelRaw)
	opt.PeriodSeconds = max(opt.PeriodSeconds, 1)
	return &Renderer{
		opt:       opt,
		prevPorts: map[int]portCounters{},
		curPorts:  map[int]portCounters{},
		prevNFs:   map[uint16]nfCounters{},
		curNFs:    map[uint16]nfCounters{},
	}
}

// frame is one period ready to print: the tick's rows in ONVM's order with their rates.
type frame struct {
	time  time.Time
	ports []portRow
	nfs   []nfRow
	// wakeups is the sum of Wakeups over the NFs; wakeupRate is ONVM's
	// (Σ num_wakeups − Σ prev_num_wakeups) / period, summed before dividing.
	wakeups, wakeupRate uint64
}

type portRow struct {
	Port
	rxPPS, txPPS uint64
}

type nfRow struct {
	NF
	rxPPS, txPPS, rxDropRate, txDropRate, wakeupRate uint64
}

// frame computes t's rates, starting a new period if t.Time differs from the current one.
func (r *Renderer) frame(t Tick) frame {
	if !r.started || !t.Time.Equal(r.at) {
		r.started = true
		r.at = t.Time
		r.prevPorts, r.curPorts = r.curPorts, r.prevPorts
		r.prevNFs, r.curNFs = r.curNFs, r.prevNFs
	}
	clear(r.curPorts)
	clear(r.curNFs)
	period := uint64(r.opt.PeriodSeconds)

	f := frame{time: t.Time, ports: make([]portRow, len(t.Ports)), nfs: make([]nfRow, len(t.NFs))}
	for i, p := range t.Ports {
		last := r.prevPorts[p.Index]
		f.ports[i] = portRow{Port: p, rxPPS: rate(p.RX, last.rx, period), txPPS: rate(p.TX, last.tx, period)}
		r.curPorts[p.Index] = portCounters{rx: p.RX, tx: p.TX}
	}
	// Stable sorts: rows with equal keys (bad input) keep the caller's order.
	slices.SortStableFunc(f.ports, func(a, b portRow) int { return cmp.Compare(a.Index, b.Index) })

	var wakeDelta uint64
	for i, n := range t.NFs {
		last := r.prevNFs[n.Instance]
		f.nfs[i] = nfRow{
			NF:         n,
			rxPPS:      rate(n.RX, last.rx, period),
			txPPS:      rate(n.TX, last.tx, period),
			rxDropRate: rate(n.RXDrop, last.rxDrop, period),
			txDropRate: rate(n.TXDrop, last.txDrop, period),
			wakeupRate: rate(n.Wakeups, last.wakeups, period),
		}
		f.wakeups += n.Wakeups
		wakeDelta += n.Wakeups - baseline(n.Wakeups, last.wakeups)
		r.curNFs[n.Instance] = nfCounters{rx: n.RX, tx: n.TX, rxDrop: n.RXDrop, txDrop: n.TXDrop, wakeups: n.Wakeups}
	}
	slices.SortStableFunc(f.nfs, func(a, b nfRow) int { return cmp.Compare(a.Instance, b.Instance) })
	f.wakeupRate = wakeDelta / period
	return f
}

// rate is ONVM's (cur - last) / period with integer division, where a counter that went down
// (to 0 or otherwise) is taken to have restarted from 0.
func rate(cur, last, period uint64) uint64 {
	return (cur - baseline(cur, last)) / period
}

// baseline is the previous value to subtract from cur: last, or 0 if the counter restarted.
func baseline(cur, last uint64) uint64 {
	if cur < last {
		return 0
	}
	return last
}

// state is the S|W column: S only for a sleeping NF in shared-core mode (ONVM reads the
// sleep flag only when ONVM_NF_SHARE_CORES is set).
func (r *Renderer) state(n NF) byte {
	if r.opt.SharedCore && n.Sleeping {
		return 'S'
	}
	return 'W'
}

// children converts the child count as C's "%u" of an int16_t does (ONVM:
// rte_atomic16_read(&children_cnt)), so -1 prints as 4294967295.
func children(n int) uint32 {
	return uint32(int16(n))
}
