// Command load_balancer is ONVM's load_balancer example NF (tag
// "load_balancer", ONVM-COMPAT.md §5.4): a layer-3 round-robin load
// balancer between a client-side and a server-side port. A client's new
// flow is given the next backend server from the server config (backend =
// flows stored % servers); its packets leave by the server port with the
// backend's MAC and IP as destination, and the backend's answers leave by
// the client port with the balancer's client-side IP as source and the
// client's MAC as destination. IP and TCP/UDP checksums are recomputed.
// Packets that are not IPv4, or have a zero address, are dropped.
//
//	load_balancer [EAL args] -- [ONVM args] -- -c <client_iface> -s <server_iface> -f <server_config> [-p <print_delay>] [-i <iface_config>]
//
// The server config is ONVM's: "LIST_SIZE n", then n lines "ip mac".
//
// ONVM reads each interface's IP and MAC from the kernel (ioctl on the
// interface name: mTCP's DPDK interface module) and finds the port by MAC.
// Reinforce's ports are no kernel interfaces, so their addresses come from
// an interface config (-i, a Reinforce addition, default ./ifaces.conf) in
// the same style: "LIST_SIZE n", then n lines "name port ip [mac]"; a line
// without a MAC takes the port's from REINFORCE_PORTS (nflib.Ports) or
// 02:00:00:00:00:<port>.
//
// The flow table (65536 flows, expiring after 32 s idle, expired flows
// cleared when it is full) is a state map (docs/state.md): a restarted or
// standby NF keeps every flow on its backend.
//
// Where we differ from ONVM, on purpose: the arguments and both config
// files are checked before registering, with errors that name the line;
// the table's key is built from the packet without zeroing the balancer's
// address in the packet first.
package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/reinforce-nfv/reinforce/examples/internal/getopt"
	"github.com/reinforce-nfv/reinforce/examples/internal/nfapp"
	"github.com/reinforce-nfv/reinforce/examples/internal/pktprint"
	"github.com/reinforce-nfv/reinforce/nflib"
	"github.com/reinforce-nfv/reinforce/pkt"
	"github.com/reinforce-nfv/reinforce/port"
	"github.com/reinforce-nfv/reinforce/shm/state"
)

// tag names the NF in the manager's stats. ONVM: NF_TAG.
const tag = "load_balancer"

// ONVM's constants.
const (
	tableSize         = 65536 // TABLE_SIZE
	expireNs          = 32e9  // lb->expire_time: 32 s
	defaultPrintDelay = 1000000
	defaultIfaces     = "ifaces.conf"
)

func main() {
	os.Exit(run(os.Args[0], os.Args[1:], nfapp.Std()))
}

// run is main with its inputs and outputs passed in; it returns the exit
// status.
func run(prog string, argv []string, w nfapp.IO) int {
	var cfg config
	if !nfapp.Parse(prog, argv, w, usage, func(app []string) (err error) {
		if cfg, err = parseArgs(app); err != nil {
			return err
		}
		return cfg.load()
	}) {
		return 1
	}
	nf := nfapp.Register(tag, argv, w)
	if nf == nil {
		return 1
	}
	flows, err := nflib.NewMap[flowKey, flowInfo](nf, "flows", tableSize)
	if err != nil {
		return nfapp.Fail(nf, w, err.Error())
	}
	lb := newBalancer(cfg, flows, w.Stdout, port.Nanotime)
	lb.printConfig()
	return nfapp.Serve(nf, lb.handle, w)
}

// iface is one side of the balancer.
type iface struct {
	name string
	port uint16
	ip   [4]byte
	mac  [6]byte
}

// backend is one server from the server config.
type backend struct {
	ip  [4]byte
	mac [6]byte
}

// config is the NF's own command line and what its files say.
type config struct {
	clientName, serverName string // -c, -s
	serverFile, ifaceFile  string // -f, -i
	printDelay             uint64 // -p
	client, server         iface
	backends               []backend
}

// usage prints ONVM's usage text for load_balancer, plus -i.
func usage(w io.Writer, prog string) {
	io.WriteString(w, "Usage:\n"+
		prog+" [EAL args] -- [NF_LIB args] -- [ -c client_iface] [-s server_iface] [-f server_config] -p <print_delay>\n"+
		prog+" -F <CONFIG_FILE.json> [EAL args] -- [NF_LIB args] -- [NF args]\n\n"+
		"Flags:\n"+
		" - `-c CLIENT_IFACE` : name of the client interface\n"+
		" - `-s SERVER_IFACE` : name of the server interface\n"+
		" - `-f SERVER_CONFIG` : backend server config file\n"+
		" - `-p <print_delay>`: number of packets between each print, e.g. `-p 1` prints every packets.\n"+
		" - `-i IFACE_CONFIG` : interface config file (Reinforce; default "+defaultIfaces+")\n")
}

