package onvmcompat

import "fmt"

// opt is one parsed short option: its letter and, for options that take one, its value.
type opt struct {
	name byte
	arg  string
}

// optError is a command line getopt refuses: an option not in the optstring, or one whose
// value is missing.
type optError struct {
	name    byte
	missing bool
}

func (e *optError) Error() string {
	if e.missing {
		return fmt.Sprintf("option requires an argument -- '%c'", e.name)
	}
	return fmt.Sprintf("invalid option -- '%c'", e.name)
}

// getopt parses toks with the short options of optstring ("p:r:cj": a colon after a letter
// means it takes a value). Flags cluster ("-cj"), values attach ("-p3") or take the next word
// even if it starts with '-', and "--" ends the options. With posix set it stops at the first
// non-option word, as bash's getopts does (onvm/go.sh); otherwise it skips over such words
// and returns them, as glibc's permuting getopt does (onvm_mgr). It never panics.
func getopt(toks []string, optstring string, posix bool) (opts []opt, operands []string, err error) {
	takes := func(c byte) (known, value bool) {
		for i := 0; i < len(optstring); i++ {
			if optstring[i] == c && c != ':' {
				return true, i+1 < len(optstring) && optstring[i+1] == ':'
			}
		}
		return false, false
	}
	for i := 0; i < len(toks); i++ {
		tok := toks[i]
		if tok == "--" {
			return opts, append(operands, toks[i+1:]...), nil
		}
		if len(tok) < 2 || tok[0] != '-' {
			if posix {
				return opts, append(operands, toks[i:]...), nil
			}
			operands = append(operands, tok)
			continue
		}
		for j := 1; j < len(tok); j++ {
			c := tok[j]
			known, value := takes(c)
			if !known {
				return opts, operands, &optError{name: c}
			}
			if !value {
				opts = append(opts, opt{name: c})
				continue
			}
			switch {
			case j+1 < len(tok):
				opts = append(opts, opt{name: c, arg: tok[j+1:]})
			case i+1 < len(toks):
				i++
				opts = append(opts, opt{name: c, arg: toks[i]})
			default:
				return opts, operands, &optError{name: c, missing: true}
			}
			break
		}
	}
	return opts, operands, nil
}
