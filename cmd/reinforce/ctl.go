package main

// reinforce ctl talks to a running manager over its control socket
// (ctlmsg Request/Response): "stats" prints its JSON snapshot, "promote
// CHAIN" promotes a remote standby chain (docs/replicator.md).

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
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
	resp, err := call(path, req)
	if err != nil {
		fmt.Fprintln(stderr, "reinforce ctl:", err)
		return 1
	}
	if !resp.OK {
		fmt.Fprintf(stderr, "reinforce ctl: %s: %s\n", req.Cmd, resp.Error)
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

// call sends one request and reads its response.
func call(path string, req ctlmsg.Request) (ctlmsg.Response, error) {
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return ctlmsg.Response{}, fmt.Errorf("connect to the manager: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := ctlmsg.WriteMsg(c, req); err != nil {
		return ctlmsg.Response{}, err
	}
	m, err := ctlmsg.ReadMsg(bufio.NewReader(c))
	if err != nil {
		return ctlmsg.Response{}, fmt.Errorf("read the manager's answer: %w", err)
	}
	resp, ok := m.(ctlmsg.Response)
	if !ok {
		return ctlmsg.Response{}, fmt.Errorf("the manager answered %v", m.Type())
	}
	return resp, nil
}
