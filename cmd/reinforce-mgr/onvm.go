package main

// ONVM command lines (onvm-compat): onvm_mgr's own, after "--", and
// onvm/go.sh's, which onvm-compat/onvm/go.sh hands over with --onvm-go.sh.
//
// Stages: split off our long options (they may stand among the EAL
// arguments); parse go.sh's line into onvm_mgr's if that is the form; parse
// onvm_mgr's; print what ONVM prints while parsing; start from the embedded
// default or --config and apply the ONVM arguments on top; validate; print
// ONVM's start-up lines; serve.

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/reinforce-nfv/reinforce/ctlmsg"
	"github.com/reinforce-nfv/reinforce/manager"
	"github.com/reinforce-nfv/reinforce/manager/config"
	onvmcompat "github.com/reinforce-nfv/reinforce/onvm-compat"
)

// onvmOpts are our long options in ONVM mode.
type onvmOpts struct {
	config, name, regionDir, socket, logLevel, webDir string
	webPort                                           int
	portRate                                          int64
	portDriver                                        string
}

// onvmLongOpts lists our long options that take a value in ONVM mode; they
// are recognised among the EAL arguments, which never use these names.
var onvmLongOpts = map[string]bool{
	"config": true, "name": true, "region-dir": true, "socket": true, "log-level": true,
	"web-dir": true, "web-port": true, "onvm-port-rate": true, "onvm-port-driver": true,
}

// splitOurs takes our long options out of args (up to the first "--") and
// returns the rest.
func splitOurs(args []string) (onvmOpts, []string, error) {
	o := onvmOpts{logLevel: "info", webPort: manager.DefaultWebPort, portRate: -1}
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		name, val, hasVal := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !strings.HasPrefix(a, "--") || !onvmLongOpts[name] {
			rest = append(rest, a)
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				return o, nil, fmt.Errorf("option --%s needs a value", name)
			}
			i++
			val = args[i]
		}
		var err error
		switch name {
		case "config":
			o.config = val
		case "name":
			o.name = val
		case "region-dir":
			o.regionDir = val
		case "socket":
			o.socket = val
		case "log-level":
			o.logLevel = val
		case "web-dir":
			o.webDir = val
		case "web-port":
			o.webPort, err = strconv.Atoi(val)
			if err == nil && (o.webPort < 0 || o.webPort > 65535) {
				err = errors.New("out of range 0..65535")
			}
		case "onvm-port-rate":
			o.portRate, err = strconv.ParseInt(val, 10, 64)
			if err == nil && o.portRate < 0 {
				err = errors.New("must be >= 0")
			}
		case "onvm-port-driver":
			o.portDriver = val
		}
		if err != nil {
			return o, nil, fmt.Errorf("option --%s %s: %v", name, val, err)
		}
	}
	return o, rest, nil
}

// runGoSh runs go.sh's command line args; script is go.sh's $0.
func runGoSh(script string, args []string) int {
	o, rest, err := splitOurs(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reinforce-mgr:", err)
		return 2
	}
	if len(rest) > 0 && rest[0] == "--" {
		rest = rest[1:]
	}
	g, err := onvmcompat.ParseGoSh(script, rest)
	if err != nil {
		var ge *onvmcompat.GoShError
		if errors.As(err, &ge) {
			for _, l := range ge.Stderr {
				fmt.Fprintln(os.Stderr, l)
			}
			for _, l := range ge.Lines {
				fmt.Println(l)
			}
		}
		return 1
	}
	for _, l := range g.Lines {
		fmt.Println(l)
	}
	for _, n := range g.Notices {
		fmt.Fprintln(os.Stderr, "reinforce-mgr: notice:", n)
	}
	sock := o.socket
	if sock == "" {
		name := o.name
		if name == "" {
			name = config.DefaultName
		}
		sock = ctlmsg.DefaultSocketPath(name, os.Getenv("XDG_RUNTIME_DIR"), os.Getuid())
	}
	if c, err := net.Dial("unix", sock); err == nil {
		c.Close()
		fmt.Println("Manager cannot be started while another is running")
		return 1
	}
	eal, native := g.MgrArgv()
	argv := o.argv()
	argv = append(argv, eal...)
	argv = append(argv, "--")
	return runONVM(append(argv, native...))
}

