package onvmcompat

import (
	"errors"
	"strings"
	"testing"

	"github.com/reinforce-nfv/reinforce/manager/config"
)

// FuzzParseGoSh feeds go.sh lines (words split at NUL) through the whole
// path go.sh takes: ParseGoSh, MgrArgv, ParseMgrArgs, Apply, Validate. None
// may panic, refusals are the typed errors, and what is accepted validates.
func FuzzParseGoSh(f *testing.F) {
	for _, s := range []string{
		"-k\x000\x00-n\x000xF8\x00-s\x00stdout\x00-t\x005",
		"0,1,2\x000\x000xF8\x00-s\x00stdout\x00-t\x005",
		"-k\x003\x00-n\x000xF0\x00-m\x002,3,4\x00-r\x0010\x00-d\x002\x00-s\x00web\x00-p\x009000\x00-vv\x00-c\x00-j",
		"-k\x00ffffffffffffffffff\x00-n\x000x1",
		"",
	} {
		f.Add(s, 4)
	}
	f.Fuzz(func(t *testing.T, s string, ncpu int) {
		ncpu = max(1, min(ncpu, 512))
		g, err := ParseGoSh("go.sh", strings.Split(s, "\x00"))
		if err != nil {
			var ge *GoShError
			if !errors.As(err, &ge) || len(ge.Lines) == 0 {
				t.Fatalf("error %T %v is not a *GoShError with lines", err, err)
			}
			return
		}
		eal, native := g.MgrArgv()
		a, err := ParseMgrArgs(eal, native, ncpu)
		if err != nil {
			return
		}
		cfg := config.DefaultConfig()
		a.Apply(&cfg, false, DefaultPortTemplate())
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%q accepted but the configuration is invalid: %v", s, err)
		}
	})
}

// FuzzParseDeploy checks that no deployment file panics the parser or the
// conversion of its entries' start_nf.sh lines.
func FuzzParseDeploy(f *testing.F) {
	f.Add([]byte(`{"globals": [{"TTL": 10}, {"directory": "o"}], "speed_tester": [{"parameters": "1 -d 2 -c 16000"}]}`))
	f.Add([]byte(`{"globals": {"TTL": "x"}}`))
	f.Add([]byte(`[1]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ParseDeploy(data)
		if err != nil {
			return
		}
		for _, e := range d.NFs {
			if words, err := splitWords(e.Parameters); err == nil {
				StartNFArgv(words)
			}
		}
	})
}
