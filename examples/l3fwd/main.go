// Command l3fwd is ONVM's l3fwd example NF (tag "l3switch", ONVM-COMPAT.md
// §5.2), DPDK's l3fwd as an NF: it routes every IPv4 packet out of a port
// chosen by its destination, rewrites the Ethernet addresses for that port
// and drops everything that is not IPv4. Two routing modes:
//
//   - longest prefix match (the default): 1.1.1.0/24 → port 0, 2.1.1.0/24 →
//     port 1, ... 8.1.1.0/24 → port 7; an address no route covers goes back
//     out of the port it came from;
//   - exact match (-e): a table of 5-tuples (source, destination, ports,
//     protocol); with the default -h 4 it holds DPDK's four example flows,
//     with another -h that many generated flows (DPDK's
//     populate_ipv4_many_flow_into_table); a miss goes to port 1, as in ONVM.
//
// A route to a port the manager does not have sends the packet back out of
// its input port. The new destination MAC is 02:00:00:00:00:<port>, the
// source the output port's MAC. Every -p packets it prints the port
// statistics block.
//
//	l3fwd [EAL args] -- [ONVM args] -- [-p <print_delay>] [-e] [-h <hash_entry_number>]
//
// Ports: the manager does not tell NFs its ports yet; nflib.Ports reads
// them from REINFORCE_PORTS ("0,1" or "0=aa:bb:cc:dd:ee:ff,1"; port 0 alone
// when unset). The per-port counters are a state array; the routing tables
// are configuration, rebuilt at every start.
//
// Where we differ from ONVM, on purpose: exact-match keys are compared by
// value (ONVM stores host-order keys and looks up network-order ones, so on
// x86 its example flows never match and every packet goes to port 1); the
// statistics print every -p packets (ONVM: every -p+1); -h is checked (at
// most 16M flows).
package main

import (
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/reinforce-nfv/reinforce/examples/internal/counters"
	"github.com/reinforce-nfv/reinforce/examples/internal/getopt"
	"github.com/reinforce-nfv/reinforce/examples/internal/lpm"
	"github.com/reinforce-nfv/reinforce/examples/internal/nfapp"
	"github.com/reinforce-nfv/reinforce/examples/internal/pktprint"
	"github.com/reinforce-nfv/reinforce/nflib"
	"github.com/reinforce-nfv/reinforce/shm"
)

// tag names the NF in the manager's stats. ONVM: NF_TAG.
const tag = "l3switch"

// ONVM's and DPDK's constants.
const (
	defaultPrintDelay  = 1000000
	defaultHashEntries = 4 // HASH_ENTRY_NUMBER_DEFAULT
	maxHashEntries     = 16 << 20
	maxPorts           = 32       // RTE_MAX_ETHPORTS as far as Reinforce goes
	emMissPort         = 1        // em_get_ipv4_dst_port's answer to a miss
	cDropped           = maxPorts // counter index after the per-port ones
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
	ports, err := nflib.Ports()
	if err != nil {
		fmt.Fprintln(w.Stderr, err)
		return 1
	}
	if len(ports) == 0 {
		fmt.Fprintln(w.Stderr, "No Ethernet ports. Ensure ports binded to dpdk. - bye")
		return 1
	}
	nf := nfapp.Register(tag, argv, w)
	if nf == nil {
		return 1
	}
	ctr, err := counters.Open(nf, "l3fwd_stats", maxPorts+1)
	if err != nil {
		return nfapp.Fail(nf, w, err.Error())
	}
	r := newRouter(cfg, ports, ctr, w.Stdout)
	return nfapp.Serve(nf, r.handle, w)
}

// config is the NF's own command line.
type config struct {
	printDelay  uint64 // -p; 0 never prints
	exact       bool   // -e
	hashEntries int    // -h
}

