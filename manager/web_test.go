package manager_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/reinforce-nfv/reinforce/manager"
	"github.com/reinforce-nfv/reinforce/manager/config"
	"github.com/reinforce-nfv/reinforce/port"
	"github.com/reinforce-nfv/reinforce/shm/shmtest"
)

// webStats is onvm_json_stats.json as OpenNetVM's console reads it
// (ONVM-COMPAT.md §6: onvm_nf_stats["NF <iid>"].{RX,TX,instance_id,
// service_id,core}, onvm_port_stats[label].{RX,TX}). Pointers tell a missing
// key from a zero.
type webStats struct {
	LastUpdated *string                   `json:"last_updated"`
	Ports       map[string]map[string]any `json:"onvm_port_stats"`
	NFs         map[string]map[string]any `json:"onvm_nf_stats"`
}

// webEvent is one element of onvm_json_events.json: the console reads
// .message and .source.{type,instance_id,service_id,core}.
type webEvent struct {
	Timestamp *string        `json:"timestamp"`
	Message   *string        `json:"message"`
	Source    map[string]any `json:"source"`
}

// fetch GETs one file from the web server and checks the CORS header the
// console's page (served from another port) needs.
func fetch(t *testing.T, addr, name string, into any) []byte {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", name, resp.Status)
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Fatalf("GET %s: Access-Control-Allow-Origin %q, want *", name, got)
	}
	if into != nil {
		if err := json.Unmarshal(b, into); err != nil {
			t.Fatalf("%s is not JSON: %v\n%s", name, err, b)
		}
	}
	return b
}

