// Command test_flow_dir is ONVM's test_flow_dir example NF (tag
// "test_flow_dir", ONVM-COMPAT.md §5.4): it installs a flow director rule
// for each new flow it sees, so that the flow's later packets go from the
// port straight to the service given with -d, past this NF.
//
//	test_flow_dir [EAL args] -- [ONVM args] -- -d <destination> [-p <print_delay>] [-c <chain>]
//
// ONVM's rule is a service chain made on the fly ([TONF -d]); Reinforce's
// flow director steers flows onto configured chains, so the rule names a
// chain of the manager's config (-c, a Reinforce addition; default
// "test_flow_dir"), which should be [-d]:
//
//	[[chain]]
//	name = "test_flow_dir"
//	services = [2]
//
// Each rule is an exact 5-tuple entry (TCP and UDP; other IPv4 protocols
// get a rule on both addresses and the protocol). The flows this NF has
// installed are a state map (docs/state.md), so a restarted NF does not
// install them again.
//
// Where we differ from ONVM, on purpose:
//   - A new flow's first packet goes to -d, where the rule sends the
//     rest ([quirk]: ONVM leaves its metadata unchanged).
//   - A packet of a known flow that still reaches this NF (sent before its
//     rule was in place) also goes to -d; ONVM sets ACTION_NEXT, which
//     follows the flow's chain, [TONF -d], to the same place.
//   - Adding a rule is a request to the manager (a few milliseconds, once
//     per flow); ONVM writes the shared table itself. A rule the manager
//     refuses (no chain by that name, say) is reported once per flow.
//   - The arguments are checked before registering.
package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"os"

	"github.com/reinforce-nfv/reinforce/ctlmsg"
	"github.com/reinforce-nfv/reinforce/examples/internal/getopt"
	"github.com/reinforce-nfv/reinforce/examples/internal/nfapp"
	"github.com/reinforce-nfv/reinforce/examples/internal/pktprint"
	"github.com/reinforce-nfv/reinforce/nflib"
	"github.com/reinforce-nfv/reinforce/pkt"
	"github.com/reinforce-nfv/reinforce/shm/state"
)

// tag names the NF in the manager's stats. ONVM: NF_TAG.
const tag = "test_flow_dir"

const (
	defaultPrintDelay = 1000000
	defaultChain      = "test_flow_dir"
	maxFlows          = 1024 // ONVM: SDN_FT_ENTRIES
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
	flows, err := nflib.NewMap[flowKey, uint8](nf, "flows", maxFlows)
	if err != nil {
		return nfapp.Fail(nf, w, err.Error())
	}
	d := &director{cfg: cfg, act: nflib.ToNF(cfg.dst), flows: flows, add: nf.AddFlow, out: w.Stdout, buf: make([]byte, 0, 1024)}
	fmt.Fprintf(w.Stdout, "Flows go to service %d through chain %q\n", cfg.dst, cfg.chain)
	return nfapp.Serve(nf, d.handle, w)
}

// config is the NF's own command line.
type config struct {
	dst        uint16
	printDelay uint64
	chain      string
}

func usage(w io.Writer, prog string) {
	io.WriteString(w, "Usage: "+prog+" [EAL args] -- [NF_LIB args] -- -d <destination> -p <print_delay> [-c <chain>]\n\n")
}

// parseArgs parses the NF's own arguments with ONVM's getopt string "d:p:"
// plus -c. Errors are *getopt.Error.
func parseArgs(args []string) (config, error) {
	cfg := config{printDelay: defaultPrintDelay, chain: defaultChain}
	opts, _, perr := getopt.Parse(args, "d:p:c:")
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
			n, err := o.Uint(1<<64 - 1)
			if err != nil {
				return config{}, err
			}
			cfg.printDelay = n
		case 'c':
			if o.Arg == "" {
				return config{}, getopt.Errorf("Option -c needs a chain name")
			}
			cfg.chain = o.Arg
		}
	}
	if perr != nil {
		return config{}, perr
	}
	if !haveDst {
		return config{}, getopt.Errorf("Test Flow Dir NF requires destination flag -d.")
	}
	return cfg, nil
}

// flowKey is ONVM's onvm_ft_ipv4_5tuple (not symmetric: one direction).
type flowKey struct {
	Src, Dst         [4]byte
	SrcPort, DstPort uint16
	Proto            uint8
	Pad              [3]byte
}

// director is the NF's state, used by the burst loop goroutine only.
type director struct {
	cfg     config
	act     nflib.Action
	flows   *state.Map[flowKey, uint8] // installed flows: 1 = rule in place, 2 = refused
	add     func(ctlmsg.FlowAdd) error
	h       pkt.Headers
	counter uint64
	printed uint64
	out     io.Writer
	buf     []byte
}

// handle is the packet handler (ONVM: packet_handler).
func (d *director) handle(p nflib.Packet) nflib.Action {
	m, data := p.Meta(), p.Data()
	if d.cfg.printDelay != 0 {
		if d.counter++; d.counter == d.cfg.printDelay {
			d.counter = 0
			d.printed += d.cfg.printDelay
			d.buf = pktprint.AppendStd(d.buf[:0], m.Port, m.Len, d.printed, data)
			d.out.Write(d.buf)
		}
	}
	k, ok := d.key(data)
	if !ok {
		return d.act
	}
	if _, known := d.flows.Get(k); known {
		return d.act
	}
	v := uint8(1)
	if err := d.add(rule(k, d.cfg.chain)); err != nil {
		fmt.Fprintf(d.out, "Flow rule not installed: %v\n", err)
		v = 2
	}
	if err := d.flows.Put(k, v); err != nil {
		fmt.Fprintf(d.out, "Flow table full: %v\n", err)
	}
	return d.act
}

// key fills ONVM's onvm_ft_fill_key; false for a packet that is not IPv4.
func (d *director) key(data []byte) (flowKey, bool) {
	if d.h.Decode(data) != nil || d.h.IPVersion != 4 {
		return flowKey{}, false
	}
	l3 := int(d.h.L3)
	k := flowKey{Src: [4]byte(data[l3+12 : l3+16]), Dst: [4]byte(data[l3+16 : l3+20]), Proto: d.h.Proto}
	if d.h.Flags&pkt.FlagL4 != 0 && (d.h.Proto == pkt.ProtoTCP || d.h.Proto == pkt.ProtoUDP) {
		k.SrcPort = binary.BigEndian.Uint16(data[d.h.L4:])
		k.DstPort = binary.BigEndian.Uint16(data[d.h.L4+2:])
	}
	return k, true
}

// rule is the flow director request for k: exact for TCP and UDP with
// ports, otherwise both addresses and the protocol.
func rule(k flowKey, chain string) ctlmsg.FlowAdd {
	r := ctlmsg.FlowAdd{Chain: chain, Src: netip.AddrFrom4(k.Src).String(), Dst: netip.AddrFrom4(k.Dst).String(), Proto: k.Proto}
	if k.SrcPort != 0 && k.DstPort != 0 {
		r.SrcPorts = [2]uint16{k.SrcPort, k.SrcPort}
		r.DstPorts = [2]uint16{k.DstPort, k.DstPort}
	} else {
		r.SrcPorts, r.DstPorts = [2]uint16{0, 0xFFFF}, [2]uint16{0, 0xFFFF}
	}
	return r
}
