package nflib

// Parsing of ONVM NF command lines (ONVM-COMPAT.md §3.3, §4.1, §4.2), so that
// ONVM's start_nf.sh lines and scripts run Reinforce NFs unchanged:
//
//	NF [EAL args] -- [ONVM args] -- [NF args]
//	NF -F config.json [EAL args] -- [ONVM args] -- [NF args]
//	NF [ONVM args] [NF args]                     (no "--" at all)
//
// Stages, in order: split argv at the first two "--"; note each EAL argument
// (there is no DPDK EAL to give them to) and keep only the core list, which
// -m needs; parse the ONVM options with ONVM's getopt string "n:r:t:l:ms";
// with -F, fill what the command line left out from the JSON config
// (ONVM-COMPAT.md §4.1: command-line values win); check what ONVM checks at
// the end (-r given).
//
// Where we differ from ONVM, on purpose:
//   - With no "--" at all every argument is an ONVM argument. ONVM would give
//     them all to DPDK, which rejects -r; the short form is ours.
//   - Numbers must be decimal and in range. ONVM reads them with
//     (uint16_t)strtoul, so "-t 70000" wraps to 4464 and "-r abc" reads as 0.
//   - Service IDs ≥ 32 and instance IDs outside 1..127 are refused here, with
//     the message the manager's refusal would print, instead of after
//     registering.
//   - A missing option value says "Option -X requires an argument." for every
//     option; ONVM says so only for -n and calls the others unknown.
//   - -F is recognised only as the first argument, as ONVM checks argv[1];
//     but an empty argv is fine here, where ONVM reads argv[1] regardless.
//   - Non-option words among the ONVM arguments go to the NF, ahead of the
//     words after the second "--": what glibc's permuting getopt leaves for
//     the NF's own parser in ONVM.
//   - -F: command-line values override the config's by option, not by
//     ONVM's position-based string matching ([quirk]); "corelist" may be a
//     number as well as a string; the unused "portmask", "output" and
//     "memory_channels" are noted. Unknown keys are noted, not refused.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reinforce-nfv/reinforce/ctlmsg"
)

// Limits of the parsed values.
const (
	// maxUint16Arg bounds -t and -l: ONVM stores both in uint16 fields
	// (onvm_nf_init_cfg.time_to_live, pkt_limit).
	maxUint16Arg = 1<<16 - 1
	// ealMaxLcore bounds CPU numbers in EAL core lists. DPDK: RTE_MAX_LCORE
	// (default build), beyond which eal_parse_corelist fails.
	ealMaxLcore = 128
)

// Args is a parsed NF command line.
type Args struct {
	// Service is the service ID (-r), 1..ctlmsg.MaxServices-1. It is 0 only
	// when ConfigFile is set and the command line gave no -r: the config's
	// "serviceid" then supplies it.
	Service uint16
	// Instance is the requested instance ID (-n), 1..ctlmsg.MaxNFs-1, or 0
	// for any.
	Instance uint16
	// TTL is how long the NF runs before it stops by itself (-t seconds), or 0
	// for no limit.
	TTL time.Duration
	// PktLimit is the number of packets the NF receives before it stops by
	// itself (-l millions × ctlmsg.PktLimitMultiplier), or 0 for no limit.
	PktLimit uint64
	// ManualCore asks for the NF's own CPU, Cores[0], instead of one the
	// manager picks (-m).
	ManualCore bool
	// ShareCore lets the NF share its core (-s).
	ShareCore bool
	// Standby starts the process as the idle standby of the NF with instance
	// ID Instance (--standby, a Reinforce extension): Init returns once that
	// NF has died and this process has taken over its rings and state.
	Standby bool
	// ConfigFile is the path after a leading -F, or "". The caller expands the
	// JSON config; values given on the command line override it.
	ConfigFile string
	// Cores are the CPUs of the last EAL core option (-l, -c or a plain
	// --lcores list), ascending, with CPUs this machine lacks clamped into
	// range; nil when there was none. Cores[0] is the lowest, which DPDK
	// makes the main lcore and ONVM's -m binds to.
	Cores []int
	// AppArgs are the NF's own arguments: the non-option words among the ONVM
	// arguments, then everything after the second "--", verbatim.
	AppArgs []string
	// Notices are one-line messages about arguments accepted but ignored or
	// adjusted (EAL arguments, clamped core lists), for the caller to print.
	Notices []string
}

