package manager

// Web mode (-s web, ONVM-COMPAT.md §1.11 and §6): the files OpenNetVM's web
// console polls, kept in memory and served over HTTP.
//
//	events (NF start/ready/stop, manager and ports at start, failovers later)
//	  → eventLog (any goroutine, under its mutex)
//	stats period (routineStats) → render onvm_json_stats.json,
//	  onvm_json_events.json and onvm_stats.txt → webFiles (under its mutex)
//	  → written to Options.WebDir if set (temp file + rename)
//	HTTP GET (routineWeb's server goroutines) → webFiles, with
//	  Access-Control-Allow-Origin: *
//
// ONVM writes the files into ../onvm_web and runs Python 2's
// SimpleHTTPServer on port 8000 to serve them; the console's page fetches
// http://<host>:8000/onvm_json_stats.json every 3 s. Here the manager serves
// them itself, so there is no second process and no Python 2.

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/reinforce-nfv/reinforce/manager/config"
	"github.com/reinforce-nfv/reinforce/manager/onvmstats"
)

// DefaultWebPort is the port the console fetches its JSON from. ONVM:
// onvm_web/start_web_console.sh runs cors_server.py on 8000.
const DefaultWebPort = 8000

// Names of the files the console reads (ONVM: onvm_stats.c).
const (
	WebStatsFile  = "onvm_json_stats.json"
	WebEventsFile = "onvm_json_events.json"
	WebTextFile   = "onvm_stats.txt"
)

// maxEvents bounds the event log. ONVM's array grows for the manager's
// whole life and is rewritten every period; a manager that restarts NFs for
// weeks would rewrite megabytes a second. The console only draws recent
// events, so the oldest are dropped past this many.
const maxEvents = 4096

// eventLog is the manager's event history for onvm_json_events.json. Safe
// from any goroutine.
type eventLog struct {
	mu     sync.Mutex
	events []onvmstats.Event // guarded by mu; oldest first
}

func (l *eventLog) add(e onvmstats.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.events) >= maxEvents {
		l.events = append(l.events[:0], l.events[len(l.events)-maxEvents+1:]...)
	}
	l.events = append(l.events, e)
}

// snapshot returns a caller-owned copy of the events.
func (l *eventLog) snapshot() []onvmstats.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]onvmstats.Event(nil), l.events...)
}

// RecordEvent adds e to the events the web console shows (ONVM's
// onvm_stats_add_event). The manager records the manager, port and NF
// life-cycle events itself; failover code records its own through this
// hook. Safe from any goroutine; a no-op cost outside web mode is one
// mutex and an append.
func (m *Manager) RecordEvent(e onvmstats.Event) {
	if e.Time.IsZero() {
		e.Time = m.opt.Now()
	}
	m.events.add(e)
}

// eventNFStarting, eventNFReady and eventNFStopping record an NF's life
// cycle (ONVM: onvm_nf_start, onvm_nf_ready, onvm_nf_stop). core is the CPU
// the NF asked for; ONVM prints the one it assigned, and Reinforce does not
// assign cores yet.
func (m *Manager) eventNFStarting(nf *nfProc, core uint16) {
	m.events.add(onvmstats.NFEvent(m.opt.Now(), onvmstats.MsgNFStarting, nfInfo(nf, core)))
}

func (m *Manager) eventNFReady(nf *nfProc, core uint16) {
	m.events.add(onvmstats.NFEvent(m.opt.Now(), onvmstats.MsgNFReady, nfInfo(nf, core)))
}

func (m *Manager) eventNFStopping(nf *nfProc) {
	m.events.add(onvmstats.NFStopEvent(m.opt.Now(), uint16(nf.id)))
}

func nfInfo(nf *nfProc, core uint16) onvmstats.NF {
	return onvmstats.NF{Tag: nf.tag, Instance: uint16(nf.id), Service: uint16(nf.service), Core: core}
}

// webFiles holds the latest rendering of each file. Safe from any goroutine.
type webFiles struct {
	mu    sync.Mutex
	files map[string][]byte // guarded by mu; values are never modified, only replaced
}

func (w *webFiles) set(name string, b []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.files[name] = b
}

func (w *webFiles) get(name string) ([]byte, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	b, ok := w.files[name]
	return b, ok
}

// webServer is the HTTP side of web mode.
type webServer struct {
	ln    net.Listener
	srv   *http.Server
	files webFiles
	dir   string // where the files are also written; "" for nowhere
}

