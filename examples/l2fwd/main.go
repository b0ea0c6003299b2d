// Command l2fwd is ONVM's l2fwd example NF (tag "l2switch", ONVM-COMPAT.md
// §5.2), DPDK's l2fwd as an NF: every packet goes out of the port paired
// with the one it came in on. Ports are paired in order (the first with the
// second, the third with the fourth...); an odd last port forwards to
// itself; a packet from a port that is not listed is dropped. Unless -n is
// given, the destination MAC becomes 02:00:00:00:00:<output port> and the
// source MAC the output port's. Every -p packets it prints the port
// statistics block; -m prints each port's MAC address at start.
//
//	l2fwd [EAL args] -- [ONVM args] -- [-p <print_delay>] [-n] [-m]
//
// Ports: the manager does not tell NFs its ports yet; nflib.Ports reads
// them from REINFORCE_PORTS ("0,1" or "0=aa:bb:cc:dd:ee:ff,1"; port 0 alone
// when unset). The per-port counters are a state array.
//
// Where we differ from ONVM, on purpose: the MAC update writes the output
// port's MAC as the source (ONVM writes 02:00:00:00:00:<port> into both
// addresses), and the statistics print every -p packets.
package main

import (
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/reinforce-nfv/reinforce/examples/internal/counters"
	"github.com/reinforce-nfv/reinforce/examples/internal/getopt"
	"github.com/reinforce-nfv/reinforce/examples/internal/nfapp"
	"github.com/reinforce-nfv/reinforce/examples/internal/pktprint"
	"github.com/reinforce-nfv/reinforce/nflib"
	"github.com/reinforce-nfv/reinforce/shm"
)

// tag names the NF in the manager's stats. ONVM: NF_TAG.
const tag = "l2switch"

const (
	defaultPrintDelay = 1000000
	maxPorts          = 32
	// Counter indices: received by port i at i, sent on port i at
	// maxPorts+i, dropped at 2*maxPorts.
	cSent    = maxPorts
	cDropped = 2 * maxPorts
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
	nf := nfapp.Register(tag, argv, w)
	if nf == nil {
		return 1
	}
	ctr, err := counters.Open(nf, "l2fwd_stats", 2*maxPorts+1)
	if err != nil {
		return nfapp.Fail(nf, w, err.Error())
	}
	s := newSwitch(cfg, ports, ctr, w.Stdout)
	return nfapp.Serve(nf, s.handle, w)
}

// config is the NF's own command line.
type config struct {
	printDelay uint64 // -p; 0 never prints
	noMAC      bool   // -n: leave the MAC addresses alone
	printMAC   bool   // -m
}

// usage prints ONVM's usage text for l2fwd.
func usage(w io.Writer, prog string) {
	io.WriteString(w, "Usage:\n"+
		prog+" [EAL args] -- [NF_LIB args] -- -p <print_delay> [-n] [-m]\n"+
		prog+" -F <CONFIG_FILE.json> [EAL args] -- [NF_LIB args] -- [NF args]\n\n"+
		"Flags:\n"+
		" - `-p <print_delay>`: number of packets between each print, e.g. `-p 1` prints every packets.\n"+
		" - `-n`: disable MAC updating\n"+
		" - `-m`: print the ports' MAC addresses\n")
}

// parseArgs parses the NF's own arguments with the getopt string "p:nm".
// Errors are *getopt.Error.
func parseArgs(args []string) (config, error) {
	cfg := config{printDelay: defaultPrintDelay}
	opts, _, perr := getopt.Parse(args, "p:nm")
	for _, o := range opts {
		switch o.Name {
		case 'p':
			n, err := o.Uint(1<<64 - 1)
			if err != nil {
				return config{}, err
			}
			cfg.printDelay = n
		case 'n':
			cfg.noMAC = true
		case 'm':
			cfg.printMAC = true
		}
	}
	if perr != nil {
		return config{}, perr
	}
	return cfg, nil
}

// noPair marks a port that is not listed.
const noPair = 0xFFFF

