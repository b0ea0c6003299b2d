package config

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// testCPUs is the machine size the tests pretend to run on, so warnings do not depend on the
// host.
const testCPUs = 2

// parseText parses src as file "cfg.toml" on a testCPUs machine.
func parseText(t *testing.T, src string) (Config, []string, error) {
	t.Helper()
	return parse("cfg.toml", []byte(src), testCPUs)
}

// errStrings returns the message of each error joined in err, in order.
func errStrings(err error) []string {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, errStrings(e)...)
		}
		return out
	}
	return []string{err.Error()}
}

// wantErrors parses src and checks that it fails with exactly the errors in want, in order.
func wantErrors(t *testing.T, src string, want ...string) {
	t.Helper()
	cfg, warns, err := parseText(t, src)
	if err == nil {
		t.Fatalf("parse succeeded (%+v, warnings %q); want errors:\n%s", cfg, warns, strings.Join(want, "\n"))
	}
	if got := errStrings(err); !slices.Equal(got, want) {
		t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !reflect.DeepEqual(cfg, Config{}) {
		t.Errorf("failed parse returned a non-zero Config: %+v", cfg)
	}
}

// wantOK parses src and checks that it succeeds without warnings.
func wantOK(t *testing.T, src string) Config {
	t.Helper()
	cfg, warns, err := parseText(t, src)
	if err != nil {
		t.Fatalf("parse failed:\n%v", err)
	}
	if len(warns) != 0 {
		t.Fatalf("unexpected warnings: %q", warns)
	}
	return cfg
}

func TestDefaultConfigIsValidAndRunsWithoutHardware(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
	if want := []Port{{ID: 0, Driver: DriverNull, PktBytes: DefaultPktBytes}}; !reflect.DeepEqual(cfg.Ports, want) {
		t.Errorf("ports = %+v, want %+v", cfg.Ports, want)
	}
	if want := []Chain{{Name: "default", Services: []int{1}, OutPort: 0}}; !reflect.DeepEqual(cfg.Chains, want) {
		t.Errorf("chains = %+v, want %+v", cfg.Chains, want)
	}
	m := cfg.Manager
	if m.Name != "reinforce" || m.PoolSlots != 32768 || m.DataBytes != 2048 || m.RingSize != 4096 ||
		m.Burst != 32 || m.StatsInterval != time.Second || m.StatsOut != StatsStdout || m.Verbosity != 1 ||
		m.DeadNFPolicy != DeadNFReclaim || m.DeadNFGrace != 2*time.Second || m.DefaultChain != "default" {
		t.Errorf("manager defaults = %+v", m)
	}
	// Each call returns fresh slices: changing one result must not change the next.
	cfg.Chains[0].Services[0] = 9
	cfg.Ports[0].ID = 7
	if again := DefaultConfig(); again.Chains[0].Services[0] != 1 || again.Ports[0].ID != 0 {
		t.Errorf("DefaultConfig shares slices between calls")
	}
}

func TestEmptyFileGivesDefaults(t *testing.T) {
	for _, src := range []string{"", "# only a comment\n", "[manager]\n"} {
		if got := wantOK(t, src); !reflect.DeepEqual(got, DefaultConfig()) {
			t.Errorf("parse(%q) = %+v, want DefaultConfig()", src, got)
		}
	}
}

func TestManagerKeysKeepDefaults(t *testing.T) {
	got := wantOK(t, "[manager]\nring_size = 256\nttl_s = 30\n")
	want := DefaultConfig()
	want.Manager.RingSize = 256
	want.Manager.TTL = 30 * time.Second
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

func TestFileListsReplaceDefaults(t *testing.T) {
	got := wantOK(t, `
[[port]]
id = 3
driver = "loop"

[[chain]]
name = "default"
services = [2, 3]
out_port = 3
`)
	if want := []Port{{ID: 3, Driver: DriverLoop, PktBytes: DefaultPktBytes}}; !reflect.DeepEqual(got.Ports, want) {
		t.Errorf("ports = %+v, want %+v (the default port 0 must be gone)", got.Ports, want)
	}
	if want := []Chain{{Name: "default", Services: []int{2, 3}, OutPort: 3}}; !reflect.DeepEqual(got.Chains, want) {
		t.Errorf("chains = %+v, want %+v", got.Chains, want)
	}

	// Ports alone replace the ports but keep the built-in chain, which then needs port 0.
	wantErrors(t, "[[port]]\nid = 1\n",
		"cfg.toml: chain[0].out_port: port 0 is not configured (ports: 1; -1 drops at chain end); this is the built-in default chain, define [[chain]] to change it")
}

func TestGoodConfigsParse(t *testing.T) {
	files, err := filepath.Glob("testdata/good/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/good files: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			cfg, warns, err := parse(filepath.Base(f), data, testCPUs)
			if err != nil {
				t.Fatalf("parse failed:\n%v", err)
			}
			if len(warns) != 0 {
				t.Errorf("warnings: %q", warns)
			}
			// Parse and Validate run the same checks.
			if err := cfg.Validate(); err != nil {
				t.Errorf("Validate after a successful Parse: %v", err)
			}
		})
	}
}

