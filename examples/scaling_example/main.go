// Command scaling_example is ONVM's scaling_example NF (tag "scaling",
// ONVM-COMPAT.md §5.5): it scales its service out at run time. On its
// first packet (with -a: at start) it starts -n children, each a full NF
// instance of its own service ID with its own instance ID, rings and pool
// owner; each child creates 128 packets when it starts and, like the
// parent, sends every packet to the service given with -d. When the
// parent stops, it stops its children.
//
//	scaling_example [EAL args] -- [ONVM args] -- -d <destination> [-n <num_children>] [-c] [-a]
//
// ONVM's children are threads of the parent's process (onvm_nflib_scale);
// here each child is a process: the parent runs its own binary again with
// the child's NF command line ("-- -r <service> [-s] [-t] [-l] -- -d
// <destination>") and REINFORCE_SCALING_PARENT set to its instance ID, so a
// child registers with the manager like any NF and fails, and is counted,
// on its own. A child dies with its parent (PR_SET_PDEATHSIG).
//
// Where we differ from ONVM, on purpose:
//   - Children register with the parent's service ID: the fix of ONVM's
//     issue #250 (PR #321); v21.10 gave them the -d service ([quirk]).
//   - The parent starts all -n children itself (ONVM: one child, which
//     starts the other -n - 1 on its first packet), and the parent's
//     packets go to -d (ONVM: back to its own service).
//   - -a (advanced rings) starts the children at once rather than on the
//     first packet; the NFs run nflib's burst loop either way. -c gives the
//     children -s (share core).
//   - The arguments are checked before registering.
package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/reinforce-nfv/reinforce/ctlmsg"
	"github.com/reinforce-nfv/reinforce/examples/internal/getopt"
	"github.com/reinforce-nfv/reinforce/examples/internal/nfapp"
	"github.com/reinforce-nfv/reinforce/nflib"
	"github.com/reinforce-nfv/reinforce/shm"
)

// tag names the NF in the manager's stats. ONVM: NF_TAG.
const tag = "scaling"

// ParentEnv, set to the parent's instance ID, makes the process a child.
const ParentEnv = "REINFORCE_SCALING_PARENT"

// ONVM's constants.
const (
	defaultChildren = 1   // DEFAULT_NUM_CHILDREN
	packetNumber    = 128 // DEFAULT_PKT_NUM: packets each child creates
	packetSize      = 14  // ETHER_HDR_LEN
	maxChildren     = ctlmsg.MaxNFs - 2
	stopGrace       = 2 * time.Second
	allocPatience   = time.Second // how long setup waits for free packets
)

// selfCommand returns the command that runs this program as an NF with
// command line argv. Tests replace it (the test binary needs other
// arguments to become the NF).
var selfCommand = func(argv []string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return exec.Command(exe, argv...), nil
}

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
	act := nflib.ToNF(cfg.dst)
	if parent := os.Getenv(ParentEnv); parent != "" {
		fmt.Fprintf(w.Stdout, "Child NF %d of parent NF %s, service ID %d\n", nf.InstanceID(), parent, nf.ServiceID())
		return nfapp.ServeWith(nf, func(nflib.Packet) nflib.Action { return act },
			nflib.Callbacks{Setup: func(nf *nflib.NF) { createPackets(nf, act) }}, w)
	}
	s := &scaler{cfg: cfg, args: nf.Args, instance: nf.InstanceID(), w: w}
	var cb nflib.Callbacks
	if cfg.advanced {
		cb.Setup = func(*nflib.NF) { s.spawn() }
	}
	code := nfapp.ServeWith(nf, func(nflib.Packet) nflib.Action {
		if !s.spawned {
			s.spawn()
		}
		return act
	}, cb, w)
	s.stop()
	return code
}

// config is the NF's own command line.
type config struct {
	dst      uint16 // -d
	children int    // -n
	share    bool   // -c
	advanced bool   // -a
}

func usage(w io.Writer, prog string) {
	io.WriteString(w, "Usage:\n"+
		prog+" [EAL args] -- [NF_LIB args] -- -d <destination> [-a]\n"+
		prog+" -F <CONFIG_FILE.json> [EAL args] -- [NF_LIB args] -- [NF args]\n\n"+
		"Flags:\n"+
		" - `-d DST`: Destination Service ID, functionality depends on mode\n"+
		" - `-n NUM_CHILDREN`: Sets the number of children for the NF to spawn\n"+
		" - `-c`: Set NF core allocation to shared cpu\n"+
		" - `-a`: Use advanced rings interface instead of default `packet_handler`\n")
}

