// Command reinforce is Reinforce's operator tool.
//
//	reinforce onvm convert [--go-sh 'LINE'] [--start-nf 'NF ARGS']... [--deploy FILE]
//	                       [--examples DIR] [--bin DIR] [-o FILE]
//	reinforce ctl [-socket PATH] [-json] stats | promote CHAIN | switchover CHAIN | stop INSTANCE
//
// onvm convert turns an OpenNetVM deployment into a manager TOML file
// (manager/config; run it with reinforce-mgr --config FILE): the go.sh line
// gives the manager, each start_nf.sh line (as after start_nf.sh, or after
// ./go.sh with the NF folder first) and each entry of a run_group.py file an
// [[nf]] the manager launches. Notes on what has no equivalent go to stderr.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	onvmcompat "github.com/reinforce-nfv/reinforce/onvm-compat"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage:
  reinforce onvm convert [--go-sh 'LINE'] [--start-nf 'NF ARGS']... [--deploy FILE]
                         [--examples DIR] [--bin DIR] [-o FILE]
  reinforce ctl [-socket PATH] [-json] stats | promote CHAIN | switchover CHAIN | stop INSTANCE
`

// run is main with its outputs passed in; it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) >= 1 && args[0] == "ctl" {
		return ctl(args[1:], stdout, stderr)
	}
	if len(args) < 2 || args[0] != "onvm" || args[1] != "convert" {
		fmt.Fprint(stderr, usage)
		return 2
	}
	return convert(args[2:], stdout, stderr)
}

// lines collects a repeated string flag.
type lines []string

func (l *lines) String() string     { return strings.Join(*l, "; ") }
func (l *lines) Set(s string) error { *l = append(*l, s); return nil }

func convert(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("reinforce onvm convert", flag.ContinueOnError)
	fs.SetOutput(stderr)
	gosh := fs.String("go-sh", "", "the onvm/go.sh command `line` (with or without the script name)")
	var nfs lines
	fs.Var(&nfs, "start-nf", "a start_nf.sh `line`: NF folder, then its arguments (repeatable)")
	deploy := fs.String("deploy", "", "a run_group.py deployment `file`")
	examples := fs.String("examples", "", "the ONVM examples/ `directory` (default: the deployment file's, else .)")
	bin := fs.String("bin", "bin", "`directory` of the NF binaries, for the [[nf]] commands")
	out := fs.String("o", "", "write the TOML to `file` instead of stdout")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "reinforce onvm convert: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	in := onvmcompat.ConvertInput{BinDir: *bin, NCPU: runtime.NumCPU(), Ports: onvmcompat.DefaultPortTemplate(), ExamplesDir: *examples}
	header := []string{"Converted from OpenNetVM by `reinforce onvm convert`."}
	if *gosh != "" {
		in.GoSh = strings.Fields(*gosh)
		header = append(header, "go.sh: "+*gosh)
	}
	for _, l := range nfs {
		in.NFs = append(in.NFs, strings.Fields(l))
		header = append(header, "start_nf.sh: "+l)
	}
	if *deploy != "" {
		data, err := os.ReadFile(*deploy)
		if err != nil {
			fmt.Fprintln(stderr, "reinforce onvm convert:", err)
			return 1
		}
		d, err := onvmcompat.ParseDeploy(data)
		if err != nil {
			fmt.Fprintf(stderr, "reinforce onvm convert: %s: %v\n", *deploy, err)
			return 1
		}
		in.Deploy = &d
		if in.ExamplesDir == "" {
			in.ExamplesDir = filepath.Dir(*deploy)
		}
		header = append(header, "run_group.py: "+*deploy)
	}
	if in.ExamplesDir == "" {
		in.ExamplesDir = "."
	}
	cfg, notes, err := onvmcompat.Convert(in)
	if err != nil {
		fmt.Fprintln(stderr, "reinforce onvm convert:", err)
		return 1
	}
	for _, n := range notes {
		fmt.Fprintln(stderr, "reinforce onvm convert: notice:", n)
	}
	toml := onvmcompat.EncodeTOML(cfg, header)
	if *out == "" {
		_, err = stdout.Write(toml)
	} else {
		err = os.WriteFile(*out, toml, 0o644)
	}
	if err != nil {
		fmt.Fprintln(stderr, "reinforce onvm convert:", errors.Unwrap(err))
		return 1
	}
	return 0
}
