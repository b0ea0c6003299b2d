// Command load_generator is ONVM's load_generator example NF (tag
// "load_generator", ONVM-COMPAT.md §5.1): it creates packets at the rate
// given with -t (packets per second) and sends them to the service given
// with -d, or out of port -d with -o. Each packet is -s bytes (an Ethernet
// header to the -m address, EtherType 0x88B5, zeros) followed by an 8-byte
// send timestamp, and carries the load generator's flag bit; when one comes
// back to this NF its round trip is measured and it is dropped, as is every
// other packet. Every -p seconds it shows its rates and mean latency.
//
//	load_generator [EAL args] -- [ONVM args] -- -d <destination> [-m <dest_mac_address>]
//	    [-p <print_delay>] [-s <packet_size>] [-t <packet_rate>] [-o]
//
// Packets are created in the loop's idle callback (ONVM: user_actions), at
// most 32 per call, as many as the rate has accrued since the last call.
// The sent and received totals are a state array.
//
// Where we differ from ONVM, on purpose: the arguments are checked before
// registering, numbers strictly; -d must be a service ID (1..31), or a
// port (0..31) with -o; timestamps are monotonic nanoseconds, not TSC
// cycles; the source MAC is port 0's as nflib.Ports reports it
// (02:00:00:00:00:00 by default); a backlog the loop could not send is
// capped at one second's worth, so a stalled NF does not burst afterwards.
package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/reinforce-nfv/reinforce/ctlmsg"
	"github.com/reinforce-nfv/reinforce/examples/internal/counters"
	"github.com/reinforce-nfv/reinforce/examples/internal/getopt"
	"github.com/reinforce-nfv/reinforce/examples/internal/nfapp"
	"github.com/reinforce-nfv/reinforce/examples/internal/pktprint"
	"github.com/reinforce-nfv/reinforce/nflib"
	"github.com/reinforce-nfv/reinforce/port"
	"github.com/reinforce-nfv/reinforce/shm"
)

// tag names the NF in the manager's stats. ONVM: NF_TAG.
const tag = "load_generator"

// ONVM's constants.
const (
	loadGenBit        = 1 << 5 // LOAD_GEN_BIT
	batchLimit        = 32     // BATCH_LIMIT
	defaultRate       = 3000000
	defaultPrintDelay = 0.1 // seconds
	ethHeaderBytes    = 14
	stampBytes        = 8
	// EtherType 0x88B5 (LOCAL_EXPERIMENTAL_ETHER), byte-swapped as ONVM does.
	etherType0, etherType1 = 0x88, 0xB5
)

// Counter indices in the state array.
const (
	cSent = iota
	cReceived
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
	ports, err := nflib.Ports()
	if err != nil {
		fmt.Fprintln(w.Stderr, err)
		return 1
	}
	nf := nfapp.Register(tag, argv, w)
	if nf == nil {
		return 1
	}
	if room := int(nf.Region().DataBytes()); cfg.size+stampBytes > room {
		return nfapp.Fail(nf, w, fmt.Sprintf("packets of %d bytes (-s %d plus the %d-byte timestamp) do not fit in a slot's %d bytes of data room",
			cfg.size+stampBytes, cfg.size, stampBytes, room))
	}
	ctr, err := counters.Open(nf, "loadgen_stats", nCounters)
	if err != nil {
		return nfapp.Fail(nf, w, err.Error())
	}
	src := nflib.PortMAC(0)
	if len(ports) > 0 {
		src = ports[0].MAC
	}
	g := newGenerator(cfg, src, ctr, w.Stdout, port.Nanotime)
	return nfapp.ServeWith(nf, g.handle, nflib.Callbacks{Setup: g.setup, Idle: g.idle}, w)
}

// config is the NF's own command line.
type config struct {
	dst        uint16  // -d: service, or port with -o
	printDelay float64 // -p: seconds between displays; 0 never displays
	rate       uint64  // -t: packets per second
	dstMAC     [6]byte // -m
	size       int     // -s: bytes before the timestamp
	out        bool    // -o
}

