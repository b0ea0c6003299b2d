package main

// reinforce ctl talks to a running manager over its control socket
// (ctlmsg Request/Response): "stats" prints its JSON snapshot, "promote
// CHAIN" promotes a remote standby chain (docs/replicator.md).

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/reinforce-nfv/reinforce/ctlmsg"
)

func ctl(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("reinforce ctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sock := fs.String("socket", "", "the manager's control `socket` (default: $REINFORCE_SOCKET, else the default for manager \"reinforce\")")
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
	stdout.Write(out.Bytes())
	return 0
}
