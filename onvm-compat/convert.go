package onvmcompat

// Convert: an ONVM deployment (a go.sh line, start_nf.sh lines with their
// JSON configs, a run_group.py file) into one manager TOML file that
// `reinforce-mgr --config` runs: the manager from the go.sh line as
// MgrArgs.Apply maps it, and one [[nf]] per NF, which the manager then
// launches and restarts itself.

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reinforce-nfv/reinforce/manager/config"
	"github.com/reinforce-nfv/reinforce/nflib"
)

// ConvertInput is an ONVM deployment.
type ConvertInput struct {
	// GoSh is the go.sh command line without the script name; nil means go.sh's
	// defaults with no ports (-k 0 -n 0x1).
	GoSh []string
	// NFs are start_nf.sh lines: the NF name, then its arguments.
	NFs [][]string
	// Deploy is a run_group.py file's content, or nil.
	Deploy *Deploy
	// ExamplesDir is the examples/ folder, against which NF folders and
	// relative -F paths are resolved.
	ExamplesDir string
	// BinDir is where the NF binaries are; each [[nf]] command starts with
	// BinDir/<nf>.
	BinDir string
	// NCPU is this machine's CPU count, for the core lists.
	NCPU int
	// Ports is the port each portmask bit becomes.
	Ports PortTemplate
}

// Convert turns in into a validated configuration and notes on what had no
// equivalent. It never panics.
func Convert(in ConvertInput) (config.Config, []string, error) {
	var notes []string
	gosh := in.GoSh
	if gosh == nil {
		gosh = []string{"-k", "0", "-n", "0x1"}
		notes = append(notes, "no go.sh line: ONVM's defaults without ports")
	}
	if len(gosh) > 0 && strings.HasSuffix(gosh[0], "go.sh") {
		gosh = gosh[1:]
	}
	g, err := ParseGoSh("go.sh", gosh)
	if err != nil {
		return config.Config{}, nil, fmt.Errorf("go.sh line: %v", err)
	}
	notes = append(notes, g.Notices...)
	eal, native := g.MgrArgv()
	a, err := ParseMgrArgs(eal, native, max(in.NCPU, 1))
	if err != nil {
		return config.Config{}, nil, fmt.Errorf("go.sh line: %v", err)
	}
	for _, n := range a.Notices {
		if !strings.HasPrefix(n, "ignoring EAL") { // go.sh's own EAL arguments: not news
			notes = append(notes, n)
		}
	}
	cfg := config.DefaultConfig()
	notes = append(notes, a.Apply(&cfg, false, in.Ports)...)
	if a.NFMaskSet {
		notes = append(notes, fmt.Sprintf("NF core mask %s: NFs are not pinned yet; the mask is not kept", g.NFCores))
	}

	lines := slices.Clone(in.NFs)
	if in.Deploy != nil {
		for _, e := range in.Deploy.NFs {
			words, err := splitWords(e.Parameters)
			if err != nil {
				return config.Config{}, nil, fmt.Errorf("deployment entry %s: %v", e.Dir, err)
			}
			lines = append(lines, append([]string{e.Dir}, words...))
		}
		if in.Deploy.TTL > 0 {
			if cfg.Manager.TTL == 0 {
				cfg.Manager.TTL = time.Duration(in.Deploy.TTL * float64(time.Second)).Round(time.Second)
				notes = append(notes, fmt.Sprintf("deployment TTL %g s: the manager's ttl_s, which stops the NFs with it", in.Deploy.TTL))
			} else {
				notes = append(notes, fmt.Sprintf("deployment TTL %g s ignored: go.sh's -t wins", in.Deploy.TTL))
			}
		}
	}
	for _, l := range lines {
		nf, n, err := convertNF(l, in)
		if err != nil {
			return config.Config{}, nil, err
		}
		cfg.NFs = append(cfg.NFs, nf)
		notes = append(notes, n...)
	}
	if err := cfg.Validate(); err != nil {
		return config.Config{}, nil, err
	}
	return cfg, notes, nil
}