// parseArgs parses the NF's own arguments with ONVM's getopt string
// "c:s:f:p:" plus -i. Errors are *getopt.Error.
func parseArgs(args []string) (config, error) {
	cfg := config{printDelay: defaultPrintDelay, ifaceFile: defaultIfaces}
	opts, _, perr := getopt.Parse(args, "c:s:f:p:i:")
	for _, o := range opts {
		switch o.Name {
		case 'c':
			cfg.clientName = o.Arg
		case 's':
			cfg.serverName = o.Arg
		case 'f':
			cfg.serverFile = o.Arg
		case 'i':
			cfg.ifaceFile = o.Arg
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
	switch {
	case cfg.clientName == "":
		return config{}, getopt.Errorf("Load balancer NF requires a client interface name.")
	case cfg.serverName == "":
		return config{}, getopt.Errorf("Load balancer NF requires a server interface name.")
	case cfg.serverFile == "":
		return config{}, getopt.Errorf("Load balancer NF requires a backend server config file.")
	}
	return cfg, nil
}

// load reads the interface and server configs. Errors are *getopt.Error
// without usage.
func (cfg *config) load() error {
	fail := func(err error) error { return &getopt.Error{Msg: err.Error(), NoUsage: true} }
	failf := func(format string, args ...any) error { return cfgErrorf(format, args...) }
	data, err := os.ReadFile(cfg.ifaceFile)
	if err != nil {
		return fail(fmt.Errorf("interface config: %v", err))
	}
	ports, err := nflib.Ports()
	if err != nil {
		return fail(err)
	}
	ifaces, err := parseIfaces(data, ports)
	if err != nil {
		return fail(fmt.Errorf("interface config %s: %v", cfg.ifaceFile, err))
	}
	var okC, okS bool
	for _, f := range ifaces {
		if f.name == cfg.clientName {
			cfg.client, okC = f, true
		}
		if f.name == cfg.serverName {
			cfg.server, okS = f, true
		}
	}
	if !okC {
		return failf("Client interface %q is not in %s", cfg.clientName, cfg.ifaceFile)
	}
	if !okS {
		return failf("Server interface %q is not in %s", cfg.serverName, cfg.ifaceFile)
	}
	if cfg.client.port == cfg.server.port {
		return fail(fmt.Errorf("client and server interfaces are both port %d", cfg.client.port))
	}
	if data, err = os.ReadFile(cfg.serverFile); err != nil {
		return failf("Error openning server '%s' config: %v", cfg.serverFile, err)
	}
	if cfg.backends, err = parseServers(data); err != nil {
		return fail(fmt.Errorf("server config %s: %v", cfg.serverFile, err))
	}
	return nil
}

// cfgErrorf is a refusal with ONVM's (capitalised) message, printed
// without the usage text.
func cfgErrorf(format string, args ...any) error {
	return &getopt.Error{Msg: fmt.Sprintf(format, args...), NoUsage: true}
}

// listLines splits ONVM's list format ("LIST_SIZE n" then n entries) into
// the entries' fields; blank lines and #-comments are skipped.
func listLines(data []byte) ([][]string, error) {
	var lines [][]string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if f := strings.Fields(line); len(f) > 0 {
			lines = append(lines, f)
		}
	}
	if len(lines) == 0 || len(lines[0]) != 2 {
		return nil, errors.New("want \"LIST_SIZE n\" first")
	}
	n, err := strconv.Atoi(lines[0][1])
	if err != nil || n <= 0 {
		return nil, cfgErrorf("Error parsing config, need at least one server configurations")
	}
	if len(lines)-1 != n {
		return nil, fmt.Errorf("LIST_SIZE says %d entries, the file has %d", n, len(lines)-1)
	}
	return lines[1:], nil
}

// parseServers parses a server config: "ip mac" lines.
func parseServers(data []byte) ([]backend, error) {
	lines, err := listLines(data)
	if err != nil {
		return nil, err
	}
	if len(lines) > 256 {
		return nil, errors.New("more than 256 servers") // ONVM: uint8_t server_count
	}
	var bs []backend
	for i, f := range lines {
		if len(f) != 2 {
			return nil, cfgErrorf("Invalid backend config structure: entry %d: want \"ip mac\"", i)
		}
		ip, err := parseIP(f[0])
		if err != nil {
			return nil, cfgErrorf("Error parsing config IP address #%d: %v", i, err)
		}
		mac, err := (getopt.Opt{Name: 'f', Arg: f[1]}).MAC()
		if err != nil {
			return nil, cfgErrorf("Error parsing config MAC address #%d: %q", i, f[1])
		}
		bs = append(bs, backend{ip: ip, mac: mac})
	}
	return bs, nil
}

// parseIfaces parses an interface config: "name port ip [mac]" lines.
func parseIfaces(data []byte, ports []nflib.Port) ([]iface, error) {
	lines, err := listLines(data)
	if err != nil {
		return nil, err
	}
	var fs []iface
	for i, f := range lines {
		if len(f) != 3 && len(f) != 4 {
			return nil, fmt.Errorf("entry %d: want \"name port ip [mac]\"", i)
		}
		p, err := strconv.ParseUint(f[1], 10, 16)
		if err != nil || p >= 32 {
			return nil, fmt.Errorf("entry %d: %q is not a port ID from 0 to 31", i, f[1])
		}
		ip, err := parseIP(f[2])
		if err != nil {
			return nil, fmt.Errorf("entry %d: %v", i, err)
		}
		x := iface{name: f[0], port: uint16(p), ip: ip, mac: nflib.PortMAC(uint16(p))}
		for _, pp := range ports {
			if pp.ID == x.port {
				x.mac = pp.MAC
			}
		}
		if len(f) == 4 {
			if x.mac, err = (getopt.Opt{Name: 'i', Arg: f[3]}).MAC(); err != nil {
				return nil, fmt.Errorf("entry %d: %q is not a MAC address", i, f[3])
			}
		}
		fs = append(fs, x)
	}
	return fs, nil
}

func parseIP(s string) ([4]byte, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return [4]byte{}, fmt.Errorf("%q is not an IPv4 address", s)
	}
	return a.As4(), nil
}

