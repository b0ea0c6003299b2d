package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// killWait bounds how long destroy waits for killed processes to go.
const killWait = 5 * time.Second

// RunInfo describes a run recorded in StateDir.
type RunInfo struct {
	Run        string
	Persistent bool
	OwnerAlive bool // the process that made it is alive (always false for persistent runs)
	Servers    []string
	Created    time.Time
}

// lock takes StateDir's lock (flock, released when the process dies).
func lock() (func(), error) {
	if err := os.MkdirAll(StateDir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(StateDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

func loadState(run string) (state, error) {
	var st state
	data, err := os.ReadFile(filepath.Join(StateDir, run, "state.json"))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return st, fmt.Errorf("%s: %w", run, err)
	}
	if st.Run != run {
		return st, fmt.Errorf("%s: state names run %q", run, st.Run)
	}
	return st, nil
}

// List returns the runs recorded in StateDir, oldest first.
func List() ([]RunInfo, error) {
	ents, err := os.ReadDir(StateDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []RunInfo
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), RunPrefix) {
			continue
		}
		st, err := loadState(e.Name())
		if err != nil {
			out = append(out, RunInfo{Run: e.Name()}) // half-made: Sweep removes it
			continue
		}
		ri := RunInfo{Run: st.Run, Persistent: st.Persistent, Created: st.Created,
			OwnerAlive: !st.Persistent && alive(st.OwnerPID, st.OwnerStart)}
		for _, s := range st.Servers {
			if s.Name != hubName {
				ri.Servers = append(ri.Servers, s.Name)
			}
		}
		out = append(out, ri)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

// Sweep removes every run whose owner is gone (persistent runs excepted):
// it kills the processes left in its namespaces and deletes its state. It
// returns the runs it removed.
func Sweep() ([]string, error) {
	unlock, err := lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	runs, err := List()
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, r := range runs {
		if r.Persistent || r.OwnerAlive {
			continue
		}
		st, err := loadState(r.Run)
		if err != nil && !errors.Is(err, os.ErrNotExist) && !isJSONErr(err) {
			errs = append(errs, err)
			continue
		}
		st.Run = r.Run
		if err := destroyLocked(st); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, r.Run)
	}
	return removed, errors.Join(errs...)
}

func isJSONErr(err error) bool {
	var se *json.SyntaxError
	return errors.As(err, &se) || strings.Contains(err.Error(), "state names run")
}

// Down removes run (persistent or not).
func Down(run string) error {
	unlock, err := lock()
	if err != nil {
		return err
	}
	defer unlock()
	st, err := loadState(run)
	if err != nil {
		return err
	}
	return destroyLocked(st)
}

// Attach opens a recorded run, for commands in its servers (testbed exec).
func Attach(run string) (*Lab, error) {
	st, err := loadState(run)
	if err != nil {
		return nil, err
	}
	l := &Lab{run: run, servers: map[string]*Server{}, st: st}
	for _, s := range st.Servers {
		if !alive(s.PID, s.Start) {
			return nil, fmt.Errorf("run %s: server %s is gone (holder %d)", run, s.Name, s.PID)
		}
		srv := &Server{name: s.Name, run: run, pid: s.PID, start: s.Start, mgmt: s.Mgmt}
		if s.Name == hubName {
			l.hub = srv
			continue
		}
		l.servers[s.Name] = srv
		l.order = append(l.order, srv)
	}
	return l, nil
}

func destroy(st state) error {
	unlock, err := lock()
	if err != nil {
		return err
	}
	defer unlock()
	return destroyLocked(st)
}

// destroyLocked kills the run's holders and every process that carries the
// run's marker, until none is left (a process may fork while it is being
// killed: the manager launching an NF, nsenter between its setns and exec),
// and removes the run's state directory. The marker holds the run's unique
// ID, so it alone identifies the run's processes, wherever they sit;
// namespaces are not used to find processes, because the kernel reuses a
// freed namespace's inode number.
func destroyLocked(st state) error {
	marker := []byte(EnvRun + "=" + st.Run + "\x00")
	deadline := time.Now().Add(killWait)
	var left []int
	for {
		left = left[:0]
		for _, s := range st.Servers {
			if alive(s.PID, s.Start) && !zombie(s.PID) {
				left = append(left, s.PID)
			}
		}
		procs, _ := os.ReadDir("/proc")
		for _, p := range procs {
			pid, err := strconv.Atoi(p.Name())
			if err != nil || pid == os.Getpid() || zombie(pid) {
				continue
			}
			env, err := os.ReadFile("/proc/" + p.Name() + "/environ")
			if err == nil && containsEnv(env, marker) {
				left = append(left, pid)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
		for _, pid := range left {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(2 * time.Millisecond)
	}
	var errs []error
	for _, pid := range left {
		errs = append(errs, fmt.Errorf("run %s: process %d survived SIGKILL", st.Run, pid))
	}
	if err := os.RemoveAll(filepath.Join(StateDir, st.Run)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func containsEnv(env, marker []byte) bool {
	return len(marker) > 0 && (strings.HasPrefix(string(env), string(marker)) || strings.Contains(string(env), "\x00"+string(marker)))
}

func zombie(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(data), ')')
	return i >= 0 && i+2 < len(data) && data[i+2] == 'Z'
}
