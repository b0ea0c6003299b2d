// Command nf_router is ONVM's nf_router example NF (tag "router",
// ONVM-COMPAT.md §5.2): it sends every IPv4 packet to the service its
// destination address is routed to in the file given with -f, and every
// ARP packet to the service routed for its target address; everything else
// (no route, neither IPv4 nor ARP) is dropped. Every -p IPv4 packets it
// shows the std packet print.
//
//	nf_router [EAL args] -- [ONVM args] -- -f <router_config> [-p <print_delay>]
//
// The route file is ONVM's (examples/nf_router/route.conf): a word and the
// number of routes, then one "address service-ID" pair per route, blank
// space between words:
//
//	LIST_SIZE 2
//	10.0.0.1 2
//	10.0.0.2 3
//
// Where we differ from ONVM, on purpose: the arguments and the file are
// checked before registering (-f is required; a bad address, a service ID
// outside 1..31, fewer routes than announced are errors naming the route;
// ONVM crashes without -f); addresses match by value (ONVM compares a
// host-order route with the network-order header, so on x86 its routes
// match byte-swapped addresses) and print dotted in order.
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"

	"github.com/reinforce-nfv/reinforce/ctlmsg"
	"github.com/reinforce-nfv/reinforce/examples/internal/getopt"
	"github.com/reinforce-nfv/reinforce/examples/internal/nfapp"
	"github.com/reinforce-nfv/reinforce/examples/internal/pktprint"
	"github.com/reinforce-nfv/reinforce/nflib"
	"github.com/reinforce-nfv/reinforce/shm"
)

// tag names the NF in the manager's stats. ONVM: NF_TAG.
const tag = "router"

// defaultPrintDelay is -p's default. ONVM: print_delay.
const defaultPrintDelay = 1000000

// maxRoutes bounds the file's route count (ONVM: uint8_t nf_count).
const maxRoutes = 255

func main() {
	os.Exit(run(os.Args[0], os.Args[1:], nfapp.Std()))
}

// run is main with its inputs and outputs passed in; it returns the exit
// status.
func run(prog string, argv []string, w nfapp.IO) int {
	var cfg config
	var routes []route
	if !nfapp.Parse(prog, argv, w, usage, func(app []string) (err error) {
		if cfg, err = parseArgs(app); err != nil {
			return err
		}
		b, err := os.ReadFile(cfg.file)
		if err != nil {
			return &getopt.Error{Msg: fmt.Sprintf("Error openning server '%s' config: %v", cfg.file, err), NoUsage: true}
		}
		routes, err = parseRoutes(b)
		return err
	}) {
		return 1
	}
	fmt.Fprintf(w.Stdout, "\nDest config (%d):\n", len(routes))
	for _, r := range routes {
		fmt.Fprintf(w.Stdout, "%s  %d\n", netip.AddrFrom4(r.ip), r.dest)
	}
	nf := nfapp.Register(tag, argv, w)
	if nf == nil {
		return 1
	}
	r := newRouter(cfg, routes, w.Stdout)
	return nfapp.Serve(nf, r.handle, w)
}

// config is the NF's own command line.
type config struct {
	file       string // -f
	printDelay uint64 // -p; 0 never prints
}

// usage prints ONVM's usage text for nf_router.
func usage(w io.Writer, prog string) {
	io.WriteString(w, "Usage: "+prog+" [EAL args] -- [NF_LIB args] -- <router_config> -p <print_delay>\n\n")
}

// parseArgs parses the NF's own arguments with ONVM's getopt string "f:p:".
// Errors are *getopt.Error.
func parseArgs(args []string) (config, error) {
	cfg := config{printDelay: defaultPrintDelay}
	opts, _, perr := getopt.Parse(args, "f:p:")
	for _, o := range opts {
		switch o.Name {
		case 'f':
			cfg.file = o.Arg
		case 'p':
			n, err := o.Uint(1<<64 - 1)
			if err != nil {
				return config{}, err
			}
			cfg.printDelay = n
		}
	}
	if perr != nil {
		return config{}, perr
	}
	if cfg.file == "" {
		return config{}, getopt.Errorf("Router NF requires a router config file with the -f flag.")
	}
	return cfg, nil
}