// ArgError is a command line that ONVM would refuse. Msg is ONVM's message
// where ONVM has one ("Time to live argument can't be 0").
type ArgError struct {
	// Arg is the offending argument as given ("-t 0", "-x"), or "" when the
	// fault is a missing argument such as -r.
	Arg string
	// Msg is the message to print.
	Msg string
	// ShowUsage is set where ONVM prints its usage text before Msg (unknown
	// option, missing value); print UsageText to stdout, then Msg to stderr,
	// as onvm_nflib_parse_args does.
	ShowUsage bool
}

// Error returns Msg.
func (e *ArgError) Error() string { return e.Msg }

// UsageText returns ONVM's NF usage text for program prog, ending in a blank
// line (onvm_nflib_usage). It is safe for concurrent use.
func UsageText(prog string) string {
	return "Usage: " + prog + " [EAL args] -- [-n <instance_id>] [-r <service_id>] [-t <time_to_live>]" +
		" [-l <pkt_limit>] [-m (manual core assignment flag)] [-s (share core flag)]\n\n"
}

// ParseArgs parses an NF command line; argv excludes the program name. With
// -F it reads the JSON config file and fills in what the command line left
// out (see NFConfig). Errors are *ArgError. Core lists are clamped to CPUs
// 0..runtime.NumCPU()-1, the CPUs this process may run on when its affinity
// mask is the usual one. ParseArgs never panics and is safe for concurrent
// use.
func ParseArgs(argv []string) (Args, error) {
	ncpu := runtime.NumCPU()
	a, err := parseArgs(argv, ncpu)
	if err != nil || a.ConfigFile == "" {
		return a, err
	}
	data, err := os.ReadFile(a.ConfigFile)
	if err != nil {
		return Args{}, &ArgError{Arg: "-F " + a.ConfigFile, Msg: fmt.Sprintf("cannot read config file: %v", err)}
	}
	if err := a.applyConfig(data, ncpu); err != nil {
		return Args{}, err
	}
	return a, nil
}

// NFConfig is ONVM's NF JSON config (-F, ONVM-COMPAT.md §4.1):
//
//	{"dpdk": {"corelist": "4", "memory_channels": 3, "portmask": 2},
//	 "onvm": {"output": "stdout", "serviceid": 1, "instanceid": 3}}
//
// Only "serviceid" is required. Zero fields were absent.
type NFConfig struct {
	// CoreList is dpdk.corelist, a DPDK core list ("4", "0,2-3").
	CoreList string
	// Service is onvm.serviceid, Instance onvm.instanceid.
	Service, Instance int
	// Ignored names the keys that were given but mean nothing here.
	Ignored []string
}

