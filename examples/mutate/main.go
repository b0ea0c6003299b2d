// Command mutate is a test NF for the burst transactions (docs/state.md):
// it adds one to the mutation counter of each packet's probe record
// (pkt/probe), keeping the UDP checksum valid, and sends the packet on
// along its chain (Next). The counter is not idempotent, so a packet
// mutated twice — a rolled-back write that was not undone, a packet
// processed again after a crash — shows 2 at the sink. Packets without a
// probe pass untouched.
//
//	mutate [EAL args] -- [ONVM args] --
package main

import (
	"encoding/binary"
	"io"
	"os"

	"github.com/reinforce-nfv/reinforce/examples/internal/getopt"
	"github.com/reinforce-nfv/reinforce/examples/internal/nfapp"
	"github.com/reinforce-nfv/reinforce/nflib"
	"github.com/reinforce-nfv/reinforce/pkt"
	"github.com/reinforce-nfv/reinforce/pkt/probe"
)

// tag names the NF in the manager's stats.
const tag = "mutate"

func main() {
	os.Exit(run(os.Args[0], os.Args[1:], nfapp.Std()))
}

// run is main with its inputs and outputs passed in; it returns the exit
// status.
func run(prog string, argv []string, w nfapp.IO) int {
	if !nfapp.Parse(prog, argv, w, usage, parseArgs) {
		return 1
	}
	nf := nfapp.Register(tag, argv, w)
	if nf == nil {
		return 1
	}
	var m mutator
	return nfapp.Serve(nf, m.handle, w)
}

// usage prints the usage text, in the style of ONVM's examples.
func usage(w io.Writer, prog string) {
	io.WriteString(w, "Usage:\n"+
		prog+" [EAL args] -- [NF_LIB args] --\n\n"+
		"The NF takes no flags: it adds 1 to each probe's mutation counter.\n")
}

// parseArgs refuses any argument of the NF's own. Errors are *getopt.Error.
func parseArgs(args []string) error {
	_, operands, err := getopt.Parse(args, "")
	if err != nil {
		return err
	}
	if len(operands) > 0 {
		return getopt.Errorf("Unexpected argument %q", operands[0])
	}
	return nil
}

// mutator is the handler's scratch, used by the burst loop goroutine only.
type mutator struct {
	h pkt.Headers
}

// handle mutates the packet's probe. It does not allocate.
func (m *mutator) handle(p nflib.Packet) nflib.Action {
	off, ok := probe.Find(&m.h, p.Data())
	if !ok {
		return nflib.Next
	}
	w := p.Writable() // saves the original bytes: a rollback undoes the increment
	at := off + probe.OffMutate
	probe.SetUint32(w, at, probe.ChecksumOffset(&m.h), binary.BigEndian.Uint32(w[at:])+1)
	return nflib.Next
}
