package ctlmsg

import (
	"bufio"
	"fmt"
	"net"
	"time"
)

// Call sends one operator request to the manager listening on the control
// socket sock and returns its response; the whole exchange is bounded by
// timeout. A response that says !OK is returned with an error too.
func Call(sock string, req Request, timeout time.Duration) (Response, error) {
	c, err := net.DialTimeout("unix", sock, timeout)
	if err != nil {
		return Response{}, fmt.Errorf("connect to the manager: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if err := WriteMsg(c, req); err != nil {
		return Response{}, err
	}
	m, err := ReadMsg(bufio.NewReader(c))
	if err != nil {
		return Response{}, fmt.Errorf("read the manager's answer: %w", err)
	}
	resp, ok := m.(Response)
	if !ok {
		return Response{}, fmt.Errorf("the manager answered %v", m.Type())
	}
	if !resp.OK {
		return resp, fmt.Errorf("%s: %s", req.Cmd, resp.Error)
	}
	return resp, nil
}