// route is one line of the file (ONVM: struct forward_nf).
type route struct {
	ip   [4]byte
	dest uint16
}

// configError is a refused route file, in ONVM's words (printed without
// the usage text).
func configError(format string, args ...any) error {
	return &getopt.Error{Msg: fmt.Sprintf(format, args...), NoUsage: true}
}

// parseRoutes parses ONVM's route file. Errors are *getopt.Error.
func parseRoutes(b []byte) ([]route, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Split(bufio.ScanWords)
	word := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		return sc.Text(), true
	}
	if _, ok := word(); !ok {
		return nil, configError("Error parsing config, need at least one forward NF configuration")
	}
	ns, _ := word()
	n, err := strconv.Atoi(ns)
	if err != nil || n <= 0 {
		return nil, configError("Error parsing config, need at least one forward NF configuration")
	}
	if n > maxRoutes {
		return nil, configError("%d routes, at most %d", n, maxRoutes)
	}
	routes := make([]route, 0, n)
	for i := 0; i < n; i++ {
		ips, ok1 := word()
		ds, ok2 := word()
		if !ok1 || !ok2 {
			return nil, configError("Invalid backend config structure: %d routes announced, %d found", n, i)
		}
		a, err := netip.ParseAddr(ips)
		if err != nil || !a.Is4() {
			return nil, configError("Error parsing config IP address #%d: %q", i, ips)
		}
		d, err := strconv.Atoi(ds)
		if err != nil || d < 1 || d >= ctlmsg.MaxServices {
			return nil, configError("Error parsing config dest #%d: %q is not a service ID from 1 to %d", i, ds, ctlmsg.MaxServices-1)
		}
		routes = append(routes, route{ip: a.As4(), dest: uint16(d)})
	}
	return routes, nil
}

// router is the NF's packet path, for the burst loop goroutine only.
type router struct {
	dest    map[[4]byte]nflib.Action
	every   uint64
	counter uint64
	printed uint64
	out     io.Writer
	buf     []byte
}

func newRouter(cfg config, routes []route, out io.Writer) *router {
	r := &router{dest: map[[4]byte]nflib.Action{}, every: cfg.printDelay, out: out, buf: make([]byte, 0, 1024)}
	for _, rt := range routes {
		if _, dup := r.dest[rt.ip]; !dup { // ONVM scans in file order: the first route wins
			r.dest[rt.ip] = nflib.ToNF(rt.dest)
		}
	}
	return r
}

func (r *router) handle(p nflib.Packet) nflib.Action { return r.process(p.Meta(), p.Data()) }

// ARP: EtherType and the target protocol address of an Ethernet/IPv4 ARP.
const (
	etherTypeARP = 0x0806
	arpTargetIP  = 14 + 24
)

// process is ONVM's packet_handler.
func (r *router) process(m *shm.Meta, data []byte) nflib.Action {
	if !pktprint.IsIPv4(data) {
		if len(data) >= arpTargetIP+4 && uint16(data[12])<<8|uint16(data[13]) == etherTypeARP {
			if a, ok := r.dest[[4]byte(data[arpTargetIP:arpTargetIP+4])]; ok {
				return a
			}
		}
		return nflib.Drop
	}
	if r.counter++; r.counter == r.every {
		r.counter = 0
		r.printed += r.every
		r.buf = pktprint.AppendStd(r.buf[:0], m.Port, m.Len, r.printed, data)
		r.out.Write(r.buf)
	}
	if a, ok := r.dest[[4]byte(data[30:34])]; ok {
		return a
	}
	return nflib.Drop
}
