package getopt

import (
	"errors"
	"slices"
	"testing"
)

func TestParseFollowsGlibcGetopt(t *testing.T) {
	const optstring = "d:p:s:m:o:c:l"
	tests := []struct {
		name     string
		argv     []string
		opts     []Opt
		operands []string
		err      string
	}{
		{name: "empty"},
		{name: "value in next word", argv: []string{"-d", "2", "-p", "10"},
			opts: []Opt{{'d', "2"}, {'p', "10"}}},
		{name: "value attached", argv: []string{"-d2"}, opts: []Opt{{'d', "2"}}},
		{name: "next word taken even if it looks like an option", argv: []string{"-d", "-p"},
			opts: []Opt{{'d', "-p"}}},
		{name: "flags cluster, value ends the cluster", argv: []string{"-lc5"},
			opts: []Opt{{'l', ""}, {'c', "5"}}},
		{name: "flag then valued option in next word", argv: []string{"-lc", "5"},
			opts: []Opt{{'l', ""}, {'c', "5"}}},
		{name: "last repeat is last in order", argv: []string{"-d", "1", "-d", "3"},
			opts: []Opt{{'d', "1"}, {'d', "3"}}},
		{name: "operands are skipped over (permuted)", argv: []string{"x", "-l", "-", "y"},
			opts: []Opt{{'l', ""}}, operands: []string{"x", "-", "y"}},
		{name: "double dash ends options", argv: []string{"-l", "--", "-d", "2"},
			opts: []Opt{{'l', ""}}, operands: []string{"-d", "2"}},
		{name: "missing value", argv: []string{"-l", "-d"},
			opts: []Opt{{'l', ""}}, err: "Option -d requires an argument."},
		{name: "unknown option after good ones", argv: []string{"-d", "1", "-x", "-l"},
			opts: []Opt{{'d', "1"}}, err: "Unknown option `-x'."},
		{name: "unknown inside a cluster", argv: []string{"-lx"},
			opts: []Opt{{'l', ""}}, err: "Unknown option `-x'."},
		{name: "colon is never an option", argv: []string{"-:"}, err: "Unknown option `-:'."},
		{name: "long option", argv: []string{"--dst=1"}, err: "Unknown option `--'."},
		{name: "unprintable option", argv: []string{"-\x01"}, err: "Unknown option character `\\x1'."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, operands, err := Parse(tt.argv, optstring)
			if !slices.Equal(opts, tt.opts) || !slices.Equal(operands, tt.operands) {
				t.Errorf("Parse(%q) = %v, %q; want %v, %q", tt.argv, opts, operands, tt.opts, tt.operands)
			}
			got := ""
			if err != nil {
				var ge *Error
				if !errors.As(err, &ge) {
					t.Fatalf("error %v is %T, want *Error", err, err)
				}
				got = err.Error()
			}
			if got != tt.err {
				t.Errorf("error %q, want %q", got, tt.err)
			}
		})
	}
}

func TestUintRefusesWhatStrtoulWouldMisread(t *testing.T) {
	tests := []struct {
		arg   string
		limit uint64
		want  uint64
		err   string
	}{
		{"0", 10, 0, ""},
		{"10", 10, 10, ""},
		{"18446744073709551615", 1<<64 - 1, 1<<64 - 1, ""},
		{"11", 10, 0, "Option -d must be at most 10, not 11"},
		{"18446744073709551616", 1<<64 - 1, 0, "Option -d must be at most 18446744073709551615, not 18446744073709551616"},
		{"abc", 10, 0, `Option -d needs a decimal number, not "abc"`},
		{"", 10, 0, `Option -d needs a decimal number, not ""`},
		{"-1", 10, 0, `Option -d needs a decimal number, not "-1"`},
		{"0x10", 100, 0, `Option -d needs a decimal number, not "0x10"`},
	}
	for _, tt := range tests {
		got, err := Opt{'d', tt.arg}.Uint(tt.limit)
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if got != tt.want || msg != tt.err {
			t.Errorf("Uint(%q, %d) = %d, %q; want %d, %q", tt.arg, tt.limit, got, msg, tt.want, tt.err)
		}
	}
}

func TestMACTakesSixHexGroups(t *testing.T) {
	tests := []struct {
		arg  string
		want [6]byte
		ok   bool
	}{
		{"aa:bb:cc:dd:ee:ff", [6]byte{0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}, true},
		{"AA:0B:c:1:0:F0", [6]byte{0xaa, 0x0b, 0x0c, 0x01, 0x00, 0xf0}, true},
		{"aa:bb:cc:dd:ee", [6]byte{}, false},
		{"aa:bb:cc:dd:ee:ff:00", [6]byte{}, false},
		{"aa:bb:cc:dd:ee:fff", [6]byte{}, false},
		{"aa:bb:cc:dd:ee:", [6]byte{}, false},
		{"aa-bb-cc-dd-ee-ff", [6]byte{}, false},
		{"aa:bb:cc:dd:ee:gg", [6]byte{}, false},
		{"", [6]byte{}, false},
	}
	for _, tt := range tests {
		got, err := Opt{'m', tt.arg}.MAC()
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("MAC(%q) = %x, %v; want %x, ok=%v", tt.arg, got, err, tt.want, tt.ok)
		}
		if err != nil && err.Error() != `Option -m needs a MAC address such as aa:bb:cc:dd:ee:ff, not "`+tt.arg+`"` {
			t.Errorf("MAC(%q) error %q", tt.arg, err)
		}
	}
}

func TestPrintDelay(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		want    uint64
		wantErr bool
	}{
		{nil, 7, false},
		{[]string{"-p", "100"}, 100, false},
		{[]string{"-p", "x"}, 7, true},
		{[]string{"-q"}, 7, true},
	} {
		got, err := PrintDelay(tc.args, 7)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("%v: %d, %v", tc.args, got, err)
		}
	}
}
