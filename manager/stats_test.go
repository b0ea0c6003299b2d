package manager_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/reinforce-nfv/reinforce/manager"
	"github.com/reinforce-nfv/reinforce/manager/config"
	"github.com/reinforce-nfv/reinforce/port"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestStatsFormatsMatchONVM runs a manager and a real NF, sends ten frames
// and compares the stats output of a quiet period (every frame counted, all
// rates back to zero) with golden files: ONVM's console table at -v 1 and
// -v 2 and its raw CSV at -v 3 (timestamps masked).
func TestStatsFormatsMatchONVM(t *testing.T) {
	for _, v := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			out, err := os.CreateTemp(t.TempDir(), "stats")
			if err != nil {
				t.Fatal(err)
			}
			cfg := config.DefaultConfig()
			cfg.Manager.Name = fmt.Sprintf("st%d-%d", os.Getpid(), v)
			cfg.Manager.RegionDir = "/dev/shm"
			cfg.Manager.PoolSlots = 4096
			cfg.Manager.RingSize = 256
			cfg.Manager.Verbosity = v
			cfg.Manager.StatsInterval = time.Second
			cfg.Chains = []config.Chain{{Name: "default", Services: []int{1}, OutPort: 0}}
			p := &memPort{id: 0}
			m, err := manager.New(cfg, manager.Options{Log: zerolog.Nop(), SocketPath: filepath.Join(t.TempDir(), "s"),
				Ports: []port.Port{p}, Stdout: out})
			if err != nil {
				t.Fatal(err)
			}
			m.Start()
			defer m.Close()
			l := &lab{t: t, m: m, port: p}
			l.nf("-- -r 1 -n 3 --", "out:0")
			l.waitRunning(1)
			for f := 0; f < 10; f++ {
				p.inject(frame(f))
			}
			waitFor(t, 10*time.Second, "10 frames out", func() bool { return len(p.sent()) == 10 })
			// Two more periods: the second of them has seen no traffic at all.
			var text string
			waitFor(t, 10*time.Second, "a quiet stats period", func() bool {
				b, _ := os.ReadFile(out.Name())
				text = string(b)
				return strings.Count(text, quietMarker(v)) >= 2
			})
			got := lastPeriod(text, v)
			golden := filepath.Join("testdata", fmt.Sprintf("stats_v%d.golden", v))
			if *update {
				os.MkdirAll("testdata", 0o755)
				os.WriteFile(golden, []byte(got), 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Fatalf("stats -v %d differ from %s:\n--- got ---\n%s\n--- want ---\n%s", v, golden, got, want)
			}
		})
	}
}

// quietMarker is text a period shows once all ten frames are counted and the
// rates are zero again.
func quietMarker(v int) string {
	if v == 3 {
		return ",0,10,0,10,0\n" // raw port row: rx 10, 0 pps, tx 10, 0 pps (after the time and port ID)
	}
	return "Port 0 - rx:        10  (        0 pps)\ttx:        10  (        0 pps)"
}

var rawTime = regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,`)

// lastPeriod cuts the last complete period out of the output: the console
// block after the last clear-screen, or the raw rows of the last timestamp
// (masked), with the raw header in front.
func lastPeriod(text string, v int) string {
	if v != 3 {
		blocks := strings.Split(text, "\x1b[2J\x1b[1;1H")
		return blocks[len(blocks)-2] // the last may still be being written
	}
	lines := strings.SplitAfter(text, "\n")
	var header, rows []string
	var stamp string
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "#"):
			header = append(header, l)
		case rawTime.MatchString(l):
			ts := l[:19]
			if strings.Contains(l, quietMarker(3)) { // a quiet period starts with its port row
				if stamp == "" || ts != stamp {
					rows, stamp = nil, ts
				}
			}
			if ts == stamp {
				rows = append(rows, rawTime.ReplaceAllString(l, "YYYY-MM-DD HH:MM:SS,"))
			}
		}
	}
	var b bytes.Buffer
	for _, l := range append(header, rows...) {
		b.WriteString(l)
	}
	return b.String()
}
