// Command speed_tester is ONVM's speed_tester example NF (tag
// "speed_tester", ONVM-COMPAT.md §5.1): it creates -c packets, sends them to
// the service given with -d and sends every one that comes back there
// again, so the batch circulates through a loop or chain as fast as the
// platform moves it; every other packet it receives is dropped. Every -p
// packets it shows the packet rate and, with -l, the mean round-trip time
// of a few probe packets (the chain must end back at this NF).
//
//	speed_tester [EAL args] -- [ONVM args] -- -d <destination> [-p <print_delay>]
//	    [-s <packet_length>] [-m <dest_mac_address>] [-o <pcap_filename>]
//	    [-c <packet_number>] [-l]
//
// Stages: parse the ONVM and own arguments, register, check -s against the
// slot room, create and inject the packets (ONVM: nf_setup), run the burst
// loop until a signal or the manager stops it, close.
//
// Where we differ from ONVM, on purpose:
//   - The arguments are checked before registering, and numbers strictly
//     (getopt.Opt.Uint); -d must be a service ID (1..31), -s at least 14 and,
//     with the timestamp, no more than a slot's data room (ONVM crashes).
//   - The display comes every -p packets and "Total packets" is exact; ONVM
//     displays every -p+1 and adds -p each time. -p 0 never displays (ONVM:
//     every packet).
//   - The source MAC is always 02:00:00:00:00:00: NFs are not told port 0's.
//   - Timestamps are monotonic nanoseconds, not TSC cycles.
//   - -o (pcap replay) is always built in (ONVM needs ENABLE_PCAP=1). It
//     reads the capture before registering, so a missing or corrupt file is
//     refused up front; it does not combine with -l (the replayed frames
//     have no room reserved for a timestamp), and -s and -m do not apply.
//     Frames larger than a slot's data room are skipped and counted as
//     dropped, as ONVM does.
package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/reinforce-nfv/reinforce/examples/internal/getopt"
	"github.com/reinforce-nfv/reinforce/examples/internal/nfapp"
	"github.com/reinforce-nfv/reinforce/nflib"
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
	var capt *capture
	if cfg.pcap != "" {
		var err error
		if capt, err = loadCapture(cfg.pcap, cfg.count); err != nil {
			fmt.Fprintln(w.Stderr, err)
			return 1
		}
	}
	nf := nfapp.Register(tag, argv, w)
	if nf == nil {
		return 1
	}
	var created, lost uint32
	if cfg.pcap != "" {
		created, lost = replay(nf, capt, cfg, w)
	} else {
		f := cfg.frame()
		if err := checkRoom(f, int(nf.Region().DataBytes())); err != nil {
			return nfapp.Fail(nf, w, err.Error())
		}
		fmt.Fprintf(w.Stdout, "Creating %d packets to send to %d\n", cfg.count, cfg.dst)
		created, lost = create(nf, f, nflib.ToNF(cfg.dst), w)
	}
	if lost > 0 {
		fmt.Fprintf(w.Stderr, "%d of %d packets were dropped on their way to service %d: its ring is full"+
			" (the manager's ring_size may be smaller than -c)\n", lost, created, cfg.dst)
	}
	if created == 0 && cfg.count > 0 && cfg.pcap == "" {
		return nfapp.Fail(nf, w, "Failed to create packets") // ONVM's words
	}
	t := newTester(cfg, created, w.Stdout, monoNanos)
	if stop := startCPUProfile(w); stop != nil {
		defer stop()
	}
	return nfapp.Serve(nf, t.handle, w)
}

// config is the NF's own command line.
type config struct {
	dst        uint16  // -d: the service the packets go to
	printDelay uint64  // -p: packets between displays; 0 never displays
	size       int     // -s: bytes per packet
	dstMAC     [6]byte // -m
	count      uint32  // -c: packets to create
	latency    bool    // -l
	pcap       string  // -o: the capture to replay instead of creating packets
}

// frame is what setup writes into each packet.
func (c config) frame() frame {
	return frame{size: c.size, src: fakeSrcMAC, dst: c.dstMAC, count: c.count, latency: c.latency}
}

