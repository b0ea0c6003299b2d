// Command payload_scan is ONVM's payload_scan example NF (tag
// "payload_scan", ONVM-COMPAT.md §5.3): it searches the TCP or UDP payload
// of every IPv4 packet for the string given with -s; a packet that holds it
// is sent to the service given with -d and one that does not is dropped
// (-i inverts this). Packets that are not IPv4, or neither TCP nor UDP, are
// dropped. Every -p packets it prints its counters.
//
//	payload_scan [EAL args] -- [ONVM args] -- -d <destination> -s <search term> [-p <print_delay>] [-i]
//
// As in ONVM the payload starts after fixed header sizes (Ethernet 14,
// IPv4 20, TCP 20 or UDP 8 bytes). The counters are a state array.
//
// Where we differ from ONVM, on purpose: the arguments are checked before
// registering (-d and -s are required, -d must be a service ID 1..31); the
// search covers the whole payload, where ONVM's strstr stops at the
// payload's first zero byte (and may read past the packet when it has
// none); a packet that is not IPv4 counts under "Packets not IPv4" (ONVM
// counts it as dropped and never moves that counter).
package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/reinforce-nfv/reinforce/examples/internal/counters"
	"github.com/reinforce-nfv/reinforce/examples/internal/getopt"
	"github.com/reinforce-nfv/reinforce/examples/internal/nfapp"
	"github.com/reinforce-nfv/reinforce/examples/internal/pktprint"
	"github.com/reinforce-nfv/reinforce/nflib"
)

// tag names the NF in the manager's stats. ONVM: NF_TAG.
const tag = "payload_scan"

// defaultPrintDelay is -p's default, packets.
const defaultPrintDelay = 10000000

// Fixed header sizes ONVM's payload offset assumes.
const (
	ethIPBytes = 14 + 20
	tcpBytes   = 20
	udpBytes   = 8
)

// Counter indices in the state array.
const (
	cAccepted = iota
	cDropped
	cNotIPv4
	cNotL4
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
	ctr, err := counters.Open(nf, "scan_stats", nCounters)
	if err != nil {
		return nfapp.Fail(nf, w, err.Error())
	}
	fmt.Fprintf(w.Stdout, "Search term: %s\n", cfg.term)
	s := newScanner(cfg, ctr, w.Stdout)
	return nfapp.Serve(nf, s.handle, w)
}

// config is the NF's own command line.
type config struct {
	dst        uint16 // -d
	term       string // -s
	printDelay uint64 // -p; 0 never prints
	inverse    bool   // -i
}

// usage prints ONVM's usage text for payload_scan.
func usage(w io.Writer, prog string) {
	io.WriteString(w, "Usage:\n"+
		prog+" [EAL args] -- [NF_LIB args] -- -p <print_delay>\n"+
		prog+" -F <CONFIG_FILE.json> [EAL args] -- [NF_LIB args] -- [NF args]\n\n"+
		"Flags:\n"+
		" - `-p <print_delay>`: number of packets between each print, e.g. `-p 1` prints every packets.\n"+
		" - `-i <inverse mode>`: payload match to search term results in a packet drop, mismatch results in a forward\n"+
		" - `-s <input string>`: String to match against packet payload\n")
}

// parseArgs parses the NF's own arguments with ONVM's getopt string
// "d:s:p:i". Errors are *getopt.Error.
func parseArgs(args []string) (config, error) {
	cfg := config{printDelay: defaultPrintDelay}
	opts, _, perr := getopt.Parse(args, "d:s:p:i")
	haveDst, haveTerm := false, false
	for _, o := range opts {
		switch o.Name {
		case 'd':
			n, err := o.ServiceID()
			if err != nil {
				return config{}, err
			}
			cfg.dst, haveDst = uint16(n), true
		case 's':
			cfg.term, haveTerm = o.Arg, true
		case 'p':
			n, err := o.Uint(1<<64 - 1)
			if err != nil {
				return config{}, err
			}
			cfg.printDelay = n
		case 'i':
			cfg.inverse = true
		}
	}
	if perr != nil {
		return config{}, perr
	}
	if !haveDst {
		return config{}, getopt.Errorf("Payload NF requires a destination NF with the -d flag.")
	}
	if !haveTerm || cfg.term == "" {
		return config{}, getopt.Errorf("Payload NF requires a search term string with the -s flag.")
	}
	return cfg, nil
}

// scanner is the NF's packet path, for the burst loop goroutine only.
type scanner struct {
	term    []byte
	inverse bool
	ctr     *counters.Counters
	act     nflib.Action
	every   uint64
	counter uint64
	out     io.Writer
	buf     []byte
}

func newScanner(cfg config, ctr *counters.Counters, out io.Writer) *scanner {
	return &scanner{term: []byte(cfg.term), inverse: cfg.inverse, ctr: ctr, act: nflib.ToNF(cfg.dst),
		every: cfg.printDelay, out: out, buf: make([]byte, 0, 256)}
}

func (s *scanner) handle(p nflib.Packet) nflib.Action { return s.process(p.Data()) }

// process is ONVM's packet_handler: the verdict for one frame, counted.
func (s *scanner) process(data []byte) nflib.Action {
	if s.counter++; s.counter == s.every {
		s.counter = 0
		s.display() // before this packet is counted
	}
	s.ctr.Add(cTotal, 1)
	if !pktprint.IsIPv4(data) {
		s.ctr.Add(cNotIPv4, 1)
		return nflib.Drop
	}
	var off int
	switch data[14+9] {
	case 6:
		off = ethIPBytes + tcpBytes
	case 17:
		off = ethIPBytes + udpBytes
	default:
		s.ctr.Add(cNotL4, 1)
		return nflib.Drop
	}
	var payload []byte
	if off < len(data) {
		payload = data[off:]
	}
	if bytes.Contains(payload, s.term) != s.inverse {
		s.ctr.Add(cAccepted, 1)
		return s.act
	}
	s.ctr.Add(cDropped, 1)
	return nflib.Drop
}

// display is ONVM's do_stats_display.
func (s *scanner) display() {
	b := append(s.buf[:0], pktprint.ClearScreen...)
	b = append(b, "Search term: "...)
	b = append(b, s.term...)
	for _, l := range [...]struct {
		name string
		i    int
	}{{"\nPackets accepted: ", cAccepted}, {"\nPackets dropped: ", cDropped}, {"\nPackets not IPv4: ", cNotIPv4},
		{"\nPackets not UDP/TCP: ", cNotL4}, {"\nPackets total: ", cTotal}} {
		b = append(b, l.name...)
		b = strconv.AppendUint(b, s.ctr.Get(l.i), 10)
	}
	b = append(b, "\n\n"...)
	s.buf = b
	s.out.Write(b)
}
