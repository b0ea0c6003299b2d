// Command firewall is ONVM's firewall example NF (tag "firewall",
// ONVM-COMPAT.md §5.3): it looks up every IPv4 packet's source address in
// an LPM table built from the rules file given with -f; a packet whose
// longest matching rule has action 0 is accepted and sent to the service
// given with -d, and every other packet (another action, no matching rule,
// not IPv4) is dropped. Every -p packets it prints its counters; -b prints
// a line per packet.
//
//	firewall [EAL args] -- [ONVM args] -- -d <destination> -f <rules.json> [-p <print_delay>] [-b]
//
// The rules file is a JSON object of named rules:
//
//	{ "rule1": { "ip": "10.0.0.0", "depth": 8, "action": 0 },
//	  "rule2": { "ip": "10.0.0.7", "depth": 32, "action": 1 } }
//
// The counters are a state array (examples/internal/counters): an NF that
// takes over after a crash goes on counting from the committed values. The
// LPM table is configuration, rebuilt from the file at every start.
//
// Where we differ from ONVM, on purpose:
//   - The arguments and the rules file are checked before registering; a
//     rule with a bad address, a depth outside 0..32 or a missing field is
//     an error naming the rule (ONVM reads a bad address as 0).
//   - Addresses are printed dotted ("ip: 10.0.0.0"); the lookup is on the
//     address's value (ONVM looks up the big-endian word in a table of
//     host-order rules, so its rules match byte-swapped addresses).
//   - The table is not created by the manager (rte_lpm through
//     onvm_nflib_request_lpm): it is the NF's own, 1024 rules as ONVM asks.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"

	"github.com/reinforce-nfv/reinforce/examples/internal/counters"
	"github.com/reinforce-nfv/reinforce/examples/internal/getopt"
	"github.com/reinforce-nfv/reinforce/examples/internal/lpm"
	"github.com/reinforce-nfv/reinforce/examples/internal/nfapp"
	"github.com/reinforce-nfv/reinforce/examples/internal/pktprint"
	"github.com/reinforce-nfv/reinforce/nflib"
)

// tag names the NF in the manager's stats. ONVM: NF_TAG.
const tag = "firewall"

// ONVM's constants.
const (
	defaultPrintDelay = 10000000 // -p's default, packets
	maxRules          = 1024     // the LPM table's max_num_rules
	actionAccept      = 0        // a rule's action that accepts
)

// Counter indices in the state array (ONVM: struct firewall_pkt_stats).
const (
	cDropped = iota
	cNotIPv4
	cAccepted
	cTotal
	nCounters
)

func main() {
	os.Exit(run(os.Args[0], os.Args[1:], nfapp.Std()))
}

// run is main with its inputs and outputs passed in; it returns the exit
// status.
func run(prog string, argv []string, w nfapp.IO) int {
	var cfg config
	var rules []rule
	if !nfapp.Parse(prog, argv, w, usage, func(app []string) (err error) {
		if cfg, err = parseArgs(app); err != nil {
			return err
		}
		if rules, err = readRules(cfg.rulesFile); err != nil {
			return &getopt.Error{Msg: err.Error(), NoUsage: true}
		}
		return nil
	}) {
		return 1
	}
	if cfg.debug {
		fmt.Fprintln(w.Stdout, "Debug mode enabled, printing packet drops/forwards")
	} else {
		fmt.Fprintln(w.Stdout, "Running normal mode, use -b flag to enable debug mode")
	}
	tbl := lpm.New(maxRules)
	for i, r := range rules {
		fmt.Fprintf(w.Stdout, "RULE %d: { ip: %s, depth: %d, action: %d }\n", i, ipString(r.ip), r.depth, r.action)
		if err := tbl.Add(r.ip, r.depth, r.action); err != nil {
			fmt.Fprintf(w.Stderr, "ERROR ADDING RULE %d: %v\n", i, err)
			return 1
		}
	}
	nf := nfapp.Register(tag, argv, w)
	if nf == nil {
		return 1
	}
	ctr, err := counters.Open(nf, "fw_stats", nCounters)
	if err != nil {
		return nfapp.Fail(nf, w, err.Error())
	}
	fw := newFirewall(cfg, tbl, ctr, w.Stdout)
	return nfapp.Serve(nf, fw.handle, w)
}

