// Command reinforce-mgr is the Reinforce manager: it owns the region and the
// ports, registers NFs and moves packets along service chains.
//
//	reinforce-mgr [--config FILE] [-t TTL_S] [-l MPKTS] [-z STATS_S] [-v N] [-c] ...
//	reinforce-mgr [--config FILE] [EAL args] -- -p PORTMASK [-n NFMASK] [onvm_mgr args]
//	reinforce-mgr --onvm-go.sh=SCRIPT [long options] -- [go.sh args]
//
// Without --config it runs the embedded default: one null port and a chain of
// service 1 that exits on it, in /dev/shm, with no NIC and no root.
//
// The second form takes onvm_mgr's own command line (ONVM-COMPAT.md §1.2;
// onvm-compat.MgrArgs); the third is onvm-compat/onvm/go.sh's (§1.1),
// which prints what go.sh prints and then runs as the second form would.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/reinforce-nfv/reinforce/manager"
	"github.com/reinforce-nfv/reinforce/manager/config"
	_ "github.com/reinforce-nfv/reinforce/port/afpacket" // registers the afpacket driver
	_ "github.com/reinforce-nfv/reinforce/port/pcap"     // registers the pcap driver
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) > 0 && strings.HasPrefix(args[0], "--onvm-go.sh=") {
		return runGoSh(strings.TrimPrefix(args[0], "--onvm-go.sh="), args[1:])
	}
	if slices.Contains(args, "--") {
		return runONVM(args)
	}
	fs := flag.NewFlagSet("reinforce-mgr", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "TOML configuration `file` (default: the embedded default)")
	ttl := fs.Int("t", 0, "time to live in `seconds` (ONVM -t); 0 keeps the config's")
	limit := fs.Int64("l", 0, "stop after this many `million` port RX packets (ONVM -l)")
	statsS := fs.Int("z", 0, "stats period in `seconds` (ONVM -z)")
	verb := fs.Int("v", 0, "stats verbosity 1..3 (ONVM -v)")
	shared := fs.Bool("c", false, "shared-core mode (ONVM -c)")
	name := fs.String("name", "", "region and socket base `name`")
	regionDir := fs.String("region-dir", "", "`directory` for the region file (default: hugetlbfs if mounted, else /dev/shm)")
	socket := fs.String("socket", "", "control socket `path`")
	logLevel := fs.String("log-level", "info", "log `level`: debug, info, warn, error")
	webPort := fs.Int("web-port", manager.DefaultWebPort, "`port` of the web console's JSON files (stats_out = \"web\")")
	webDir := fs.String("web-dir", "", "`directory` to also write the web console's files to (stats_out = \"web\")")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "reinforce-mgr: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	log, err := newLogger(*logLevel)
	if err != nil {
		fmt.Fprintf(os.Stderr, "reinforce-mgr: --log-level: %v\n", err)
		return 2
	}

	cfg := config.DefaultConfig()
	if *cfgPath != "" {
		var warns []string
		cfg, warns, err = config.Load(*cfgPath)
		if err != nil {
			fmt.Fprintf(os.Stderr, "reinforce-mgr: %v\n", err)
			return 2
		}
		for _, w := range warns {
			fmt.Fprintln(os.Stderr, "reinforce-mgr: notice:", w)
		}
	}
	m := &cfg.Manager
	if *ttl < 0 || *limit < 0 || *statsS < 0 {
		fmt.Fprintln(os.Stderr, "reinforce-mgr: -t, -l and -z take positive numbers")
		return 2
	}
	if *ttl > 0 {
		m.TTL = time.Duration(*ttl) * time.Second
	}
	if *limit > 0 {
		m.PacketLimitM = *limit
	}
	if *statsS > 0 {
		m.StatsInterval = time.Duration(*statsS) * time.Second
	}
	if *verb != 0 {
		m.Verbosity = *verb
	}
	if *shared {
		m.SharedCPU = true
	}
	if *name != "" {
		m.Name = *name
	}
	if *regionDir != "" {
		m.RegionDir = *regionDir
	}
	if *socket != "" {
		m.ControlSocket = *socket
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "reinforce-mgr: %v\n", err)
		return 2
	}
	if *webPort < 0 || *webPort > 65535 {
		fmt.Fprintln(os.Stderr, "reinforce-mgr: --web-port out of range 0..65535")
		return 2
	}
	return serve(cfg, manager.Options{Log: log, WebAddr: fmt.Sprintf(":%d", *webPort), WebDir: *webDir})
}

// newLogger returns the manager's console logger at the named level.
func newLogger(level string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		return zerolog.Logger{}, err
	}
	zerolog.TimeFieldFormat = time.RFC3339Nano // milliseconds matter here
	fi, _ := os.Stderr.Stat()
	color := fi != nil && fi.Mode()&os.ModeCharDevice != 0 // no escape codes in files and pipes
	return zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: "15:04:05.000", NoColor: !color}).
		Level(lvl).With().Timestamp().Logger(), nil
}

// serve runs a manager with a validated cfg until a signal, its TTL or its
// packet limit, then prints why and the summary; it returns the exit status.
func serve(cfg config.Config, opt manager.Options) int {
	log := opt.Log
	mgr, err := manager.New(cfg, opt)
	if err != nil {
		fmt.Fprintf(os.Stderr, "reinforce-mgr: %v\n", err)
		return 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	if err := mgr.Start(); err != nil {
		log.Error().Err(err).Msg("start")
		mgr.Close()
		return 1
	}
	reason := mgr.Wait(sig)
	fmt.Println(reason)
	if err := mgr.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		log.Error().Err(err).Msg("close")
		return 1
	}
	fmt.Print(manager.Summary(*mgr.FinalSnapshot()))
	return 0
}
