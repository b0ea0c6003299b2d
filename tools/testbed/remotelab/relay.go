package remotelab

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/reinforce-nfv/reinforce/tools/testbed/lab"
)

// Relay is tools/relay on the replication link (server wire), controlled
// over its unix datagram socket.
type Relay struct {
	cmd  *exec.Cmd
	sock string
	dir  string
	out  *syncBuf
	n    atomic.Uint64
}

// RelayCounters mirror tools/relay's per-direction Counters.
type RelayCounters struct {
	In, Out, Lost, Duplicated, Reordered, Blackholed uint64
}

// StartRelay starts tools/relay (in bin) in server srv with args, its
// control socket in dir, and waits until it answers.
func StartRelay(srv *lab.Server, bin, dir string, args ...string) (*Relay, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	r := &Relay{sock: filepath.Join(dir, "relay.sock"), dir: dir, out: &syncBuf{}}
	r.cmd = srv.Command(filepath.Join(bin, "relay"), append(args, "-ctl", r.sock)...)
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	if err := r.cmd.Start(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := r.Ctl("stats"); err == nil {
			return r, nil
		}
		if time.Now().After(deadline) {
			r.Close()
			return nil, fmt.Errorf("relay not answering on %s after 10 s:\n%s", r.sock, r.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Ctl sends one command ("blackout 300ms", "loss 0.05", "dup 0", "reorder
// 0.05", "delay 1ms", "jitter 1ms", "stats") and returns the answer.
func (r *Relay) Ctl(cmd string) (string, error) {
	local := filepath.Join(r.dir, fmt.Sprintf("c%d.sock", r.n.Add(1)))
	c, err := net.DialUnix("unixgram", &net.UnixAddr{Name: local, Net: "unixgram"}, &net.UnixAddr{Name: r.sock, Net: "unixgram"})
	if err != nil {
		return "", err
	}
	defer os.Remove(local)
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(cmd)); err != nil {
		return "", err
	}
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		return "", err
	}
	ans := string(buf[:n])
	if strings.HasPrefix(ans, "error") {
		return ans, fmt.Errorf("relay %q: %s", cmd, ans)
	}
	return ans, nil
}

// Impair sets the link's loss, duplication and reordering probabilities.
func (r *Relay) Impair(loss, dup, reorder float64) error {
	for _, c := range []string{fmt.Sprintf("loss %g", loss), fmt.Sprintf("dup %g", dup), fmt.Sprintf("reorder %g", reorder)} {
		if _, err := r.Ctl(c); err != nil {
			return err
		}
	}
	return nil
}

// Blackout drops everything on the link, both ways, for d from now.
func (r *Relay) Blackout(d time.Duration) error {
	_, err := r.Ctl(fmt.Sprintf("blackout %v", d))
	return err
}

// Stats sums both directions' counters.
func (r *Relay) Stats() (RelayCounters, error) {
	ans, err := r.Ctl("stats")
	if err != nil {
		return RelayCounters{}, err
	}
	var s map[string]RelayCounters
	if err := json.Unmarshal([]byte(ans), &s); err != nil {
		return RelayCounters{}, err
	}
	var t RelayCounters
	for _, c := range s {
		t.In += c.In
		t.Out += c.Out
		t.Lost += c.Lost
		t.Duplicated += c.Duplicated
		t.Reordered += c.Reordered
		t.Blackholed += c.Blackholed
	}
	return t, nil
}

// Close stops the relay.
func (r *Relay) Close() {
	r.cmd.Process.Kill()
	r.cmd.Wait()
}

// Output is what the relay printed.
func (r *Relay) Output() string { return r.out.String() }