// argv turns o back into long options, for runONVM.
func (o onvmOpts) argv() []string {
	var a []string
	add := func(name, val string) {
		if val != "" {
			a = append(a, "--"+name+"="+val)
		}
	}
	add("config", o.config)
	add("name", o.name)
	add("region-dir", o.regionDir)
	add("socket", o.socket)
	add("log-level", o.logLevel)
	add("web-dir", o.webDir)
	add("web-port", strconv.Itoa(o.webPort))
	if o.portRate >= 0 {
		add("onvm-port-rate", strconv.FormatInt(o.portRate, 10))
	}
	add("onvm-port-driver", o.portDriver)
	return a
}

// runONVM runs onvm_mgr's command line: [our options] [EAL] -- [native].
func runONVM(args []string) int {
	o, rest, err := splitOurs(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reinforce-mgr:", err)
		return 2
	}
	k := 0
	for k < len(rest) && rest[k] != "--" {
		k++
	}
	eal, native := rest[:k], rest[min(k+1, len(rest)):]
	log, err := newLogger(o.logLevel)
	if err != nil {
		fmt.Fprintf(os.Stderr, "reinforce-mgr: --log-level: %v\n", err)
		return 2
	}
	a, err := onvmcompat.ParseMgrArgs(eal, native, runtime.NumCPU())
	if err != nil {
		var ue *onvmcompat.MgrUsageError
		if errors.As(err, &ue) {
			fmt.Println(ue.Msg)
			fmt.Print(onvmcompat.MgrUsage("reinforce-mgr"))
			return 1
		}
		fmt.Fprintln(os.Stderr, "reinforce-mgr:", err)
		return 1
	}
	for _, n := range a.Notices {
		fmt.Fprintln(os.Stderr, "reinforce-mgr: notice:", n)
	}
	for _, l := range a.Lines {
		fmt.Println(l)
	}

	cfg := config.DefaultConfig()
	if o.config != "" {
		var warns []string
		cfg, warns, err = config.Load(o.config)
		if err != nil {
			fmt.Fprintf(os.Stderr, "reinforce-mgr: %v\n", err)
			return 2
		}
		for _, w := range warns {
			fmt.Fprintln(os.Stderr, "reinforce-mgr: notice:", w)
		}
	}
	tmpl := onvmcompat.DefaultPortTemplate()
	if o.portRate >= 0 {
		tmpl.RatePPS = o.portRate
	}
	if o.portDriver != "" {
		tmpl.Driver = config.Driver(o.portDriver)
	}
	for _, n := range a.Apply(&cfg, o.config != "", tmpl) {
		if strings.HasPrefix(n, "WARNING") {
			fmt.Println(n)
		} else {
			fmt.Fprintln(os.Stderr, "reinforce-mgr: notice:", n)
		}
	}
	m := &cfg.Manager
	if o.name != "" {
		m.Name = o.name
	}
	if o.regionDir != "" {
		m.RegionDir = o.regionDir
	}
	if o.socket != "" {
		m.ControlSocket = o.socket
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "reinforce-mgr: %v\n", err)
		return 2
	}
	// The master thread's first lines (ONVM-COMPAT.md §1.3).
	fmt.Printf("Stats verbosity level = %d\n", m.Verbosity)
	if m.TTL > 0 {
		fmt.Printf("Manager time to live = %d\n", int64(m.TTL.Seconds()))
	}
	if m.PacketLimitM > 0 {
		fmt.Printf("Manager packet limit = %d\n", m.PacketLimitM)
	}
	opt := manager.Options{Log: log}
	if m.StatsOut == config.StatsWeb {
		fmt.Println("ONVM stats can be viewed through the web console")
		opt.WebAddr = ":" + strconv.Itoa(o.webPort)
		opt.WebDir = o.webDir
	}
	return serve(cfg, opt)
}