func TestWebModeServesEveryKeyTheConsoleReads(t *testing.T) {
	cfg := config.DefaultConfig()
	cfg.Manager.Name = fmt.Sprintf("w%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)
	cfg.Manager.RegionDir = "/dev/shm"
	cfg.Manager.PoolSlots = 8192
	cfg.Manager.RingSize = 1024
	cfg.Manager.StatsOut = config.StatsWeb
	cfg.Manager.StatsInterval = time.Second
	cfg.Chains = []config.Chain{{Name: "default", Services: []int{1}, OutPort: 0}}
	dir := t.TempDir()
	p := &memPort{id: 0}
	m, err := manager.New(cfg, manager.Options{Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
		SocketPath: filepath.Join(dir, "ctl.sock"), Ports: []port.Port{p}, WebAddr: "127.0.0.1:0", WebDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	addr := m.WebAddr()

	// Both files exist before the first period and before any NF.
	var st webStats
	fetch(t, addr, manager.WebStatsFile, &st)
	if st.LastUpdated == nil || !strings.HasSuffix(*st.LastUpdated, "\n") {
		t.Fatalf("last_updated %v, want ctime() with its newline", st.LastUpdated)
	}

	c := shmtest.StartChild(t, "TestNone", "nf", "REINFORCE_SOCKET="+m.SocketPath(), "NF_ARGS=-- -r 1 -n 7 --", "NF_DO=out:0")
	if line := c.ReadLine(t, 20*time.Second); line != "ready 7" {
		t.Fatalf("NF: %s", line)
	}
	// Traffic through the NF until a period shows its rates.
	waitFor(t, 15*time.Second, "an NF entry with RX > 0 in "+manager.WebStatsFile, func() bool {
		frames := make([][]byte, 100)
		for i := range frames {
			frames[i] = frame(i)
		}
		p.inject(frames...)
		time.Sleep(50 * time.Millisecond)
		var s webStats
		fetch(t, addr, manager.WebStatsFile, &s)
		rx, _ := s.NFs["NF 7"]["RX"].(float64)
		return rx > 0
	})
	fetch(t, addr, manager.WebStatsFile, &st)
	nf, ok := st.NFs["NF 7"]
	if !ok {
		t.Fatalf("no \"NF 7\" in onvm_nf_stats: %v", st.NFs)
	}
	for _, k := range []string{"Label", "RX", "TX", "TX_Drop_Rate", "RX_Drop_Rate", "service_id", "instance_id", "core"} {
		if _, ok := nf[k]; !ok {
			t.Errorf("onvm_nf_stats[\"NF 7\"] lacks %q: %v", k, nf)
		}
	}
	if nf["instance_id"] != 7.0 || nf["service_id"] != 1.0 || nf["Label"] != "NF 7" {
		t.Errorf("NF 7 entry %v", nf)
	}
	port0, ok := st.Ports["Port 0"]
	if !ok || port0["RX"] == nil || port0["TX"] == nil {
		t.Fatalf("onvm_port_stats[\"Port 0\"] = %v, want RX and TX", st.Ports)
	}

	c.Cmd.Process.Kill()
	c.Cmd.Wait()
	var events []webEvent
	waitFor(t, 10*time.Second, "NF Stopping in "+manager.WebEventsFile, func() bool {
		events = nil
		fetch(t, addr, manager.WebEventsFile, &events)
		return len(events) > 0 && *events[len(events)-1].Message == "NF Stopping"
	})
	var msgs []string
	for _, e := range events {
		if e.Timestamp == nil || e.Message == nil || e.Source == nil {
			t.Fatalf("event lacks timestamp, message or source: %+v", e)
		}
		msgs = append(msgs, *e.Message)
		switch *e.Message {
		case "NF Starting", "NF Ready":
			for _, k := range []string{"type", "instance_id", "service_id", "core"} {
				if _, ok := e.Source[k]; !ok {
					t.Errorf("%s event source lacks %q: %v", *e.Message, k, e.Source)
				}
			}
			if e.Source["type"] != "testnf" || e.Source["instance_id"] != 7.0 {
				t.Errorf("%s source %v", *e.Message, e.Source)
			}
		case "NF Stopping":
			if e.Source["type"] != "NF" || e.Source["instance_id"] != 7.0 {
				t.Errorf("NF Stopping source %v", e.Source)
			}
		case "MGR Start", "Rx Start", "Tx Start":
			if _, ok := e.Source["core"]; !ok {
				t.Errorf("%s source %v lacks core", *e.Message, e.Source)
			}
		}
	}
	want := []string{"MGR Start", "Tx Start", "Rx Start", "Port 0 initialized", "NF Starting", "NF Ready", "NF Stopping"}
	if strings.Join(msgs, "|") != strings.Join(want, "|") {
		t.Fatalf("events %q, want %q", msgs, want)
	}
	// The files are written where ONVM writes them, too.
	for _, name := range []string{manager.WebStatsFile, manager.WebEventsFile, manager.WebTextFile} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("web dir: %v", err)
		}
	}
	resp, err := http.Get("http://" + addr + "/nothing.json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown file: %s", resp.Status)
	}
}

func TestWebModeRefusesABusyPort(t *testing.T) {
	cfg := config.DefaultConfig()
	cfg.Manager.Name = fmt.Sprintf("wb%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)
	cfg.Manager.RegionDir = "/dev/shm"
	cfg.Manager.PoolSlots = 8192
	cfg.Manager.StatsOut = config.StatsWeb
	cfg.Ports = nil
	cfg.Chains[0].OutPort = config.OutPortDrop
	dir := t.TempDir()
	opt := manager.Options{Log: zerolog.Nop(), SocketPath: filepath.Join(dir, "a.sock"), WebAddr: "127.0.0.1:0"}
	a, err := manager.New(cfg, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	cfg.Manager.Name += "b"
	opt.SocketPath, opt.WebAddr = filepath.Join(dir, "b.sock"), a.WebAddr()
	if b, err := manager.New(cfg, opt); err == nil {
		b.Close()
		t.Fatal("a second manager listened on the same web port")
	} else if !strings.Contains(err.Error(), "web stats on") {
		t.Fatalf("error %v does not name the web stats", err)
	}
}
