package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reinforce-nfv/reinforce/manager/config"
)

func TestONVMConvertWritesAConfigTheManagerLoads(t *testing.T) {
	out := filepath.Join(t.TempDir(), "onvm.toml")
	var stdout, stderr bytes.Buffer
	code := run([]string{"onvm", "convert", "--go-sh", "onvm/go.sh 0,1,2 1 0xF8 -s stdout -t 30",
		"--start-nf", "bridge 4", "--deploy", "../../onvm-compat/examples/example_nf_deploy.json", "-o", out}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	cfg, _, err := config.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.NFs) != 4 || cfg.NFs[0].Tag != "bridge" || cfg.NFs[3].Command[0] != "bin/speed_tester" || len(cfg.Ports) != 1 {
		t.Fatalf("config %+v", cfg)
	}
	if !strings.Contains(stderr.String(), "deployment TTL 10 s ignored: go.sh's -t wins") {
		t.Errorf("notes:\n%s", stderr.String())
	}
	for _, bad := range [][]string{{"onvm"}, {"onvm", "convert", "--go-sh", "0,1 0 0xF8"}, {"onvm", "convert", "extra"}} {
		stderr.Reset()
		if run(bad, &stdout, &stderr) == 0 || stderr.Len() == 0 {
			t.Errorf("%q: accepted", bad)
		}
	}
}