// config is the NF's own command line.
type config struct {
	dst        uint16 // -d
	rulesFile  string // -f
	printDelay uint64 // -p: packets between stats prints; 0 never prints
	debug      bool   // -b
}

// usage prints ONVM's usage text for firewall.
func usage(w io.Writer, prog string) {
	io.WriteString(w, "Usage:\n"+
		prog+" [EAL args] -- [NF_LIB args] -- -d <destination> -f <rules file> [-p <print_delay>] [-b]\n"+
		prog+" -F <CONFIG_FILE.json> [EAL args] -- [NF_LIB args] -- [NF args]\n\n"+
		"Flags:\n"+
		" - `-d <destination_id>`: Service ID to send accepted packets to\n"+
		" - `-f <rules_file>`: JSON file of rules: {\"rule\": {\"ip\": \"a.b.c.d\", \"depth\": 32, \"action\": 0}}\n"+
		" - `-p <print_delay>`: Number of packets between each print, e.g. `-p 1` prints every packets.\n"+
		" - `-b`: Debug mode: print a line for every packet accepted or dropped\n")
}

// parseArgs parses the NF's own arguments with ONVM's getopt string
// "d:f:p:b". Errors are *getopt.Error.
func parseArgs(args []string) (config, error) {
	cfg := config{printDelay: defaultPrintDelay}
	opts, _, perr := getopt.Parse(args, "d:f:p:b")
	haveDst := false
	for _, o := range opts {
		switch o.Name {
		case 'd':
			n, err := o.ServiceID()
			if err != nil {
				return config{}, err
			}
			cfg.dst, haveDst = uint16(n), true
		case 'f':
			cfg.rulesFile = o.Arg
		case 'p':
			n, err := o.Uint(1<<64 - 1)
			if err != nil {
				return config{}, err
			}
			cfg.printDelay = n
		case 'b':
			cfg.debug = true
		}
	}
	if perr != nil {
		return config{}, perr
	}
	if !haveDst {
		return config{}, getopt.Errorf("Firewall NF requires a destination NF with the -d flag.")
	}
	if cfg.rulesFile == "" {
		return config{}, getopt.Errorf("Firewall NF requires a rules file with the -f flag.")
	}
	return cfg, nil
}

// rule is one firewall rule (ONVM: struct onvm_fw_rule).
type rule struct {
	ip     uint32
	depth  int
	action uint32
}

// readRules reads ONVM's rules file, rules in file order.
func readRules(path string) ([]rule, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseRules(b, path)
}

// parseRules parses a rules file's bytes (name is for messages).
func parseRules(b []byte, name string) ([]rule, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("%s: not a JSON object of rules", name)
	}
	var rules []rule
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
		key, _ := tok.(string)
		var raw struct {
			IP     *string `json:"ip"`
			Depth  *int    `json:"depth"`
			Action *int64  `json:"action"`
		}
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("%s: rule %q: %v", name, key, err)
		}
		switch {
		case raw.IP == nil:
			return nil, fmt.Errorf("%s: rule %q: IP not found/invalid", name, key)
		case raw.Depth == nil:
			return nil, fmt.Errorf("%s: rule %q: Depth not found/invalid", name, key)
		case raw.Action == nil:
			return nil, fmt.Errorf("%s: rule %q: Action not found/invalid", name, key)
		}
		a, err := netip.ParseAddr(*raw.IP)
		if err != nil || !a.Is4() {
			return nil, fmt.Errorf("%s: rule %q: %q is not an IPv4 address", name, key, *raw.IP)
		}
		if *raw.Depth < 0 || *raw.Depth > 32 {
			return nil, fmt.Errorf("%s: rule %q: depth %d is not 0..32", name, key, *raw.Depth)
		}
		if *raw.Action < 0 || *raw.Action > 255 {
			return nil, fmt.Errorf("%s: rule %q: action %d is not 0..255", name, key, *raw.Action)
		}
		q := a.As4()
		rules = append(rules, rule{ip: lpm.IPv4(q[0], q[1], q[2], q[3]), depth: *raw.Depth, action: uint32(*raw.Action)})
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	if len(rules) > maxRules {
		return nil, fmt.Errorf("%s: %d rules, the table holds %d", name, len(rules), maxRules)
	}
	return rules, nil
}

