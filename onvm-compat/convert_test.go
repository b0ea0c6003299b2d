package onvmcompat

import (
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/manager/config"
)

func TestConvertONVMsExampleDeployment(t *testing.T) {
	data, err := os.ReadFile("examples/example_nf_deploy.json")
	if err != nil {
		t.Fatal(err)
	}
	d, err := ParseDeploy(data)
	if err != nil {
		t.Fatal(err)
	}
	examples, _ := filepath.Abs("examples")
	in := ConvertInput{
		GoSh:        strings.Fields("onvm/go.sh -k 3 -n 0xF8 -s stdout -r 10 -d 2"),
		NFs:         [][]string{{"basic_monitor", "-F", "../example_config.json", "--", "--", "-p", "5"}},
		Deploy:      &d,
		ExamplesDir: examples,
		BinDir:      "/opt/reinforce/bin",
		NCPU:        runtime.NumCPU(),
		Ports:       DefaultPortTemplate(),
	}
	cfg, notes, err := Convert(in)
	if err != nil {
		t.Fatal(err)
	}
	m := cfg.Manager
	if m.StatsOut != config.StatsStdout || m.NumServices != 10 || m.TTL != 10*time.Second {
		t.Fatalf("manager %+v", m)
	}
	if len(cfg.Ports) != 2 || cfg.Ports[1].ID != 1 {
		t.Fatalf("ports %+v, want 0 and 1 (mask 3)", cfg.Ports)
	}
	def, _ := cfg.Chain(m.DefaultChain)
	if !slices.Equal(def.Services, []int{2}) {
		t.Fatalf("default chain %+v, want [2] (-d 2)", def)
	}
	want := []config.NF{
		{Tag: "basic_monitor", Service: 1, Instance: 3, Command: []string{"/opt/reinforce/bin/basic_monitor", "-p", "5"}},
		{Tag: "simple_forward", Service: 2, Command: []string{"/opt/reinforce/bin/simple_forward", "-d", "1"}},
		{Tag: "speed_tester", Service: 1, Command: []string{"/opt/reinforce/bin/speed_tester", "-d", "2", "-c", "16000"}},
		{Tag: "speed_tester", Service: 3, Command: []string{"/opt/reinforce/bin/speed_tester", "-d", "3", "-c", "16000"}},
	}
	if !reflect.DeepEqual(cfg.NFs, want) {
		t.Fatalf("NFs\n got %+v\nwant %+v", cfg.NFs, want)
	}
	if !slices.ContainsFunc(notes, func(n string) bool { return strings.Contains(n, "deployment TTL 10 s") }) {
		t.Errorf("notes %q lack the TTL mapping", notes)
	}

	// The TOML loads with manager/config and gives the same configuration.
	toml := EncodeTOML(cfg, []string{"converted"})
	back, _, err := config.Parse("converted.toml", toml)
	if err != nil {
		t.Fatalf("%v\n%s", err, toml)
	}
	if !reflect.DeepEqual(back, cfg) {
		t.Fatalf("round trip differs:\n got %+v\nwant %+v\n%s", back, cfg, toml)
	}
}

func TestConvertRefusesWhatTheScriptsRefuse(t *testing.T) {
	for _, tc := range []struct {
		in   ConvertInput
		want string
	}{
		{ConvertInput{GoSh: []string{"0,1", "0", "0xF8"}}, "Invalid Manager Cores"},
		{ConvertInput{NFs: [][]string{{"speed_tester", "-l", "1", "--", "-r", "1"}}}, "0 or at least 2 '--'"},
		{ConvertInput{NFs: [][]string{{"speed_tester", "0", "-d", "1"}}}, "nonzero service ID"},
		{ConvertInput{NFs: [][]string{{"b", "-F", "/nonexistent.json"}}}, "cannot read config file"},
	} {
		tc.in.NCPU, tc.in.Ports = 2, DefaultPortTemplate()
		if _, _, err := Convert(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestSplitWordsIsShlexForDeployParameters(t *testing.T) {
	for in, want := range map[string][]string{
		`1 -d 2 -c 16000`:        {"1", "-d", "2", "-c", "16000"},
		`  1  "a b" 'c d' e\ f `: {"1", "a b", "c d", "e f"},
		`x "" y`:                 {"x", "", "y"},
	} {
		got, err := splitWords(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%q: %q %v, want %q", in, got, err, want)
		}
	}
	if _, err := splitWords(`a "b`); err == nil {
		t.Error("unterminated quote accepted")
	}
}