// usage prints ONVM's usage text for l3fwd.
func usage(w io.Writer, prog string) {
	io.WriteString(w, "Usage:\n"+
		prog+" [EAL args] -- [NF_LIB args] -- -p <print_delay>\n"+
		prog+" -F <CONFIG_FILE.json> [EAL args] -- [NF_LIB args] -- [NF args]\n\n"+
		"Flags:\n"+
		" -e : Enable exact match. \n"+
		" -l : Enable longest prefix match. \n"+
		" -h : Specifies the hash entry number in decimal to be setup. Default is 4. \n")
}

// parseArgs parses the NF's own arguments with ONVM's getopt string
// "h:p:e". Errors are *getopt.Error.
func parseArgs(args []string) (config, error) {
	cfg := config{printDelay: defaultPrintDelay, hashEntries: defaultHashEntries}
	opts, _, perr := getopt.Parse(args, "h:p:e")
	for _, o := range opts {
		switch o.Name {
		case 'h':
			n, err := o.Uint(maxHashEntries)
			if err != nil {
				return config{}, err
			}
			cfg.hashEntries = int(n)
		case 'p':
			n, err := o.Uint(1<<64 - 1)
			if err != nil {
				return config{}, err
			}
			cfg.printDelay = n
		case 'e':
			cfg.exact = true
		}
	}
	if perr != nil {
		return config{}, perr
	}
	return cfg, nil
}

// emKey is an exact-match key (ONVM: struct onvm_ft_ipv4_5tuple), by value.
type emKey struct {
	src, dst         uint32
	srcPort, dstPort uint16
	proto            uint8
}

// emRoutes are DPDK's example flows (ipv4_l3fwd_em_route_array) and their
// ports.
var emRoutes = [4]struct {
	key  emKey
	port uint16
}{
	{emKey{lpm.IPv4(101, 0, 0, 0), lpm.IPv4(100, 10, 0, 1), 0, 1, 6}, 0},
	{emKey{lpm.IPv4(201, 0, 0, 0), lpm.IPv4(200, 20, 0, 1), 1, 0, 6}, 1},
	{emKey{lpm.IPv4(111, 0, 0, 0), lpm.IPv4(100, 30, 0, 1), 0, 2, 6}, 2},
	{emKey{lpm.IPv4(211, 0, 0, 0), lpm.IPv4(200, 40, 0, 1), 2, 0, 6}, 3},
}

// emTable builds the exact-match table for -h n (ONVM: setup_hash).
func emTable(n int) map[emKey]uint16 {
	t := map[emKey]uint16{}
	if n == defaultHashEntries {
		for _, r := range emRoutes {
			t[r.key] = r.port
		}
		return t
	}
	firstByte := [4]byte{101, 201, 111, 211}
	for i := 0; i < n; i++ {
		j := i / 4
		a, b, c := byte(j%256), byte(j/256%256), byte(j/(256*256))
		r := emRoutes[i&3]
		r.key.dst = lpm.IPv4(firstByte[i&3], c, b, a)
		t[r.key] = r.port
	}
	return t
}

// lpmTable builds the LPM table (DPDK: ipv4_l3fwd_lpm_route_array).
func lpmTable() *lpm.Table {
	t := lpm.New(1024)
	for i := byte(0); i < 8; i++ {
		t.Add(lpm.IPv4(i+1, 1, 1, 0), 24, uint32(i))
	}
	return t
}

// router is the NF's packet path, for the burst loop goroutine only.
type router struct {
	lpm     *lpm.Table
	em      map[emKey]uint16
	valid   [maxPorts]bool
	mac     [maxPorts][6]byte
	ports   []nflib.Port
	ctr     *counters.Counters
	every   uint64
	counter uint64
	out     io.Writer
	buf     []byte
}

