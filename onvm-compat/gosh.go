package onvmcompat

// onvm/go.sh's command line (ONVM-COMPAT.md §1.1), in its two syntaxes:
//
//	go.sh -k PORTMASK -n NF_COREMASK [-m MGR_CORES] [-r N] [-d ID] [-s OUT] [-p WEB_PORT]
//	      [-z S] [-t S] [-l M] [-c] [-j] [-v|-vv] [-a ADDR]
//	go.sh MGR_CORES PORTMASK NF_COREMASK [OPTIONS]                (legacy)
//
// Stages, in go.sh's order: recognise the legacy positionals; options with bash getopts'
// rules ("a:r:d:s:t:l:p:z:cvm:k:n:j", stopping at the first non-option); the checks of the
// port mask, NF core mask and manager cores, each with go.sh's message; the overlap warning;
// the default base address; then the onvm_mgr command line go.sh would run (MgrArgv).
//
// Where we differ from go.sh, on purpose (each a [quirk] in ONVM-COMPAT.md):
//   - Core numbers containing a 9 are cores too: the legacy core pattern is [0-9], not [0-8].
//   - Lower-case hex NF masks (0xf8) are accepted, with a notice; go.sh wants 0xF8.
//   - Port masks may use hex letters and 0x (-k f, -k 0x3), with a notice. Like go.sh they
//     are read as hex, so -k 3 is ports 0 and 1 and -k 10 is port 4.
//   - A first argument such as -vv is flag syntax; go.sh only recognises -x there and calls
//     the line invalid.
//   - Repeating -m, -k or -n in flag syntax keeps the last; go.sh reports a mix with the
//     legacy syntax, with an empty script name.
//   - No sudo, no hugepage cleanup, no bc, no NIC count: ports are Reinforce ports.

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// go.sh's patterns, widened where the original's are [quirk]s (see above).
var (
	goshCores = regexp.MustCompile(`^([0-9]+,){2}([0-9]+)(,[0-9]+)*$`)
	goshPorts = regexp.MustCompile(`^(0[xX])?[0-9A-Fa-f]+$`)
	goshNF    = regexp.MustCompile(`^0[xX][0-9A-Fa-f]+$`)
	onvmCores = regexp.MustCompile(`^([0-8]+,){2}([0-8]+)(,[0-8]+)*$`)
	onvmPorts = regexp.MustCompile(`^[0-9]+$`)
	onvmNF    = regexp.MustCompile(`^0x[0-9A-F]+$`)
)

// GoSh is a parsed go.sh command line. String fields hold the values as given.
type GoSh struct {
	// Cores is the manager's core list (-m or the first positional), "0,1,2" by default.
	Cores string
	// Ports is the port mask (-k), NFCores the NF core mask (-n).
	Ports, NFCores string
	// Passed are the onvm_mgr options go.sh passes on as they are: -r -d -s -z -t -l -c -j.
	Passed []string
	// Verbosity is 1 plus the number of -v.
	Verbosity int
	// VirtAddr is -a, or the default 0x7f000000000.
	VirtAddr string
	// Web is -s web; WebPort is -p ("" when absent).
	Web     bool
	WebPort string
	// Lines are what go.sh prints before starting the manager, for stdout.
	Lines []string
	// Notices are our remarks where we accept what go.sh refuses, or ignore something.
	Notices []string
}

// DefaultVirtAddr is go.sh's default --base-virtaddr.
const DefaultVirtAddr = "0x7f000000000"

// GoShError is a command line go.sh refuses. Lines go to stdout (go.sh echoes its errors);
// Stderr holds what bash's getopts itself prints. The exit status is 1.
type GoShError struct {
	Lines  []string
	Stderr []string
}

func (e *GoShError) Error() string { return strings.Join(e.Lines, "\n") }

