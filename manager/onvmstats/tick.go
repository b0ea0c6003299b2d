package onvmstats

import "time"

// Tick is one stats period's input: the manager's cumulative counters read once per -z
// seconds. The renderer copies what it keeps; the caller may reuse the slices afterwards.
type Tick struct {
	// Time is when the counters were read. It is printed in its own location (ONVM prints
	// localtime, so pass time.Now()). Successive periods MUST have distinct Times: calls with
	// an equal Time are treated as the same period (see Renderer).
	Time time.Time
	// Ports are the ports of the portmask. Rendered in Index order.
	Ports []Port
	// NFs are the running NFs (ONVM: onvm_nf_is_valid). Rendered in Instance order.
	NFs []NF
}

// Port is one port's cumulative counters (ONVM: ports->rx_stats.rx[id], ports->tx_stats.tx[id]).
type Port struct {
	// Index is the port's position in the portmask (ONVM: i in ports->id[i]). The previous
	// period's counters are matched by Index; web JSON labels use it.
	Index int
	// ID is the port ID (ONVM: ports->id[i]); console and raw rows print it.
	ID uint16
	// MAC is printed verbatim in "Port %u: '%s'", normally "xx:xx:xx:xx:xx:xx".
	MAC string
	// RX and TX are packets received and sent since start.
	RX, TX uint64
}

// NF is one NF's identity and cumulative counters (ONVM: struct onvm_nf and its stats).
type NF struct {
	// Tag is the NF's tag, printed "%-14s" (longer tags are not cut).
	Tag string
	// Instance is the instance ID; the previous period's counters are matched by it.
	Instance uint16
	// Service is the service ID.
	Service uint16
	// Core is the core the NF runs on (ONVM: thread_info.core).
	Core uint16
	// Parent is the parent NF's instance ID, 0 for none (ONVM: thread_info.parent).
	Parent uint16
	// Sleeping is the shared-core sleep flag (ONVM: *nf_wakeup_infos[i].shm_server). It is
	// shown as S, and only with Options.SharedCore; otherwise the state is always W.
	Sleeping bool
	// Children is the number of child NFs (ONVM: thread_info.children_cnt, an int16).
	Children int
	// RX, TX, RXDrop and TXDrop are packets since the NF started (ONVM: stats.rx, .tx,
	// .rx_drop, .tx_drop).
	RX, TX, RXDrop, TXDrop uint64
	// ActOut, ActToNF, ActDrop and ActNext count the NF's verdicts (ONVM: stats.act_out,
	// .act_tonf, .act_drop, .act_next).
	ActOut, ActToNF, ActDrop, ActNext uint64
	// ActBuffer and ActReturned are ONVM's stats.tx_buffer and stats.tx_returned.
	ActBuffer, ActReturned uint64
	// Wakeups counts shared-core wakeups (ONVM: nf_wakeup_infos[i].num_wakeups).
	Wakeups uint64
}
