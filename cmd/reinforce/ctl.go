package main

// reinforce ctl talks to a running manager over its control socket
// (ctlmsg Request/Response): "stats" prints its JSON snapshot, followed by a
// short readable summary of the arbiter's state when the manager runs the
// arbiter's client or server (-json: the JSON alone), "promote CHAIN"
// promotes a remote standby chain (docs/replicator.md).

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/reinforce-nfv/reinforce/ctlmsg"
	"github.com/reinforce-nfv/reinforce/manager"
	"github.com/reinforce-nfv/reinforce/replicator/bfd"
)

func ctl(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("reinforce ctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sock := fs.String("socket", "", "the manager's control `socket` (default: $REINFORCE_SOCKET, else the default for manager \"reinforce\")")
	jsonOnly := fs.Bool("json", false, "stats: print the JSON snapshot alone, without the arbiter summary")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cmd := fs.Args()
	var req ctlmsg.Request
	switch {
	case len(cmd) == 1 && cmd[0] == "stats":
		req = ctlmsg.Request{Cmd: "stats"}
	case len(cmd) == 2 && (cmd[0] == "promote" || cmd[0] == "switchover"):
		req = ctlmsg.Request{Cmd: cmd[0], Args: cmd[1:]}
	case len(cmd) == 2 && cmd[0] == "stop":
		req = ctlmsg.Request{Cmd: "stop", Args: cmd[1:]}
	default:
		fmt.Fprint(stderr, usage)
		return 2
	}
	path := *sock
	if path == "" {
		path = os.Getenv("REINFORCE_SOCKET")
	}
	if path == "" {
		path = ctlmsg.DefaultSocketPath("reinforce", os.Getenv("XDG_RUNTIME_DIR"), os.Getuid())
	}
	resp, err := ctlmsg.Call(path, req, 10*time.Second)
	if err != nil {
		fmt.Fprintln(stderr, "reinforce ctl:", err)
		return 1
	}
	var out bytes.Buffer
	if json.Indent(&out, resp.Data, "", "  ") != nil {
		out.Reset()
		out.Write(resp.Data)
	}
	out.WriteByte('\n')
	if req.Cmd == "stats" && !*jsonOnly {
		var snap manager.Snapshot
		if json.Unmarshal(resp.Data, &snap) == nil && snap.Arbiter != nil {
			out.WriteByte('\n')
			printArbiter(&out, snap.Arbiter)
		}
	}
	stdout.Write(out.Bytes())
	return 0
}

// printArbiter writes the arbiter section of a snapshot for a person: one
// line per chain and per member link, the counters that show trouble.
func printArbiter(w io.Writer, a *manager.ArbiterSnapshot) {
	if c := a.Client; c != nil {
		fmt.Fprintf(w, "arbiter client: member %q, BFD %s, thread %s\n", c.Member, c.BFDState, c.Scheduling)
		for _, ch := range c.Chains {
			fmt.Fprintf(w, "  chain %s: %s, epoch %d", ch.Chain, ch.Role, ch.Epoch)
			if ch.LeaseLeftUs > 0 {
				fmt.Fprintf(w, ", lease %s left", time.Duration(ch.LeaseLeftUs)*time.Microsecond)
			}
			if ch.StandbyReady {
				fmt.Fprint(w, ", standby ready")
			}
			fmt.Fprintln(w)
		}
		m := c.Counters
		fmt.Fprintf(w, "  member: %d lease requests, %d grants (%d late), %d promotions, %d demotions, %d yields, %d fences, %d stale, %d refused\n",
			m.Requests, m.Grants, m.LateGrants, m.Promotions, m.Demotions, m.Yields, m.Fences, m.Stale, m.Refused)
		printBFD(w, "  bfd", c.BFD)
		printWire(w, c.Wire)
	}
	if s := a.Server; s != nil {
		fmt.Fprintf(w, "arbiter server: thread %s\n", s.Scheduling)
		for _, ch := range s.Chains {
			ready := "not ready"
			if ch.StandbyReady {
				ready = "ready"
			}
			fmt.Fprintf(w, "  chain %s: primary %s, epoch %d, %s; primary %s; standby %s, %s\n", ch.Chain, ch.Primary, ch.Epoch, ch.Phase,
				liveAcked(ch.PrimaryLive, ch.PrimaryAcked), liveAcked(ch.StandbyLive, ch.StandbyAcked), ready)
		}
		for _, ml := range s.Members {
			addr := ml.Addr
			if addr == "" {
				addr = "not heard from"
			}
			printBFD(w, fmt.Sprintf("  member %s: BFD %s (%s)", ml.Member, ml.BFDState, addr), ml.BFD)
		}
		k := s.Counters
		fmt.Fprintf(w, "  arbiter: %d grants, %d refused, %d promotions (%d failovers, %d returns, %d state lost), %d switchovers, %d yield timeouts\n",
			k.Grants, k.Refused, k.Promotions, k.Failovers, k.Returns, k.StateLost, k.Switchovers, k.YieldTimeouts)
		printWire(w, s.Wire)
	}
}

// liveAcked says whether a member's session is up and whether it
// acknowledged its role at the chain's epoch.
func liveAcked(live, acked bool) string {
	s := "DOWN"
	if live {
		s = "live"
	}
	if !acked {
		s += ", not acked"
	}
	return s
}

func printBFD(w io.Writer, head string, b bfd.Counters) {
	fmt.Fprintf(w, "%s: %d sent, %d received, %d discarded, %d auth failures, %d detection expiries, %d pauses\n",
		head, b.Sent, b.Received, b.Discarded, b.AuthFailures, b.DetectExpired, b.Pauses)
}

func printWire(w io.Writer, c manager.ArbiterWire) {
	fmt.Fprintf(w, "  wire: %d datagrams; refused %d malformed, %d auth, %d replayed, %d unknown, %d by the state machine; %d send errors; %d thread pauses (longest %s)",
		c.Datagrams, c.Malformed, c.AuthFailed, c.Replayed, c.Unknown, c.StepErrors, c.SendErrors, c.Pauses, time.Duration(c.MaxPauseUs)*time.Microsecond)
	if c.NeighborDowns > 0 {
		fmt.Fprintf(w, "; %d sessions down by the member's signal", c.NeighborDowns)
	}
	fmt.Fprintln(w)
}