// flowKey is ONVM's symmetric 5-tuple (onvm_ft_fill_key_symmetric) with
// the balancer's own address zeroed, so that client → balancer and
// backend → client share an entry.
type flowKey struct {
	AddrA, AddrB uint32
	PortA, PortB uint16
	Proto        uint8
	Pad          [3]byte
}

// flowInfo is ONVM's struct flow_info.
type flowInfo struct {
	LastPktNs int64   // CLOCK_MONOTONIC of the flow's last packet
	Dest      uint8   // the backend's index
	Active    uint8   // the client's MAC has been saved
	SrcMAC    [6]byte // the client's MAC
}

// balancer is the NF's state, used by the burst loop goroutine only.
type balancer struct {
	cfg     config
	flows   *state.Map[flowKey, flowInfo]
	now     func() int64
	counter uint64
	printed uint64
	h       pkt.Headers
	out     io.Writer
	buf     []byte
}

func newBalancer(cfg config, flows *state.Map[flowKey, flowInfo], out io.Writer, now func() int64) *balancer {
	return &balancer{cfg: cfg, flows: flows, now: now, out: out, buf: make([]byte, 0, 2048)}
}

// printConfig prints what ONVM prints at start.
func (lb *balancer) printConfig() {
	fmt.Fprintf(lb.out, "\nARP config:\n")
	for _, b := range lb.cfg.backends {
		fmt.Fprintf(lb.out, "%d.%d.%d.%d %s\n", b.ip[0], b.ip[1], b.ip[2], b.ip[3], pkt.MAC(b.mac))
	}
	fmt.Fprintf(lb.out, "\nLoad balancer interfaces:\n")
	for _, x := range []struct {
		role string
		f    iface
	}{{"Client", lb.cfg.client}, {"Server", lb.cfg.server}} {
		fmt.Fprintf(lb.out, "%s iface '%s' ID: %d, IP: %d (%d.%d.%d.%d), MAC: %s\n", x.role, x.f.name, x.f.port,
			binary.LittleEndian.Uint32(x.f.ip[:]), x.f.ip[0], x.f.ip[1], x.f.ip[2], x.f.ip[3], pkt.MAC(x.f.mac))
	}
}

// handle is the packet handler (ONVM: packet_handler).
func (lb *balancer) handle(p nflib.Packet) nflib.Action {
	m := p.Meta()
	fi, ok := lb.lookup(m.Port, p.Data())
	if !ok {
		return nflib.Drop
	}
	a := lb.rewrite(m.Port, p.Writable(), fi) // copy on first write: only packets that change
	if lb.cfg.printDelay != 0 {
		if lb.counter++; lb.counter == lb.cfg.printDelay {
			lb.counter = 0
			lb.printed += lb.cfg.printDelay
			lb.display(m.Port, m.Len, p.Data())
		}
	}
	return a
}

// process balances one packet that arrived on inPort, in place, and
// returns its verdict.
func (lb *balancer) process(inPort uint16, frame []byte) nflib.Action {
	fi, ok := lb.lookup(inPort, frame)
	if !ok {
		return nflib.Drop
	}
	return lb.rewrite(inPort, frame, fi)
}