// ParseNFConfig parses an NF JSON config. Its errors name the bad key. It
// never panics and is safe for concurrent use.
func ParseNFConfig(data []byte) (NFConfig, error) {
	var raw struct {
		DPDK map[string]json.RawMessage `json:"dpdk"`
		ONVM map[string]json.RawMessage `json:"onvm"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return NFConfig{}, fmt.Errorf("bad JSON: %v", err)
	}
	var c NFConfig
	num := func(key string, m json.RawMessage) (int, error) {
		var n json.Number
		if err := json.Unmarshal(m, &n); err != nil {
			var s string // ONVM reads its numbers with atoi on cJSON's valuestring too
			if json.Unmarshal(m, &s) != nil {
				return 0, fmt.Errorf("%s: want a number, got %s", key, m)
			}
			n = json.Number(s)
		}
		v, err := strconv.Atoi(n.String())
		if err != nil {
			return 0, fmt.Errorf("%s: want a whole number, got %s", key, m)
		}
		return v, nil
	}
	keys := func(m map[string]json.RawMessage) []string {
		k := make([]string, 0, len(m))
		for name := range m {
			k = append(k, name)
		}
		slices.Sort(k)
		return k
	}
	for _, k := range keys(raw.DPDK) {
		v := raw.DPDK[k]
		switch k {
		case "corelist":
			var s string
			if json.Unmarshal(v, &s) != nil {
				n, err := num("dpdk.corelist", v)
				if err != nil {
					return NFConfig{}, fmt.Errorf("dpdk.corelist: want a core list such as \"4\", got %s", v)
				}
				s = strconv.Itoa(n)
			}
			c.CoreList = s
		default:
			c.Ignored = append(c.Ignored, "dpdk."+k)
		}
	}
	haveService := false
	for _, k := range keys(raw.ONVM) {
		v := raw.ONVM[k]
		var err error
		switch k {
		case "serviceid":
			c.Service, err = num("onvm.serviceid", v)
			haveService = true
		case "instanceid":
			c.Instance, err = num("onvm.instanceid", v)
		default:
			c.Ignored = append(c.Ignored, "onvm."+k)
		}
		if err != nil {
			return NFConfig{}, err
		}
	}
	if !haveService {
		return NFConfig{}, errors.New("onvm.serviceid is required")
	}
	if c.Service < 1 || c.Service >= ctlmsg.MaxServices {
		return NFConfig{}, fmt.Errorf("onvm.serviceid %d out of range 1..%d", c.Service, ctlmsg.MaxServices-1)
	}
	if c.Instance < 0 || c.Instance >= ctlmsg.MaxNFs {
		return NFConfig{}, fmt.Errorf("onvm.instanceid %d out of range 1..%d", c.Instance, ctlmsg.MaxNFs-1)
	}
	return c, nil
}

// applyConfig fills what the command line left out from the JSON config
// data: the service (-r), the instance (-n) and the EAL core list (-l).
func (a *Args) applyConfig(data []byte, ncpu int) error {
	c, err := ParseNFConfig(data)
	if err != nil {
		return &ArgError{Arg: "-F " + a.ConfigFile, Msg: fmt.Sprintf("config file %s: %v", a.ConfigFile, err)}
	}
	if a.Service == 0 {
		a.Service = uint16(c.Service)
	}
	if a.Instance == 0 {
		a.Instance = uint16(c.Instance)
	}
	if a.Cores == nil && c.CoreList != "" {
		cpus, ok := parseCoreList(c.CoreList)
		if !ok {
			return &ArgError{Arg: "-F " + a.ConfigFile, Msg: fmt.Sprintf("config file %s: invalid dpdk.corelist %q", a.ConfigFile, c.CoreList)}
		}
		a.Cores = clampCores(cpus, ncpu)
		if !slices.Equal(a.Cores, cpus) {
			a.Notices = append(a.Notices, fmt.Sprintf("config file %s: dpdk.corelist %s names CPUs this machine lacks (it has %d): clamped to %s",
				a.ConfigFile, c.CoreList, max(ncpu, 1), joinInts(a.Cores)))
		}
	}
	for _, k := range c.Ignored {
		a.Notices = append(a.Notices, fmt.Sprintf("config file %s: ignoring %s", a.ConfigFile, k))
	}
	return nil
}

// parseArgs is ParseArgs for a machine with ncpu CPUs, without reading the
// -F config file.
func parseArgs(argv []string, ncpu int) (Args, error) {
	var a Args
	rest := argv
	if len(rest) > 0 && rest[0] == "-F" {
		if len(rest) < 2 || rest[1] == "" {
			return Args{}, &ArgError{Arg: "-F", Msg: "Option -F requires an argument.", ShowUsage: true}
		}
		a.ConfigFile = rest[1]
		rest = rest[2:]
	}

	var eal, onvm, app []string
	first := slices.Index(rest, "--")
	switch {
	case first < 0:
		onvm = rest
	default:
		eal, onvm = rest[:first], rest[first+1:]
		if second := slices.Index(onvm, "--"); second >= 0 {
			onvm, app = onvm[:second], onvm[second+1:]
		}
	}

	cores, err := a.parseEAL(eal, ncpu)
	if err != nil {
		return Args{}, err
	}
	words, err := a.parseONVM(onvm)
	if err != nil {
		return Args{}, err
	}
	if a.Service == 0 && a.ConfigFile == "" {
		return Args{}, &ArgError{Msg: "You must provide a nonzero service ID with -r"}
	}
	if cores.notice >= 0 && a.ManualCore {
		a.Notices[cores.notice] = fmt.Sprintf("EAL argument %s sets the manual core (-m): CPU %d",
			cores.text, a.Cores[0])
	}
	if len(words)+len(app) > 0 {
		a.AppArgs = append(words, app...)
	}
	return a, nil
}

// coreOpt remembers the last EAL core option, whose notice changes when -m
// turns out to use it.
type coreOpt struct {
	notice int    // index in Notices, or -1
	text   string // the argument as given
}

// ealValueShort lists the EAL short options that take a value. DPDK 20.11:
// eal_short_options "a:b:c:d:hl:m:n:r:s:S:vw:".
const ealValueShort = "abcdlmnrsSw"

// ealValueLong lists the EAL long options that take a value (DPDK 20.11
// eal_options.h, plus main-lcore from 21.x). Others are flags.
var ealValueLong = map[string]bool{
	"allow": true, "base-virtaddr": true, "block": true, "file-prefix": true,
	"force-max-simd-bitwidth": true, "huge-dir": true, "iova-mode": true, "lcores": true,
	"log-level": true, "main-lcore": true, "master-lcore": true, "mbuf-pool-ops-name": true,
	"pci-blacklist": true, "pci-whitelist": true, "proc-type": true, "socket-limit": true,
	"socket-mem": true, "trace": true, "trace-bufsz": true, "trace-dir": true,
	"trace-mode": true, "vdev": true, "vfio-intr": true, "vfio-vf-token": true,
}

// parseEAL turns each EAL argument into a notice and the last core option
// into a.Cores.
func (a *Args) parseEAL(eal []string, ncpu int) (coreOpt, error) {
	last := coreOpt{notice: -1}
	for i := 0; i < len(eal); i++ {
		tok := eal[i]
		if tok == "-F" {
			return last, &ArgError{Arg: tok, Msg: "-F <config.json> must be the first argument"}
		}
		var name, val string
		hasVal := false
		switch {
		case strings.HasPrefix(tok, "--"):
			name = tok[2:]
			if k := strings.IndexByte(name, '='); k >= 0 {
				name, val, hasVal = name[:k], name[k+1:], true
			} else if ealValueLong[name] && i+1 < len(eal) {
				i++
				val, hasVal = eal[i], true
				tok += " " + val
			}
		case len(tok) >= 2 && tok[0] == '-' && strings.IndexByte(ealValueShort, tok[1]) >= 0:
			name = tok[1:2]
			if len(tok) > 2 {
				val, hasVal = tok[2:], true
			} else if i+1 < len(eal) {
				i++
				val, hasVal = eal[i], true
				tok += " " + val
			}
		}

		var parse func(string) ([]int, bool)
		switch name {
		case "l":
			parse = parseCoreList
		case "c":
			parse = parseCoreMask
		case "lcores":
			// Only a plain list; "(0-3)@1" style maps are noted and ignored.
			if hasVal && strings.Trim(val, "0123456789,- ") == "" {
				parse = parseCoreList
			}
		}
		if parse == nil {
			a.Notices = append(a.Notices, "ignoring EAL argument "+tok)
			continue
		}
		if !hasVal {
			return last, &ArgError{Arg: tok, Msg: fmt.Sprintf("EAL option %s requires an argument", tok)}
		}
		cpus, ok := parse(val)
		if !ok {
			return last, &ArgError{Arg: tok, Msg: fmt.Sprintf("invalid EAL core list in %s", tok)}
		}
		a.Notices = append(a.Notices, "ignoring EAL argument "+tok)
		last = coreOpt{notice: len(a.Notices) - 1, text: tok}
		a.Cores = clampCores(cpus, ncpu)
		if !slices.Equal(a.Cores, cpus) {
			a.Notices = append(a.Notices, fmt.Sprintf(
				"EAL core list in %s names CPUs this machine lacks (it has %d): clamped to %s",
				tok, max(ncpu, 1), joinInts(a.Cores)))
		}
	}
	return last, nil
}

// parseCoreList parses a DPDK core list ("0,2-4"; DPDK: eal_parse_corelist)
// into ascending distinct CPUs. Blanks around numbers are allowed, as there.
func parseCoreList(s string) ([]int, bool) {
	var set [ealMaxLcore]bool
	for item := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(item, "-")
		a, ok := parseCPU(lo)
		if !ok {
			return nil, false
		}
		b := a
		if isRange {
			if b, ok = parseCPU(hi); !ok || b < a {
				return nil, false
			}
		}
		for c := a; c <= b; c++ {
			set[c] = true
		}
	}
	return setToList(set[:])
}

// parseCPU parses one CPU number of a core list.
func parseCPU(s string) (int, bool) {
	n, err := strconv.Atoi(strings.Trim(s, " \t"))
	if err != nil || n < 0 || n >= ealMaxLcore {
		return 0, false
	}
	return n, true
}

// parseCoreMask parses a DPDK hexadecimal core mask ("0xF", "f"; DPDK:
// eal_parse_coremask) into ascending CPUs.
func parseCoreMask(s string) ([]int, bool) {
	s = strings.Trim(s, " \t")
	if len(s) > 1 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		s = s[2:]
	}
	if s == "" {
		return nil, false
	}
	var set [ealMaxLcore]bool
	for pos := range len(s) {
		d, err := strconv.ParseUint(s[len(s)-1-pos:len(s)-pos], 16, 8)
		if err != nil {
			return nil, false
		}
		for bit := range 4 {
			if d&(1<<bit) == 0 {
				continue
			}
			cpu := 4*pos + bit
			if cpu >= ealMaxLcore {
				return nil, false
			}
			set[cpu] = true
		}
	}
	return setToList(set[:])
}

// setToList lists the CPUs set in set, failing when there are none (DPDK
// refuses an empty core list or mask).
func setToList(set []bool) ([]int, bool) {
	var cpus []int
	for c, ok := range set {
		if ok {
			cpus = append(cpus, c)
		}
	}
	return cpus, len(cpus) > 0
}

// clampCores maps each CPU the machine lacks onto cpu mod ncpu, so NFs that a
// script spreads over CPUs 4, 5, 6… still land on different CPUs of a small
// machine, and returns the ascending distinct result. cpus is not modified.
func clampCores(cpus []int, ncpu int) []int {
	ncpu = max(ncpu, 1)
	out := make([]int, 0, len(cpus))
	for _, c := range cpus {
		out = append(out, c%ncpu)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// joinInts formats CPUs as a comma-separated list.
func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// parseONVM parses the ONVM section with getopt's rules for "n:r:t:l:ms":
// clustered flags (-ms), values attached (-r1) or in the next word (-r 1), the
// last of a repeated option wins, and non-option words are returned for the NF.
func (a *Args) parseONVM(toks []string) ([]string, error) {
	var words []string
	for i := 0; i < len(toks); i++ {
		tok := toks[i]
		if len(tok) < 2 || tok[0] != '-' {
			words = append(words, tok)
			continue
		}
		if tok == "--standby" {
			a.Standby = true
			continue
		}
		if tok[1] == '-' {
			return nil, &ArgError{Arg: tok, Msg: fmt.Sprintf("Unknown option `%s'.", tok), ShowUsage: true}
		}
		for j := 1; j < len(tok); j++ {
			c := tok[j]
			switch c {
			case 'm':
				a.ManualCore = true
			case 's':
				a.ShareCore = true
			case 'n', 'r', 't', 'l':
				var val string
				switch {
				case j+1 < len(tok):
					val = tok[j+1:]
				case i+1 < len(toks):
					i++
					val = toks[i]
				default:
					return nil, &ArgError{Arg: tok, Msg: fmt.Sprintf("Option -%c requires an argument.", c),
						ShowUsage: true}
				}
				if err := a.setONVM(c, val); err != nil {
					return nil, err
				}
				j = len(tok)
			default:
				msg := fmt.Sprintf("Unknown option `-%c'.", c)
				if c < 0x20 || c > 0x7e { // ONVM: !isprint(optopt)
					msg = fmt.Sprintf("Unknown option character `\\x%x'.", c)
				}
				return nil, &ArgError{Arg: tok, Msg: msg, ShowUsage: true}
			}
		}
	}
	return words, nil
}

