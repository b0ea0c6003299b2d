package remotelab

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/reinforce-nfv/reinforce/tools/pktgen/gen"
)

// Pktgen is the probe generator in server gen, sending into the ingress.
type Pktgen struct {
	cmd      *exec.Cmd
	out, err bytes.Buffer
	done     bool
}

// StartPktgen starts pktgen at rate packets per second over the lab's
// Flows probe flows (nice 10, -bucket 64: on two CPUs the generator shares
// the machine with everything it tests), until StopPktgen. extra adds
// pktgen flags.
func (l *Lab) StartPktgen(rate int, extra ...string) (*Pktgen, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gen != nil {
		return nil, fmt.Errorf("pktgen already running")
	}
	args := append([]string{"-n", "10", filepath.Join(l.Opt.Bin, "pktgen"), "-json", "-i", "eth0",
		"-flows", strconv.Itoa(l.Opt.Flows), "-rate", strconv.Itoa(rate), "-bucket", "64", "-duration", "24h"}, extra...)
	p := &Pktgen{}
	p.cmd = l.L.Server("gen").Command("nice", args...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.err
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	l.gen = p
	return p, nil
}

// StopPktgen interrupts pktgen and returns its report (what it sent, per
// flow: the sink's expectation).
func (l *Lab) StopPktgen() (gen.Report, error) {
	l.mu.Lock()
	p := l.gen
	l.gen = nil
	l.mu.Unlock()
	var r gen.Report
	if p == nil {
		return r, fmt.Errorf("pktgen not running")
	}
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		return r, err
	}
	if err := p.cmd.Wait(); err != nil {
		return r, fmt.Errorf("pktgen: %v\n%s", err, p.err.String())
	}
	p.done = true
	if err := json.Unmarshal(p.out.Bytes(), &r); err != nil {
		return r, fmt.Errorf("pktgen output: %v\n%s", err, p.out.String())
	}
	return r, nil
}

func (p *Pktgen) kill() {
	if !p.done {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	}
}
