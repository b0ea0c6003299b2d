package nflib

import (
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// testCPUs is the machine size the table tests assume, so they pass anywhere.
const testCPUs = 8

func TestParseArgsAccepted(t *testing.T) {
	tests := []struct {
		name string
		argv []string
		want Args
	}{
		{
			name: "start_nf.sh simple mode",
			argv: []string{"-l", "0", "-n", "3", "--proc-type=secondary", "--", "-r", "1", "--", "-p", "1"},
			want: Args{Service: 1, Cores: []int{0}, AppArgs: []string{"-p", "1"}, Notices: []string{
				"ignoring EAL argument -l 0",
				"ignoring EAL argument -n 3",
				"ignoring EAL argument --proc-type=secondary",
			}},
		},
		{
			name: "every ONVM option",
			argv: []string{"--", "-r", "2", "-n", "5", "-t", "30", "-l", "7", "-m", "-s"},
			want: Args{Service: 2, Instance: 5, TTL: 30 * time.Second, PktLimit: 7_000_000,
				ManualCore: true, ShareCore: true},
		},
		{
			name: "largest values",
			argv: []string{"--", "-r", "31", "-n", "127", "-t", "65535", "-l", "65535"},
			want: Args{Service: 31, Instance: 127, TTL: 65535 * time.Second, PktLimit: 65535_000_000},
		},
		{
			name: "clustered flags and attached values",
			argv: []string{"--", "-msr3", "-n12", "-t5"},
			want: Args{Service: 3, Instance: 12, TTL: 5 * time.Second, ManualCore: true, ShareCore: true},
		},
		{
			name: "last repeated option wins",
			argv: []string{"--", "-r", "1", "-r", "2"},
			want: Args{Service: 2},
		},
		{
			name: "one -- means no NF args",
			argv: []string{"-l", "1", "--", "-r", "4"},
			want: Args{Service: 4, Cores: []int{1}, Notices: []string{"ignoring EAL argument -l 1"}},
		},
		{
			name: "no -- at all: all ONVM args",
			argv: []string{"-r", "1", "-s"},
			want: Args{Service: 1, ShareCore: true},
		},
		{
			name: "no -- at all: words go to the NF",
			argv: []string{"-r", "1", "pcap.file", "-m"},
			want: Args{Service: 1, ManualCore: true, AppArgs: []string{"pcap.file"}},
		},
		{
			name: "words among ONVM args precede NF args, as glibc getopt leaves them",
			argv: []string{"--", "-r", "1", "foo", "-m", "--", "bar", "-x"},
			want: Args{Service: 1, ManualCore: true, AppArgs: []string{"foo", "bar", "-x"}},
		},
		{
			name: "NF args kept verbatim, later -- included",
			argv: []string{"--", "-r", "1", "--", "-d", "2", "--", "-r", "9", ""},
			want: Args{Service: 1, AppArgs: []string{"-d", "2", "--", "-r", "9", ""}},
		},
		{
			name: "lone dash is a word",
			argv: []string{"--", "-r", "1", "-"},
			want: Args{Service: 1, AppArgs: []string{"-"}},
		},
		{
			name: "config file supplies the service",
			argv: []string{"-F", "cfg.json", "--", "-m", "--", "x"},
			want: Args{ConfigFile: "cfg.json", ManualCore: true, AppArgs: []string{"x"}},
		},
		{
			name: "config file with EAL and ONVM overrides",
			argv: []string{"-F", "cfg.json", "-l", "4", "--", "-r", "6", "-n", "2"},
			want: Args{ConfigFile: "cfg.json", Service: 6, Instance: 2, Cores: []int{4},
				Notices: []string{"ignoring EAL argument -l 4"}},
		},
		{
			name: "config file alone",
			argv: []string{"-F", "cfg.json"},
			want: Args{ConfigFile: "cfg.json"},
		},
		{
			name: "EAL arguments of every shape are noted one per line",
			argv: []string{"-c", "0x3", "--base-virtaddr", "0x7f000000000", "--no-huge", "--file-prefix=nf",
				"-v", "stray", "-w0000:01:00.0", "--unknown-flag", "--", "-r", "1"},
			want: Args{Service: 1, Cores: []int{0, 1}, Notices: []string{
				"ignoring EAL argument -c 0x3",
				"ignoring EAL argument --base-virtaddr 0x7f000000000",
				"ignoring EAL argument --no-huge",
				"ignoring EAL argument --file-prefix=nf",
				"ignoring EAL argument -v",
				"ignoring EAL argument stray",
				"ignoring EAL argument -w0000:01:00.0",
				"ignoring EAL argument --unknown-flag",
			}},
		},
		{
			name: "core list ranges",
			argv: []string{"-l", " 6, 1-3 ,2", "--", "-r", "1"},
			want: Args{Service: 1, Cores: []int{1, 2, 3, 6}, Notices: []string{"ignoring EAL argument -l  6, 1-3 ,2"}},
		},
		{
			name: "core mask without prefix",
			argv: []string{"-c", "a0", "--", "-r", "1"},
			want: Args{Service: 1, Cores: []int{5, 7}, Notices: []string{"ignoring EAL argument -c a0"}},
		},
		{
			name: "plain --lcores list",
			argv: []string{"--lcores=2-3", "--", "-r", "1"},
			want: Args{Service: 1, Cores: []int{2, 3}, Notices: []string{"ignoring EAL argument --lcores=2-3"}},
		},
		{
			name: "--lcores map is only noted",
			argv: []string{"--lcores", "(0-3)@1", "--", "-r", "1"},
			want: Args{Service: 1, Notices: []string{"ignoring EAL argument --lcores (0-3)@1"}},
		},
		{
			name: "last core option wins and -m names its core",
			argv: []string{"-l", "1", "-c", "0x30", "--", "-r", "1", "-m"},
			want: Args{Service: 1, ManualCore: true, Cores: []int{4, 5}, Notices: []string{
				"ignoring EAL argument -l 1",
				"EAL argument -c 0x30 sets the manual core (-m): CPU 4",
			}},
		},
		{
			name: "CPUs beyond the machine are clamped",
			argv: []string{"-l", "0,1,9,12", "--", "-r", "1"},
			want: Args{Service: 1, Cores: []int{0, 1, 4}, Notices: []string{
				"ignoring EAL argument -l 0,1,9,12",
				"EAL core list in -l 0,1,9,12 names CPUs this machine lacks (it has 8): clamped to 0,1,4",
			}},
		},
		{
			name: "clamped manual core",
			argv: []string{"-l", "13", "--", "-r", "1", "-m"},
			want: Args{Service: 1, ManualCore: true, Cores: []int{5}, Notices: []string{
				"EAL argument -l 13 sets the manual core (-m): CPU 5",
				"EAL core list in -l 13 names CPUs this machine lacks (it has 8): clamped to 5",
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseArgs(tt.argv, testCPUs)
			if err != nil {
				t.Fatalf("parseArgs(%q): %v", tt.argv, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("parseArgs(%q)\n got %#v\nwant %#v", tt.argv, got, tt.want)
			}
		})
	}
}

func TestParseArgsRejected(t *testing.T) {
	tests := []struct {
		name  string
		argv  []string
		msg   string
		usage bool
	}{
		{"empty argv", nil, "You must provide a nonzero service ID with -r", false},
		{"only EAL args", []string{"-l", "0", "--"}, "You must provide a nonzero service ID with -r", false},
		{"missing -r", []string{"--", "-n", "3"}, "You must provide a nonzero service ID with -r", false},
		{"service 0", []string{"--", "-r", "0"}, "You must provide a nonzero service ID with -r", false},
		{"service 32", []string{"--", "-r", "32"}, "Service ID must be less than 32", false},
		{"service overflowing uint64", []string{"--", "-r", "99999999999999999999"}, "Service ID must be less than 32", false},
		{"service not a number", []string{"--", "-r", "abc"}, `Option -r needs a decimal number, not "abc"`, false},
		{"service with trailing junk", []string{"--", "-r", "1x"}, `Option -r needs a decimal number, not "1x"`, false},
		{"negative service", []string{"--", "-r", "-1"}, `Option -r needs a decimal number, not "-1"`, false},
		{"instance 0", []string{"--", "-r", "1", "-n", "0"}, "Instance ID must be between 1 and 127", false},
		{"instance 128", []string{"--", "-r", "1", "-n", "128"}, "Instance ID must be between 1 and 127", false},
		{"ttl 0", []string{"--", "-r", "1", "-t", "0"}, "Time to live argument can't be 0", false},
		{"ttl beyond uint16", []string{"--", "-r", "1", "-t", "65536"}, "Time to live argument must be at most 65535", false},
		{"packet limit 0", []string{"--", "-r", "1", "-l", "0"}, "Packet time to live argument can't be 0", false},
		{"packet limit beyond uint16", []string{"--", "-r", "1", "-l", "70000"}, "Packet time to live argument must be at most 65535", false},
		{"unknown option", []string{"--", "-r", "1", "-x"}, "Unknown option `-x'.", true},
		{"unknown option in a cluster", []string{"--", "-mq"}, "Unknown option `-q'.", true},
		{"unprintable option", []string{"--", "-\x01"}, "Unknown option character `\\x1'.", true},
		{"non-ASCII option", []string{"--", "-é"}, "Unknown option character `\\xc3'.", true},
		{"long option", []string{"--", "--verbose"}, "Unknown option `--verbose'.", true},
		{"missing value", []string{"--", "-r"}, "Option -r requires an argument.", true},
		{"missing value before --", []string{"--", "-r", "1", "-t", "--", "x"}, "Option -t requires an argument.", true},
		{"-F without a path", []string{"-F"}, "Option -F requires an argument.", true},
		{"-F with an empty path", []string{"-F", ""}, "Option -F requires an argument.", true},
		{"-F not first", []string{"-l", "0", "-F", "c.json", "--", "-r", "1"}, "-F <config.json> must be the first argument", false},
		{"bad core list", []string{"-l", "0-x", "--", "-r", "1"}, "invalid EAL core list in -l 0-x", false},
		{"reversed core range", []string{"-l", "3-1", "--", "-r", "1"}, "invalid EAL core list in -l 3-1", false},
		{"core beyond RTE_MAX_LCORE", []string{"-l", "128", "--", "-r", "1"}, "invalid EAL core list in -l 128", false},
		{"empty core mask", []string{"-c", "0x0", "--", "-r", "1"}, "invalid EAL core list in -c 0x0", false},
		{"core mask beyond RTE_MAX_LCORE", []string{"-c", "1" + strings.Repeat("0", 32), "--", "-r", "1"}, "invalid EAL core list in -c 1" + strings.Repeat("0", 32), false},
		{"core list without value", []string{"-l", "--", "-r", "1"}, "EAL option -l requires an argument", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseArgs(tt.argv, testCPUs)
			var ae *ArgError
			if !errors.As(err, &ae) {
				t.Fatalf("parseArgs(%q) = %+v, %v; want an *ArgError", tt.argv, got, err)
			}
			if ae.Msg != tt.msg || err.Error() != tt.msg || ae.ShowUsage != tt.usage {
				t.Fatalf("parseArgs(%q): Msg %q ShowUsage %v; want %q, %v", tt.argv, ae.Msg, ae.ShowUsage, tt.msg, tt.usage)
			}
			if !reflect.DeepEqual(got, Args{}) {
				t.Fatalf("parseArgs returned %+v with its error", got)
			}
		})
	}
}

func TestParseArgsErrorNamesArgument(t *testing.T) {
	_, err := parseArgs([]string{"--", "-r", "1", "-t", "0"}, testCPUs)
	var ae *ArgError
	if !errors.As(err, &ae) || ae.Arg != "-t 0" {
		t.Fatalf("err = %#v, want Arg \"-t 0\"", err)
	}
}

func TestParseArgsDoesNotAliasArgv(t *testing.T) {
	argv := []string{"--", "-r", "1", "--", "a", "b"}
	got, err := parseArgs(argv, testCPUs)
	if err != nil {
		t.Fatal(err)
	}
	got.AppArgs[0] = "changed"
	if argv[4] != "a" {
		t.Fatal("AppArgs shares argv's storage")
	}
}

func TestParseArgsUsesThisMachine(t *testing.T) {
	// CPU 0 exists everywhere, so no clamp notice.
	got, err := ParseArgs([]string{"-l", "0", "--", "-r", "1"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Cores, []int{0}) || len(got.Notices) != 1 {
		t.Fatalf("got %+v", got)
	}
}

func TestParseArgsClampsOnOneCPU(t *testing.T) {
	for _, ncpu := range []int{1, 0, -3} { // a nonsense count acts as 1
		got, err := parseArgs([]string{"-l", "2-3", "--", "-r", "1"}, ncpu)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Cores, []int{0}) {
			t.Fatalf("ncpu %d: Cores = %v, want [0]", ncpu, got.Cores)
		}
	}
}

func TestUsageTextIsONVMs(t *testing.T) {
	want := "Usage: ./build/simple_forward [EAL args] -- [-n <instance_id>] [-r <service_id>] " +
		"[-t <time_to_live>] [-l <pkt_limit>] [-m (manual core assignment flag)] [-s (share core flag)]\n\n"
	if got := UsageText("./build/simple_forward"); got != want {
		t.Fatalf("UsageText = %q\nwant %q", got, want)
	}
}

// FuzzParseArgs splits its input at NUL bytes into argv. parseArgs must never
// panic, must fail only with *ArgError, and what it accepts must be in range.
func FuzzParseArgs(f *testing.F) {
	for _, s := range []string{
		"-l\x000\x00-n\x003\x00--proc-type=secondary\x00--\x00-r\x001\x00--\x00-p\x001",
		"-F\x00cfg.json\x00--\x00-m",
		"--\x00-msr3\x00-n12\x00-t5\x00-l9",
		"-c\x000xFF\x00--lcores\x00(0-3)@1\x00--\x00-r\x0031\x00word",
		"-r\x001\x00foo\x00-s",
		"--\x00-r",
		"-l\x000-127\x00--\x00-r\x001",
		"",
	} {
		f.Add(s, 4)
	}
	f.Fuzz(func(t *testing.T, s string, ncpu int) {
		argv := strings.Split(s, "\x00")
		a, err := parseArgs(argv, ncpu)
		if err != nil {
			var ae *ArgError
			if !errors.As(err, &ae) || ae.Msg == "" {
				t.Fatalf("error %T %v is not an *ArgError with a message", err, err)
			}
			return
		}
		if a.Service >= 32 || (a.Service == 0 && a.ConfigFile == "") {
			t.Fatalf("service %d accepted", a.Service)
		}
		if a.Instance >= 128 {
			t.Fatalf("instance %d accepted", a.Instance)
		}
		if a.TTL < 0 || a.TTL > 65535*time.Second || a.TTL%time.Second != 0 {
			t.Fatalf("TTL %v accepted", a.TTL)
		}
		if a.PktLimit > 65535*1_000_000 || a.PktLimit%1_000_000 != 0 {
			t.Fatalf("packet limit %d accepted", a.PktLimit)
		}
		for i, c := range a.Cores {
			if c < 0 || c >= max(ncpu, 1) || (i > 0 && c <= a.Cores[i-1]) {
				t.Fatalf("cores %v on %d CPUs", a.Cores, ncpu)
			}
		}
		for _, n := range a.Notices {
			if n == "" || (strings.Contains(n, "\n") && !strings.Contains(s, "\n")) {
				t.Fatalf("notice %q is not one line", n)
			}
		}
	})
}

func TestParseArgsConfigFileFillsWhatTheCommandLineLeavesOut(t *testing.T) {
	dir := t.TempDir()
	cfg := dir + "/example_config.json"
	// ONVM's examples/example_config.json.
	if err := os.WriteFile(cfg, []byte(`{
        "dpdk": {"corelist": "4", "memory_channels": 3, "portmask": 2},
        "onvm": {"output": "stdout", "serviceid": 1, "instanceid": 3}
}`), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := ParseArgs([]string{"-F", cfg})
	if err != nil {
		t.Fatal(err)
	}
	if a.Service != 1 || a.Instance != 3 || len(a.Cores) != 1 {
		t.Fatalf("got service %d instance %d cores %v, want 1, 3 and one core", a.Service, a.Instance, a.Cores)
	}
	for _, k := range []string{"dpdk.memory_channels", "dpdk.portmask", "onvm.output"} {
		if !slices.ContainsFunc(a.Notices, func(n string) bool { return strings.HasSuffix(n, "ignoring "+k) }) {
			t.Errorf("no notice about %s in %q", k, a.Notices)
		}
	}
	// The command line wins, option by option.
	a, err = ParseArgs([]string{"-F", cfg, "-l", "0", "--", "-r", "5", "--", "-d", "2"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Service != 5 || a.Instance != 3 || !slices.Equal(a.Cores, []int{0}) || !slices.Equal(a.AppArgs, []string{"-d", "2"}) {
		t.Fatalf("overrides: got %+v", a)
	}
	if _, err := ParseArgs([]string{"-F", dir + "/missing.json"}); err == nil || !strings.Contains(err.Error(), "cannot read config file") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestParseNFConfigRefusals(t *testing.T) {
	for _, tc := range []struct{ json, want string }{
		{`{`, "bad JSON"},
		{`{"onvm": {}}`, "onvm.serviceid is required"},
		{`{"onvm": {"serviceid": 0}}`, "out of range"},
		{`{"onvm": {"serviceid": 32}}`, "out of range"},
		{`{"onvm": {"serviceid": 1, "instanceid": 128}}`, "out of range"},
		{`{"onvm": {"serviceid": "x"}}`, "whole number"},
		{`{"onvm": {"serviceid": 1}, "dpdk": {"corelist": [1]}}`, "dpdk.corelist"},
	} {
		if _, err := ParseNFConfig([]byte(tc.json)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.json, err, tc.want)
		}
	}
	c, err := ParseNFConfig([]byte(`{"onvm": {"serviceid": "2"}, "dpdk": {"corelist": 4}}`))
	if err != nil || c.Service != 2 || c.CoreList != "4" {
		t.Fatalf("numbers as strings and a numeric corelist: %+v %v", c, err)
	}
}