// setONVM applies ONVM option c with value val.
func (a *Args) setONVM(c byte, val string) error {
	arg := "-" + string(c) + " " + val
	n, err := strconv.ParseUint(val, 10, 64)
	if errors.Is(err, strconv.ErrSyntax) {
		return &ArgError{Arg: arg, Msg: fmt.Sprintf("Option -%c needs a decimal number, not %q", c, val)}
	}
	tooBig := errors.Is(err, strconv.ErrRange) // n is then MaxUint64
	fail := func(msg string) error { return &ArgError{Arg: arg, Msg: msg} }
	switch c {
	case 'r':
		switch {
		case n == 0:
			return fail("You must provide a nonzero service ID with -r")
		case tooBig || n >= ctlmsg.MaxServices:
			// The manager's NF_SERVICE_MAX refusal, given before registering.
			return fail(ctlmsg.StatusMessage(ctlmsg.StatusServiceMax))
		}
		a.Service = uint16(n)
	case 'n':
		if n == 0 || tooBig || n >= ctlmsg.MaxNFs {
			return fail(fmt.Sprintf("Instance ID must be between 1 and %d", ctlmsg.MaxNFs-1))
		}
		a.Instance = uint16(n)
	case 't':
		switch {
		case n == 0:
			return fail("Time to live argument can't be 0")
		case tooBig || n > maxUint16Arg:
			return fail(fmt.Sprintf("Time to live argument must be at most %d", maxUint16Arg))
		}
		a.TTL = time.Duration(n) * time.Second
	case 'l':
		switch {
		case n == 0:
			return fail("Packet time to live argument can't be 0")
		case tooBig || n > maxUint16Arg:
			return fail(fmt.Sprintf("Packet time to live argument must be at most %d", maxUint16Arg))
		}
		a.PktLimit = n * ctlmsg.PktLimitMultiplier
	}
	return nil
}