// usage prints ONVM's usage text for load_generator.
func usage(w io.Writer, prog string) {
	io.WriteString(w, "Usage:\n"+
		prog+" [EAL args] -- [NF_LIB args] -- -d <destination> [-m <dest_mac_address>] "+
		"[-p <print_delay>] [-s <packet_size>] [-t <packet_rate>] [-o]\n\n"+
		prog+" -F <CONFIG_FILE.json> [EAL args] -- [NF_LIB args] -- [NF args]\n\n"+
		"Flags:\n"+
		" - `-d DST`: destination service ID to foward to, or dst port if `-o` is used.\n"+
		" - `-p <print_delay>`: number of seconds between each print (e.g. `-p 0.1` prints every 0.1 seconds).\n"+
		" - `-t <packet_rate>`: the desired transmission rate for the packets (e.g. `-t 3000000 transmits 3 million "+
		"packets per second). Note that the actual transmission rate may be limited based on system performance and NF "+
		"configuration. If the load generator is experiencing high levels of dropped packets either transmitting or "+
		"receiving, lowering the transmission rate could solve this.\n"+
		" - `-m <dest_mac>`: user specified destination MAC address (e.g. `-m aa:bb:cc:dd:ee:ff` sets the destination "+
		"address within the ethernet header that is located at the start of the packet data).\n"+
		" - `-s <packet_size>`: the desired size of the generated packets in bytes.\n"+
		" - `-o`: send the packets out the NIC port.\n")
}

// parseArgs parses the NF's own arguments with ONVM's getopt string
// "d:p:t:m:s:o". Errors are *getopt.Error.
func parseArgs(args []string) (config, error) {
	cfg := config{printDelay: defaultPrintDelay, rate: defaultRate, size: ethHeaderBytes}
	opts, _, perr := getopt.Parse(args, "d:p:t:m:s:o")
	haveDst := false
	for _, o := range opts {
		switch o.Name {
		case 'd':
			n, err := o.Uint(ctlmsg.MaxServices - 1)
			if err != nil {
				return config{}, err
			}
			cfg.dst, haveDst = uint16(n), true
		case 'p':
			v, err := strconv.ParseFloat(o.Arg, 64)
			if err != nil || v < 0 || v > 1e9 {
				return config{}, getopt.Errorf("Option -p needs a number of seconds, not %q", o.Arg)
			}
			cfg.printDelay = v
		case 't':
			n, err := o.Uint(1 << 40)
			if err != nil {
				return config{}, err
			}
			cfg.rate = n
		case 'm':
			mac, err := o.MAC()
			if err != nil {
				return config{}, err
			}
			cfg.dstMAC = mac
		case 's':
			n, err := o.Uint(1<<16 - 1)
			if err != nil {
				return config{}, err
			}
			if n < ethHeaderBytes {
				return config{}, getopt.Errorf("Load generator NF requires a packet size of at least 14.")
			}
			cfg.size = int(n)
		case 'o':
			cfg.out = true
		}
	}
	if perr != nil {
		return config{}, perr
	}
	if !haveDst {
		return config{}, getopt.Errorf("Load generator NF requires a destination NF with the -d flag.")
	}
	if !cfg.out && cfg.dst == 0 {
		return config{}, getopt.Errorf("Option -d must name a service ID from 1 to %d (or a port, with -o)", ctlmsg.MaxServices-1)
	}
	return cfg, nil
}

// generator is the NF's state, for the burst loop goroutine only.
type generator struct {
	cfg   config
	act   nflib.Action
	hdr   [ethHeaderBytes]byte
	ctr   *counters.Counters
	now   func() int64
	out   io.Writer
	buf   []byte
	batch [batchLimit]nflib.Packet

	start, last, lastUpdate int64   // ns
	toSend                  float64 // packets the rate has accrued
	sinceUpdateTx           uint64
	sinceUpdateRx           uint64
	latencyNs               uint64 // round trips since the last display
	batchSize               int
	sincePrint              int64
}

func newGenerator(cfg config, src [6]byte, ctr *counters.Counters, out io.Writer, now func() int64) *generator {
	g := &generator{cfg: cfg, act: nflib.ToNF(cfg.dst), ctr: ctr, now: now, out: out, buf: make([]byte, 0, 512)}
	if cfg.out {
		g.act = nflib.Out(cfg.dst)
	}
	copy(g.hdr[0:6], cfg.dstMAC[:])
	copy(g.hdr[6:12], src[:])
	g.hdr[12], g.hdr[13] = etherType0, etherType1
	return g
}

