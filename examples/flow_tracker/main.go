// Command flow_tracker is ONVM's stateful flow_tracker example NF (tag
// "flow_tracker", ONVM-COMPAT.md §5.3) on Reinforce's state containers: it
// keeps a table of the IPv4 flows it sees (a symmetric 5-tuple key, so both
// directions share an entry) with each flow's packet count and last packet
// time, sends every packet to the service given with -d, and every -p
// seconds prints the table with each flow's status: Active, or Expired when
// it has been idle for 5 s. When the table's 100 entries are full, a new
// flow first clears the expired ones.
//
//	flow_tracker [EAL args] -- [ONVM args] -- -d <destination> [-p <print_delay>]
//
// The table is a state map (docs/state.md): every packet's update is part
// of its burst's transaction, so an NF restarted with the same instance ID
// (-n) after a crash continues with the table exactly as its predecessor
// last committed it. Times are CLOCK_MONOTONIC, which a restarted process
// shares, so expiry keeps counting across the restart.
//
// Where we differ from ONVM, on purpose:
//   - The arguments are checked before registering, numbers strictly; -d
//     must be a service ID (1..31).
//   - "Packet count" counts every packet of the flow; ONVM counts the first
//     one as 0.
//   - Ports print as numbers (ONVM prints them in network byte order read
//     as host order, 1000 as 59395), and the symmetric key orders addresses
//     and ports by value.
//   - The table prints every -p seconds (ONVM: once more than -p whole
//     seconds have passed); -p 0 never prints. Entries are numbered in
//     print order, not by hash table index.
package main

import (
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/reinforce-nfv/reinforce/examples/internal/getopt"
	"github.com/reinforce-nfv/reinforce/examples/internal/nfapp"
	"github.com/reinforce-nfv/reinforce/nflib"
	"github.com/reinforce-nfv/reinforce/pkt"
	"github.com/reinforce-nfv/reinforce/port"
	"github.com/reinforce-nfv/reinforce/shm/state"
)

// tag names the NF in the manager's stats. ONVM: NF_TAG.
const tag = "flow_tracker"

// ONVM's constants.
const (
	tblSize           = 100 // TBL_SIZE: flows in the table
	expireNs          = 5e9 // EXPIRE_TIME: seconds idle before a flow expires
	defaultPrintDelay = 5   // -p's default, seconds
)

func main() {
	os.Exit(run(os.Args[0], os.Args[1:], nfapp.Std()))
}

// run is main with its inputs and outputs passed in; it returns the exit
// status.
func run(prog string, argv []string, w nfapp.IO) int {
	var cfg config
	if !nfapp.Parse(prog, argv, w, usage, func(app []string) (err error) {
		cfg, err = parseArgs(app)
		return err
	}) {
		return 1
	}
	nf := nfapp.Register(tag, argv, w)
	if nf == nil {
		return 1
	}
	flows, err := nflib.NewMap[flowKey, flowStats](nf, "flows", tblSize)
	if err != nil {
		return nfapp.Fail(nf, w, err.Error())
	}
	fmt.Fprintf(w.Stdout, "Sending packets to service ID %d\n", cfg.dst)
	tr := newTracker(cfg, flows, w.Stdout, port.Nanotime)
	return nfapp.ServeWith(nf, tr.handle, nflib.Callbacks{Idle: tr.idle}, w)
}

// config is the NF's own command line.
type config struct {
	dst        uint16 // -d: the service every packet goes to
	printDelay uint64 // -p: seconds between prints; 0 never prints
}

// usage prints ONVM's usage text for flow_tracker.
func usage(w io.Writer, prog string) {
	io.WriteString(w, "Usage:\n"+
		prog+" [EAL args] -- [NF_LIB args] --d <destination>\n"+
		prog+" -F <CONFIG_FILE.json> [EAL args] -- [NF_LIB args] -- [NF args]\n\n"+
		"Flags:\n"+
		" - `-d <destination_id>`: Service ID to send packets to`\n"+
		" - `-p <print_delay>`:  Number of seconds between each print (default is 5)\n")
}

// parseArgs parses the NF's own arguments with ONVM's getopt string "d:p:".
// Errors are *getopt.Error.
func parseArgs(args []string) (config, error) {
	cfg := config{printDelay: defaultPrintDelay}
	opts, _, perr := getopt.Parse(args, "d:p:")
	haveDst := false
	for _, o := range opts {
		switch o.Name {
		case 'd':
			n, err := o.ServiceID()
			if err != nil {
				return config{}, err
			}
			cfg.dst, haveDst = uint16(n), true
		case 'p':
			n, err := o.Uint(1 << 32) // seconds: 136 years, and no overflow in ns
			if err != nil {
				return config{}, err
			}
			cfg.printDelay = n
		}
	}
	if perr != nil {
		return config{}, perr
	}
	if !haveDst {
		return config{}, getopt.Errorf("Flow Tracker NF requires a destination NF service ID with the -d flag ")
	}
	return cfg, nil
}

// flowKey is ONVM's symmetric onvm_ft_ipv4_5tuple: the larger address and
// the larger port first, so both directions of a flow share the key. Ports
// are 0 for protocols without them.
type flowKey struct {
	SrcAddr, DstAddr uint32
	SrcPort, DstPort uint16
	Proto            uint8
	Pad              [3]byte // always 0: the key has no padding to hash
}

// flowStats is ONVM's struct flow_stats, less is_active, which is derived
// from the time whenever it is shown.
type flowStats struct {
	PktCount  uint64
	LastPktNs int64 // CLOCK_MONOTONIC of the flow's last packet
}