// TestBadConfigsReportEveryError parses each testdata/bad file and compares its errors, all of
// them and in order, with the file's "# want:" lines.
func TestBadConfigsReportEveryError(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/bad files: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			sc := bufio.NewScanner(bytes.NewReader(data))
			for sc.Scan() {
				if w, ok := strings.CutPrefix(sc.Text(), "# want: "); ok {
					want = append(want, w)
				}
			}
			if len(want) == 0 {
				t.Fatal("file has no # want: lines")
			}
			_, _, err = parse(filepath.Base(f), data, testCPUs)
			if got := errStrings(err); !slices.Equal(got, want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

func TestSyntaxErrorReportsLine(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"missing value", "[manager]\nname = \"x\"\nburst =\n",
			`cfg.toml:3: bad TOML: expected value but found '\n' instead (last key manager.burst)`},
		{"duplicate key", "[manager]\nburst = 1\n\nburst = 2\n",
			`cfg.toml:4: bad TOML: Key 'manager.burst' has already been defined.`},
		{"unterminated string", "[manager]\nname = \"x\n",
			`cfg.toml:2: bad TOML: strings cannot contain newlines (last key manager.name)`},
		{"integer overflow", "[manager]\n\npool_slots = 99999999999999999999\n",
			`cfg.toml:3: bad TOML: 99999999999999999999 is out of range for int64 (last key manager.pool_slots)`},
		{"table then array of tables", "[port]\nid = 0\n[[port]]\nid = 1\n",
			`cfg.toml:3: bad TOML: Key 'port' was already created and cannot be used as an array.`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErrors(t, tt.src, tt.want)
		})
	}
}

func TestUnknownKeyReportsLine(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string
	}{
		{"in manager, with suggestion", "[manager]\nname = \"x\"\nring_sise = 64\n",
			[]string{"cfg.toml:3: manager.ring_sise: unknown key (did you mean ring_size?)"}},
		{"in the second array element", "[[port]]\nid = 0\n\n[[port]]\nid = 1\nspeed = 10\n",
			[]string{"cfg.toml:6: port[1].speed: unknown key"}},
		{"top-level table", "[manager]\n\n[telemetry]\npeer = \"b\"\n",
			[]string{"cfg.toml:3: telemetry: unknown key"}},
		{"key inside a known table", "[manager]\n\n[replication]\npeer = \"b\"\n",
			[]string{"cfg.toml:4: replication.peer: unknown key"}},
		{"top-level array of tables, with suggestion", "[manager]\n\n[[ports]]\nid = 0\n[[ports]]\nid = 1\n",
			[]string{"cfg.toml:3: ports: unknown key (did you mean port?)"}},
		{"top-level key, with suggestion", "chains = 1\n",
			[]string{"cfg.toml:1: chains: unknown key (did you mean chain?)"}},
		{"quoted key", "[manager]\n\"odd key\" = 1\n",
			[]string{`cfg.toml:2: manager."odd key": unknown key`}},
		{"dotted key", "manager.x.y = 1\n",
			[]string{"cfg.toml:1: manager.x: unknown key"}},
		{"in an inline table element", "port = [\n  { id = 0 },\n  { id = 1,\n    mtu = 9000 },\n]\n",
			[]string{"cfg.toml:4: port[1].mtu: unknown key"}},
		{"after a multi-line string", "[[nf]]\ntag = \"a\"\nservice = 1\ncommand = [\"\"\"\n./a\nfoo = 1\n\"\"\"]\nfoo = 2\n",
			[]string{"cfg.toml:8: nf[0].foo: unknown key"}},
		{"several, each with its line", "[manager]\na = 1\n[[chain]]\nname = \"default\"\nservices = [1]\nb = 2\n[[nf]]\nc = 3\ntag = \"t\"\nservice = 1\ncommand = [\"x\"]\n",
			[]string{"cfg.toml:2: manager.a: unknown key", "cfg.toml:6: chain[0].b: unknown key", "cfg.toml:8: nf[0].c: unknown key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErrors(t, tt.src, tt.want...)
		})
	}
}

