package nfapp

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/reinforce-nfv/reinforce/examples/internal/getopt"
)

func TestParsePrintsWhatONVMPrints(t *testing.T) {
	usage := func(w io.Writer, prog string) { io.WriteString(w, "nf usage of "+prog+"\n") }
	tests := []struct {
		name           string
		argv           []string
		nfErr          error
		ok             bool
		app            []string
		stdout, stderr string
	}{
		{name: "good", argv: []string{"-l", "0", "--", "-r", "1", "--", "-d", "2"}, ok: true,
			app: []string{"-d", "2"}, stderr: "ignoring EAL argument -l 0\n"},
		{name: "ONVM error with usage", argv: []string{"--", "-x"},
			stdout: "Usage: prog [EAL args] -- [-n <instance_id>] [-r <service_id>] [-t <time_to_live>]" +
				" [-l <pkt_limit>] [-m (manual core assignment flag)] [-s (share core flag)]\n\n",
			stderr: "Unknown option `-x'.\n"},
		{name: "ONVM error without usage", argv: []string{"--", "-t", "0", "-r", "1"},
			stderr: "Time to live argument can't be 0\n"},
		{name: "NF error", argv: []string{"--", "-r", "1", "--", "-q"}, app: []string{"-q"},
			nfErr: getopt.Errorf("Unknown option `-q'."), stdout: "nf usage of prog\n", stderr: "Unknown option `-q'.\n"},
		{name: "NF error without usage", argv: []string{"--", "-r", "1", "--", "-o", "f"}, app: []string{"-o", "f"},
			nfErr: &getopt.Error{Msg: "no pcap", NoUsage: true}, stderr: "no pcap\n"},
		{name: "other NF error shows usage", argv: []string{"--", "-r", "1"},
			nfErr: errors.New("bad"), stdout: "nf usage of prog\n", stderr: "bad\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			var app []string
			called := false
			ok := Parse("prog", tt.argv, IO{Stdout: &stdout, Stderr: &stderr}, usage, func(a []string) error {
				app, called = a, true
				return tt.nfErr
			})
			if ok != tt.ok || stdout.String() != tt.stdout || stderr.String() != tt.stderr {
				t.Errorf("Parse = %v, stdout %q, stderr %q; want %v, %q, %q",
					ok, stdout.String(), stderr.String(), tt.ok, tt.stdout, tt.stderr)
			}
			if called && !slices.Equal(app, tt.app) {
				t.Errorf("NF arguments %q, want %q", app, tt.app)
			}
		})
	}
}
