package onvmcompat

// onvm_mgr's native command line (ONVM-COMPAT.md §1.2):
//
//	onvm_mgr [EAL args] -- -p PORTMASK [-n NFMASK] [-r N] [-d ID] [-s OUT] [-z S] [-t S]
//	         [-l M] [-v L] [-c] [-j]
//
// Stages: EAL arguments one by one (the manager's core list is kept, --file-prefix names the
// manager, the rest are noted and ignored: there is no DPDK EAL); the native options with
// onvm_args.c's getopt string; then Apply maps them onto a config.Config. Lines ONVM itself
// prints while parsing ("WARNING: No ports are being used.", "Registered 2 cores for NFs: 0,
// 1") are returned in Lines, our own remarks in Notices.
//
// Where we differ from ONVM, on purpose:
//   - -r has an effect: service IDs are bounded by it (manager.num_services). [quirk] ONVM
//     parses it after reserving the services memzones, so it changes nothing there.
//   - -d has an effect: port traffic that matches no flow rule enters service -d (the
//     default chain becomes [-d]). [quirk] ONVM hard-codes service 1.
//   - -v 4 and more is read as 3. [quirk] ONVM indexes an array out of bounds.
//   - The long options take values (--port-mask=3). ONVM's table declares most of them
//     no_argument, so only its short forms work.
//   - Numbers must be whole decimal (hex for -p and -n); ONVM's strtoul reads "-t 5s" as an
//     error too, but wraps "-r 70000" into a uint16. Here -r is 2..32 (MAX_SERVICES; -r 1
//     would admit no service at all).
//   - NF cores (-n) and manager cores (EAL -l) that this machine lacks are dropped with a
//     notice (config.ParseCoreMask, config.ParseCPUList) instead of failing or silently
//     registering none.

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/reinforce-nfv/reinforce/manager/config"
)

// MgrOptString is onvm_mgr's getopt string in v21.10 (onvm_args.c, with -j).
const MgrOptString = "p:r:n:d:s:t:l:z:v:cj"

// MgrArgs is a parsed onvm_mgr command line. Zero fields were not given.
type MgrArgs struct {
	// PortMask is -p: bit i selects port i. Valid iff PortMaskSet.
	PortMask    uint64
	PortMaskSet bool
	// NFCores is -n's CPUs that this machine has, ascending. Valid iff NFMaskSet.
	NFCores   []int
	NFMaskSet bool
	// MgrCores is the EAL core list (-l, -c or --lcores) clamped to this machine, or nil.
	MgrCores []int
	// Name is the EAL --file-prefix, which names the region and socket (manager.name); "" if
	// absent.
	Name string
	// NumServices is -r (2..32), DefaultService is -d (1..31); 0 when absent.
	NumServices, DefaultService int
	// StatsOut is -s; "" when absent (ONVM then prints no stats).
	StatsOut config.StatsOut
	// StatsSleepS, TTLS are -z and -t in seconds; PktLimitM is -l in millions; Verbosity is
	// -v (1..3). 0 when absent.
	StatsSleepS, TTLS, Verbosity int
	PktLimitM                    int64
	// SharedCore is -c, Jumbo is -j.
	SharedCore, Jumbo bool
	// Lines are what onvm_mgr prints while parsing, for stdout.
	Lines []string
	// Notices are one-line remarks on arguments accepted but ignored or adjusted.
	Notices []string
}

// MgrUsageError is a native command line onvm_mgr refuses: print Msg, then MgrUsage.
type MgrUsageError struct {
	Msg string
}

func (e *MgrUsageError) Error() string { return e.Msg }

