// Command simple_forward is ONVM's simple_forward example NF (tag
// "simple_forward", ONVM-COMPAT.md §5.2): it sends every packet to the
// service given with -d and shows the std packet print every -p packets.
//
//	simple_forward [EAL args] -- [ONVM args] -- -d <destination> [-p <print_delay>]
//
// Where we differ from ONVM, on purpose: the arguments are checked before
// registering, numbers strictly (getopt.Opt.Uint), and -d must be a service
// ID (1..31); ONVM reads "-d x" as 0 and sends every packet nowhere.
package main

import (
	"io"
	"os"

	"github.com/reinforce-nfv/reinforce/examples/internal/getopt"
	"github.com/reinforce-nfv/reinforce/examples/internal/nfapp"
	"github.com/reinforce-nfv/reinforce/examples/internal/pktprint"
	"github.com/reinforce-nfv/reinforce/nflib"
	"github.com/reinforce-nfv/reinforce/shm"
)

// tag names the NF in the manager's stats. ONVM: NF_TAG.
const tag = "simple_forward"

// defaultPrintDelay is -p's default. ONVM: print_delay.
const defaultPrintDelay = 1000000

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
	f := newForwarder(cfg, w.Stdout)
	return nfapp.Serve(nf, f.handle, w)
}

// config is the NF's own command line.
type config struct {
	dst        uint16 // -d: the service every packet goes to
	printDelay uint64 // -p: packets between std packet prints; 0 never prints
}

// usage prints ONVM's usage text for simple_forward.
func usage(w io.Writer, prog string) {
	io.WriteString(w, "Usage:\n"+
		prog+" [EAL args] -- [NF_LIB args] -- -d <destination> -p <print_delay>\n"+
		prog+" -F <CONFIG_FILE.json> [EAL args] -- [NF_LIB args] -- [NF args]\n\n"+
		"Flags:\n"+
		" - `-d <dst>`: destination service ID to foward to\n"+
		" - `-p <print_delay>`: number of packets between each print, e.g. `-p 1` prints every packets.\n")
}

// parseArgs parses the NF's own arguments with ONVM's getopt string "d:p:".
// Errors are *getopt.Error.
func parseArgs(args []string) (config, error) {
	cfg := config{printDelay: defaultPrintDelay}
	opts, _, perr := getopt.Parse(args, "d:p:")
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
		}
	}
	if perr != nil {
		return config{}, perr
	}
	if !haveDst {
		return config{}, getopt.Errorf("Simple Forward NF requires destination flag -d.")
	}
	return cfg, nil
}

// forwarder is the NF's state, used by the burst loop goroutine only.
type forwarder struct {
	act     nflib.Action // ToNF(-d)
	every   uint64       // -p
	counter uint64       // packets since the last print
	printed uint64       // N°: packets up to the last print
	out     io.Writer
	buf     []byte // the print, reused
}

func newForwarder(cfg config, out io.Writer) *forwarder {
	return &forwarder{act: nflib.ToNF(cfg.dst), every: cfg.printDelay, out: out, buf: make([]byte, 0, 1024)}
}

// handle is the packet handler (ONVM: packet_handler).
func (f *forwarder) handle(p nflib.Packet) nflib.Action {
	return f.process(p.Meta(), p.Data())
}

// process forwards one packet and, every -p packets, prints it. It does not
// allocate.
func (f *forwarder) process(m *shm.Meta, data []byte) nflib.Action {
	if f.counter++; f.counter == f.every {
		f.counter = 0
		f.printed += f.every
		f.buf = pktprint.AppendStd(f.buf[:0], m.Port, m.Len, f.printed, data)
		f.out.Write(f.buf)
	}
	return f.act
}