// parseArgs parses the NF's own arguments with ONVM's getopt string
// "d:n:p:ac" (-p is accepted and unused, as in ONVM). Errors are
// *getopt.Error.
func parseArgs(args []string) (config, error) {
	cfg := config{children: defaultChildren}
	opts, _, perr := getopt.Parse(args, "d:n:p:ac")
	haveDst := false
	for _, o := range opts {
		switch o.Name {
		case 'd':
			n, err := o.ServiceID()
			if err != nil {
				return config{}, err
			}
			cfg.dst, haveDst = uint16(n), true
		case 'n':
			n, err := o.Uint(maxChildren)
			if err != nil {
				return config{}, err
			}
			if n < defaultChildren {
				return config{}, &getopt.Error{Msg: fmt.Sprintf("The number of children should be more or equal than %d", defaultChildren), NoUsage: true}
			}
			cfg.children = int(n)
		case 'c':
			cfg.share = true
		case 'a':
			cfg.advanced = true
		}
	}
	if perr != nil {
		return config{}, perr
	}
	if !haveDst {
		return config{}, getopt.Errorf("Destination id not passed, running default example funcitonality.")
	}
	return cfg, nil
}

// childArgv is a child's NF command line: the parent's service and limits,
// a fresh instance ID, -s with -c.
func childArgv(cfg config, a nflib.Args) []string {
	argv := []string{"--", "-r", strconv.Itoa(int(a.Service))}
	if cfg.share || a.ShareCore {
		argv = append(argv, "-s")
	}
	if a.TTL > 0 {
		argv = append(argv, "-t", strconv.Itoa(int(a.TTL/time.Second)))
	}
	if a.PktLimit > 0 {
		argv = append(argv, "-l", strconv.FormatUint(a.PktLimit/ctlmsg.PktLimitMultiplier, 10))
	}
	return append(argv, "--", "-d", strconv.Itoa(int(cfg.dst)))
}

// scaler starts and stops the parent's children.
type scaler struct {
	cfg      config
	args     nflib.Args
	instance uint16
	w        nfapp.IO
	spawned  bool
	kids     []*exec.Cmd
}

// spawn starts the children (ONVM: onvm_nflib_scale). It does not wait
// for them to register.
func (s *scaler) spawn() {
	s.spawned = true
	for i := 0; i < s.cfg.children; i++ {
		cmd, err := selfCommand(childArgv(s.cfg, s.args))
		if err == nil {
			cmd.Env = append(cmd.Environ(), ParentEnv+"="+strconv.Itoa(int(s.instance)))
			cmd.Stdout, cmd.Stderr = s.w.Stdout, s.w.Stderr
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
			err = cmd.Start()
		}
		if err != nil {
			fmt.Fprintf(s.w.Stderr, "Can't spawn child: %v\n", err)
			return
		}
		s.kids = append(s.kids, cmd)
		fmt.Fprintf(s.w.Stdout, "Spawning child SID %d; with packet_handler_fwd packet function\n", s.args.Service)
	}
}

// stop stops the children (SIGTERM, then SIGKILL after stopGrace) and
// waits for them (ONVM: onvm_nflib_stop terminates children).
func (s *scaler) stop() {
	for _, c := range s.kids {
		c.Process.Signal(syscall.SIGTERM)
	}
	for _, c := range s.kids {
		done := make(chan struct{})
		go func() { c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(stopGrace):
			c.Process.Kill()
			<-done
		}
	}
}

// createPackets is ONVM's nf_setup: packetNumber Ethernet-only packets,
// EtherType 0x88B5 as ONVM stores it (unswapped), flow hash i so they
// spread over the destination's instances, sent to act.
func createPackets(nf *nflib.NF, act nflib.Action) {
	waited := time.Duration(0)
	for i := uint32(0); i < packetNumber; {
		p, ok := nf.NewPacket()
		if !ok {
			// The NF's cache is empty until the pool's service refills it.
			if waited >= allocPatience {
				fmt.Println("Failed to allocate packets")
				return
			}
			time.Sleep(time.Millisecond)
			waited += time.Millisecond
			continue
		}
		m, room := p.Meta(), p.Room()
		d := room[m.DataOff : int(m.DataOff)+packetSize]
		clear(d)
		src := nflib.PortMAC(0)
		copy(d[6:12], src[:])
		d[12], d[13] = 0xB5, 0x88
		m.Len, m.Port, m.FlowHash = packetSize, 0, i
		m.MetaFlags |= shm.FlagHasHash
		nf.Inject(p, act)
		i++
	}
}