func ipString(ip uint32) string {
	return netip.AddrFrom4([4]byte{byte(ip >> 24), byte(ip >> 16), byte(ip >> 8), byte(ip)}).String()
}

// firewall is the NF's packet path, for the burst loop goroutine only.
type firewall struct {
	tbl     *lpm.Table
	ctr     *counters.Counters
	act     nflib.Action
	every   uint64
	counter uint64
	debug   bool
	out     io.Writer
	buf     []byte
}

func newFirewall(cfg config, tbl *lpm.Table, ctr *counters.Counters, out io.Writer) *firewall {
	return &firewall{tbl: tbl, ctr: ctr, act: nflib.ToNF(cfg.dst), every: cfg.printDelay, debug: cfg.debug,
		out: out, buf: make([]byte, 0, 256)}
}

func (f *firewall) handle(p nflib.Packet) nflib.Action { return f.process(p.Data()) }

// process is ONVM's packet_handler: the verdict for one frame, counted.
func (f *firewall) process(data []byte) nflib.Action {
	if f.counter++; f.counter == f.every {
		f.counter = 0
		f.display() // before this packet is counted, as ONVM does
	}
	f.ctr.Add(cTotal, 1)
	if !pktprint.IsIPv4(data) {
		f.ctr.Add(cNotIPv4, 1)
		f.ctr.Add(cDropped, 1)
		if f.debug {
			f.out.Write([]byte("Packet received not ipv4\n"))
		}
		return nflib.Drop
	}
	src := uint32(data[26])<<24 | uint32(data[27])<<16 | uint32(data[28])<<8 | uint32(data[29])
	if action, ok := f.tbl.Lookup(src); ok && action == actionAccept {
		f.ctr.Add(cAccepted, 1)
		f.debugLine(src, "accepted")
		return f.act
	}
	f.ctr.Add(cDropped, 1)
	f.debugLine(src, "dropped")
	return nflib.Drop
}

func (f *firewall) debugLine(src uint32, what string) {
	if !f.debug {
		return
	}
	b := append(f.buf[:0], "Packet from source IP "...)
	for i := 3; i >= 0; i-- {
		b = strconv.AppendUint(b, uint64(src>>(8*i)&0xFF), 10)
		if i > 0 {
			b = append(b, '.')
		}
	}
	b = append(b, " has been "...)
	b = append(b, what...)
	b = append(b, '\n')
	f.buf = b
	f.out.Write(b)
}

// display is ONVM's do_stats_display.
func (f *firewall) display() {
	b := append(f.buf[:0], pktprint.ClearScreen...)
	b = append(b, "Packets Dropped: "...)
	b = strconv.AppendUint(b, f.ctr.Get(cDropped), 10)
	b = append(b, "\nPackets not IPv4: "...)
	b = strconv.AppendUint(b, f.ctr.Get(cNotIPv4), 10)
	b = append(b, "\nPackets Accepted: "...)
	b = strconv.AppendUint(b, f.ctr.Get(cAccepted), 10)
	b = append(b, "\nPackets Total: "...)
	b = strconv.AppendUint(b, f.ctr.Get(cTotal), 10)
	b = append(b, "\n\n"...)
	f.buf = b
	f.out.Write(b)
}