// MgrUsage is onvm_mgr's usage text (onvm_args.c usage()), with -n and -j, which v21.10
// accepts but leaves out of it.
func MgrUsage(prog string) string {
	return prog + " [EAL options] -- -p PORTMASK [-n NF_COREMASK] [-r NUM_SERVICES] [-d DEFAULT_SERVICE] [-s STATS_OUTPUT]\n" +
		"\t-p PORTMASK: hexadecimal bitmask of ports to use\n" +
		"\t-n NF_COREMASK: hexadecimal bitmask of the cores NFs may run on\n" +
		"\t-r NUM_SERVICES: number of unique serivces allowed. defaults to 16 (optional)\n" +
		"\t-d DEFAULT_SERVICE: the service to initially receive packets. defaults to 1 (optional)\n" +
		"\t-s STATS_OUTPUT: where to output manager stats (stdout/stderr/web). defaults to NONE (optional)\n" +
		"\t-z STATS_SLEEP_TIME: how long the stats thread should wait before updating the stats (in seconds)\n" +
		"\t-t TTL: time to live, how many seconds to wait until exiting (optional)\n" +
		"\t-l PACKET_LIMIT: how many millions of packets to recieve before exiting (optional)\n" +
		"\t-v VERBOCITY_LEVEL: verbocity level of the stats output (optional)\n" +
		"\t-c ENABLE_SHARED_CPU: allow the NFs to share a core based on mutex sleep/wakeups (optional)\n" +
		"\t-j ENABLE_JUMBO: allow ports to send and receive jumbo frames (optional)\n"
}

// mgrLongOpts maps onvm_mgr's long option names (onvm_args.c lgopts) to their letters.
var mgrLongOpts = map[string]byte{
	"port-mask": 'p', "num-services": 'r', "nf-cores": 'n', "default-service": 'd',
	"stats-out": 's', "stats-sleep-time": 'z', "time_to_live": 't', "packet_limit": 'l',
	"verbocity-level": 'v', "enable_shared_cpu": 'c', "jumbo_frames": 'j',
}

// ParseMgrArgs parses onvm_mgr's command line split at its first "--": eal before it, native
// after it. ncpu is this machine's CPU count. Errors in native are *MgrUsageError; a bad EAL
// core list is an error too. It never panics and is safe for concurrent use.
func ParseMgrArgs(eal, native []string, ncpu int) (MgrArgs, error) {
	var a MgrArgs
	if err := a.parseEAL(eal, ncpu); err != nil {
		return MgrArgs{}, err
	}
	// Long options become their short forms first, so getopt sees one syntax.
	var toks []string
	for i := 0; i < len(native); i++ {
		t := native[i]
		if t == "--" {
			toks = append(toks, native[i:]...)
			break
		}
		if !strings.HasPrefix(t, "--") {
			toks = append(toks, t)
			continue
		}
		name, val, hasVal := strings.Cut(t[2:], "=")
		c, ok := mgrLongOpts[name]
		if !ok {
			return MgrArgs{}, &MgrUsageError{Msg: fmt.Sprintf("ERROR: Unknown option '%s'", t)}
		}
		toks = append(toks, "-"+string(c))
		if hasVal {
			toks = append(toks, val)
		}
	}
	opts, operands, err := getopt(toks, MgrOptString, false)
	if err != nil {
		var oe *optError
		if errors.As(err, &oe) && oe.missing {
			return MgrArgs{}, &MgrUsageError{Msg: fmt.Sprintf("ERROR: option -%c requires an argument", oe.name)}
		}
		return MgrArgs{}, &MgrUsageError{Msg: "ERROR: Unknown option '?'"}
	}
	for _, w := range operands {
		a.Notices = append(a.Notices, fmt.Sprintf("ignoring argument %q after the options", w))
	}
	for _, o := range opts {
		if err := a.set(o, ncpu); err != nil {
			return MgrArgs{}, err
		}
	}
	if a.DefaultService > 0 && a.NumServices > 0 && a.DefaultService >= a.NumServices {
		return MgrArgs{}, &MgrUsageError{Msg: fmt.Sprintf(
			"ERROR: default service %d is not below the number of services %d", a.DefaultService, a.NumServices)}
	}
	return a, nil
}