func TestWrongTypeRejected(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"string for integer", "[manager]\nring_size = \"64\"\n", `cfg.toml:2: manager.ring_size: must be an integer, got string "64"`},
		{"float for integer", "[manager]\nttl_s = 1.5\n", "cfg.toml:2: manager.ttl_s: must be an integer, got float 1.5"},
		{"integer for boolean", "[manager]\njumbo = 1\n", "cfg.toml:2: manager.jumbo: must be true or false, got integer 1"},
		{"integer for string", "[manager]\nstats_out = 1\n", "cfg.toml:2: manager.stats_out: must be a string, got integer 1"},
		{"date for string", "[manager]\nname = 1979-05-27\n", "cfg.toml:2: manager.name: must be a string, got date-time"},
		{"table for manager", "manager = 1\n", "cfg.toml:1: manager: must be a table ([manager]), got integer 1"},
		{"table for port list", "[port]\nid = 0\n", "cfg.toml:1: port: must be an array of tables ([[port]]), got table"},
		{"scalar in port list", "port = [{ id = 0 }, 1]\n", "cfg.toml:1: port[1]: must be a table, got integer 1"},
		{"string in services", "[[chain]]\nname = \"default\"\nservices = [\n  1,\n  \"2\",\n]\n",
			`cfg.toml:5: chain[0].services[1]: must be an integer, got string "2"`},
		{"string for command", "[[nf]]\ntag = \"a\"\nservice = 1\ncommand = \"./a\"\n",
			`cfg.toml:4: nf[0].command: must be an array of strings, got string "./a"`},
		{"integer in command", "[[nf]]\ntag = \"a\"\nservice = 1\ncommand = [\"./a\", 3]\n",
			"cfg.toml:4: nf[0].command[1]: must be a string, got integer 3"},
		{"huge seconds", "[manager]\nttl_s = 9223372036854775807\n", "cfg.toml:2: manager.ttl_s: 9223372036854775807 out of range 0..9223372036"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErrors(t, tt.src, tt.want)
		})
	}
}

// TestOutOfRangeRejected tries each numeric key just outside and at its limits.
func TestOutOfRangeRejected(t *testing.T) {
	tests := []struct {
		table, key   string // table header ("[manager]"), key
		bad          []string
		good         []string
		keyPath, msg string // expected key path and message for bad[i], with %s for the value
	}{
		{"[manager]", "pool_slots", []string{"1023", "16777216", "-1"}, []string{"1024", "16777215"}, "manager.pool_slots", "%s out of range 1024..16777215"},
		{"[manager]", "data_bytes", []string{"63", "65537"}, []string{"64", "65536"}, "manager.data_bytes", "%s out of range 64..65536"},
		{"[manager]", "ring_size", []string{"32", "131072"}, []string{"64", "65536"}, "manager.ring_size", "%s out of range 64..65536"},
		{"[manager]", "burst", []string{"0", "65"}, []string{"1", "64"}, "manager.burst", "%s out of range 1..64"},
		{"[manager]", "verbosity", []string{"0", "4"}, []string{"1", "3"}, "manager.verbosity", "%s out of range 1..3"},
		{"[manager]", "stats_interval_s", []string{"0", "-1"}, []string{"1", "3600"}, "manager.stats_interval_s", "must be > 0, got %s"},
		{"[manager]", "ttl_s", []string{"-1"}, []string{"0", "86400"}, "manager.ttl_s", "must be >= 0 (0 is off), got %s"},
		{"[manager]", "packet_limit_m", []string{"-1"}, []string{"0", "1000"}, "manager.packet_limit_m", "%s out of range 0..9223372036854"},
		{"[manager]", "dead_nf_grace_ms", []string{"-1"}, []string{"0", "60000"}, "manager.dead_nf_grace_ms", "must be >= 0, got %s"},
		{"[[port]]\nid = 0\n", "rate_pps", []string{"-1"}, []string{"0", "14880952"}, "port[0].rate_pps", "must be >= 0 (0 is unpaced), got %s"},
		{"[[port]]\nid = 0\n", "pkt_bytes", []string{"59", "9601"}, []string{"60", "2048"}, "port[0].pkt_bytes", "%s out of range 60..9600"},
		{"[[nf]]\ntag = \"a\"\ncommand = [\"a\"]\n", "service", []string{"0", "32"}, []string{"1", "31"}, "nf[0].service", "service %s out of range 1..31"},
		{"[[nf]]\ntag = \"a\"\nservice = 1\ncommand = [\"a\"]\n", "instance", []string{"-1", "128"}, []string{"0", "1", "127"}, "nf[0].instance", "instance %s out of range 1..127 (0 picks one)"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			for _, v := range tt.good {
				wantOK(t, tt.table+"\n"+tt.key+" = "+v+"\n")
			}
			for _, v := range tt.bad {
				src := tt.table + "\n" + tt.key + " = " + v + "\n"
				line := strings.Count(src, "\n")
				want := (&Error{File: "cfg.toml", Line: line, Key: tt.keyPath, Msg: strings.ReplaceAll(tt.msg, "%s", v)}).Error()
				wantErrors(t, src, want)
			}
		})
	}
	// Port IDs are checked against 0..31, and a bad one is not also reported as unknown.
	wantErrors(t, "[[port]]\nid = 32\n[[chain]]\nname = \"default\"\nservices = [1]\nout_port = -1\n",
		"cfg.toml:2: port[0].id: 32 out of range 0..31")
}