// l2switch is the NF's packet path, for the burst loop goroutine only.
type l2switch struct {
	pair    [maxPorts]uint16
	mac     [maxPorts][6]byte
	ports   []nflib.Port
	update  bool
	ctr     *counters.Counters
	every   uint64
	counter uint64
	out     io.Writer
	buf     []byte
}

func newSwitch(cfg config, ports []nflib.Port, ctr *counters.Counters, out io.Writer) *l2switch {
	s := &l2switch{update: !cfg.noMAC, ctr: ctr, every: cfg.printDelay, out: out, buf: make([]byte, 0, 4096)}
	for i := range s.pair {
		s.pair[i] = noPair
	}
	for _, p := range ports {
		if int(p.ID) < maxPorts {
			s.ports = append(s.ports, p)
			s.mac[p.ID] = p.MAC
		}
	}
	for i := 0; i < len(s.ports); i += 2 {
		a := s.ports[i].ID
		if i+1 == len(s.ports) {
			s.pair[a] = a
			break
		}
		b := s.ports[i+1].ID
		s.pair[a], s.pair[b] = b, a
	}
	for _, p := range s.ports {
		if cfg.printMAC {
			m := p.MAC
			fmt.Fprintf(out, "Port %d, MAC address: %02X:%02X:%02X:%02X:%02X:%02X\n", p.ID, m[0], m[1], m[2], m[3], m[4], m[5])
		}
		fmt.Fprintf(out, "Port %d forwards to port %d\n", p.ID, s.pair[p.ID])
	}
	return s
}

func (s *l2switch) handle(p nflib.Packet) nflib.Action {
	a, port, ok := s.forward(p.Meta())
	if ok && s.update && len(p.Data()) >= 12 {
		d := p.Writable()
		d[0], d[1], d[2], d[3], d[4], d[5] = 0x02, 0, 0, 0, 0, byte(port)
		copy(d[6:12], s.mac[port][:])
	}
	return a
}

// forward is the verdict for a packet from m.Port, counted.
func (s *l2switch) forward(m *shm.Meta) (nflib.Action, uint16, bool) {
	if s.counter++; s.counter == s.every {
		s.counter = 0
		s.display()
	}
	in := m.Port
	if int(in) >= maxPorts || s.pair[in] == noPair {
		s.ctr.Add(cDropped, 1)
		return nflib.Drop, 0, false
	}
	s.ctr.Add(int(in), 1)
	out := s.pair[in]
	s.ctr.Add(cSent+int(out), 1)
	return nflib.Out(out), out, true
}

// display is ONVM's print_stats.
func (s *l2switch) display() {
	b := append(s.buf[:0], pktprint.ClearScreen...)
	b = append(b, "\nPort statistics ===================================="...)
	var sent, recv uint64
	for _, p := range s.ports {
		id := int(p.ID)
		ns, nr := s.ctr.Get(cSent+id), s.ctr.Get(id)
		sent += ns
		recv += nr
		b = append(b, "\nStatistics for port "...)
		b = strconv.AppendUint(b, uint64(id), 10)
		b = append(b, " ------------------------------\nPackets sent: "...)
		b = pktprint.AppendPadded(b, ns, 24)
		b = append(b, "\nPackets received: "...)
		b = pktprint.AppendPadded(b, nr, 20)
		b = append(b, "\nForwarding to port: "...)
		b = pktprint.AppendPadded(b, uint64(s.pair[id]), 18)
	}
	b = append(b, "\nAggregate statistics ===============================\nTotal packets sent: "...)
	b = pktprint.AppendPadded(b, sent, 18)
	b = append(b, "\nTotal packets received: "...)
	b = pktprint.AppendPadded(b, recv, 14)
	b = append(b, "\nTotal packets dropped: "...)
	b = pktprint.AppendPadded(b, s.ctr.Get(cDropped), 15)
	b = append(b, "\n====================================================\n"...)
	s.buf = b
	s.out.Write(b)
}