// GoShUsage is go.sh's usage text for script name script.
func GoShUsage(script string) []string {
	s := script
	ex := func(args, what string) []string {
		return []string{s + " -k 3 -n 0xF0 -m 2,3,4" + args, "\t" + what}
	}
	lines := []string{
		s + " -k PORTMASK -n NF-COREMASK [-m MANAGER CORES] [-r NUM-SERVICES] [-d DEFAULT-SERVICE] [-s STATS-OUTPUT] [-p WEB-PORT-NUMBER] [-z STATS-SLEEP-TIME]",
		s + " -k 3 -n 0xF0 --> cores 0,1,2, with ports 0 and 1, with NFs running on cores 4,5,6,7",
		"\tBy default, cores will be used as follows in numerical order:",
		"\t\tRX thread, TX thread, ..., TX thread for last NF, Stats thread",
	}
	lines = append(lines, ex("", "Runs ONVM the same way as above, but manually configures cores 2, 3 and 4 to be used as stated")...)
	lines = append(lines, ex(" -s web", "Runs ONVM the same way as above, but prints statistics to the web browser")...)
	lines = append(lines, ex(" -s web -p 9000", "Runs OVNM the same as above, but runs the web stats on port 9000 instead of defaulting to 8080")...)
	lines = append(lines, ex(" -s stdout", "Runs ONVM the same way as above, but prints statistics to stdout")...)
	lines = append(lines, ex(" -s stdout -c", "Runs ONVM the same way as above, but enables shared cpu support")...)
	lines = append(lines, ex(" -s stdout -c -j", "Runs ONVM the same way as above, but allows ports to send and receive jumbo frames")...)
	lines = append(lines, ex(" -s stdout -t 42", "Runs ONVM the same way as above, but shuts down after 42 seconds")...)
	lines = append(lines, ex(" -s stdout -l 64", "Runs ONVM the same way as above, but shuts down after receiving 64 million packets")...)
	lines = append(lines, ex(" -s stdout -v", "Runs ONVM the same way as above, but prints statistics to stdout in extra verbose mode")...)
	lines = append(lines, ex(" -s stdout -vv", "Runs ONVM the same way as above, but prints statistics to stdout in raw data dump mode")...)
	lines = append(lines, ex(" -a 0x7f000000000 -s stdout", "Runs ONVM the same way as above, but adds a --base-virtaddr dpdk parameter to overwrite default address")...)
	lines = append(lines, ex(" -r 10 -d 2", "Runs ONVM the same way as above, but limits max service IDs to 10 and uses service ID 2 as the default")...)
	return lines
}