func TestChainLengthUpToSixteenAccepted(t *testing.T) {
	// ONVM keeps 3 usable chain entries (an off-by-one in onvm_sc_append_entry); we do not.
	cfg := wantOK(t, "[[chain]]\nname = \"default\"\nservices = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]\n")
	if n := len(cfg.Chains[0].Services); n != 16 {
		t.Errorf("chain has %d services, want 16", n)
	}
	wantErrors(t, "[[chain]]\nname = \"default\"\nservices = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]\n",
		"cfg.toml:3: chain[0].services: lists 17 services; at most 16")
	wantErrors(t, "[[chain]]\nname = \"default\"\nservices = []\n",
		"cfg.toml:3: chain[0].services: must list at least one service")
	wantErrors(t, "[[chain]]\nname = \"default\"\nservices = [1, 40, 0]\n",
		"cfg.toml:3: chain[0].services[1]: service 40 out of range 1..31",
		"cfg.toml:3: chain[0].services[2]: service 0 out of range 1..31")
}

func TestDuplicatePortIDRejected(t *testing.T) {
	wantErrors(t, "[[port]]\nid = 0\n[[port]]\nid = 1\n[[port]]\n# the third\nid = 1\n",
		"cfg.toml:7: port[2].id: duplicate port id 1, already used by port[1]")
}

func TestDuplicateChainNameRejected(t *testing.T) {
	wantErrors(t, "[[chain]]\nname = \"default\"\nservices = [1]\n[[chain]]\nservices = [2]\nname = \"default\"\n",
		`cfg.toml:6: chain[1].name: duplicate chain name "default", already used by chain[0]`)
	wantErrors(t, "[[chain]]\nname = \"\"\nservices = [1]\n",
		"cfg.toml:2: chain[0].name: must not be empty",
		`cfg.toml: manager.default_chain: "default" names no configured chain (chains: ""); name a chain "default" or set manager.default_chain`)
}

func TestDuplicateInstanceRejected(t *testing.T) {
	nf := func(instance string) string {
		return "[[nf]]\ntag = \"a\"\nservice = 1\ncommand = [\"./a\"]\ninstance = " + instance + "\n"
	}
	wantErrors(t, nf("5")+nf("6")+nf("5"), "cfg.toml:15: nf[2].instance: duplicate instance 5, already used by nf[0]")
	// Instance 0 asks the manager to pick, so it may repeat.
	if cfg := wantOK(t, nf("0")+nf("0")); len(cfg.NFs) != 2 {
		t.Errorf("got %d NFs, want 2", len(cfg.NFs))
	}
}

func TestChainUnknownPortRejected(t *testing.T) {
	wantErrors(t, "[[port]]\nid = 0\n[[chain]]\nname = \"default\"\nservices = [1]\nout_port = 5\n",
		"cfg.toml:6: chain[0].out_port: port 5 is not configured (ports: 0; -1 drops at chain end)")
	// Omitted out_port means port 0.
	wantErrors(t, "[[port]]\nid = 1\n[[chain]]\nname = \"default\"\nservices = [1]\n",
		"cfg.toml:3: chain[0].out_port: port 0 is not configured (ports: 1; -1 drops at chain end)")
	wantErrors(t, "[[port]]\nid = 1\n[[chain]]\nname = \"default\"\nservices = [1]\nout_port = -2\n",
		"cfg.toml:6: chain[0].out_port: port -2 is not configured (ports: 1; -1 drops at chain end)")
	// -1 drops at chain end and needs no port at all.
	wantOK(t, "port = []\n[[chain]]\nname = \"default\"\nservices = [1]\nout_port = -1\n")
}

func TestDefaultChainUnknownRejected(t *testing.T) {
	wantErrors(t, "[manager]\ndefault_chain = \"web\"\n",
		`cfg.toml:2: manager.default_chain: "web" names no configured chain (chains: "default"); name a chain "web" or set manager.default_chain`)
	wantErrors(t, "[manager]\ndefault_chain = \"\"\n", "cfg.toml:2: manager.default_chain: must name a [[chain]]")
	wantOK(t, "[manager]\ndefault_chain = \"web\"\n[[chain]]\nname = \"web\"\nservices = [1]\n")
}

func TestRingSizeNotPowerOfTwoRejected(t *testing.T) {
	for _, n := range []string{"100", "1000", "4095", "65535"} {
		wantErrors(t, "[manager]\nring_size = "+n+"\n", "cfg.toml:2: manager.ring_size: "+n+" is not a power of two")
	}
	for _, n := range []string{"64", "128", "4096", "65536"} {
		wantOK(t, "[manager]\nring_size = "+n+"\n")
	}
}

func TestBadEnumRejected(t *testing.T) {
	tests := []struct{ src, want string }{
		{"[manager]\nstats_out = \"STDOUT\"\n", `cfg.toml:2: manager.stats_out: "STDOUT" is not one of "stdout", "stderr", "web", "none"`},
		{"[manager]\ndead_nf_policy = \"\"\n", `cfg.toml:2: manager.dead_nf_policy: "" is not one of "reclaim", "retain"`},
		{"[[port]]\nid = 0\ndriver = \"tap\"\n", `cfg.toml:3: port[0].driver: "tap" is not one of "null", "loop", "afpacket", "pcap", "dpdk"`},
		{"[[nf]]\ntag = \"a\"\nservice = 1\ncommand = [\"a\"]\nstandby = \"remote\"\n", `cfg.toml:5: nf[0].standby: "remote" is not one of "", "local"`},
	}
	for _, tt := range tests {
		wantErrors(t, tt.src, tt.want)
	}
	for _, v := range []string{"stdout", "stderr", "web", "none"} {
		wantOK(t, "[manager]\nstats_out = \""+v+"\"\n")
	}
}

