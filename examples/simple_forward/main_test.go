package main

import (
	"bytes"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reinforce-nfv/reinforce/examples/internal/nfapp"
	"github.com/reinforce-nfv/reinforce/nflib"
	"github.com/reinforce-nfv/reinforce/shm"
)

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want config
		err  string
	}{
		{name: "destination only", args: []string{"-d", "2"}, want: config{dst: 2, printDelay: 1000000}},
		{name: "print delay", args: []string{"-d2", "-p", "5"}, want: config{dst: 2, printDelay: 5}},
		{name: "print delay 0 never prints", args: []string{"-p", "0", "-d", "31"}, want: config{dst: 31}},
		{name: "no destination", args: []string{"-p", "5"}, err: "Simple Forward NF requires destination flag -d."},
		{name: "nothing", err: "Simple Forward NF requires destination flag -d."},
		{name: "destination 0", args: []string{"-d", "0"}, err: "Option -d must name a service ID from 1 to 31"},
		{name: "destination too big", args: []string{"-d", "32"}, err: "Option -d must be at most 31, not 32"},
		{name: "destination not a number", args: []string{"-d", "x"}, err: `Option -d needs a decimal number, not "x"`},
		{name: "missing value", args: []string{"-d", "1", "-p"}, err: "Option -p requires an argument."},
		{name: "unknown option", args: []string{"-d", "1", "-s", "3"}, err: "Unknown option `-s'."},
		{name: "bad -d reported before a later unknown option", args: []string{"-d", "x", "-q"},
			err: `Option -d needs a decimal number, not "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseArgs(tt.args)
			msg := ""
			if err != nil {
				msg = err.Error()
			}
			if got != tt.want || msg != tt.err {
				t.Errorf("parseArgs(%q) = %+v, %q; want %+v, %q", tt.args, got, msg, tt.want, tt.err)
			}
		})
	}
}

func TestRunRefusesBadCommandLines(t *testing.T) {
	t.Setenv(nflib.SocketEnv, filepath.Join(t.TempDir(), "no-manager.sock"))
	tests := []struct {
		name       string
		argv       []string
		usage      string // prefix of stdout
		stderr     string // substring of stderr
		wantStdout bool
	}{
		{name: "missing -d", argv: []string{"-l", "1", "--", "-r", "1", "--"},
			usage: "Usage:\nsf [EAL args] -- [NF_LIB args] -- -d <destination>", stderr: "Simple Forward NF requires destination flag -d.\n"},
		{name: "unknown NF option", argv: []string{"--", "-r", "1", "--", "-d", "1", "-x"},
			usage: "Usage:\nsf [EAL args]", stderr: "Unknown option `-x'.\n"},
		{name: "bad ONVM option shows ONVM's usage", argv: []string{"--", "-r", "1", "-z", "--", "-d", "1"},
			usage: "Usage: sf [EAL args] -- [-n <instance_id>]", stderr: "Unknown option `-z'.\n"},
		{name: "no service ID", argv: []string{"--", "--", "-d", "1"},
			stderr: "You must provide a nonzero service ID with -r\n"},
		{name: "no manager", argv: []string{"--", "-r", "1", "--", "-d", "2"},
			stderr: "connect to manager"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run("sf", tt.argv, nfapp.IO{Stdout: &stdout, Stderr: &stderr}); code != 1 {
				t.Errorf("exit status %d, want 1", code)
			}
			if !strings.HasPrefix(stdout.String(), tt.usage) || (tt.usage == "") != (stdout.Len() == 0) {
				t.Errorf("stdout %q, want usage %q", stdout.String(), tt.usage)
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr %q, want %q in it", stderr.String(), tt.stderr)
			}
		})
	}
}

func TestForwarderSendsEverythingToDestination(t *testing.T) {
	var out bytes.Buffer
	f := newForwarder(config{dst: 7, printDelay: 3}, &out)
	m := &shm.Meta{Port: 1, Len: 14, Flags: 0xff}
	data := make([]byte, 14)
	var prints []string
	for i := 1; i <= 7; i++ {
		if a := f.process(m, data); a != nflib.ToNF(7) {
			t.Fatalf("packet %d: action %v, want ToNF(7)", i, a)
		}
		if out.Len() > 0 {
			prints = append(prints, out.String())
			out.Reset()
		}
	}
	want := []string{
		"\x1b[2J\x1b[1;1HPACKETS\n-----\nPort : 1\nSize : 14\nN°   : 3\n\n\nNo IP4 header found\n",
		"\x1b[2J\x1b[1;1HPACKETS\n-----\nPort : 1\nSize : 14\nN°   : 6\n\n\nNo IP4 header found\n",
	}
	if len(prints) != len(want) {
		t.Fatalf("printed %d times (%q), want after packets 3 and 6", len(prints), prints)
	}
	for i := range want {
		if prints[i] != want[i] {
			t.Errorf("print %d = %q, want %q", i, prints[i], want[i])
		}
	}
}

func TestForwarderDoesNotAllocate(t *testing.T) {
	f := newForwarder(config{dst: 1, printDelay: 1}, io.Discard) // prints on every packet
	m := &shm.Meta{Len: 64}
	data := make([]byte, 64)
	data[14] = 0x45
	data[23] = 17
	if n := testing.AllocsPerRun(1000, func() { f.process(m, data) }); n != 0 {
		t.Errorf("process allocates %v times per packet", n)
	}
}