// set applies one native option.
func (a *MgrArgs) set(o opt, ncpu int) error {
	bad := func(what string) error {
		return &MgrUsageError{Msg: fmt.Sprintf("ERROR: invalid %s -%c %q", what, o.name, o.arg)}
	}
	dec := func(lo, hi uint64) (uint64, bool) {
		n, err := strconv.ParseUint(o.arg, 10, 64)
		return n, err == nil && n >= lo && n <= hi
	}
	switch o.name {
	case 'p':
		m, ok := parseHex(o.arg)
		if !ok {
			return bad("port mask")
		}
		a.PortMask, a.PortMaskSet = m, true
		if m == 0 {
			a.Lines = append(a.Lines, "WARNING: No ports are being used.")
		}
		for bit := range 64 {
			if m&(1<<bit) != 0 && bit > config.MaxPortID {
				a.Lines = append(a.Lines, fmt.Sprintf("WARNING: requested port %d not present - ignoring", bit))
			}
		}
	case 'n':
		if _, ok := parseHex(o.arg); !ok {
			return bad("NF core mask")
		}
		cpus, warning, err := config.ParseCoreMask(o.arg, ncpu)
		if err != nil {
			return bad("NF core mask")
		}
		a.NFMaskSet = true
		if len(cpus) == 0 {
			a.Lines = append(a.Lines, "WARNING: No NF cores are being used.",
				"         Restart onvm_mgr with a valid coremask to run NFs.")
			a.NFCores = nil
			break
		}
		if warning != "" {
			a.Notices = append(a.Notices, "NF core mask "+o.arg+": "+warning)
		}
		a.NFCores = cpus
		s := make([]string, len(cpus))
		for i, c := range cpus {
			s[i] = strconv.Itoa(c)
		}
		a.Lines = append(a.Lines, fmt.Sprintf("Registered %d cores for NFs: %s", len(cpus), strings.Join(s, ", ")))
	case 'r':
		// At least 2: service IDs start at 1, so -r 1 would admit none.
		n, ok := dec(2, config.MaxServiceID+1)
		if !ok {
			return bad("number of services (2..32)")
		}
		a.NumServices = int(n)
	case 'd':
		n, ok := dec(1, config.MaxServiceID)
		if !ok {
			return bad("default service (1..31)")
		}
		a.DefaultService = int(n)
	case 's':
		switch config.StatsOut(o.arg) {
		case config.StatsStdout, config.StatsStderr, config.StatsWeb:
			a.StatsOut = config.StatsOut(o.arg)
		default:
			return bad("stats output (stdout, stderr or web)")
		}
	case 'z', 't':
		n, ok := dec(1, 1<<31-1)
		if !ok {
			return bad("number of seconds")
		}
		if o.name == 'z' {
			a.StatsSleepS = int(n)
		} else {
			a.TTLS = int(n)
		}
	case 'l':
		n, ok := dec(1, 1<<32-1)
		if !ok {
			return bad("packet limit")
		}
		a.PktLimitM = int64(n)
	case 'v':
		n, ok := dec(1, 1<<16-1)
		if !ok {
			return bad("verbosity level")
		}
		if n > config.MaxVerbosity {
			a.Notices = append(a.Notices, fmt.Sprintf("verbosity level %d read as %d (raw dump)", n, config.MaxVerbosity))
			n = config.MaxVerbosity
		}
		a.Verbosity = int(n)
	case 'c':
		a.SharedCore = true
	case 'j':
		a.Jumbo = true
	}
	return nil
}

// parseHex reads a hex number as strtoul(s, &end, 16) does when it consumes the whole
// string: an optional 0x, then hex digits. It refuses values past 64 bits.
func parseHex(s string) (uint64, bool) {
	t := s
	if len(t) >= 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X') {
		t = t[2:]
	}
	if t == "" {
		return 0, false
	}
	n, err := strconv.ParseUint(t, 16, 64)
	return n, err == nil
}

// ealValueShort lists the EAL short options that take a value (DPDK 20.11
// eal_short_options "a:b:c:d:hl:m:n:r:s:S:vw:").
const ealValueShort = "abcdlmnrsSw"