func TestEmptyCommandRejected(t *testing.T) {
	wantErrors(t, "[[nf]]\ntag = \"a\"\nservice = 1\ncommand = []\n", "cfg.toml:4: nf[0].command: must name a program to run")
	wantErrors(t, "[[nf]]\ntag = \"a\"\nservice = 1\ncommand = [\n  \"\",\n  \"-x\",\n]\n", "cfg.toml:5: nf[0].command[0]: program name must not be empty")
}

func TestTagTooLongRejected(t *testing.T) {
	nf := func(tag string) string { return "[[nf]]\ntag = \"" + tag + "\"\nservice = 1\ncommand = [\"a\"]\n" }
	wantOK(t, nf("simple_forward")) // 14 bytes: ONVM's TAG_SIZE 15 with the NUL
	wantErrors(t, nf("simple_forward1"), `cfg.toml:2: nf[0].tag: "simple_forward1" is 15 bytes; at most 14 (ONVM TAG_SIZE)`)
	wantErrors(t, nf("ééééééé1"), `cfg.toml:2: nf[0].tag: "ééééééé1" is 15 bytes; at most 14 (ONVM TAG_SIZE)`)
	wantErrors(t, nf(""), "cfg.toml:2: nf[0].tag: must not be empty")
}

func TestBadCoresRejected(t *testing.T) {
	tests := []struct{ cores, msg string }{
		{"0-x", `CPU list "0-x": bad CPU number "x"`},
		{"3-1", `CPU list "3-1": range 3-1 is backwards`},
		{"0,,1", `CPU list "0,,1": empty element`},
		{"0,", `CPU list "0,": empty element`},
		{"-1", `CPU list "-1": missing CPU number`},
		{"+1", `CPU list "+1": bad CPU number "+1"`},
		{"1-2-3", `CPU list "1-2-3": bad CPU number "2-3"`},
		{"0x3", `CPU list "0x3": bad CPU number "0x3"`},
		{"8192", `CPU list "8192": CPU 8192 out of range 0..8191`},
		{" ", "empty CPU list"},
	}
	for _, tt := range tests {
		wantErrors(t, "[manager]\ncores = \""+tt.cores+"\"\n", "cfg.toml:2: manager.cores: "+tt.msg)
	}
}

func TestCoresClampedWithWarning(t *testing.T) {
	tests := []struct{ cores, want, warning string }{
		{"0-1", "0-1", ""},
		{"1", "1", ""},
		{"0-7", "0-1", "cfg.toml:2: manager.cores: CPUs 2-7 not present on this machine (2 CPUs); using 0-1"},
		{"1,7", "1", "cfg.toml:2: manager.cores: CPU 7 not present on this machine (2 CPUs); using 1"},
		{"4-7,9", "0-1", "cfg.toml:2: manager.cores: CPUs 4-7,9 not present on this machine (2 CPUs); using all CPUs 0-1"},
	}
	for _, tt := range tests {
		cfg, warns, err := parseText(t, "[manager]\ncores = \""+tt.cores+"\"\n")
		if err != nil {
			t.Fatalf("cores %q: %v", tt.cores, err)
		}
		if cfg.Manager.Cores != tt.want {
			t.Errorf("cores %q: Cores = %q, want %q", tt.cores, cfg.Manager.Cores, tt.want)
		}
		var wantWarns []string
		if tt.warning != "" {
			wantWarns = []string{tt.warning}
		}
		if !slices.Equal(warns, wantWarns) {
			t.Errorf("cores %q: warnings %q, want %q", tt.cores, warns, wantWarns)
		}
	}
}

func TestPortDriverFieldsChecked(t *testing.T) {
	wantOK(t, "[[port]]\nid = 0\ndriver = \"afpacket\"\niface = \"veth0\"\n")
	wantOK(t, "[[port]]\nid = 0\ndriver = \"dpdk\"\n")
	wantOK(t, "[[port]]\nid = 0\ndriver = \"pcap\"\nout_path = \"/tmp/out.pcap\"\n")
	wantErrors(t, "[[port]]\nid = 0\ndriver = \"afpacket\"\n", "cfg.toml:1: port[0].iface: driver afpacket needs an interface name")
	wantErrors(t, "[[port]]\nid = 0\nout_path = \"x.pcap\"\n", "cfg.toml:3: port[0].out_path: is used only by driver pcap, not null")
	wantErrors(t, "[[port]]\nid = 0\ndriver = \"loop\"\nloop = true\n", "cfg.toml:4: port[0].loop: is used only by driver pcap, not loop")
}

