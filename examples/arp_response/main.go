// Command arp_response is ONVM's arp_response example NF (tag
// "arp_response", ONVM-COMPAT.md §5.4): it answers ARP requests for the
// IPv4 address configured for the port they arrived on with an ARP reply
// sent out of that port, and drops the request; every other packet, ARP
// replies included, goes to the service given with -d.
//
//	arp_response [EAL args] -- [ONVM args] -- -d <destination> -s <ip0,ip1,...> [-p]
//
// -s gives one address per port, in port order (port 0 first); 0.0.0.0
// leaves a port's address 0. -p prints a line per reply sent.
//
// The reply's source MAC is the port's: ONVM asks DPDK; here the manager's
// ports and MACs come from REINFORCE_PORTS (nflib.Ports: "0=aa:bb:..,1"),
// and a port it does not name has the MAC 02:00:00:00:00:<port>.
//
// Where we differ from ONVM, on purpose: the arguments are checked before
// registering, addresses strictly (four decimal octets); -d must be a
// service ID; "Too many IPs were entered!" is checked only when
// REINFORCE_PORTS says how many ports there are. As in ONVM, an ARP packet
// with an opcode other than request or reply is reported as "DROPPED" under
// -p but still goes to -d ([quirk], kept).
package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"

	"github.com/reinforce-nfv/reinforce/examples/internal/getopt"
	"github.com/reinforce-nfv/reinforce/examples/internal/nfapp"
	"github.com/reinforce-nfv/reinforce/nflib"
	"github.com/reinforce-nfv/reinforce/pkt"
)

// tag names the NF in the manager's stats. ONVM: NF_TAG.
const tag = "arp_response"

// ARP (RFC 826) over Ethernet for IPv4: the offsets in a frame.
const (
	arpFrameBytes = pkt.EthHeaderBytes + 28
	arpOp         = 20 // opcode
	arpSHA        = 22 // sender hardware address
	arpSPA        = 28 // sender protocol address
	arpTHA        = 32 // target hardware address
	arpTPA        = 38 // target protocol address

	arpRequest = 1
	arpReply   = 2
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
	if os.Getenv(nflib.PortsEnv) != "" && len(cfg.ips) > len(ports) {
		fmt.Fprintln(w.Stderr, "Too many IPs were entered!")
		return 1
	}
	nf := nfapp.Register(tag, argv, w)
	if nf == nil {
		return 1
	}
	fmt.Fprintf(w.Stdout, "Sending packets to service ID %d\n", cfg.dst)
	r := newResponder(cfg, ports, w.Stdout)
	r.send = func(p nflib.Packet, port uint16) bool { return nf.Inject(p, nflib.Out(port)) }
	r.alloc, r.free = nf.NewPacket, nf.Free
	return nfapp.Serve(nf, r.handle, w)
}

// config is the NF's own command line.
type config struct {
	dst   uint16    // -d
	ips   [][4]byte // -s: the address of port i
	print bool      // -p
}

// usage prints ONVM's usage text for arp_response.
func usage(w io.Writer, prog string) {
	io.WriteString(w, "Usage:\n"+
		prog+" [EAL args] -- [NF Lib args] -- -d <destination_id> -s <source_ip> [-p enable printing]\n"+
		prog+" -F <CONFIG_FILE.json> [EAL args] -- [NF_LIB args] -- [NF args]>\n\n"+
		"Flags:\n"+
		" - `-d <destination_id>`: the NF will send non-ARP packets to the NF at this service ID, e.g. `-d 2` sends packets to service ID 2\n"+
		" - `-s <source_ip_list>`: the NF will map each comma separated IP (no spaces) to the corresponding port. Example: `-s 10.0.0.31,11.0.0.31` maps port 0 to 10.0.0.31, and port 1 to 11.0.0.31. If 0.0.0.0 is inputted, the IP will be 0. If too few IPs are inputted, the remaining ports will be ignored.\n"+
		" - `-p`: Enables printing of log information\n")
}

// parseArgs parses the NF's own arguments with ONVM's getopt string "d:s:p".
// Errors are *getopt.Error.
func parseArgs(args []string) (config, error) {
	var cfg config
	opts, _, perr := getopt.Parse(args, "d:s:p")
	haveDst, haveIPs := false, false
	for _, o := range opts {
		switch o.Name {
		case 'd':
			n, err := o.ServiceID()
			if err != nil {
				return config{}, err
			}
			cfg.dst, haveDst = uint16(n), true
		case 's':
			cfg.ips = nil
			for _, f := range strings.Split(o.Arg, ",") {
				a, err := netip.ParseAddr(f)
				if err != nil || !a.Is4() {
					return config{}, getopt.Errorf("Invalid IP entered: %q", f)
				}
				cfg.ips = append(cfg.ips, a.As4())
			}
			haveIPs = true
		case 'p':
			cfg.print = true
		}
	}
	if perr != nil {
		return config{}, perr
	}
	if !haveDst {
		return config{}, getopt.Errorf("ARP Response NF needs a destination NF service ID with the -d flag")
	}
	if !haveIPs {
		return config{}, getopt.Errorf("ARP Response NF needs comma separated IPs with the -s flag")
	}
	return cfg, nil
}

