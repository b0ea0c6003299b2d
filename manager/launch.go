package manager

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reinforce-nfv/reinforce/manager/config"
)

// launchedNF is an NF process the manager started from an [[nf]] entry.
// routineSupervise waits for it and starts it again if it dies while the
// manager runs. With standby = "local" an entry has two processes, the
// active and its standby (--standby); whichever dies, its replacement is
// started as the new standby (re-protection), or as the active if the
// instance is gone. Without a standby a restart is a cold restart: with an
// explicit instance ID and dead_nf_policy = "retain" it carries on from
// the rings and state its predecessor left.
type launchedNF struct {
	spec    config.NF
	standby bool       // the current process runs with --standby
	mu      sync.Mutex // guards cmd and exited
	// attached is the PID of the last process of this entry that
	// registered (as an NF or a standby): one that did is not "dying at
	// start", however soon it is killed afterwards.
	attached atomic.Int64
	cmd      *exec.Cmd
	// exited is closed when the current process has been waited for.
	exited chan struct{}
}

// restartLimit stops restarting an NF that dies this many times in a row
// within restartWindow of starting: it is broken, not unlucky.
const (
	restartLimit  = 5
	restartWindow = time.Second
)

// launchNFs starts the [[nf]] processes of the configuration with ONVM's
// command line (cmd -- -r SID [-n IID] -- args) and the socket in SocketEnv.
func (m *Manager) launchNFs() error {
	for _, spec := range m.cfg.NFs {
		l := &launchedNF{spec: spec}
		if err := m.startLaunched(l); err != nil {
			return err
		}
		m.mu.Lock()
		m.launched = append(m.launched, l)
		m.ctlWG.Add(1)
		m.mu.Unlock()
		go m.routineSupervise(l)
		if spec.Standby == config.StandbyLocal {
			m.ctlWG.Add(1)
			go m.routineLaunchStandby(spec)
		}
	}
	return nil
}

// routineLaunchStandby starts the standby of spec's NF once its active has
// registered (a standby names a running instance), then supervises it.
func (m *Manager) routineLaunchStandby(spec config.NF) {
	defer m.ctlWG.Done()
	for deadline := time.Now().Add(20 * time.Second); !m.instanceTaken(InstanceID(spec.Instance)); time.Sleep(5 * time.Millisecond) {
		if m.shutdown.Load() || time.Now().After(deadline) {
			m.log.Error().Str("nf", spec.Tag).Msg("its active never registered: no standby started")
			return
		}
	}
	l := &launchedNF{spec: spec, standby: true}
	if err := m.startLaunched(l); err != nil {
		m.log.Error().Err(err).Msg("launch standby")
		return
	}
	m.mu.Lock()
	if m.shutdown.Load() {
		m.mu.Unlock()
		l.cmd.Process.Kill()
		l.cmd.Wait()
		return
	}
	m.launched = append(m.launched, l)
	m.ctlWG.Add(1)
	m.mu.Unlock()
	go m.routineSupervise(l)
}

// markAttached notes that the launched process pid registered. mu held.
func (m *Manager) markAttached(pid int) {
	for _, l := range m.launched {
		l.mu.Lock()
		if l.cmd != nil && l.cmd.Process != nil && l.cmd.Process.Pid == pid {
			l.attached.Store(int64(pid))
		}
		l.mu.Unlock()
	}
}

// instanceTaken reports whether an NF holds instance id (running, or dead
// and waiting for a taker).
func (m *Manager) instanceTaken(id InstanceID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return int(id) > 0 && int(id) < len(m.nfs) && m.nfs[id] != nil
}

func (m *Manager) startLaunched(l *launchedNF) error {
	nf := l.spec
	argv := []string{"--", "-r", strconv.Itoa(nf.Service)}
	if nf.Instance != 0 {
		argv = append(argv, "-n", strconv.Itoa(nf.Instance))
	}
	if l.standby {
		argv = append(argv, "--standby")
	}
	argv = append(argv, "--")
	argv = append(argv, nf.Command[1:]...)
	cmd := exec.Command(nf.Command[0], argv...)
	cmd.Env = append(append(os.Environ(), "REINFORCE_SOCKET="+m.sock), m.opt.NFEnv...)
	// The options are *os.File: a nil one must not become a non-nil
	// io.Writer (which exec would treat as "discard").
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if m.opt.Stdout != nil {
		cmd.Stdout = m.opt.Stdout
	}
	if m.opt.Stderr != nil {
		cmd.Stderr = m.opt.Stderr
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("launch nf %s: %w", nf.Tag, err)
	}
	l.mu.Lock()
	l.cmd, l.exited = cmd, make(chan struct{})
	l.mu.Unlock()
	m.log.Info().Str("nf", nf.Tag).Int("pid", cmd.Process.Pid).Msg("launched NF")
	return nil
}

// routineSupervise waits for l's process and restarts it while the manager
// runs. It stops when the process exits during Close (or restarting fails).
func (m *Manager) routineSupervise(l *launchedNF) {
	defer m.ctlWG.Done()
	quick := 0
	for {
		l.mu.Lock()
		cmd, exited := l.cmd, l.exited
		l.mu.Unlock()
		started := time.Now()
		err := cmd.Wait()
		close(exited)
		if m.shutdown.Load() {
			return
		}
		if time.Since(started) < restartWindow && l.attached.Load() != int64(cmd.Process.Pid) {
			quick++
		} else {
			quick = 0
		}
		if quick >= restartLimit {
			m.log.Error().Str("nf", l.spec.Tag).Int("tries", quick).Msg("NF keeps dying at start: not restarting it")
			return
		}
		if l.spec.Standby == config.StandbyLocal {
			// Re-protection: the replacement stands by for whoever holds the
			// instance now (the promoted standby), or takes it if nobody does.
			l.standby = m.instanceTaken(InstanceID(l.spec.Instance))
		}
		m.log.Warn().Str("nf", l.spec.Tag).Int("pid", cmd.Process.Pid).AnErr("exit", err).Bool("as_standby", l.standby).
			Msg("launched NF exited: restarting it")
		if err := m.startLaunched(l); err != nil {
			m.log.Error().Err(err).Msg("restart NF")
			return
		}
	}
}

// stop waits up to grace for the current process to exit (the manager has
// sent it a stop message), then kills it.
func (l *launchedNF) stop(grace time.Duration) {
	l.mu.Lock()
	cmd, exited := l.cmd, l.exited
	l.mu.Unlock()
	select {
	case <-exited:
	case <-time.After(grace):
		cmd.Process.Kill()
		<-exited
	}
}