func TestJumboRaisesSlotDataBytes(t *testing.T) {
	m := DefaultConfig().Manager
	if got := m.SlotDataBytes(); got != 2048 {
		t.Errorf("SlotDataBytes() = %d, want 2048", got)
	}
	m.Jumbo = true
	if got := m.SlotDataBytes(); got != 9728 {
		t.Errorf("jumbo SlotDataBytes() = %d, want 9728", got)
	}
	m.DataBytes = 16384
	if got := m.SlotDataBytes(); got != 16384 {
		t.Errorf("jumbo with data_bytes 16384: SlotDataBytes() = %d, want 16384", got)
	}
	wantOK(t, "[manager]\njumbo = true\n[[port]]\nid = 0\npkt_bytes = 9600\n")
	wantErrors(t, "[[port]]\nid = 0\npkt_bytes = 9600\n",
		"cfg.toml:3: port[0].pkt_bytes: 9600 exceeds the slot data room of 2048 bytes (set manager.jumbo = true or raise manager.data_bytes)")
}

func TestManagerNameAndPathsChecked(t *testing.T) {
	wantOK(t, "[manager]\nname = \"lab_1-B\"\nregion_dir = \"/mnt/huge\"\ncontrol_socket = \"/run/r.sock\"\n")
	wantErrors(t, "[manager]\nname = \"a/b\"\n", `cfg.toml:2: manager.name: "a/b" must be 1..32 characters of A-Z a-z 0-9 _ -, as it names files and sockets`)
	wantErrors(t, "[manager]\nname = \"\"\n", `cfg.toml:2: manager.name: "" must be 1..32 characters of A-Z a-z 0-9 _ -, as it names files and sockets`)
	wantErrors(t, "[manager]\nname = \""+strings.Repeat("n", 33)+"\"\n", `cfg.toml:2: manager.name: "`+strings.Repeat("n", 33)+`" must be 1..32 characters of A-Z a-z 0-9 _ -, as it names files and sockets`)
	wantErrors(t, "[manager]\ncontrol_socket = \"r.sock\"\n", `cfg.toml:2: manager.control_socket: "r.sock" must be an absolute path, so NFs started from any directory find the socket`)
}

func TestErrorsReportedAtOnceSortedByLine(t *testing.T) {
	_, _, err := parseText(t, `
[[chain]]
name = "default"
services = [99]
out_port = 4

[manager]
ring_size = 100
bogus = true
`)
	want := []string{
		"cfg.toml:4: chain[0].services[0]: service 99 out of range 1..31",
		"cfg.toml:5: chain[0].out_port: port 4 is not configured (ports: 0; -1 drops at chain end)",
		"cfg.toml:8: manager.ring_size: 100 is not a power of two",
		"cfg.toml:9: manager.bogus: unknown key",
	}
	if got := errStrings(err); !slices.Equal(got, want) {
		t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Each joined error is an *Error carrying its parts.
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("errors.As(*Error) failed on %T", err)
	}
	if want := (&Error{File: "cfg.toml", Line: 4, Key: "chain[0].services[0]", Msg: "service 99 out of range 1..31"}); *e != *want {
		t.Errorf("first error = %+v, want %+v", *e, *want)
	}
}

func TestValidateAfterFlagsReportsKeysWithoutLines(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	// As cmd/ would after applying flags.
	cfg.Manager.RingSize = 1000
	cfg.Manager.StatsInterval = 0
	cfg.Manager.Cores = "a"
	cfg.Chains[0].Services = []int{40}
	cfg.NFs = []NF{{Tag: "a", Service: 1, Command: []string{"x"}, Instance: 3}, {Tag: "b", Service: 2, Command: []string{"y"}, Instance: 3}}
	want := []string{
		"manager.ring_size: 1000 is not a power of two",
		"manager.stats_interval_s: must be > 0, got 0",
		`manager.cores: CPU list "a": bad CPU number "a"`,
		"chain[0].services[0]: service 40 out of range 1..31",
		"nf[1].instance: duplicate instance 3, already used by nf[0]",
	}
	if got := errStrings(cfg.Validate()); !slices.Equal(got, want) {
		t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Durations that are not whole units are shown as durations.
	cfg = DefaultConfig()
	cfg.Manager.TTL = -1500 * time.Millisecond
	if got, want := errStrings(cfg.Validate()), []string{"manager.ttl_s: must be >= 0 (0 is off), got -1.5s"}; !slices.Equal(got, want) {
		t.Errorf("errors %q, want %q", got, want)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{File: "cfg.toml", Line: 12, Key: "chain[1].services[2]", Msg: "service 40 out of range 1..31"}, "cfg.toml:12: chain[1].services[2]: service 40 out of range 1..31"},
		{Error{File: "cfg.toml", Key: "manager.cores", Msg: "m"}, "cfg.toml: manager.cores: m"},
		{Error{File: "cfg.toml", Line: 3, Msg: "bad TOML: x"}, "cfg.toml:3: bad TOML: x"},
		{Error{Key: "manager.burst", Msg: "m"}, "manager.burst: m"},
		{Error{Line: 2, Key: "k", Msg: "m"}, "line 2: k: m"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("%+v.Error() = %q, want %q", tt.e, got, tt.want)
		}
	}
}

func TestLoadNamesFileInErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "r.toml")
	if err := os.WriteFile(path, []byte("[manager]\nburst = 65\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := Load(path)
	if got, want := errStrings(err), []string{path + ":2: manager.burst: 65 out of range 1..64"}; !slices.Equal(got, want) {
		t.Errorf("Load errors %q, want %q", got, want)
	}
	if _, _, err := Load(filepath.Join(dir, "missing.toml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want an error wrapping os.ErrNotExist", err)
	}
	if err := os.WriteFile(path, []byte("[manager]\nname = \"ok\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, warns, err := Load(path)
	if err != nil || len(warns) != 0 || cfg.Manager.Name != "ok" {
		t.Errorf("Load = %+v, %q, %v", cfg.Manager, warns, err)
	}
}

func TestControlSocketPath(t *testing.T) {
	m := DefaultConfig().Manager
	if got, want := m.ControlSocketPath("/run/user/1000", 1000), "/run/user/1000/reinforce/reinforce.sock"; got != want {
		t.Errorf("with XDG_RUNTIME_DIR: %q, want %q", got, want)
	}
	if got, want := m.ControlSocketPath("", 1000), "/tmp/reinforce-1000/reinforce.sock"; got != want {
		t.Errorf("without XDG_RUNTIME_DIR: %q, want %q", got, want)
	}
	m.ControlSocket = "/run/x.sock"
	if got := m.ControlSocketPath("/run/user/1000", 1000); got != "/run/x.sock" {
		t.Errorf("configured: %q, want /run/x.sock", got)
	}
}

func TestCloneSharesNoSlices(t *testing.T) {
	a := DefaultConfig()
	a.NFs = []NF{{Tag: "a", Service: 1, Command: []string{"x"}}}
	b := a.Clone()
	b.Ports[0].ID = 5
	b.Chains[0].Services[0] = 7
	b.NFs[0].Command[0] = "y"
	if a.Ports[0].ID != 0 || a.Chains[0].Services[0] != 1 || a.NFs[0].Command[0] != "x" {
		t.Errorf("Clone shares slices with the original: %+v", a)
	}
}

// TestLinesFollowArraysOfTables checks the line index on the shapes that defeat a naive
// scan: repeated [[x]] headers, sub-tables of the current element, nested arrays of tables,
// inline arrays and strings that look like headers.
func TestLinesFollowArraysOfTables(t *testing.T) {
	src := `[[port]]          # 1
id = 0                # 2
[[port]]              # 3
id = 1                # 4
[port.extra]          # 5
x = 1                 # 6
[[a]]                 # 7
[[a.b]]               # 8
k = 1                 # 9
[[a]]                 # 10
[[a.b]]               # 11
[[a.b]]               # 12
k = 2                 # 13
[manager]             # 14
name = """            # 15
[[port]]
id = 7
"""                   # 18
'quoted key' = '''
'''                   # 20
cores = "0" # [x]     # 21
s = [ [1, 2],         # 22
  [3,                 # 23
   4] ]               # 24
t = { u = { v = 1 } } # 25
`
	got, tooDeep := scanLines([]byte(src))
	if tooDeep != 0 {
		t.Errorf("tooDeep = %d, want 0", tooDeep)
	}
	want := map[string]int{
		"port": 1, "port[0]": 1, "port[0].id": 2, "port[1]": 3, "port[1].id": 4,
		"port[1].extra": 5, "port[1].extra.x": 6,
		"a": 7, "a[0]": 7, "a[0].b": 8, "a[0].b[0]": 8, "a[0].b[0].k": 9,
		"a[1]": 10, "a[1].b[0]": 11, "a[1].b[1]": 12, "a[1].b[1].k": 13,
		"manager": 14, "manager.name": 15, `manager."quoted key"`: 19, "manager.cores": 21,
		"manager.s": 22, "manager.s[0]": 22, "manager.s[0][1]": 22, "manager.s[1]": 23, "manager.s[1][1]": 24,
		"manager.t": 25, "manager.t.u": 25, "manager.t.u.v": 25,
	}
	for k, line := range want {
		if got[k] != line {
			t.Errorf("line of %s = %d, want %d", k, got[k], line)
		}
	}
	if _, ok := got["port[2]"]; ok {
		t.Errorf("a [[port]] inside a multi-line string was counted as a table")
	}
}

func TestParseCPUList(t *testing.T) {
	tests := []struct {
		s       string
		ncpu    int
		want    []int
		warning string
		err     string
	}{
		{"0", 4, []int{0}, "", ""},
		{"0-3,5", 8, []int{0, 1, 2, 3, 5}, "", ""},
		{" 3 , 1-2 ,1", 4, []int{1, 2, 3}, "", ""},
		{"5,0-3", 8, []int{0, 1, 2, 3, 5}, "", ""},
		{"0-3,5", 4, []int{0, 1, 2, 3}, "CPU 5 not present on this machine (4 CPUs); using 0-3", ""},
		{"6-7", 4, []int{0, 1, 2, 3}, "CPUs 6-7 not present on this machine (4 CPUs); using all CPUs 0-3", ""},
		{"3", 1, []int{0}, "CPU 3 not present on this machine (1 CPU); using all CPUs 0", ""},
		{"", 4, nil, "", "empty CPU list"},
		{"a", 4, nil, "", `CPU list "a": bad CPU number "a"`},
		{"1", 0, nil, "", "CPU count 0 out of range 1..8192"},
		{"0-8191", 8192, nil, "", ""}, // the whole range; checked by length below
	}
	for _, tt := range tests {
		got, warning, err := ParseCPUList(tt.s, tt.ncpu)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("ParseCPUList(%q, %d) error = %v, want %q", tt.s, tt.ncpu, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseCPUList(%q, %d) error = %v", tt.s, tt.ncpu, err)
			continue
		}
		if tt.want != nil && !slices.Equal(got, tt.want) || tt.want == nil && len(got) != MaxCPUs {
			t.Errorf("ParseCPUList(%q, %d) = %v, want %v", tt.s, tt.ncpu, got, tt.want)
		}
		if warning != tt.warning {
			t.Errorf("ParseCPUList(%q, %d) warning = %q, want %q", tt.s, tt.ncpu, warning, tt.warning)
		}
	}
}

func TestParseCoreMask(t *testing.T) {
	tests := []struct {
		mask    string
		ncpu    int
		want    []int
		warning string
		err     string
	}{
		{"0xF8", 8, []int{3, 4, 5, 6, 7}, "", ""},
		{"0xf8", 8, []int{3, 4, 5, 6, 7}, "", ""}, // ONVM's go.sh rejects lower case; we do not
		{"F8", 8, []int{3, 4, 5, 6, 7}, "", ""},
		{"0X1", 8, []int{0}, "", ""},
		{"0x100000000", 64, []int{32}, "", ""},
		{"0xF8", 4, []int{3}, "CPUs 4-7 not present on this machine (4 CPUs); using 3", ""},
		{"0xF0", 2, []int{0, 1}, "CPUs 4-7 not present on this machine (2 CPUs); using all CPUs 0-1", ""},
		{"0x0", 4, nil, "core mask 0x0 selects no CPUs", ""},
		{"0x", 4, nil, "", `core mask "0x": no hex digits`},
		{"0xG1", 4, nil, "", `core mask "0xG1": bad hex digit 'G'`},
		{"-1", 4, nil, "", `core mask "-1": bad hex digit '-'`},
		{"1" + strings.Repeat("0", 2048), 4, nil, "", `core mask "1` + strings.Repeat("0", 2048) + `": CPU 8192 out of range 0..8191`},
	}
	for _, tt := range tests {
		got, warning, err := ParseCoreMask(tt.mask, tt.ncpu)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("ParseCoreMask(%q, %d) error = %v, want %q", tt.mask, tt.ncpu, err, tt.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) || warning != tt.warning {
			t.Errorf("ParseCoreMask(%q, %d) = %v, %q, %v; want %v, %q", tt.mask, tt.ncpu, got, warning, err, tt.want, tt.warning)
		}
	}
}

func TestFormatCPUList(t *testing.T) {
	tests := []struct {
		cpus []int
		want string
	}{
		{nil, ""},
		{[]int{0}, "0"},
		{[]int{0, 1}, "0-1"},
		{[]int{0, 1, 2, 5, 7, 8}, "0-2,5,7-8"},
	}
	for _, tt := range tests {
		if got := FormatCPUList(tt.cpus); got != tt.want {
			t.Errorf("FormatCPUList(%v) = %q, want %q", tt.cpus, got, tt.want)
		}
		if tt.want == "" {
			continue
		}
		if back, _, err := ParseCPUList(tt.want, MaxCPUs); err != nil || !slices.Equal(back, tt.cpus) {
			t.Errorf("ParseCPUList(FormatCPUList(%v)) = %v, %v", tt.cpus, back, err)
		}
	}
}

func TestDeepNestingRefusedBeforeDecoding(t *testing.T) {
	// BurntSushi/toml is quadratic in nesting depth; these would take minutes to decode.
	const n = 100000
	const want = "cfg.toml:1: bad TOML: tables, arrays or dotted keys nested more than 32 deep"
	wantErrors(t, "a = "+strings.Repeat("[", n)+strings.Repeat("]", n)+"\n", want)
	wantErrors(t, "a = "+strings.Repeat("{b=", n)+"1"+strings.Repeat("}", n)+"\n", want)
	wantErrors(t, strings.Repeat("a.", n)+"a = 1\n", want)
	wantErrors(t, "["+strings.Repeat("a.", n)+"a]\n", want)
}