// tracker is the NF's state, used by the burst loop goroutine only.
type tracker struct {
	flows     *state.Map[flowKey, flowStats]
	act       nflib.Action // ToNF(-d)
	everyNs   int64        // -p in ns; 0 never prints
	lastPrint int64
	now       func() int64
	out       io.Writer
	buf       []byte // the print, reused
	h         pkt.Headers
}

func newTracker(cfg config, flows *state.Map[flowKey, flowStats], out io.Writer, now func() int64) *tracker {
	return &tracker{flows: flows, act: nflib.ToNF(cfg.dst), everyNs: int64(cfg.printDelay) * 1e9, now: now, lastPrint: now(),
		out: out, buf: make([]byte, 0, 4096)}
}

// handle is the packet handler (ONVM: packet_handler): track, then on to -d.
func (t *tracker) handle(p nflib.Packet) nflib.Action {
	t.track(p.Data(), t.now())
	return t.act
}

// idle is ONVM's user_actions callback: the print every -p seconds.
func (t *tracker) idle(*nflib.NF) bool {
	if t.everyNs == 0 {
		return false
	}
	if now := t.now(); now-t.lastPrint >= t.everyNs {
		t.lastPrint = now
		t.display(now)
	}
	return false
}

// track counts frame in its flow (ONVM: table_lookup_entry). Frames that
// are not IPv4 are not tracked.
func (t *tracker) track(frame []byte, now int64) {
	k, ok := t.key(frame)
	if !ok {
		return
	}
	if st, found := t.flows.Get(k); found {
		st.PktCount++
		st.LastPktNs = now
		if err := t.flows.Put(k, st); err != nil {
			t.printf("Packet could not be identified or processed\n")
		}
		return
	}
	if t.flows.Len() >= tblSize {
		t.clearExpired(now)
	}
	if err := t.flows.Put(k, flowStats{PktCount: 1, LastPktNs: now}); err != nil {
		t.printf("Packet could not be identified or processed\n")
	}
}

// key fills ONVM's symmetric key (onvm_ft_fill_key_symmetric); false for a
// frame that is not IPv4.
func (t *tracker) key(frame []byte) (flowKey, bool) {
	if t.h.Decode(frame) != nil || t.h.IPVersion != 4 {
		return flowKey{}, false
	}
	ft, ok := t.h.FiveTuple(frame)
	if !ok {
		return flowKey{}, false
	}
	src := uint32(ft.SrcIP[12])<<24 | uint32(ft.SrcIP[13])<<16 | uint32(ft.SrcIP[14])<<8 | uint32(ft.SrcIP[15])
	dst := uint32(ft.DstIP[12])<<24 | uint32(ft.DstIP[13])<<16 | uint32(ft.DstIP[14])<<8 | uint32(ft.DstIP[15])
	k := flowKey{SrcAddr: max(src, dst), DstAddr: min(src, dst),
		SrcPort: max(ft.SrcPort, ft.DstPort), DstPort: min(ft.SrcPort, ft.DstPort), Proto: ft.Proto}
	return k, true
}

// active is ONVM's update_status: a flow is active until it has been idle
// for EXPIRE_TIME.
func active(st flowStats, now int64) bool { return now-st.LastPktNs < expireNs }

// clearExpired deletes the expired flows (ONVM: clear_entries), in the
// packet's transaction.
func (t *tracker) clearExpired(now int64) {
	t.printf("Clearing expired entries\n")
	t.flows.Range(func(k flowKey, st flowStats) bool {
		if !active(st, now) {
			if ok, err := t.flows.Delete(k); !ok || err != nil {
				t.printf("Key should have been removed, but was not\n")
			}
		}
		return true
	})
}

// display prints the table (ONVM: do_stats_display).
func (t *tracker) display(now int64) {
	b := append(t.buf[:0], "------------------------------\n     Flow Table Contents\n------------------------------\n"...)
	b = fmt.Appendf(b, "Current capacity: %d / %d\n\n", t.flows.Len(), tblSize)
	i := 0
	t.flows.Range(func(k flowKey, st flowStats) bool {
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, ". Status: "...)
		if active(st, now) {
			b = append(b, "Active\n"...)
		} else {
			b = append(b, "Expired\n"...)
		}
		b = append(b, "Key information:\n"...)
		b = appendKey(b, k)
		b = append(b, "Packet count: "...)
		b = strconv.AppendUint(b, st.PktCount, 10)
		b = append(b, "\n\n"...)
		i++
		return true
	})
	t.buf = b
	t.out.Write(b)
}

// appendKey is ONVM's _onvm_ft_print_key.
func appendKey(b []byte, k flowKey) []byte {
	b = append(b, "IP: "...)
	b = appendIP(b, k.SrcAddr)
	b = append(b, '-')
	b = appendIP(b, k.DstAddr)
	b = append(b, " Port: "...)
	b = strconv.AppendUint(b, uint64(k.SrcPort), 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(k.DstPort), 10)
	b = append(b, " Proto: "...)
	b = strconv.AppendUint(b, uint64(k.Proto), 10)
	return append(b, '\n')
}

func appendIP(b []byte, a uint32) []byte {
	for i := 3; i >= 0; i-- {
		b = strconv.AppendUint(b, uint64(a>>(8*i)&0xFF), 10)
		if i > 0 {
			b = append(b, '.')
		}
	}
	return b
}

func (t *tracker) printf(format string, args ...any) { fmt.Fprintf(t.out, format, args...) }
