package onvmcompat

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/reinforce-nfv/reinforce/ctlmsg"
	"github.com/reinforce-nfv/reinforce/manager"
	"github.com/reinforce-nfv/reinforce/manager/config"
	"github.com/reinforce-nfv/reinforce/nflib"
	"github.com/reinforce-nfv/reinforce/port"
	"github.com/reinforce-nfv/reinforce/port/porttest"
)

func TestParseMgrArgsAcceptsONVMsLines(t *testing.T) {
	// go.sh's own line, as it runs onvm_mgr (ONVM-COMPAT.md §1.1).
	a, err := ParseMgrArgs(
		strings.Fields("-l 0,1,2 -n 4 --proc-type=primary --base-virtaddr=0x7f000000000"),
		strings.Fields("-p 3 -n 0xF8 -r 10 -d 2 -s web -z 2 -v 2 -t 42 -l 64 -c -j"), 8)
	if err != nil {
		t.Fatal(err)
	}
	want := MgrArgs{PortMask: 3, PortMaskSet: true, NFCores: []int{3, 4, 5, 6, 7}, NFMaskSet: true,
		MgrCores: []int{0, 1, 2}, NumServices: 10, DefaultService: 2, StatsOut: config.StatsWeb,
		StatsSleepS: 2, TTLS: 42, Verbosity: 2, PktLimitM: 64, SharedCore: true, Jumbo: true,
		Lines: []string{"Registered 5 cores for NFs: 3, 4, 5, 6, 7"}}
	notices := a.Notices
	a.Notices = nil
	if fmt.Sprint(a) != fmt.Sprint(want) {
		t.Fatalf("got  %+v\nwant %+v", a, want)
	}
	if len(notices) != 4 || !strings.Contains(notices[3], "--base-virtaddr") {
		t.Fatalf("want one notice per EAL argument, got %q", notices)
	}

	// Quirks read sanely: -v 4 is the raw dump, long options take values,
	// a missing machine's CPUs are dropped with a notice.
	a, err = ParseMgrArgs([]string{"-l", "0-5", "--file-prefix", "mine"},
		[]string{"--port-mask=0", "-n", "0x30", "-v", "4", "--stats-out", "stdout"}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if a.Verbosity != 3 || a.StatsOut != config.StatsStdout || a.Name != "mine" || !slices.Equal(a.MgrCores, []int{0, 1}) ||
		!slices.Equal(a.NFCores, []int{0, 1}) {
		t.Fatalf("got %+v", a)
	}
	if !slices.Contains(a.Lines, "WARNING: No ports are being used.") {
		t.Fatalf("lines %q lack ONVM's -p 0 warning", a.Lines)
	}
	for _, n := range []string{"CPUs 2-5 not present", "CPUs 4-5 not present", "verbosity level 4 read as 3"} {
		if !slices.ContainsFunc(a.Notices, func(s string) bool { return strings.Contains(s, n) }) {
			t.Errorf("notices %q lack %q", a.Notices, n)
		}
	}
}

func TestParseMgrArgsRefusals(t *testing.T) {
	for _, tc := range []struct {
		native []string
		want   string
	}{
		{[]string{"-p", "xyz"}, "invalid port mask"},
		{[]string{"-r", "0"}, "number of services"},
		{[]string{"-r", "1"}, "number of services (2..32)"},
		{[]string{"-r", "33"}, "number of services"},
		{[]string{"-d", "0"}, "default service"},
		{[]string{"-r", "4", "-d", "4"}, "not below the number of services"},
		{[]string{"-s", "file"}, "stats output"},
		{[]string{"-z", "0"}, "seconds"},
		{[]string{"-t", "-1"}, "seconds"},
		{[]string{"-q"}, "Unknown option"},
		{[]string{"--bogus"}, "Unknown option '--bogus'"},
		{[]string{"-p"}, "requires an argument"},
	} {
		_, err := ParseMgrArgs(nil, tc.native, 4)
		var ue *MgrUsageError
		if !errors.As(err, &ue) || !strings.Contains(ue.Msg, tc.want) {
			t.Errorf("%q: error %v, want a usage error with %q", tc.native, err, tc.want)
		}
	}
	if _, err := ParseMgrArgs([]string{"-l", "3-1"}, nil, 4); err == nil {
		t.Error("a backwards EAL core list was accepted")
	}
}

func TestApplyWithoutFileIsONVMsSetUp(t *testing.T) {
	a, err := ParseMgrArgs(nil, strings.Fields("-p 5 -r 8 -d 3 -t 5"), 4)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.DefaultConfig()
	a.Apply(&cfg, false, DefaultPortTemplate())
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Ports) != 2 || cfg.Ports[0].ID != 0 || cfg.Ports[1].ID != 2 || cfg.Ports[0].Driver != config.DriverNull {
		t.Fatalf("ports %+v, want null ports 0 and 2 (mask 5)", cfg.Ports)
	}
	ch, _ := cfg.Chain(cfg.Manager.DefaultChain)
	if !slices.Equal(ch.Services, []int{3}) || ch.OutPort != config.OutPortDrop {
		t.Fatalf("default chain %+v, want [3] dropping at its end", ch)
	}
	if cfg.Manager.NumServices != 8 || cfg.Manager.StatsOut != config.StatsNone || cfg.Manager.TTL != 5*time.Second {
		t.Fatalf("manager %+v", cfg.Manager)
	}
}

