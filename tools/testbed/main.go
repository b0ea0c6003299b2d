// Command testbed builds and removes lab topologies (docs/lab.md).
//
//	testbed up [-json] [-owner PID] topo.toml
//	                                 build a lab that outlives the command (until down, or
//	                                 until process PID dies), print its run ID
//	testbed list                     list recorded runs
//	testbed exec RUN SERVER -- CMD…  run a command inside a server
//	testbed down RUN…                remove runs
//	testbed down -stale              remove runs whose owner died
//	testbed down -all                remove every run
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/reinforce-nfv/reinforce/tools/testbed/lab"
)

func main() { os.Exit(run(os.Args[1:])) }

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  testbed up [-json] [-owner PID] topo.toml
                                   build a lab that outlives the command (until down,
                                   or until process PID dies) and print its run ID
  testbed list                     list the recorded runs
  testbed exec RUN SERVER -- CMD…  run a command inside a server
  testbed down RUN…                remove runs
  testbed down -stale | -all       remove the runs whose owner died | every run
`)
}

func run(args []string) int {
	if len(args) == 0 {
		usage()
		return 2
	}
	var err error
	switch args[0] {
	case "up":
		err = up(args[1:])
	case "list":
		err = list()
	case "exec":
		var code int
		code, err = execIn(args[1:])
		if err == nil {
			return code
		}
	case "down":
		err = down(args[1:])
	case "-h", "-help", "--help", "help":
		usage()
		return 0
	default:
		usage()
		return 2
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "testbed:", err)
		return 1
	}
	return 0
}

func up(args []string) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the run as JSON")
	owner := fs.Int("owner", 0, "the lab becomes stale (swept by the next run) when this process dies; 0 = persistent until down")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("up wants one topology file")
	}
	cfg, err := lab.LoadConfig(fs.Arg(0))
	if err != nil {
		return err
	}
	l, err := lab.Up(cfg, lab.Options{Persistent: *owner == 0, Owner: *owner})
	if err != nil {
		return err
	}
	if *asJSON {
		type srv struct {
			Name, Mgmt string
			PID        int
		}
		out := struct {
			Run     string
			Servers []srv
		}{Run: l.Run()}
		for _, s := range l.Servers() {
			out.Servers = append(out.Servers, srv{s.Name(), s.MgmtAddr(), s.PID()})
		}
		return json.NewEncoder(os.Stdout).Encode(out)
	}
	fmt.Println(l.Run())
	return nil
}

func list() error {
	runs, err := lab.List()
	if err != nil {
		return err
	}
	for _, r := range runs {
		kind := "owned"
		switch {
		case r.Persistent:
			kind = "persistent"
		case !r.OwnerAlive:
			kind = "stale"
		}
		fmt.Printf("%s\t%s\t%s\t%s\n", r.Run, kind, r.Created.Format("2006-01-02T15:04:05Z"), strings.Join(r.Servers, ","))
	}
	return nil
}

func execIn(args []string) (int, error) {
	if len(args) < 3 {
		return 0, errors.New("exec wants RUN SERVER -- CMD [ARGS]")
	}
	run, server, rest := args[0], args[1], args[2:]
	if rest[0] == "--" {
		rest = rest[1:]
	}
	if len(rest) == 0 {
		return 0, errors.New("exec: no command")
	}
	l, err := lab.Attach(run)
	if err != nil {
		return 0, err
	}
	s := l.Server(server)
	if s == nil {
		return 0, fmt.Errorf("run %s has no server %q", run, server)
	}
	cmd := s.Command(rest[0], rest[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	return 0, err
}

func down(args []string) error {
	fs := flag.NewFlagSet("down", flag.ContinueOnError)
	stale := fs.Bool("stale", false, "remove the runs whose owner died")
	all := fs.Bool("all", false, "remove every run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *stale:
		removed, err := lab.Sweep()
		for _, r := range removed {
			fmt.Println("removed", r)
		}
		return err
	case *all:
		runs, err := lab.List()
		if err != nil {
			return err
		}
		var errs []error
		for _, r := range runs {
			errs = append(errs, lab.Down(r.Run))
		}
		return errors.Join(errs...)
	case fs.NArg() == 0:
		return errors.New("down wants run IDs, -stale or -all")
	}
	var errs []error
	for _, r := range fs.Args() {
		errs = append(errs, lab.Down(r))
	}
	return errors.Join(errs...)
}