// convertNF turns one start_nf.sh line into an [[nf]] entry.
func convertNF(line []string, in ConvertInput) (config.NF, []string, error) {
	if len(line) == 0 || line[0] == "" {
		return config.NF{}, nil, errors.New("empty NF line")
	}
	name := line[0]
	argv, err := StartNFArgv(line[1:])
	if err != nil {
		return config.NF{}, nil, fmt.Errorf("NF %s: %v", name, err)
	}
	if argv[0] == "-F" && len(argv) > 1 && !filepath.IsAbs(argv[1]) {
		argv = slices.Clone(argv)
		argv[1] = filepath.Join(in.ExamplesDir, name, argv[1]) // ./go.sh runs in examples/<nf>
	}
	a, err := nflib.ParseArgs(argv)
	if err != nil {
		return config.NF{}, nil, fmt.Errorf("NF %s %s: %v", name, strings.Join(line[1:], " "), err)
	}
	tag := name
	if len(tag) > config.MaxTagBytes {
		tag = tag[:config.MaxTagBytes] // ONVM's TAG_SIZE
	}
	nf := config.NF{Tag: tag, Service: int(a.Service), Instance: int(a.Instance),
		Command: append([]string{filepath.Join(in.BinDir, name)}, a.AppArgs...)}
	var notes []string
	drop := func(what string) {
		notes = append(notes, fmt.Sprintf("NF %s: %s has no [[nf]] key; not kept", name, what))
	}
	if a.TTL > 0 {
		drop("-t " + strconv.Itoa(int(a.TTL/time.Second)))
	}
	if a.PktLimit > 0 {
		drop("-l (packet limit)")
	}
	if a.ManualCore || a.ShareCore {
		drop("-m/-s (core assignment)")
	}
	return nf, notes, nil
}

// EncodeTOML writes cfg as a manager TOML file, header lines first as
// comments. config.Parse reads it back to cfg (the round trip is tested).
// It writes no [[flow]] entries: ONVM deployments have none (its flow
// director is filled by NFs at run time).
func EncodeTOML(cfg config.Config, header []string) []byte {
	var b strings.Builder
	for _, h := range header {
		b.WriteString("# " + h + "\n")
	}
	m := cfg.Manager
	b.WriteString("[manager]\n")
	kv := func(k string, v any) {
		var s string
		switch v := v.(type) {
		case string:
			s = tomlString(v)
		case bool:
			s = strconv.FormatBool(v)
		case int:
			s = strconv.Itoa(v)
		case int64:
			s = strconv.FormatInt(v, 10)
		}
		b.WriteString(k + " = " + s + "\n")
	}
	kv("name", m.Name)
	if m.RegionDir != "" {
		kv("region_dir", m.RegionDir)
	}
	if m.ControlSocket != "" {
		kv("control_socket", m.ControlSocket)
	}
	kv("pool_slots", m.PoolSlots)
	kv("data_bytes", m.DataBytes)
	kv("jumbo", m.Jumbo)
	kv("ring_size", m.RingSize)
	kv("burst", m.Burst)
	kv("stats_interval_s", int64(m.StatsInterval/time.Second))
	kv("stats_out", string(m.StatsOut))
	kv("verbosity", m.Verbosity)
	kv("ttl_s", int64(m.TTL/time.Second))
	kv("packet_limit_m", m.PacketLimitM)
	kv("shared_cpu", m.SharedCPU)
	kv("dead_nf_policy", string(m.DeadNFPolicy))
	kv("dead_nf_grace_ms", int64(m.DeadNFGrace/time.Millisecond))
	kv("default_chain", m.DefaultChain)
	kv("num_services", m.NumServices)
	if m.Cores != "" {
		kv("cores", m.Cores)
	}
	for _, p := range cfg.Ports {
		b.WriteString("\n[[port]]\n")
		kv("id", p.ID)
		kv("driver", string(p.Driver))
		if p.Iface != "" {
			kv("iface", p.Iface)
		}
		if p.Path != "" {
			kv("path", p.Path)
		}
		if p.OutPath != "" {
			kv("out_path", p.OutPath)
		}
		kv("rate_pps", p.RatePPS)
		kv("pkt_bytes", p.PktBytes)
		if p.Loop {
			kv("loop", true)
		}
	}
	for _, ch := range cfg.Chains {
		b.WriteString("\n[[chain]]\n")
		kv("name", ch.Name)
		s := make([]string, len(ch.Services))
		for i, v := range ch.Services {
			s[i] = strconv.Itoa(v)
		}
		b.WriteString("services = [" + strings.Join(s, ", ") + "]\n")
		kv("out_port", ch.OutPort)
	}
	for _, nf := range cfg.NFs {
		b.WriteString("\n[[nf]]\n")
		kv("tag", nf.Tag)
		kv("service", nf.Service)
		if nf.Instance != 0 {
			kv("instance", nf.Instance)
		}
		s := make([]string, len(nf.Command))
		for i, v := range nf.Command {
			s[i] = tomlString(v)
		}
		b.WriteString("command = [" + strings.Join(s, ", ") + "]\n")
		if nf.Standby != config.StandbyNone {
			kv("standby", string(nf.Standby))
		}
	}
	return []byte(b.String())
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
