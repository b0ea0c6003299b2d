// Command demo-remote is the two-server demo (root): the three-role lab of
// tools/testbed/remotelab — pktgen → the ingress manager (the arbiter) →
// server a (primary) or b (standby), each running flow_tracker → mutate →
// stamp, replicated a → b → the sink — with traffic flowing. Halfway
// through, server a's whole manager (and its NFs) is killed with SIGKILL:
// the arbiter waits out a's lease, promotes b from the state it applied,
// and redirects the traffic; a's manager is started again with its
// unchanged configuration, is demoted by the arbiter, and rejoins as the
// standby (snapshot + catch-up). At the end the sink's verdict: no packet
// twice, no stamp regression, every mutation once, and each flow's stamp
// gap no larger than its packets lost in flight inside the dead server.
// Exit status 0 if the verdict holds.
//
//	demo-remote [-duration 12s] [-rate 20000] [-profile loaded]
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/reinforce-nfv/reinforce/tools/testbed/remotelab"
)

func main() {
	dur := flag.Duration("duration", 12*time.Second, "how long traffic flows (at least 8s)")
	rate := flag.Int("rate", 20000, "pktgen's rate, packets per second")
	profile := flag.String("profile", "loaded", "the arbiter's BFD profile: default (1 ms × 3), loaded (2 ms × 3) or shared (10 ms × 5, for a machine that stalls threads for more than 6 ms)")
	bin := flag.String("bin", "bin", "where to build the binaries")
	flag.Parse()
	if err := run(*dur, *rate, *profile, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "demo-remote:", err)
		os.Exit(1)
	}
}

func say(format string, args ...any) { fmt.Printf("==> demo: "+format+"\n", args...) }

func run(dur time.Duration, rate int, profile, bin string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (network and mount namespaces, veth pairs, AF_PACKET)")
	}
	if dur < 8*time.Second {
		return fmt.Errorf("-duration %v: at least 8s", dur)
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	say("building into %s", abs)
	if err := remotelab.Build(abs); err != nil {
		return err
	}
	// "continue": the promoted server releases output unprotected (up to a
	// minute) while the dead one restarts and rejoins, so traffic flows
	// through the failover instead of waiting for re-protection.
	l, err := remotelab.Up(remotelab.Options{Bin: abs, Profile: profile, Policy: "continue", RepLeaseMs: 60000})
	if err != nil {
		return err
	}
	defer l.Close()
	say("lab up: gen → ing (ingress, arbiter) → a (primary) | b (standby) → sink; chain c0 = flow_tracker → mutate → stamp, replicated a → b; BFD profile %s", profile)
	sink, err := l.StartSink()
	if err != nil {
		return err
	}
	if err := l.WaitProtected(30 * time.Second); err != nil {
		return err
	}
	say("chain c0 protected: a leads, b has caught up")
	if _, err := l.StartPktgen(rate); err != nil {
		return err
	}
	if err := sink.WaitFlowing(uint64(rate/10), 10*time.Second); err != nil {
		return err
	}
	t0 := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	report := func() {
		total, fa, fb := sink.Got()
		pri, _ := l.Primary()
		st := "?"
		if r, err := l.Member(pri).Rep(); err == nil {
			st = r.Status
		}
		fmt.Printf("    t=%4.1fs  primary %s (%s)  sink: %d packets (%d from a, %d from b)\n",
			time.Since(t0).Seconds(), pri, st, total, fa, fb)
	}
	for time.Since(t0) < dur/3 {
		<-tick.C
		report()
	}
	victim, err := l.Primary()
	if err != nil {
		return err
	}
	other := remotelab.Other(victim)
	kill := time.Now()
	sink.SetMark(kill)
	say("kill -9 the whole manager process group of server %s (manager and NFs)", victim)
	if err := l.Member(victim).Kill(); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if t, ok := sink.FirstAfterMark(remotelab.IfaceOf(other)); ok {
			say("server %s leads: first output at the sink %.1f ms after the kill", other, float64(t.Sub(kill).Microseconds())/1000)
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no output from %s within 10 s of the kill", other)
		}
		time.Sleep(time.Millisecond)
	}
	report()
	say("restart server %s's manager with its unchanged configuration: the arbiter demotes it, it rejoins as the standby", victim)
	if err := l.Member(victim).Restart(); err != nil {
		return err
	}
	if err := l.WaitProtected(30 * time.Second); err != nil {
		return err
	}
	say("chain c0 protected again: %s leads, %s has caught up", other, victim)
	for time.Since(t0) < dur {
		<-tick.C
		report()
	}
	rep, err := l.StopPktgen()
	if err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond) // the last packets through the chain
	res := sink.Result(&rep)
	c, _ := l.Counters()
	fmt.Println()
	say("pktgen sent %d packets; the sink received %d (%d via a, %d via b)", rep.Sent, res.Received, res.FromA, res.FromB)
	say("lost %d (inside the killed server, and dropped while the chain had no standby: counted); duplicated %d; reordered %d; mutation errors %d",
		res.Lost, res.Duplicated, res.Reordered, res.MutateErrors)
	say("stamp gaps %d, packets lost in flight %d; stamp rule violations %d", res.GapTotal, res.InFlightTotal, res.NStampViolations)
	say("ingress redirects %d, promotions %v, demotions %v", c.Redirects, c.Promotions, c.Demotions)
	for _, v := range res.StampViolations {
		fmt.Println("    ", v)
	}
	if res.Duplicated != 0 || res.MutateErrors != 0 || res.NStampViolations != 0 {
		say("VERDICT: FAILED (above)")
		return fmt.Errorf("the sink's verdict failed")
	}
	say("VERDICT: no packet twice, no stamp regression, every mutation once, every stamp gap within the packets lost in flight — through a server failover")
	return nil
}
