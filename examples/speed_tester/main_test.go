package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reinforce-nfv/reinforce/examples/internal/nfapp"
	"github.com/reinforce-nfv/reinforce/nflib"
)

func TestParseArgs(t *testing.T) {
	def := config{dst: 1, printDelay: 10000000, size: 14, count: 128}
	with := func(f func(*config)) config {
		c := def
		f(&c)
		return c
	}
	tests := []struct {
		name string
		args []string
		want config
		err  string
	}{
		{name: "defaults", args: []string{"-d", "1"}, want: def},
		{name: "everything", args: []string{"-d", "3", "-p", "100", "-s", "64", "-m", "aa:bb:cc:dd:ee:ff", "-c", "16000", "-l"},
			want: config{dst: 3, printDelay: 100, size: 64, dstMAC: [6]byte{0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff},
				count: 16000, latency: true}},
		{name: "install test line", args: []string{"-d", "1", "-c", "16000"}, want: with(func(c *config) { c.count = 16000 })},
		{name: "count 0 creates none", args: []string{"-d1", "-c0"}, want: with(func(c *config) { c.count = 0 })},
		{name: "count at the maximum", args: []string{"-d1", "-c16384"}, want: with(func(c *config) { c.count = 16384 })},
		{name: "clustered flags", args: []string{"-ld", "1"}, want: with(func(c *config) { c.latency = true })},
		{name: "no destination", args: []string{"-c", "5"}, err: "Speed tester NF requires a destination NF with the -d flag."},
		{name: "count over the maximum", args: []string{"-d", "1", "-c", "16385"}, err: "Illegal packet number(1 ~ 16384) 16385!"},
		{name: "size below the Ethernet header", args: []string{"-d", "1", "-s", "13"},
			err: "Option -s must be at least 14 (the Ethernet header), not 13"},
		{name: "size over uint16", args: []string{"-d", "1", "-s", "65536"}, err: "Option -s must be at most 65535, not 65536"},
		{name: "bad MAC", args: []string{"-d", "1", "-m", "aa:bb"},
			err: `Option -m needs a MAC address such as aa:bb:cc:dd:ee:ff, not "aa:bb"`},
		{name: "pcap replay defaults to 16384 packets", args: []string{"-o", "x.pcap", "-d", "1"},
			want: with(func(c *config) { c.pcap, c.count = "x.pcap", 16384 })},
		{name: "pcap replay with a count", args: []string{"-d", "1", "-c", "10", "-o", "x.pcap"},
			want: with(func(c *config) { c.pcap, c.count = "x.pcap", 10 })},
		{name: "pcap replay has no latency probes", args: []string{"-d", "1", "-o", "x.pcap", "-l"},
			err: "Option -l cannot be combined with -o: replayed packets carry no timestamp"},
		{name: "missing value", args: []string{"-d"}, err: "Option -d requires an argument."},
		{name: "unknown option", args: []string{"-d", "1", "-a"}, err: "Unknown option `-a'."},
		{name: "destination 0", args: []string{"-d", "0"}, err: "Option -d must name a service ID from 1 to 31"},
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
		name   string
		argv   []string
		usage  string // prefix of stdout; "" for none
		stderr string // substring of stderr
	}{
		{name: "missing -d", argv: []string{"-l", "1", "--", "-r", "1", "--"},
			usage: "Usage:\nst [EAL args] -- [NF_LIB args] -- -d <destination>", stderr: "Speed tester NF requires a destination NF with the -d flag.\n"},
		{name: "unknown NF option", argv: []string{"--", "-r", "1", "--", "-d", "1", "-x"},
			usage: "Usage:\nst [EAL args]", stderr: "Unknown option `-x'.\n"},
		{name: "missing pcap file", argv: []string{"--", "-r", "1", "--", "-d", "1", "-o", "/nonexistent/a.pcap"},
			stderr: "pcap replay: open /nonexistent/a.pcap: no such file or directory\n"},
		{name: "bad ONVM option shows ONVM's usage", argv: []string{"--", "-r", "1", "-z", "--", "-d", "1"},
			usage: "Usage: st [EAL args] -- [-n <instance_id>]", stderr: "Unknown option `-z'.\n"},
		{name: "no manager", argv: []string{"--", "-r", "1", "--", "-d", "2"}, stderr: "connect to manager"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run("st", tt.argv, nfapp.IO{Stdout: &stdout, Stderr: &stderr}); code != 1 {
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

func TestCheckRoomCountsTheTimestamp(t *testing.T) {
	tests := []struct {
		f    frame
		room int
		err  string
	}{
		{frame{size: 14, count: 128}, 2048, ""},
		{frame{size: 2048, count: 128}, 2048, ""},
		{frame{size: 2049, count: 128}, 2048, "packets of 2049 bytes do not fit in a slot's 2048 bytes of data room"},
		{frame{size: 2040, count: 128, latency: true}, 2048, ""},
		{frame{size: 2041, count: 128, latency: true}, 2048,
			"packets of 2049 bytes (-s 2041 plus the 8-byte latency timestamp) do not fit in a slot's 2048 bytes of data room"},
		{frame{size: 2048, count: 0, latency: true}, 2048, ""}, // no packets, no probes
	}
	for _, tt := range tests {
		err := checkRoom(tt.f, tt.room)
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if msg != tt.err {
			t.Errorf("checkRoom(%+v, %d) = %q, want %q", tt.f, tt.room, msg, tt.err)
		}
	}
}