// lookup decodes the packet that arrived on inPort and finds or makes its
// flow's entry; false for a packet to drop.
func (lb *balancer) lookup(inPort uint16, data []byte) (flowInfo, bool) {
	if lb.h.Decode(data) != nil || lb.h.IPVersion != 4 {
		return flowInfo{}, false
	}
	l3 := int(lb.h.L3)
	src, dst := [4]byte(data[l3+12:l3+16]), [4]byte(data[l3+16:l3+20])
	if src == [4]byte{} || dst == [4]byte{} {
		return flowInfo{}, false
	}
	fromServer := inPort == lb.cfg.server.port
	if fromServer {
		src = [4]byte{}
	} else {
		dst = [4]byte{}
	}
	k := lb.key(data, src, dst)
	now := lb.now()
	fi, found := lb.flows.Get(k)
	if !found {
		if lb.flows.Len() >= tableSize-1 {
			lb.clearExpired(now)
		}
		if err := lb.flows.Put(k, flowInfo{}); err != nil {
			return flowInfo{}, false
		}
		fi.Dest = uint8(lb.flows.Len() % len(lb.cfg.backends)) // ONVM: num_stored % server_count
	}
	fi.LastPktNs = now
	if fi.Active == 0 {
		fi.Active = 1
		copy(fi.SrcMAC[:], data[6:12])
	}
	if err := lb.flows.Put(k, fi); err != nil {
		return flowInfo{}, false
	}
	return fi, true
}

// rewrite sends the packet lookup accepted, frame, to its backend or back
// to its client: addresses, then checksums.
func (lb *balancer) rewrite(inPort uint16, frame []byte, fi flowInfo) nflib.Action {
	fromServer := inPort == lb.cfg.server.port
	l3 := int(lb.h.L3)
	var out uint16
	if fromServer {
		c := &lb.cfg.client
		copy(frame[6:12], c.mac[:])
		copy(frame[0:6], fi.SrcMAC[:])
		copy(frame[l3+12:l3+16], c.ip[:])
		out = c.port
	} else {
		s, b := &lb.cfg.server, &lb.cfg.backends[int(fi.Dest)%len(lb.cfg.backends)]
		copy(frame[6:12], s.mac[:])
		copy(frame[0:6], b.mac[:])
		copy(frame[l3+16:l3+20], b.ip[:])
		out = s.port
	}
	lb.h.SetIPv4Checksum(frame) // ONVM: onvm_pkt_set_checksums
	if lb.h.Flags&pkt.FlagL4 != 0 && (lb.h.Proto == pkt.ProtoTCP || lb.h.Proto == pkt.ProtoUDP) &&
		lb.h.Flags&pkt.FlagFragment == 0 {
		lb.h.SetL4Checksum(frame)
	}
	return nflib.Out(out)
}

// key is the symmetric key of the packet with addresses src and dst (one
// of them zeroed): the larger address and port first, ports 0 without TCP
// or UDP.
func (lb *balancer) key(data []byte, src, dst [4]byte) flowKey {
	a, b := binary.BigEndian.Uint32(src[:]), binary.BigEndian.Uint32(dst[:])
	var sp, dp uint16
	if lb.h.Flags&pkt.FlagL4 != 0 && (lb.h.Proto == pkt.ProtoTCP || lb.h.Proto == pkt.ProtoUDP) {
		sp = binary.BigEndian.Uint16(data[lb.h.L4:])
		dp = binary.BigEndian.Uint16(data[lb.h.L4+2:])
	}
	return flowKey{AddrA: max(a, b), AddrB: min(a, b), PortA: max(sp, dp), PortB: min(sp, dp), Proto: lb.h.Proto}
}

// clearExpired deletes the flows idle for 32 s (ONVM: clear_entries).
func (lb *balancer) clearExpired(now int64) {
	fmt.Fprintf(lb.out, "Clearing expired entries\n")
	lb.flows.Range(func(k flowKey, fi flowInfo) bool {
		if now-fi.LastPktNs >= expireNs {
			if ok, err := lb.flows.Delete(k); !ok || err != nil {
				fmt.Fprintf(lb.out, "Key should have been removed, but was not\n")
			}
		}
		return true
	})
}

// display is ONVM's do_stats_display plus print_flow_info.
func (lb *balancer) display(inPort uint16, size uint32, data []byte) {
	b := pktprint.AppendStd(lb.buf[:0], inPort, size, lb.printed, data)
	lb.buf = b
	lb.out.Write(b)
	var src, dst [4]byte
	l3 := int(lb.h.L3)
	if inPort == lb.cfg.server.port {
		dst = [4]byte(data[l3+16 : l3+20])
	} else {
		src = [4]byte(data[l3+12 : l3+16])
	}
	if fi, ok := lb.flows.Get(lb.key(data, src, dst)); ok {
		fmt.Fprintf(lb.out, "Flow INFO\nDestination server: %d\nSource mac %s\n", fi.Dest, pkt.MAC(fi.SrcMAC))
	}
}
