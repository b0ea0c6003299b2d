// Command pktgen sends probe-carrying UDP flows, or replays a capture, out
// of a network interface through AF_PACKET (docs/lab.md).
//
//	pktgen -i eth0 -flows 64 -count 100000 -rate 200000 -size 64,128 [-ipv6] [-vlan 10] [-json]
//	pktgen -i eth0 -pcap capture.pcap [-loops 3] [-rate 10000]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/reinforce-nfv/reinforce/pkt"
	"github.com/reinforce-nfv/reinforce/tools/pktgen/gen"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pktgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		iface    = fs.String("i", "", "interface to send on (required)")
		flows    = fs.Int("flows", 1, "number of flows; flow i adds i to the source address and port")
		count    = fs.Uint64("count", 0, "packets to send; 0 = until -duration or a signal")
		duration = fs.Duration("duration", 0, "stop after this long; 0 = no limit")
		rate     = fs.Float64("rate", 0, "packets per second; 0 = as fast as possible")
		burst    = fs.Int("burst", 32, "frames per send call")
		sizes    = fs.String("size", "", "frame sizes in bytes without FCS, comma-separated, cycled per packet (default: the smallest that holds the probe)")
		srcIP    = fs.String("src", "", "first flow's source address (default 10.0.0.1, or fd00::1 with -ipv6)")
		dstIP    = fs.String("dst", "", "destination address (default 10.1.0.1, or fd01::1 with -ipv6)")
		sport    = fs.Uint("sport", 1024, "first flow's UDP source port")
		dport    = fs.Uint("dport", 5000, "UDP destination port")
		srcMAC   = fs.String("src-mac", "02:00:00:00:00:01", "source MAC")
		dstMAC   = fs.String("dst-mac", "02:00:00:00:00:02", "destination MAC")
		ipv6     = fs.Bool("ipv6", false, "send IPv6 instead of IPv4")
		vlan     = fs.Int("vlan", 0, "802.1Q VLAN ID (0 = untagged)")
		pcapPath = fs.String("pcap", "", "replay this capture (pcap or pcapng) instead of generating flows")
		loops    = fs.Int("loops", 1, "pcap replay: times through the capture")
		asJSON   = fs.Bool("json", false, "print the report as JSON")
		maxDelay = fs.Duration("max-delay", 0, "paced: longest a frame waits for a full burst to fall due (0 = send each frame when due)")
		bucket   = fs.Int("bucket", 0, "paced: most frames the generator may fall behind the clock before the lost time is forfeited (0 = catch up, exact average rate)")
		yield    = fs.Bool("yield", true, "paced: call sched_yield while waiting for the next frame (the clock still paces)")
	)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fail := func(err error) int { fmt.Fprintln(stderr, "pktgen:", err); return 2 }
	if *iface == "" || fs.NArg() != 0 {
		return fail(fmt.Errorf("want -i IFACE and no arguments"))
	}
	o := gen.Options{Iface: *iface, Count: *count, Duration: *duration, RatePPS: *rate, Burst: *burst, Pcap: *pcapPath, Loops: *loops, Yield: *yield, MaxDelay: *maxDelay, Bucket: *bucket}
	if *pcapPath == "" {
		if *sport > 65535 || *dport > 65535 {
			return fail(fmt.Errorf("ports must be 0..65535"))
		}
		fl := gen.Flows{Count: *flows, SrcPort: uint16(*sport), DstPort: uint16(*dport), VLAN: *vlan}
		def := [2]string{"10.0.0.1", "10.1.0.1"}
		if *ipv6 {
			def = [2]string{"fd00::1", "fd01::1"}
		}
		var err error
		if fl.SrcIP, err = addr(*srcIP, def[0], *ipv6); err != nil {
			return fail(err)
		}
		if fl.DstIP, err = addr(*dstIP, def[1], *ipv6); err != nil {
			return fail(err)
		}
		if fl.SrcMAC, err = mac(*srcMAC); err != nil {
			return fail(err)
		}
		if fl.DstMAC, err = mac(*dstMAC); err != nil {
			return fail(err)
		}
		if *sizes != "" {
			for _, s := range strings.Split(*sizes, ",") {
				n, err := strconv.Atoi(strings.TrimSpace(s))
				if err != nil {
					return fail(fmt.Errorf("-size %q: %v", *sizes, err))
				}
				fl.Sizes = append(fl.Sizes, n)
			}
		}
		o.Flows = fl
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := gen.Run(ctx, o)
	if err != nil {
		fmt.Fprintln(stderr, "pktgen:", err)
		return 1
	}
	if *asJSON {
		json.NewEncoder(stdout).Encode(rep)
		return 0
	}
	fmt.Fprintf(stdout, "pktgen: sent %d packets in %v (%.0f pps); forfeited %d, kernel refusals retried %d, invalid %d, tx drops %d\n",
		rep.Sent, rep.Elapsed.Round(time.Millisecond), rep.PPS, rep.Forfeited, rep.Refused, rep.Invalid, rep.TxDrops)
	if rep.Frames > 0 {
		fmt.Fprintf(stdout, "pktgen: capture frames %d (malformed %d), hash sum %016x\n", rep.Frames, rep.Malformed, rep.HashSum)
	}
	return 0
}

func addr(s, def string, v6 bool) (netip.Addr, error) {
	if s == "" {
		s = def
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return a, err
	}
	if a.Is6() != v6 {
		return a, fmt.Errorf("address %s: want IPv%d", s, map[bool]int{false: 4, true: 6}[v6])
	}
	return a, nil
}

func mac(s string) (pkt.MAC, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return pkt.MAC{}, fmt.Errorf("MAC %q: want xx:xx:xx:xx:xx:xx", s)
	}
	return pkt.MAC(hw), nil
}