func newRouter(cfg config, ports []nflib.Port, ctr *counters.Counters, out io.Writer) *router {
	r := &router{ports: ports, ctr: ctr, every: cfg.printDelay, out: out, buf: make([]byte, 0, 4096)}
	for _, p := range ports {
		if int(p.ID) < maxPorts {
			r.valid[p.ID], r.mac[p.ID] = true, p.MAC
		}
		m := p.MAC
		fmt.Fprintf(out, "Port %d, MAC address: %02X:%02X:%02X:%02X:%02X:%02X\n\n", p.ID, m[0], m[1], m[2], m[3], m[4], m[5])
	}
	if cfg.exact {
		r.em = emTable(cfg.hashEntries)
		fmt.Fprintf(out, "Hash: Adding 0x%x keys\n", len(r.em))
		fmt.Fprintf(out, "Hash table exact match enabled. \nHash entry number set to: %d\n", cfg.hashEntries)
	} else {
		r.lpm = lpmTable()
		fmt.Fprintf(out, "\nLongest prefix match enabled. \n")
	}
	return r
}

func (r *router) handle(p nflib.Packet) nflib.Action {
	m := p.Meta()
	a, port, ok := r.route(p.Data(), m)
	if ok {
		// Only a routed packet is written: copy on first write.
		d := p.Writable()
		d[0], d[1], d[2], d[3], d[4], d[5] = 0x02, 0, 0, 0, 0, byte(port)
		copy(d[6:12], r.mac[port][:])
	}
	return a
}

// route is ONVM's packet_handler without the MAC rewrite: the verdict and,
// for a routed packet, its output port.
func (r *router) route(data []byte, m *shm.Meta) (nflib.Action, uint16, bool) {
	if r.counter++; r.counter == r.every {
		r.counter = 0
		r.display()
	}
	if !pktprint.IsIPv4(data) {
		r.ctr.Add(cDropped, 1)
		return nflib.Drop, 0, false
	}
	dst := uint32(data[30])<<24 | uint32(data[31])<<16 | uint32(data[32])<<8 | uint32(data[33])
	var port uint16
	if r.em != nil {
		port = r.exact(data, dst, m.Port)
	} else if nh, ok := r.lpm.Lookup(dst); ok {
		port = uint16(nh)
	} else {
		port = m.Port
	}
	if int(port) >= maxPorts || !r.valid[port] {
		port = m.Port
	}
	if int(port) >= maxPorts { // an input port past the table: nowhere to send it
		r.ctr.Add(cDropped, 1)
		return nflib.Drop, 0, false
	}
	r.ctr.Add(int(port), 1)
	return nflib.Out(port), port, true
}

// exact is em_get_ipv4_dst_port.
func (r *router) exact(data []byte, dst uint32, in uint16) uint16 {
	if len(data) < 34 {
		return in
	}
	k := emKey{src: uint32(data[26])<<24 | uint32(data[27])<<16 | uint32(data[28])<<8 | uint32(data[29]), dst: dst,
		proto: data[23]}
	if (k.proto == 6 || k.proto == 17) && len(data) >= 38 {
		k.srcPort = uint16(data[34])<<8 | uint16(data[35])
		k.dstPort = uint16(data[36])<<8 | uint16(data[37])
	}
	if p, ok := r.em[k]; ok {
		return p
	}
	return emMissPort
}

// display is ONVM's print_stats.
func (r *router) display() {
	b := append(r.buf[:0], "\nPort statistics ===================================="...)
	var total uint64
	for _, p := range r.ports {
		if int(p.ID) >= maxPorts {
			continue
		}
		n := r.ctr.Get(int(p.ID))
		total += n
		b = append(b, "\nStatistics for port "...)
		b = strconv.AppendUint(b, uint64(p.ID), 10)
		b = append(b, " ------------------------------\nPackets forwarded to: "...)
		b = pktprint.AppendPadded(b, n, 20)
	}
	b = append(b, "\nAggregate statistics ===============================\nTotal packets forwarded: "...)
	b = pktprint.AppendPadded(b, total, 17)
	b = append(b, "\nPackets dropped: "...)
	b = pktprint.AppendPadded(b, r.ctr.Get(cDropped), 18)
	b = append(b, "\n====================================================\n\n\n"...)
	r.buf = b
	r.out.Write(b)
}
