package onvmcompat

// run_group.py deployment files and start_nf.sh lines (ONVM-COMPAT.md §4.2,
// §4.3), read the way the scripts in examples/ run them.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Deploy is a run_group.py deployment file.
type Deploy struct {
	// TTL is globals' "TTL" in seconds; 0 runs until an NF exits.
	TTL float64
	// Directory and Prefix are globals' "directory" and "directory-prefix".
	Directory, Prefix string
	// NFs are the entries in file order.
	NFs []DeployNF
}

// DeployNF is one entry: ./go.sh Parameters run in examples/<Dir>.
type DeployNF struct {
	Dir        string
	Parameters string
}

// ParseDeploy parses a deployment file, keeping its entries in file order
// (run_group.py starts them in the order Python's dict keeps, which is the
// file's). It never panics.
func ParseDeploy(data []byte) (Deploy, error) {
	var d Deploy
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return Deploy{}, errors.New("deployment file: want a JSON object")
	}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return Deploy{}, fmt.Errorf("deployment file: %v", err)
		}
		key, _ := kt.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return Deploy{}, fmt.Errorf("deployment file: %s: %v", key, err)
		}
		var items []map[string]any
		if err := json.Unmarshal(raw, &items); err != nil {
			var one map[string]any
			if json.Unmarshal(raw, &one) != nil {
				return Deploy{}, fmt.Errorf("deployment file: %s must be a list of objects", key)
			}
			items = []map[string]any{one}
		}
		if key == "globals" {
			for _, it := range items {
				if v, ok := it["TTL"]; ok {
					f, err := strconv.ParseFloat(fmt.Sprint(v), 64)
					if err != nil || f < 0 {
						return Deploy{}, fmt.Errorf("deployment file: TTL %v is not a number of seconds", v)
					}
					d.TTL = f
				}
				if v, ok := it["directory"]; ok && d.Directory == "" {
					d.Directory = fmt.Sprint(v)
				}
				if v, ok := it["directory-prefix"]; ok {
					d.Prefix = fmt.Sprint(v)
				}
			}
			continue
		}
		for _, it := range items {
			p, ok := it["parameters"].(string)
			if !ok {
				return Deploy{}, fmt.Errorf("deployment file: every entry of %s needs \"parameters\" (a string)", key)
			}
			d.NFs = append(d.NFs, DeployNF{Dir: key, Parameters: p})
		}
	}
	return d, nil
}

// ScriptError is a refusal with the message one of ONVM's scripts prints.
type ScriptError struct {
	Msg string
}

func (e *ScriptError) Error() string { return e.Msg }

// StartNFArgv returns the NF command line start_nf.sh runs for its
// arguments after the NF name: simple ("SID [NF args]"), complex ("DPDK --
// ONVM -- NF") or config ("-F cfg [args]") mode. Errors carry
// start_nf.sh's message (*ScriptError).
func StartNFArgv(args []string) ([]string, error) {
	if len(args) == 0 {
		return nil, &ScriptError{Msg: "ERROR: Missing required arguments"}
	}
	if args[0] == "-F" {
		return args, nil
	}
	n := 0
	for _, a := range args {
		if a == "--" {
			n++
		}
	}
	base := []string{"-n", "3", "--proc-type=secondary"}
	switch {
	case n >= 2:
		return append(base, args...), nil
	case n == 0:
		argv := append([]string{"-l", "0"}, base...)
		argv = append(argv, "--", "-r", args[0], "--")
		return append(argv, args[1:]...), nil
	}
	return nil, &ScriptError{Msg: "This script expects 0 or at least 2 '--' argument separators"}
}

// splitWords splits a parameters string as Python's shlex.split does for the
// simple cases run_group.py files hold: blanks separate words, single and
// double quotes group them, a backslash escapes the next character.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	in, quote := false, byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else if c == '\\' && quote == '"' && i+1 < len(s) {
				i++
				cur.WriteByte(s[i])
			} else {
				cur.WriteByte(c)
			}
		case c == '\'' || c == '"':
			quote, in = c, true
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			in = true
		case c == ' ' || c == '\t' || c == '\n':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}