// newWebServer listens on addr (":8000" when empty). Nothing is served
// until routineWeb.
func newWebServer(addr, dir string) (*webServer, error) {
	if addr == "" {
		addr = fmt.Sprintf(":%d", DefaultWebPort)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("web stats on %s: %w", addr, err)
	}
	w := &webServer{ln: ln, files: webFiles{files: map[string][]byte{}}, dir: dir}
	w.srv = &http.Server{Handler: w, ReadHeaderTimeout: 5 * time.Second}
	return w, nil
}

// ServeHTTP serves the files by name, as cors_server.py serves the
// directory: GET or HEAD, with Access-Control-Allow-Origin: * so the
// console's page on another port may read them.
func (w *webServer) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	h := rw.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(rw, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := filepath.Base(r.URL.Path)
	b, ok := w.files.get(name)
	if !ok {
		http.NotFound(rw, r)
		return
	}
	if filepath.Ext(name) == ".json" {
		h.Set("Content-Type", "application/json")
	} else {
		h.Set("Content-Type", "text/plain; charset=utf-8")
	}
	h.Set("Cache-Control", "no-store")
	rw.Write(b)
}

// publish replaces the files and writes them to dir, if set.
func (w *webServer) publish(stats, events, text []byte) error {
	w.files.set(WebStatsFile, stats)
	w.files.set(WebEventsFile, events)
	w.files.set(WebTextFile, text)
	if w.dir == "" {
		return nil
	}
	var errs []error
	for name, b := range map[string][]byte{WebStatsFile: stats, WebEventsFile: events, WebTextFile: text} {
		tmp := filepath.Join(w.dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, os.Rename(tmp, filepath.Join(w.dir, name)))
	}
	return errors.Join(errs...)
}

// routineWeb serves HTTP until Close closes the server.
func (m *Manager) routineWeb() {
	defer m.loopWG.Done()
	m.log.Debug().Msg("web server started")
	defer m.log.Debug().Msg("web server stopped")
	if err := m.web.srv.Serve(m.web.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		m.log.Warn().Err(err).Msg("web stats server")
	}
}

// WebAddr is the address the web stats are served on, or "" outside web
// mode. With Options.WebAddr ":0" it tells tests the port picked.
func (m *Manager) WebAddr() string {
	if m.web == nil {
		return ""
	}
	return m.web.ln.Addr().String()
}

// startEvents records the manager's start-up events as ONVM does: the
// master, TX and RX threads with their cores (the first, second and third
// CPUs of manager.cores, as ONVM walks its -l list), then every port.
func (m *Manager) startEvents() {
	now := m.opt.Now()
	var cores []int
	if m.cfg.Manager.Cores != "" {
		cores, _, _ = config.ParseCPUList(m.cfg.Manager.Cores, config.MaxCPUs)
	}
	core := func(i int) int {
		if len(cores) == 0 {
			return 0
		}
		return cores[min(i, len(cores)-1)]
	}
	m.events.add(onvmstats.CoreEvent(now, onvmstats.MsgMgrStart, core(0)))
	m.events.add(onvmstats.CoreEvent(now, onvmstats.MsgTxStart, core(1)))
	m.events.add(onvmstats.CoreEvent(now, onvmstats.MsgRxStart, core(2)))
	for id, p := range m.ports {
		if p != nil {
			m.events.add(onvmstats.PortEvent(now, uint16(id)))
		}
	}
}

// publishFirstWeb publishes the files before the first period, so they
// exist from the start and the console's first poll finds them. Its
// renderer is thrown away: the stats loop's starts from zero as ONVM's does.
func (m *Manager) publishFirstWeb() {
	mc := m.cfg.Manager
	m.publishWeb(onvmstats.New(onvmstats.Options{Verbosity: mc.Verbosity, SharedCore: mc.SharedCPU,
		PeriodSeconds: int(mc.StatsInterval / time.Second)}), onvmTick(m.Snapshot()))
}

// publishWeb renders one period into the web files.
func (m *Manager) publishWeb(ren *onvmstats.Renderer, t onvmstats.Tick) {
	stats := ren.WebStatsJSON(t)
	text := ren.Console(t)
	events := onvmstats.EventsJSON(m.events.snapshot())
	if err := m.web.publish(stats, events, text); err != nil {
		m.log.Warn().Err(err).Str("dir", m.web.dir).Msg("write web stats files")
	}
}