// ParseGoSh parses go.sh's arguments; script is the name go.sh was run as ($0), which its
// messages quote. Errors are *GoShError. It never panics and is safe for concurrent use.
func ParseGoSh(script string, args []string) (GoSh, error) {
	g := GoSh{Verbosity: 1}
	arg := func(i int) string {
		if i < len(args) {
			return args[i]
		}
		return ""
	}
	coreOK, portOK, nfOK := goshCores.MatchString(arg(0)), goshPorts.MatchString(arg(1)), goshNF.MatchString(arg(2))
	legacy := false
	proper := "Proper syntax: " + script + " <cores> <port mask> <NF cores> [OPTIONS]"
	example := "Example: " + script + " 0,1,2 1 0xF8 -s stdout"
	fail := func(lines ...string) (GoSh, error) { return GoSh{}, &GoShError{Lines: lines} }
	failUsage := func(lines ...string) (GoSh, error) {
		return GoSh{}, &GoShError{Lines: append(lines, GoShUsage(script)...)}
	}
	switch {
	case strings.HasPrefix(arg(0), "-"):
		// flag syntax
	case coreOK && portOK && nfOK:
		legacy = true
		g.Cores, g.Ports, g.NFCores = args[0], args[1], args[2]
		args = args[3:]
		g.noteWidened(!onvmCores.MatchString(g.Cores), !onvmPorts.MatchString(g.Ports), !onvmNF.MatchString(g.NFCores))
	case !coreOK && (portOK || nfOK):
		return fail("Error: Invalid Manager Cores. "+proper, example)
	case !portOK && (coreOK || nfOK):
		return fail("Error: Invalid Port Mask. "+proper, example)
	case !nfOK && (coreOK || portOK):
		return fail("Error: Invalid NF Core Mask. "+proper, example)
	default:
		return failUsage("Error: Invalid input.", "")
	}

	opts, operands, err := getopt(args, "a:r:d:s:t:l:p:z:cvm:k:n:j", true)
	if err != nil {
		var oe *optError
		errors.As(err, &oe)
		msg := fmt.Sprintf("%s: illegal option -- %c", script, oe.name)
		if oe.missing {
			msg = fmt.Sprintf("%s: option requires an argument -- %c", script, oe.name)
		}
		return GoSh{}, &GoShError{Stderr: []string{msg}, Lines: append([]string{"Unknown option -"}, GoShUsage(script)...)}
	}
	for _, w := range operands {
		g.Notices = append(g.Notices, fmt.Sprintf("ignoring argument %q after the options (go.sh ignores it too)", w))
	}
	for _, o := range opts {
		switch o.name {
		case 'a':
			g.VirtAddr = o.arg
		case 'r', 'd', 's', 't', 'l', 'z':
			g.Passed = append(g.Passed, "-"+string(o.name), o.arg)
			if o.name == 's' {
				g.Web = o.arg == "web"
			}
		case 'p':
			g.WebPort = o.arg
		case 'c', 'j':
			g.Passed = append(g.Passed, "-"+string(o.name))
		case 'v':
			g.Verbosity++
		case 'm', 'k', 'n':
			if legacy {
				what := map[byte]string{'m': "manual manager core", 'k': "manual port mask", 'n': "manual NF core mask"}[o.name]
				return fail("Error: Cannot use "+what+" flag with legacy syntax. "+proper, example)
			}
			switch o.name {
			case 'm':
				g.Cores = o.arg
			case 'k':
				g.Ports = o.arg
			case 'n':
				g.NFCores = o.arg
			}
		}
	}

	switch {
	case g.Ports == "":
		return failUsage("Error: Port Mask not set. openNetVM requires that a Port Mask be set using -k <port mask> using a hexadecimal number (without 0x)", "")
	case !goshPorts.MatchString(g.Ports):
		return failUsage("Error: Invalid port mask. Check input and try again.", "")
	}
	switch {
	case g.NFCores == "":
		return failUsage("Error: NF Core Mask not set. openNetVM requires that a NF Core Mask be set using -n <nf mask> using a hexadecimal number (starting with 0x)", "")
	case !goshNF.MatchString(g.NFCores):
		return failUsage("Error: Invalid NF core mask. Check input and try again.", "")
	}
	switch {
	case g.Cores == "":
		g.Lines = append(g.Lines, "INFO: Using default CPU cores 0,1,2", "")
		g.Cores = "0,1,2"
	case !goshCores.MatchString(g.Cores):
		return failUsage("Error: Invalid CPU cores. openNetVM accepts 3 or more cores. Check input and try again.", "")
	}
	if !legacy {
		g.noteWidened(!onvmCores.MatchString(g.Cores), !onvmPorts.MatchString(g.Ports), !onvmNF.MatchString(g.NFCores))
	}
	if nf, ok := parseHex(g.NFCores); ok {
		for c := range strings.SplitSeq(g.Cores, ",") {
			if n, err := strconv.Atoi(c); err == nil && n < 64 && nf&(1<<n) != 0 {
				g.Lines = append(g.Lines, "WARNING: Manager and NF cores overlap.", "")
				break
			}
		}
	}
	if g.VirtAddr == "" {
		g.Lines = append(g.Lines, "Base virtual address set to default "+DefaultVirtAddr)
		g.VirtAddr = DefaultVirtAddr
	}
	if g.Web && g.WebPort != "" {
		g.Notices = append(g.Notices, fmt.Sprintf("ignoring -p %s: Reinforce serves the console's JSON files on port 8000 and does not ship the React app (serve onvm_web/web-build yourself on port %s)", g.WebPort, g.WebPort))
	}
	return g, nil
}

// noteWidened adds a notice for each value ONVM's go.sh would refuse but we accept.
func (g *GoSh) noteWidened(cores, ports, nf bool) {
	if cores {
		g.Notices = append(g.Notices, fmt.Sprintf("manager cores %s accepted; ONVM's go.sh allows only the digits 0-8", g.Cores))
	}
	if ports {
		g.Notices = append(g.Notices, fmt.Sprintf("port mask %s accepted as hex; ONVM's go.sh allows only the digits 0-9 (still read as hex)", g.Ports))
	}
	if nf {
		g.Notices = append(g.Notices, fmt.Sprintf("NF core mask %s accepted; ONVM's go.sh wants 0x and upper-case hex", g.NFCores))
	}
}

// MgrArgv returns the onvm_mgr command line go.sh runs, split at its "--":
//
//	-l CORES -n 4 --proc-type=primary --base-virtaddr=ADDR -- -p PORTS -n NFMASK
//	[-r][-d][-s][-z] -v LEVEL [-t][-l][-c][-j]
func (g GoSh) MgrArgv() (eal, native []string) {
	eal = []string{"-l", g.Cores, "-n", "4", "--proc-type=primary", "--base-virtaddr=" + g.VirtAddr}
	native = []string{"-p", g.Ports, "-n", g.NFCores}
	native = append(native, g.Passed...)
	native = append(native, "-v", strconv.Itoa(g.Verbosity))
	return eal, native
}
