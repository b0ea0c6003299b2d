package onvmstats

import (
	"strconv"
	"time"
)

// WebStatsJSON renders one period as ../onvm_web/onvm_json_stats.json: cJSON_Print of
//
//	{"last_updated": ctime(t.Time),
//	 "onvm_port_stats": {"Port <index>": {"Label", "RX", "TX"}, ...},
//	 "onvm_nf_stats": {"NF <iid>": {"Label", "RX", "TX", "TX_Drop_Rate", "RX_Drop_Rate",
//	                                "service_id", "instance_id", "core"}, ...}}
//
// followed by the "\n" that onvm_stats_display_all adds: the returned bytes are the whole
// file. RX and TX are rates (pps), not counts. Ports are keyed by their portmask index, not
// their ID (§1.11). service_id, instance_id and core go through (int16_t) as in ONVM.
//
// [quirk] Copied on purpose: ONVM formats "NF %d" into a 6-byte buffer, so for instance IDs
// of 100 and up the key and Label keep only 5 bytes ("NF 100" becomes "NF 10") and can
// repeat another NF's key. The web console parses these files, so Reinforce writes what
// ONVM writes. "Port %d" has the same 8-byte limit, reached only by an index of 100 or more.
//
// See Renderer for rates and periods.
func (r *Renderer) WebStatsJSON(t Tick) []byte {
	f := r.frame(t)
	ports := jsonObj("onvm_port_stats")
	ports.kids = make([]jsonNode, 0, len(f.ports))
	for _, p := range f.ports {
		label := cLabel("Port "+strconv.Itoa(p.Index), portLabelSize)
		ports.kids = append(ports.kids, jsonObj(label,
			jsonStr("Label", label),
			jsonNum("RX", float64(p.rxPPS)),
			jsonNum("TX", float64(p.txPPS)),
		))
	}
	nfs := jsonObj("onvm_nf_stats")
	nfs.kids = make([]jsonNode, 0, len(f.nfs))
	for i := range f.nfs {
		n := &f.nfs[i]
		label := NFLabel(n.Instance)
		nfs.kids = append(nfs.kids, jsonObj(label,
			jsonStr("Label", label),
			jsonNum("RX", float64(n.rxPPS)),
			jsonNum("TX", float64(n.txPPS)),
			jsonNum("TX_Drop_Rate", float64(n.txDropRate)),
			jsonNum("RX_Drop_Rate", float64(n.rxDropRate)),
			jsonNum("service_id", float64(int16(n.Service))),
			jsonNum("instance_id", float64(int16(n.Instance))),
			jsonNum("core", float64(int16(n.Core))),
		))
	}
	root := jsonObj("",
		jsonStr("last_updated", ctime(f.time)),
		ports,
		nfs,
	)
	b := appendCJSON(nil, &root, 0)
	return append(b, '\n')
}

// NFLabel returns the key and Label of an NF in onvm_json_stats.json: "NF <instance>" cut to
// 5 bytes, as ONVM's 6-byte buffer cuts it ([quirk], see WebStatsJSON). Safe from any
// goroutine.
func NFLabel(instance uint16) string {
	return cLabel("NF "+strconv.Itoa(int(instance)), nfLabelSize)
}

// ctime formats t as C's ctime() does, "Thu Jan  1 00:00:00 1970\n", including the trailing
// newline, in t's location.
func ctime(t time.Time) string {
	return t.Format(layoutCtime) + "\n"
}