// responder is the NF's state, used by the burst loop goroutine only. It
// has none that must survive a restart: the addresses are configuration.
type responder struct {
	act   nflib.Action
	ips   [][4]byte
	macs  map[uint16][6]byte
	print bool
	out   io.Writer
	alloc func() (nflib.Packet, bool)
	send  func(p nflib.Packet, port uint16) bool
	free  func(p nflib.Packet)
}

func newResponder(cfg config, ports []nflib.Port, out io.Writer) *responder {
	r := &responder{act: nflib.ToNF(cfg.dst), ips: cfg.ips, macs: map[uint16][6]byte{}, print: cfg.print, out: out}
	for _, p := range ports {
		r.macs[p.ID] = p.MAC
	}
	return r
}

// mac is port's MAC address.
func (r *responder) mac(port uint16) [6]byte {
	if m, ok := r.macs[port]; ok {
		return m
	}
	return nflib.PortMAC(port)
}

// handle is the packet handler (ONVM: packet_handler).
func (r *responder) handle(p nflib.Packet) nflib.Action {
	port := p.Meta().Port
	f := p.Data()
	switch r.classify(f, port) {
	case arpRequest:
		res := 0
		if !r.reply(f, port) {
			res = -1
		}
		if r.print {
			fmt.Fprintf(r.out, "ARP Reply From Port %d (ID %d): %d\n", port, port, res)
		}
		return nflib.Drop
	case 0:
		if r.print {
			fmt.Fprintf(r.out, "ARP with opcode %d, port %d (ID %d) DROPPED\n", binary.BigEndian.Uint16(f[arpOp:]), port, port)
		}
	}
	return r.act
}

// classify returns arpRequest for an ARP request for port's address, 0 for
// an ARP packet with an opcode ONVM does not know, and -1 for anything else
// (a request for another address, a reply, not ARP).
func (r *responder) classify(f []byte, port uint16) int {
	if len(f) < arpFrameBytes || binary.BigEndian.Uint16(f[12:]) != pkt.EtherTypeARP {
		return -1
	}
	switch binary.BigEndian.Uint16(f[arpOp:]) {
	case arpRequest:
		if int(port) < len(r.ips) && [4]byte(f[arpTPA:arpTPA+4]) == r.ips[port] {
			return arpRequest
		}
		return -1
	case arpReply:
		return -1
	}
	return 0
}

// reply builds the answer to request req, which arrived on port, and sends
// it out of port (ONVM: send_arp_reply); false if no packet was free or
// the way out was full.
func (r *responder) reply(req []byte, port uint16) bool {
	p, ok := r.alloc()
	if !ok {
		return false
	}
	m := p.Meta()
	room := p.Room()
	if int(m.DataOff)+arpFrameBytes > len(room) {
		r.free(p) // no slot is this small; but never send a packet half built
		return false
	}
	buildReply(room[m.DataOff:m.DataOff+arpFrameBytes], req, r.mac(port), r.ips[port])
	m.Len = arpFrameBytes
	m.Port = port
	return r.send(p, port)
}

// buildReply writes into b (arpFrameBytes long) the ARP reply from mac and
// ip to the sender of request req.
func buildReply(b, req []byte, mac [6]byte, ip [4]byte) {
	copy(b[0:6], req[6:12]) // to the request's source
	copy(b[6:12], mac[:])
	binary.BigEndian.PutUint16(b[12:], pkt.EtherTypeARP)
	binary.BigEndian.PutUint16(b[14:], 1) // hardware type: Ethernet
	binary.BigEndian.PutUint16(b[16:], pkt.EtherTypeIPv4)
	b[18], b[19] = 6, 4
	binary.BigEndian.PutUint16(b[arpOp:], arpReply)
	copy(b[arpSHA:], mac[:])
	copy(b[arpSPA:], ip[:])
	copy(b[arpTHA:], req[6:12]) // ONVM: the Ethernet source, not the ARP sender field
	copy(b[arpTPA:], req[arpSPA:arpSPA+4])
}
