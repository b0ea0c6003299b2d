// Command stamp is a test NF for the burst transactions (docs/state.md): it
// keeps a counter per flow in a state map and writes the flow's counter
// into stamp field -f of each packet's probe record (pkt/probe), keeping
// the UDP checksum valid, then sends the packet on along its chain (Next).
// The sink checks that every flow's stamps count up by one with no gap or
// repeat, also across a crash of the NF: the counter and the stamp change
// in the same transaction. Several stamps with different -f can share a
// chain.
//
//	stamp [EAL args] -- [ONVM args] -- [-f <field>] [-c <flows>]
//
// The key of a probe packet is its probe's flow ID. A packet without a
// probe is counted under its 5-tuple hash (the manager's symmetric flow
// hash) and passes untouched.
package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"

	"github.com/reinforce-nfv/reinforce/examples/internal/getopt"
	"github.com/reinforce-nfv/reinforce/examples/internal/nfapp"
	"github.com/reinforce-nfv/reinforce/nflib"
	"github.com/reinforce-nfv/reinforce/pkt"
	"github.com/reinforce-nfv/reinforce/pkt/probe"
	"github.com/reinforce-nfv/reinforce/shm"
	"github.com/reinforce-nfv/reinforce/shm/state"
)

// tag names the NF in the manager's stats.
const tag = "stamp"

// defaultFlows is -c's default: the state map's capacity.
const defaultFlows = 65536

// maxFlows bounds -c (the state map's limit).
const maxFlows = 1 << 30

// probeFlowAt is the probe record's flow ID field (pkt/probe's layout).
const probeFlowAt = 4

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
	flows, err := nflib.NewMap[flowKey, uint64](nf, "flows", cfg.flows)
	if err != nil {
		return nfapp.Fail(nf, w, err.Error())
	}
	tx := "on"
	if !nf.Transactional() {
		tx = "off (REINFORCE_TX=off)"
	}
	fmt.Fprintf(w.Stdout, "Stamping field %d of up to %d flows; transactions %s\n", cfg.field, cfg.flows, tx)
	s := newStamper(cfg.field, flows, w.Stderr)
	return nfapp.Serve(nf, s.handle, w)
}

// config is the NF's own command line.
type config struct {
	field int // -f: the stamp field written, 0..probe.Stamps-1
	flows int // -c: flows the state map holds
}

// usage prints the usage text, in the style of ONVM's examples.
func usage(w io.Writer, prog string) {
	io.WriteString(w, "Usage:\n"+
		prog+" [EAL args] -- [NF_LIB args] -- [-f <field>] [-c <flows>]\n\n"+
		"Flags:\n"+
		" - `-f <field>`: probe stamp field (0..3) that gets the flow's packet counter (default 0)\n"+
		" - `-c <flows>`: flows the NF's state map holds (default 65536)\n")
}

// parseArgs parses the NF's own arguments (getopt string "f:c:"). Errors
// are *getopt.Error.
func parseArgs(args []string) (config, error) {
	cfg := config{flows: defaultFlows}
	opts, _, perr := getopt.Parse(args, "f:c:")
	for _, o := range opts {
		switch o.Name {
		case 'f':
			n, err := o.Uint(probe.Stamps - 1)
			if err != nil {
				return config{}, err
			}
			cfg.field = int(n)
		case 'c':
			n, err := o.Uint(maxFlows)
			if err != nil {
				return config{}, err
			}
			if n == 0 {
				return config{}, getopt.Errorf("Option -c must be at least 1")
			}
			cfg.flows = int(n)
		}
	}
	if perr != nil {
		return config{}, perr
	}
	return cfg, nil
}

// flowKey is a state map key: a probe's flow ID (Probe 1), or a packet's
// 5-tuple hash (Probe 0), so the two kinds never share a counter.
type flowKey struct {
	ID    uint32
	Probe uint32
}

// stamper is the NF's handler state, used by the burst loop goroutine only.
type stamper struct {
	flows *state.Map[flowKey, uint64]
	at    int // the stamp field's offset from the probe's start
	h     pkt.Headers
	errw  io.Writer
	full  bool // the map's "full" was reported
}

func newStamper(field int, flows *state.Map[flowKey, uint64], errw io.Writer) *stamper {
	return &stamper{flows: flows, at: probe.OffStamp0 + 4*field, errw: errw}
}

// handle counts the packet in its flow and stamps it. It does not allocate.
func (s *stamper) handle(p nflib.Packet) nflib.Action {
	d := p.Data()
	off, isProbe := probe.Find(&s.h, d)
	var k flowKey
	if isProbe {
		k = flowKey{ID: binary.BigEndian.Uint32(d[off+probeFlowAt:]), Probe: 1}
	} else {
		k = flowKey{ID: flowHash(&s.h, p.Meta(), d)}
	}
	c, _ := s.flows.Get(k)
	c++
	if err := s.flows.Put(k, c); err != nil {
		// A new flow in a full map: the packet goes on unstamped (the sink
		// sees the gap) rather than with a counter the NF did not keep. A
		// full state log fails the whole burst, which nflib rolls back.
		if !s.full {
			s.full = true
			fmt.Fprintf(s.errw, "%s: flow %d not counted: %v\n", tag, k.ID, err)
		}
		return nflib.Next
	}
	if isProbe {
		probe.SetUint32(p.Writable(), off+s.at, probe.ChecksumOffset(&s.h), uint32(c))
	}
	return nflib.Next
}

// flowHash is the key of a packet without a probe: the manager's symmetric
// flow hash when it set one, else the same hash computed here (0 for a
// frame that is not IP). h holds d's decoded headers, or a decode error's
// leftovers, which FiveTuple refuses.
func flowHash(h *pkt.Headers, m *shm.Meta, d []byte) uint32 {
	if m.MetaFlags&shm.FlagHasHash != 0 {
		return m.FlowHash
	}
	if h.Decode(d) != nil {
		return 0
	}
	ft, ok := h.FiveTuple(d)
	if !ok {
		return 0
	}
	return pkt.SymmetricHash(ft)
}