// usage prints ONVM's usage text for speed_tester.
func usage(w io.Writer, prog string) {
	io.WriteString(w, "Usage:\n"+
		prog+" [EAL args] -- [NF_LIB args] -- -d <destination> [-p <print_delay>] "+
		"[-s <packet_length>] [-m <dest_mac_address>] [-o <pcap_filename>] [-c <packet_number>] [-l]\n"+
		prog+" -F <CONFIG_FILE.json> [EAL args] -- [NF_LIB args] -- [NF args]\n\n"+
		"Flags:\n"+
		" - `-d DST`: Destination Service ID to foward to\n"+
		" - `-p PRINT_DELAY`: Number of packets between each print, e.g. `-p 1` prints every packets.\n"+
		" - `-s PACKET_SIZE`: Size of packet, e.g. `-s 32` allocates 32 bytes for the data segment of `rte_mbuf`.\n"+
		" - `-m DEST_MAC`: User specified destination MAC address, e.g. `-m aa:bb:cc:dd:ee:ff` sets the "+
		"destination address within the ethernet header that is located at the start of the packet data.\n"+
		" - `-o PCAP_FILENAME` : The filename of the pcap file to replay\n"+
		" - `-l LATENCY` : Enable latency measurement. This should only be enabled on one Speed Tester NF. "+
		"Packets must be routed back to the same speed tester NF.\n"+
		" - `-c PACKET_NUMBER` : Use user specified number of packets in the batch. If not specified then "+
		"this defaults to 128.\n")
}

// parseArgs parses the NF's own arguments with ONVM's getopt string
// "d:p:s:m:o:c:l", acting on the options in order as ONVM does. Errors are
// *getopt.Error.
func parseArgs(args []string) (config, error) {
	cfg := config{printDelay: defaultPrintDelay, size: minSize, count: defaultCount}
	opts, _, perr := getopt.Parse(args, "d:p:s:m:o:c:l")
	haveDst, haveCount := false, false
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
		case 's':
			n, err := o.Uint(1<<16 - 1) // ONVM: uint16_t packet_size
			if err != nil {
				return config{}, err
			}
			if n < minSize {
				return config{}, getopt.Errorf("Option -s must be at least %d (the Ethernet header), not %d", minSize, n)
			}
			cfg.size = int(n)
		case 'm':
			mac, err := o.MAC()
			if err != nil {
				return config{}, err
			}
			cfg.dstMAC = mac
		case 'o':
			if o.Arg == "" {
				return config{}, getopt.Errorf("Option -o needs a pcap file name")
			}
			cfg.pcap = o.Arg
		case 'c':
			n, err := o.Uint(1<<64 - 1)
			if err != nil {
				return config{}, err
			}
			if n > maxCount {
				return config{}, getopt.Errorf("Illegal packet number(1 ~ %d) %d!", maxCount, n)
			}
			cfg.count, haveCount = uint32(n), true
		case 'l':
			cfg.latency = true
		}
	}
	if perr != nil {
		return config{}, perr
	}
	if !haveDst {
		return config{}, getopt.Errorf("Speed tester NF requires a destination NF with the -d flag.")
	}
	if cfg.pcap != "" {
		if cfg.latency {
			return config{}, getopt.Errorf("Option -l cannot be combined with -o: replayed packets carry no timestamp")
		}
		if !haveCount {
			cfg.count = maxCount // ONVM replays up to MAX_PKT_NUM packets by default
		}
	}
	return cfg, nil
}

// checkRoom refuses packets larger than a slot's data room (ONVM's
// rte_pktmbuf_append would return NULL and the NF crash).
func checkRoom(f frame, room int) error {
	need, what := f.size, ""
	if f.latency && f.count > 0 {
		need, what = f.size+stampBytes, fmt.Sprintf(" (-s %d plus the %d-byte latency timestamp)", f.size, stampBytes)
	}
	if need > room {
		return fmt.Errorf("packets of %d bytes%s do not fit in a slot's %d bytes of data room", need, what, room)
	}
	return nil
}

// create allocates, builds and injects f.count packets with action a (ONVM:
// nf_setup, then onvm_nflib_return_pkt_bulk). It returns how many it
// created and how many of those the full destination ring dropped. When the
// pool gives no packet for allocPatience it stops early, as ONVM does
// when rte_pktmbuf_alloc fails.
func create(nf *nflib.NF, f frame, a nflib.Action, w nfapp.IO) (created, lost uint32) {
	var waited time.Duration
	for i := uint32(0); i < f.count; {
		p, ok := nf.NewPacket()
		if !ok {
			// The NF's cache is empty until the pool's service refills it.
			if waited >= allocPatience {
				fmt.Fprintln(w.Stdout, "Failed to allocate packets")
				break
			}
			time.Sleep(allocRetry)
			waited += allocRetry
			continue
		}
		waited = 0
		m, room := p.Meta(), p.Room()
		if int(m.DataOff) > len(room) || !f.build(room[m.DataOff:], m, i) {
			// checkRoom passed, so only a region lying about its room gets here.
			nf.Inject(p, nflib.Drop) // frees it
			break
		}
		if !nf.Inject(p, a) {
			lost++
		}
		created++
		i++
	}
	return created, lost
}
