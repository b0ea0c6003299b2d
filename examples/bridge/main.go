// Command bridge is ONVM's bridge example NF (tag "bridge", ONVM-COMPAT.md
// §5.2): packets that arrived on port 0 go out of port 1, every other packet
// goes out of port 0. Every -p packets it prints ONVM's packet info.
//
//	bridge [EAL args] -- [ONVM args] -- [-p <print_delay>]
package main

import (
	"io"
	"os"
	"strconv"

	"github.com/reinforce-nfv/reinforce/examples/internal/getopt"
	"github.com/reinforce-nfv/reinforce/examples/internal/nfapp"
	"github.com/reinforce-nfv/reinforce/examples/internal/pktprint"
	"github.com/reinforce-nfv/reinforce/nflib"
)

const (
	tag               = "bridge" // ONVM: NF_TAG
	defaultPrintDelay = 1000000  // ONVM: print_delay
)

func main() {
	os.Exit(run(os.Args[0], os.Args[1:], nfapp.Std()))
}

func run(prog string, argv []string, w nfapp.IO) int {
	var every uint64
	if !nfapp.Parse(prog, argv, w, usage, func(app []string) (err error) {
		every, err = getopt.PrintDelay(app, defaultPrintDelay)
		return err
	}) {
		return 1
	}
	nf := nfapp.Register(tag, argv, w)
	if nf == nil {
		return 1
	}
	b := &bridge{every: every, out: w.Stdout, buf: make([]byte, 0, 1024)}
	return nfapp.Serve(nf, b.handle, w)
}

func usage(w io.Writer, prog string) {
	io.WriteString(w, "Usage: "+prog+" [EAL args] -- [NF_LIB args] -- -p <print_delay>\n")
}

// bridge is the NF's state, used by the burst loop goroutine only.
type bridge struct {
	every, counter, total uint64
	out                   io.Writer
	buf                   []byte
}

// dest is ONVM's bridge rule: port 0 → port 1, anything else → port 0.
func dest(in uint16) uint16 {
	if in == 0 {
		return 1
	}
	return 0
}

// handle is the packet handler (ONVM: packet_handler).
func (b *bridge) handle(p nflib.Packet) nflib.Action {
	md := p.Meta()
	b.total++
	if b.counter++; b.every != 0 && b.counter >= b.every {
		b.counter = 0
		out := pktprint.AppendStd(b.buf[:0], md.Port, md.Len, b.total, p.Data())
		out = append(out, "Number of packet processed : "...)
		out = strconv.AppendUint(out, b.total, 10)
		out = append(out, '\n')
		b.out.Write(out)
		b.buf = out
	}
	return nflib.Out(dest(md.Port))
}