// setup is ONVM's nf_setup: the clocks start.
func (g *generator) setup(*nflib.NF) {
	n := g.now()
	g.start, g.last, g.lastUpdate = n, n, n
}

// handle is ONVM's packet_handler: a returning packet's round trip is
// measured; every packet is dropped.
func (g *generator) handle(p nflib.Packet) nflib.Action {
	g.receive(p.Meta(), p.Data())
	return nflib.Drop
}

func (g *generator) receive(m *shm.Meta, data []byte) {
	if m.Flags&loadGenBit == 0 || len(data) < g.cfg.size+stampBytes {
		return
	}
	sent := int64(binary.NativeEndian.Uint64(data[g.cfg.size:]))
	if now := g.now(); sent > 0 && sent <= now {
		g.latencyNs += uint64(now - sent)
	}
	g.ctr.Add(cReceived, 1)
	g.sinceUpdateRx++
}

// idle is ONVM's callback_handler: send what the rate has accrued, then
// display every -p seconds.
func (g *generator) idle(nf *nflib.NF) bool {
	now := g.now()
	delta := now - g.last
	g.last = now
	g.toSend += float64(delta) * float64(g.cfg.rate) / 1e9
	if limit := float64(g.cfg.rate); g.toSend > limit {
		g.toSend = limit
	}
	if g.toSend >= 1 {
		// No more than the rings can take: the rest of the accrued
		// packets go in a later call instead of being dropped.
		g.batchSize = min(int(g.toSend), batchLimit, nf.SendRoom())
		n := 0
		for n < g.batchSize {
			p, ok := nf.NewPacket()
			if !ok {
				break
			}
			g.build(p, now)
			g.batch[n] = p
			n++
		}
		sent := nf.InjectBulk(g.batch[:n], g.act)
		for _, p := range g.batch[sent:n] {
			nf.Free(p) // a full ring: not sent, not counted
		}
		g.ctr.Add(cSent, uint64(sent))
		g.sinceUpdateTx += uint64(sent)
		g.toSend -= float64(n)
	}
	g.sincePrint += delta
	if g.cfg.printDelay > 0 && float64(g.sincePrint) > g.cfg.printDelay*1e9 {
		g.display(now)
		g.sincePrint = 0
	}
	return false
}

// build writes one packet stamped at now.
func (g *generator) build(p nflib.Packet, now int64) {
	m := p.Meta()
	room := p.Room()[m.DataOff:]
	d := room[:g.cfg.size+stampBytes]
	copy(d, g.hdr[:])
	clear(d[ethHeaderBytes:g.cfg.size])
	binary.NativeEndian.PutUint64(d[g.cfg.size:], uint64(now))
	m.Len = uint32(len(d))
	m.Flags |= loadGenBit
	m.Port = 0
}

// display is ONVM's do_stats_display.
func (g *generator) display(now int64) {
	elapsed := float64(now-g.start) / 1e9
	since := float64(now-g.lastUpdate) / 1e9
	sent, recv := g.ctr.Get(cSent), g.ctr.Get(cReceived)
	var lat float64
	if g.sinceUpdateRx > 0 {
		lat = float64(g.latencyNs) / float64(g.sinceUpdateRx) / 1e3
	}
	b := append(g.buf[:0], pktprint.ClearScreen...)
	b = fmt.Appendf(b, "Time elapsed: %.2f\n\n", elapsed)
	b = fmt.Appendf(b, "Tx total packets: %d\nTx packets sent this iteration: %d\nTx rate (set): %d\n", sent, g.batchSize, g.cfg.rate)
	b = fmt.Appendf(b, "Tx rate (average): %.2f\nTx rate (current): %.2f\n\n", rate(sent, elapsed), rate(g.sinceUpdateTx, since))
	b = fmt.Appendf(b, "Rx total packets: %d \nRx rate (average): %.2f\nRx rate (current): %.2f\n", recv, rate(recv, elapsed), rate(g.sinceUpdateRx, since))
	b = fmt.Appendf(b, "Latency (current mean): %.2f us\n\n\n", lat)
	g.buf = b
	g.out.Write(b)
	g.lastUpdate = now
	g.sinceUpdateTx, g.sinceUpdateRx, g.latencyNs = 0, 0, 0
}

func rate(n uint64, secs float64) float64 {
	if secs <= 0 {
		return 0
	}
	return float64(n) / secs
}
