// Command basic_monitor is ONVM's basic_monitor example NF (tag
// "basic_monitor", ONVM-COMPAT.md §5.2): it sends every packet back out of
// the port it arrived on and shows the std packet print, with the flow hash,
// every -p packets.
//
//	basic_monitor [EAL args] -- [ONVM args] -- [-p <print_delay>]
//
// Where we differ from ONVM: the source MAC is left as it is, because NFs
// are not told the ports' MAC addresses yet.
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
	tag               = "basic_monitor" // ONVM: NF_TAG
	defaultPrintDelay = 1000000         // ONVM: print_delay
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
	m := &monitor{every: every, out: w.Stdout, buf: make([]byte, 0, 1024)}
	return nfapp.Serve(nf, m.handle, w)
}

func usage(w io.Writer, prog string) {
	io.WriteString(w, "Usage: "+prog+" [EAL args] -- [NF_LIB args] -- -p <print_delay>\n")
}

// monitor is the NF's state, used by the burst loop goroutine only.
type monitor struct {
	every, counter, total uint64
	out                   io.Writer
	buf                   []byte
}

// handle is the packet handler (ONVM: packet_handler): OUT to the packet's port.
func (m *monitor) handle(p nflib.Packet) nflib.Action {
	md := p.Meta()
	m.total++
	if m.counter++; m.every != 0 && m.counter >= m.every {
		m.counter = 0
		b := pktprint.AppendStd(m.buf[:0], md.Port, md.Len, m.total, p.Data())
		b = append(b, "Hash : "...)
		b = strconv.AppendUint(b, uint64(md.FlowHash), 10)
		b = append(b, '\n')
		m.out.Write(b)
		m.buf = b
	}
	return nflib.Out(md.Port)
}