func TestApplyOnAFileKeepsItsPortsAndChains(t *testing.T) {
	cfg, _, err := config.Parse("t.toml", []byte(`
[manager]
stats_out = "stderr"
[[port]]
id = 0
[[port]]
id = 1
[[chain]]
name = "default"
services = [1, 2]
out_port = 1
`))
	if err != nil {
		t.Fatal(err)
	}
	a, err := ParseMgrArgs(nil, strings.Fields("-p 1 -d 4"), 4)
	if err != nil {
		t.Fatal(err)
	}
	notes := a.Apply(&cfg, true, DefaultPortTemplate())
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Ports) != 1 || cfg.Ports[0].ID != 0 || cfg.Manager.StatsOut != config.StatsStderr {
		t.Fatalf("ports %+v stats %s", cfg.Ports, cfg.Manager.StatsOut)
	}
	ch, _ := cfg.Chain("default")
	if ch.OutPort != config.OutPortDrop {
		t.Fatalf("chain out_port %d, want drop: port 1 is out of the mask", ch.OutPort)
	}
	def, _ := cfg.Chain(cfg.Manager.DefaultChain)
	if def.Name != OnvmDefaultChainName || !slices.Equal(def.Services, []int{4}) {
		t.Fatalf("default chain %+v, want a new chain [4]", def)
	}
	if len(notes) != 3 {
		t.Fatalf("notes %q, want port 1 unused, chain exit dropped, new default chain", notes)
	}
}

// TestDefaultServiceAndNumServicesWork runs a manager with onvm_mgr's -d and
// -r: port traffic enters service -d, and services ≥ -r are refused.
func TestDefaultServiceAndNumServicesWork(t *testing.T) {
	a, err := ParseMgrArgs(nil, strings.Fields("-p 1 -r 4 -d 3"), 4)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.DefaultConfig()
	a.Apply(&cfg, false, DefaultPortTemplate())
	cfg.Manager.Name = fmt.Sprintf("oc%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)
	cfg.Manager.RegionDir = "/dev/shm"
	cfg.Manager.PoolSlots = 4096
	cfg.Manager.RingSize = 256
	p := porttest.New(0)
	sock := filepath.Join(t.TempDir(), "ctl.sock")
	m, err := manager.New(cfg, manager.Options{Log: zerolog.Nop(), SocketPath: sock, Ports: []port.Port{p}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	_, err = nflib.Attach("four", nflib.Args{Service: 4}, sock)
	var re *nflib.RegisterError
	if !errors.As(err, &re) || re.Status != ctlmsg.StatusServiceMax || !strings.Contains(err.Error(), "-r 4") {
		t.Fatalf("service 4 under -r 4: %v, want NF_SERVICE_MAX naming -r 4", err)
	}

	nf, err := nflib.Attach("three", nflib.Args{Service: 3}, sock)
	if err != nil {
		t.Fatal(err)
	}
	nf.SetSummary(false)
	var got atomic.Int64
	done := make(chan error, 1)
	go func() {
		done <- nf.Run(func(nflib.Packet) nflib.Action { got.Add(1); return nflib.Drop })
	}()
	frame := make([]byte, 64)
	deadline := time.Now().Add(10 * time.Second)
	for got.Load() < 10 {
		if time.Now().After(deadline) {
			t.Fatalf("service 3 (-d 3) received %d of the port's frames", got.Load())
		}
		p.Inject(frame, frame)
		time.Sleep(5 * time.Millisecond)
	}
	nf.Stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	nf.Close()
}