// ealValueLong lists the EAL long options that take a value; the others are flags.
var ealValueLong = map[string]bool{
	"allow": true, "base-virtaddr": true, "block": true, "file-prefix": true,
	"force-max-simd-bitwidth": true, "huge-dir": true, "iova-mode": true, "lcores": true,
	"log-level": true, "main-lcore": true, "master-lcore": true, "mbuf-pool-ops-name": true,
	"pci-blacklist": true, "pci-whitelist": true, "proc-type": true, "socket-limit": true,
	"socket-mem": true, "trace": true, "trace-bufsz": true, "trace-dir": true,
	"trace-mode": true, "vdev": true, "vfio-intr": true, "vfio-vf-token": true,
}

// ealWhy says why an EAL argument needs nothing here, for the notice.
var ealWhy = map[string]string{
	"n":             "memory channels are DPDK's concern",
	"proc-type":     "the manager is always the primary",
	"base-virtaddr": "the region holds no pointers, so any address works",
	"socket-mem":    "the pool is sized by manager.pool_slots",
	"m":             "the pool is sized by manager.pool_slots",
	"huge-dir":      "the region goes on a hugetlbfs mount when there is one",
}

// parseEAL notes each EAL argument and keeps the core list and file prefix.
func (a *MgrArgs) parseEAL(eal []string, ncpu int) error {
	for i := 0; i < len(eal); i++ {
		tok := eal[i]
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
		var cpus []int
		var warning string
		var err error
		switch {
		case (name == "l" || name == "lcores") && hasVal && strings.Trim(val, "0123456789,- ") == "":
			cpus, warning, err = config.ParseCPUList(val, ncpu)
		case name == "c" && hasVal:
			cpus, warning, err = config.ParseCoreMask(val, ncpu)
		case name == "file-prefix" && hasVal:
			a.Name = val
			a.Notices = append(a.Notices, fmt.Sprintf("EAL argument %s names the manager (region and socket %q)", tok, val))
			continue
		default:
			why := ealWhy[name]
			if why == "" {
				why = "there is no DPDK EAL"
			}
			a.Notices = append(a.Notices, fmt.Sprintf("ignoring EAL argument %s: %s", tok, why))
			continue
		}
		if err != nil {
			return fmt.Errorf("EAL argument %s: %w", tok, err)
		}
		a.MgrCores = cpus
		note := fmt.Sprintf("EAL argument %s: manager CPUs %s", tok, config.FormatCPUList(cpus))
		if warning != "" {
			note += " (" + warning + ")"
		}
		a.Notices = append(a.Notices, note)
	}
	return nil
}

// PortTemplate is the port a portmask bit becomes when there is no configuration file: a
// null port with ID = bit, this driver, rate and frame size.
type PortTemplate struct {
	Driver   config.Driver
	RatePPS  int64
	PktBytes int
}

// DefaultPortTemplate is a null port receiving 10,000 frames/s of 64 bytes: an idle NIC would
// receive nothing, but a trickle shows the ports' counters move.
func DefaultPortTemplate() PortTemplate {
	return PortTemplate{Driver: config.DriverNull, RatePPS: 10_000, PktBytes: config.DefaultPktBytes}
}

// OnvmDefaultChainName is the chain Apply adds for -d when the default chain has several
// services.
const OnvmDefaultChainName = "onvm-default-service"

