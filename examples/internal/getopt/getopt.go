// Package getopt parses an example NF's own arguments with the rules of
// glibc's getopt(3), which ONVM's example NFs call on what onvm_nflib_init
// leaves them, so ONVM command lines keep working unchanged:
//
//   - an optstring such as "d:p:s:m:o:c:l" names the options; a colon after a
//     letter means it takes a value;
//   - flags cluster ("-lc5" is -l then -c 5); a value is attached ("-d2") or
//     the next word, even one that starts with '-' ("-d -p" sets d to "-p");
//   - non-option words are skipped over and returned as operands (glibc
//     permutes them to the end); "--" ends the options.
//
// Messages are ONVM's ("Unknown option `-x'."), except that a missing value
// always says "Option -X requires an argument.": ONVM's NFs say so only for
// the options they list one by one and call the others unknown.
//
// Numbers are stricter than ONVM's strtoul (see Uint): "-d abc" is an error
// here, where ONVM reads it as 0.
package getopt

import (
	"github.com/reinforce-nfv/reinforce/ctlmsg"

	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Opt is one parsed option.
type Opt struct {
	Name byte   // the option letter
	Arg  string // its value; "" for a flag
}

// Error is an argument an NF refuses. Msg is the line to print after the
// NF's usage text: ONVM's message where ONVM has one.
type Error struct {
	Msg     string
	NoUsage bool // ONVM prints Msg alone, without the usage text
}

// Error returns Msg.
func (e *Error) Error() string { return e.Msg }

// Errorf returns an *Error with a formatted message; NFs use it for their
// own checks ("Speed tester NF requires a destination NF with the -d flag.").
func Errorf(format string, args ...any) *Error {
	return &Error{Msg: fmt.Sprintf(format, args...)}
}

// unknown is getopt's refusal of option letter c (ONVM's parse_app_args).
func unknown(c byte) *Error {
	if c < 0x20 || c > 0x7e { // ONVM: !isprint(optopt)
		return Errorf("Unknown option character `\\x%x'.", c)
	}
	return Errorf("Unknown option `-%c'.", c)
}

// missing is getopt's refusal of option c without its value.
func missing(c byte) *Error { return Errorf("Option -%c requires an argument.", c) }

// Parse parses argv (without the program name) against optstring. It returns
// the options in command-line order and the operands. On a refused option it
// returns the options before it and an *Error, so the caller can act on them
// in order first, as getopt's loop would. Parse never panics and is safe for
// concurrent use.
func Parse(argv []string, optstring string) (opts []Opt, operands []string, err error) {
	for i := 0; i < len(argv); i++ {
		tok := argv[i]
		if tok == "--" {
			return opts, append(operands, argv[i+1:]...), nil
		}
		if len(tok) < 2 || tok[0] != '-' {
			operands = append(operands, tok)
			continue
		}
		for j := 1; j < len(tok); j++ {
			c := tok[j]
			k := strings.IndexByte(optstring, c)
			if c == ':' || k < 0 {
				return opts, operands, unknown(c)
			}
			if k+1 >= len(optstring) || optstring[k+1] != ':' {
				opts = append(opts, Opt{Name: c})
				continue
			}
			switch {
			case j+1 < len(tok):
				opts = append(opts, Opt{Name: c, Arg: tok[j+1:]})
			case i+1 < len(argv):
				i++
				opts = append(opts, Opt{Name: c, Arg: argv[i]})
			default:
				return opts, operands, missing(c)
			}
			break
		}
	}
	return opts, operands, nil
}

// Uint parses o's value as a decimal number in 0..limit. ONVM's NFs use
// strtoul, which reads "abc" as 0 and wraps what does not fit; here both are
// errors that say so.
func (o Opt) Uint(limit uint64) (uint64, error) {
	n, err := strconv.ParseUint(o.Arg, 10, 64)
	if errors.Is(err, strconv.ErrSyntax) {
		return 0, Errorf("Option -%c needs a decimal number, not %q", o.Name, o.Arg)
	}
	if err != nil || n > limit {
		return 0, Errorf("Option -%c must be at most %d, not %s", o.Name, limit, o.Arg)
	}
	return n, nil
}

// ServiceID parses o's value as a service ID, 1..ctlmsg.MaxServices-1 (the
// destination every forwarding NF's -d names).
func (o Opt) ServiceID() (uint16, error) {
	n, err := o.Uint(ctlmsg.MaxServices - 1)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, Errorf("Option -%c must name a service ID from 1 to %d", o.Name, ctlmsg.MaxServices-1)
	}
	return uint16(n), nil
}

// MAC parses o's value as a MAC address: six groups of one or two hex digits
// separated by colons ("aa:bb:cc:dd:ee:ff", "2:0:0:0:0:1"), what ONVM's
// sscanf("%x:%x:%x:%x:%x:%x") takes from any sane input. ONVM also takes
// wider groups and truncates them, and ignores trailing text; here both are
// errors.
func (o Opt) MAC() ([6]byte, error) {
	var mac [6]byte
	parts := strings.Split(o.Arg, ":")
	if len(parts) != len(mac) {
		return mac, Errorf("Option -%c needs a MAC address such as aa:bb:cc:dd:ee:ff, not %q", o.Name, o.Arg)
	}
	for i, p := range parts {
		v, err := strconv.ParseUint(p, 16, 8)
		if err != nil || len(p) > 2 {
			return [6]byte{}, Errorf("Option -%c needs a MAC address such as aa:bb:cc:dd:ee:ff, not %q", o.Name, o.Arg)
		}
		mac[i] = byte(v)
	}
	return mac, nil
}

// PrintDelay parses the command line of an NF whose only flag is ONVM's
// "-p <print_delay>" (getopt string "p:") and returns the delay, def when -p
// is absent.
func PrintDelay(args []string, def uint64) (uint64, error) {
	opts, _, err := Parse(args, "p:")
	for _, o := range opts {
		n, perr := o.Uint(1<<64 - 1)
		if perr != nil {
			return def, perr
		}
		def = n
	}
	return def, err
}
