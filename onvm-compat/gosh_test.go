package onvmcompat

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseGoShBothSyntaxesGiveONVMsManagerLine(t *testing.T) {
	for _, tc := range []struct {
		name, args  string
		eal, native string
		lines       []string
	}{
		{"flags, defaults", "-k 0 -n 0xF8 -s stdout -t 5",
			"-l 0,1,2 -n 4 --proc-type=primary --base-virtaddr=0x7f000000000",
			"-p 0 -n 0xF8 -s stdout -t 5 -v 1",
			[]string{"INFO: Using default CPU cores 0,1,2", "", "Base virtual address set to default 0x7f000000000"}},
		{"legacy", "0,1,2 0 0xF8 -s stdout -t 5",
			"-l 0,1,2 -n 4 --proc-type=primary --base-virtaddr=0x7f000000000",
			"-p 0 -n 0xF8 -s stdout -t 5 -v 1",
			[]string{"Base virtual address set to default 0x7f000000000"}},
		{"every flag", "-k 3 -n 0xF0 -m 2,3,4 -r 10 -d 2 -s web -p 9000 -z 2 -l 64 -c -j -vv -a 0x7e000000000",
			"-l 2,3,4 -n 4 --proc-type=primary --base-virtaddr=0x7e000000000",
			"-p 3 -n 0xF0 -r 10 -d 2 -s web -z 2 -l 64 -c -j -v 3",
			[]string{"WARNING: Manager and NF cores overlap.", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := ParseGoSh("./go.sh", strings.Fields(tc.args))
			if err != nil {
				t.Fatal(err)
			}
			eal, native := g.MgrArgv()
			if strings.Join(eal, " ") != tc.eal || strings.Join(native, " ") != tc.native {
				t.Fatalf("got %q -- %q\nwant %q -- %q", eal, native, tc.eal, tc.native)
			}
			if !slices.Equal(g.Lines, tc.lines) {
				t.Fatalf("lines %q, want %q", g.Lines, tc.lines)
			}
		})
	}
}

func TestParseGoShRefusesWithGoShsMessages(t *testing.T) {
	for _, tc := range []struct{ args, first string }{
		{"", "Error: Invalid input."},
		{"0,1 0 0xF8", "Error: Invalid Manager Cores. Proper syntax: ./go.sh <cores> <port mask> <NF cores> [OPTIONS]"},
		{"0,1,2 x 0xF8", "Error: Invalid Port Mask. Proper syntax: ./go.sh <cores> <port mask> <NF cores> [OPTIONS]"},
		{"0,1,2 1 F8", "Error: Invalid NF Core Mask. Proper syntax: ./go.sh <cores> <port mask> <NF cores> [OPTIONS]"},
		{"0,1,2 1 0xF8 -m 0,1,2", "Error: Cannot use manual manager core flag with legacy syntax. Proper syntax: ./go.sh <cores> <port mask> <NF cores> [OPTIONS]"},
		{"0,1,2 1 0xF8 -k 1", "Error: Cannot use manual port mask flag with legacy syntax."},
		{"0,1,2 1 0xF8 -n 0xF", "Error: Cannot use manual NF core mask flag with legacy syntax."},
		{"-n 0xF8", "Error: Port Mask not set. openNetVM requires that a Port Mask be set using -k <port mask> using a hexadecimal number (without 0x)"},
		{"-k z1 -n 0xF8", "Error: Invalid port mask. Check input and try again."},
		{"-k 1", "Error: NF Core Mask not set. openNetVM requires that a NF Core Mask be set using -n <nf mask> using a hexadecimal number (starting with 0x)"},
		{"-k 1 -n F8", "Error: Invalid NF core mask. Check input and try again."},
		{"-k 1 -n 0xF8 -m 0,1", "Error: Invalid CPU cores. openNetVM accepts 3 or more cores. Check input and try again."},
		{"-k 1 -n 0xF8 -x", "Unknown option -"},
		{"-k 1 -n 0xF8 -s", "Unknown option -"},
	} {
		_, err := ParseGoSh("./go.sh", strings.Fields(tc.args))
		var ge *GoShError
		if !errors.As(err, &ge) || len(ge.Lines) == 0 || !strings.HasPrefix(ge.Lines[0], tc.first) {
			t.Errorf("%q: %v, want first line %q", tc.args, err, tc.first)
		}
	}
	_, err := ParseGoSh("./go.sh", []string{"-k", "1", "-n", "0xF8", "-x"})
	var ge *GoShError
	if !errors.As(err, &ge) || !slices.Equal(ge.Stderr, []string{"./go.sh: illegal option -- x"}) {
		t.Fatalf("bash getopts' own message: %+v", ge)
	}
}

func TestParseGoShAcceptsWhatGoShsQuirksRefuse(t *testing.T) {
	for _, args := range []string{
		"0,1,9 1 0xF8", // a core with a 9
		"0,1,2 1 0xf8", // lower-case NF mask
		"-k f -n 0xf8 -m 9,10,11",
		"-vv -k 1 -n 0xF8",  // first argument not -x
		"-k 1 -k 3 -n 0xF8", // repeated flag: the last wins
	} {
		g, err := ParseGoSh("./go.sh", strings.Fields(args))
		if err != nil {
			t.Errorf("%q refused: %v", args, err)
			continue
		}
		if args[0] != '-' || strings.Contains(args, "0xf8") {
			if len(g.Notices) == 0 {
				t.Errorf("%q: no notice that ONVM's go.sh refuses it", args)
			}
		}
	}
	g, _ := ParseGoSh("./go.sh", strings.Fields("-k 1 -k 3 -n 0xF8"))
	if g.Ports != "3" {
		t.Fatalf("repeated -k: ports %q, want the last", g.Ports)
	}
}