// Apply maps a onto cfg. fromFile says cfg came from a TOML file: its ports and chains are
// then kept (and -p only selects among the ports); without a file the configuration is
// ONVM's: one port per -p bit (from tmpl), a default chain [-d or 1] that drops at its end
// (ONVM's chain has no exit), and no stats unless -s is given. It returns notices about
// what it changed. cfg is modified in place; call Validate afterwards.
func (a MgrArgs) Apply(cfg *config.Config, fromFile bool, tmpl PortTemplate) []string {
	var notes []string
	m := &cfg.Manager
	if a.Name != "" {
		m.Name = a.Name
	}
	if a.MgrCores != nil {
		m.Cores = config.FormatCPUList(a.MgrCores)
	}
	if !fromFile {
		cfg.Ports = nil
		for bit := 0; bit <= config.MaxPortID; bit++ {
			if a.PortMask&(1<<bit) != 0 {
				cfg.Ports = append(cfg.Ports, config.Port{ID: bit, Driver: tmpl.Driver, RatePPS: tmpl.RatePPS, PktBytes: tmpl.PktBytes})
			}
		}
		cfg.Chains = []config.Chain{{Name: config.DefaultChainName, Services: []int{config.DefaultServiceID}, OutPort: config.OutPortDrop}}
		m.DefaultChain = config.DefaultChainName
		m.StatsOut = config.StatsNone
	} else if a.PortMaskSet {
		var kept []config.Port
		for _, p := range cfg.Ports {
			if p.ID < 64 && a.PortMask&(1<<p.ID) != 0 {
				kept = append(kept, p)
			} else {
				notes = append(notes, fmt.Sprintf("port %d of the configuration is not in port mask %#x: not used", p.ID, a.PortMask))
			}
		}
		for bit := 0; bit <= config.MaxPortID; bit++ {
			if a.PortMask&(1<<bit) != 0 {
				if _, ok := cfg.Port(bit); !ok {
					notes = append(notes, fmt.Sprintf("WARNING: requested port %d not present - ignoring", bit))
				}
			}
		}
		cfg.Ports = kept
		for i := range cfg.Chains {
			ch := &cfg.Chains[i]
			if _, ok := cfg.Port(ch.OutPort); ch.OutPort != config.OutPortDrop && !ok {
				notes = append(notes, fmt.Sprintf("chain %q: out_port %d is not in the port mask; its packets are dropped at the end", ch.Name, ch.OutPort))
				ch.OutPort = config.OutPortDrop
			}
		}
	}
	if a.NumServices > 0 {
		m.NumServices = a.NumServices
	}
	if a.DefaultService > 0 {
		notes = append(notes, setDefaultService(cfg, a.DefaultService)...)
	}
	if a.StatsOut != "" {
		m.StatsOut = a.StatsOut
	}
	if a.StatsSleepS > 0 {
		m.StatsInterval = secs(a.StatsSleepS)
	}
	if a.TTLS > 0 {
		m.TTL = secs(a.TTLS)
	}
	if a.PktLimitM > 0 {
		m.PacketLimitM = a.PktLimitM
	}
	if a.Verbosity > 0 {
		m.Verbosity = a.Verbosity
	}
	if a.SharedCore {
		m.SharedCPU = true
	}
	if a.Jumbo {
		m.Jumbo = true
	}
	return notes
}

// setDefaultService makes port traffic that matches no flow rule enter service sid: the
// default chain becomes [sid] if it has one service, else a new chain [sid] with the same
// exit becomes the default.
func setDefaultService(cfg *config.Config, sid int) []string {
	m := &cfg.Manager
	for i := range cfg.Chains {
		ch := &cfg.Chains[i]
		if ch.Name != m.DefaultChain {
			continue
		}
		if len(ch.Services) == 1 {
			ch.Services = []int{sid}
			return nil
		}
		cfg.Chains = append(cfg.Chains, config.Chain{Name: OnvmDefaultChainName, Services: []int{sid}, OutPort: ch.OutPort})
		m.DefaultChain = OnvmDefaultChainName
		return []string{fmt.Sprintf("default chain %q has %d services; -d %d makes chain %q = [%d] the default",
			ch.Name, len(ch.Services), sid, OnvmDefaultChainName, sid)}
	}
	cfg.Chains = append(cfg.Chains, config.Chain{Name: OnvmDefaultChainName, Services: []int{sid}, OutPort: config.OutPortDrop})
	m.DefaultChain = OnvmDefaultChainName
	return nil
}

func secs(n int) time.Duration { return time.Duration(n) * time.Second }
