// Command sink receives frames on a network interface through AF_PACKET
// and checks the probe records pktgen put in them (docs/lab.md): per flow,
// packets received, lost, duplicated, reordered, latency percentiles, and
// optionally stamp fields and mutation counters. It prints a summary, or
// JSON with -json, and exits 0 only when the verdict is clean.
//
//	sink -i eth0 [-json] [-idle 1s] [-duration 30s] [-count N] [-sent pktgen.json] [-stamps 0,1] [-mutate 1]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/reinforce-nfv/reinforce/pkt"
	"github.com/reinforce-nfv/reinforce/pkt/probe"
	"github.com/reinforce-nfv/reinforce/port"
	"github.com/reinforce-nfv/reinforce/shm"
	"github.com/reinforce-nfv/reinforce/tools/pktgen/gen"
	"github.com/reinforce-nfv/reinforce/tools/sink/check"
)

// idleSleep is how long the loop sleeps after an empty poll: the kernel
// hands RX blocks over at most every millisecond anyway, and its 16 MiB
// ring holds tens of milliseconds of traffic, so sleeping costs no frames
// and leaves the CPU to the rest of the lab.
const idleSleep = 200 * time.Microsecond

// Result is the JSON output: the checker's report and the port's counters.
type Result struct {
	check.Report
	Iface       string        `json:"iface"`
	Frames      uint64        `json:"frames"` // every frame received
	KernelDrops uint64        `json:"kernel_drops"`
	RxDrops     uint64        `json:"rx_drops"`
	Elapsed     time.Duration `json:"elapsed_ns"`  // first to last frame
	PPS         float64       `json:"pps"`         // frames over Elapsed
	StopReason  string        `json:"stop_reason"` // count, idle, duration, signal
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sink", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		iface    = fs.String("i", "", "interface to receive on (required)")
		asJSON   = fs.Bool("json", false, "print the verdict as JSON")
		idle     = fs.Duration("idle", 0, "stop this long after the last frame (once one arrived); 0 = never")
		duration = fs.Duration("duration", 0, "stop after this long; 0 = no limit")
		count    = fs.Uint64("count", 0, "stop after this many probe packets; 0 = no limit")
		sent     = fs.String("sent", "", "pktgen's -json report: judge losses against what it sent per flow (read when the sink stops)")
		stamps   = fs.String("stamps", "", "stamp fields (0..3, comma-separated) that must rise by one per packet per flow")
		mutate   = fs.Int64("mutate", -1, "every packet's mutation counter must equal this; -1 = not checked")
		maxFrame = fs.Int("max-frame", 9600, "longest frame received whole, in bytes (up to 65408); longer ones are counted as RX drops")
	)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fail := func(err error) int { fmt.Fprintln(stderr, "sink:", err); return 2 }
	if *iface == "" || fs.NArg() != 0 {
		return fail(errors.New("want -i IFACE and no arguments"))
	}
	var o check.Options
	if *stamps != "" {
		for _, f := range strings.Split(*stamps, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				return fail(fmt.Errorf("-stamps %q: %v", *stamps, err))
			}
			o.Stamps = append(o.Stamps, n)
		}
	}
	if *mutate >= 0 {
		if *mutate > 1<<32-1 {
			return fail(fmt.Errorf("-mutate %d: want 0..%d", *mutate, uint32(1<<32-1)))
		}
		o.CheckMutate, o.Mutate = true, uint32(*mutate)
	}
	if *maxFrame < 64 || *maxFrame > shm.MaxDataBytes-shm.HeadroomBytes {
		return fail(fmt.Errorf("-max-frame %d: want 64..%d", *maxFrame, shm.MaxDataBytes-shm.HeadroomBytes))
	}
	ck, err := check.New(o)
	if err != nil {
		return fail(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := receive(ctx, *iface, ck, *maxFrame, *idle, *duration, *count, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "sink:", err)
		return 1
	}
	var expected map[uint32]uint64
	if *sent != "" {
		if expected, err = loadSent(*sent); err != nil {
			fmt.Fprintln(stderr, "sink:", err)
			return 1
		}
	}
	res.Report = ck.Report(expected)
	if *asJSON {
		json.NewEncoder(stdout).Encode(res)
	} else {
		summary(stdout, res)
	}
	if !res.OK || res.KernelDrops != 0 {
		return 3
	}
	return 0
}

// receive polls the port until a stop condition and feeds ck.
func receive(ctx context.Context, iface string, ck *check.Checker, maxFrame int, idle, duration time.Duration, count uint64, stderr io.Writer) (Result, error) {
	f, err := gen.OpenIface(iface, 16384, uint32(maxFrame)+shm.HeadroomBytes, gen.AfpacketDefaults())
	if err != nil {
		return Result{}, err
	}
	defer f.Close()
	fmt.Fprintf(stderr, "sink: listening on %s\n", iface)
	res := Result{Iface: iface}
	var (
		slots       = make([]shm.Slot, 64)
		h           pkt.Headers
		rec         probe.Record
		probes      uint64
		first, last int64
		start       = port.Nanotime()
		r           = f.Region
		done        = ctx.Done()
	)
	for {
		f.Service()
		n := f.Port.RxBurst(f.Cache, slots)
		for _, s := range slots[:n] {
			m := r.Meta(s)
			frame := r.Packet(s)
			if off, ok := probe.Find(&h, frame); ok && rec.Get(frame[off:]) {
				ck.Add(&rec, m.Timestamp)
				probes++
			} else {
				ck.AddOther(gen.FrameHash(frame), h.Decode(frame) != nil)
			}
			if first == 0 {
				first = m.Timestamp
			}
			last = m.Timestamp
		}
		if n > 0 {
			res.Frames += uint64(n)
			f.Cache.Free(slots[:n])
			if count != 0 && probes >= count {
				res.StopReason = "count"
				break
			}
			continue
		}
		now := port.Nanotime()
		if duration > 0 && now-start >= int64(duration) {
			res.StopReason = "duration"
			break
		}
		if idle > 0 && last != 0 && now-last >= int64(idle) {
			res.StopReason = "idle"
			break
		}
		select {
		case <-done:
			res.StopReason = "signal"
		default:
			time.Sleep(idleSleep)
			continue
		}
		break
	}
	st := f.Port.Stats()
	res.KernelDrops = f.Port.Detail().RxKernelDrops
	res.RxDrops = st.RxDrops
	if last > first {
		res.Elapsed = time.Duration(last - first)
		res.PPS = float64(res.Frames-1) / res.Elapsed.Seconds()
	}
	return res, nil
}

// loadSent reads pktgen's JSON report into packets sent per flow.
func loadSent(path string) (map[uint32]uint64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rep gen.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	out := make(map[uint32]uint64, len(rep.PerFlow))
	for i, n := range rep.PerFlow {
		out[uint32(i)] = n
	}
	return out, nil
}

func summary(w io.Writer, r Result) {
	verdict := "PASS"
	if !r.OK || r.KernelDrops != 0 {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "sink %s: %d frames (%d probes in %d flows, %d other, %d malformed) at %.0f pps; stopped by %s\n",
		r.Iface, r.Frames, r.Received, len(r.Flows), r.Other, r.Malformed, r.PPS, r.StopReason)
	fmt.Fprintf(w, "  expected %d  lost %d  duplicated %d  reordered %d  stamp violations %d  mutate violations %d  kernel drops %d\n",
		r.Expected, r.Lost, r.Duplicated, r.Reordered, r.StampErrors, r.MutateErrors, r.KernelDrops)
	l := r.Latency
	fmt.Fprintf(w, "  latency µs: min %.1f  p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n",
		us(l.Min), us(l.P50), us(l.P90), us(l.P99), us(l.P999), us(l.Max))
	bad := 0
	for _, f := range r.Flows {
		if f.Lost+f.Duplicated+f.Reordered+f.Mutate+f.Unexpected != 0 && bad < 10 {
			bad++
			fmt.Fprintf(w, "  flow %d: received %d of %d, lost %d, duplicated %d, reordered %d\n", f.Flow, f.Received, f.Expected, f.Lost, f.Duplicated, f.Reordered)
		}
	}
	for _, v := range r.Violations {
		fmt.Fprintln(w, "  !", v)
	}
	fmt.Fprintln(w, "verdict:", verdict)
}

func us(ns uint64) float64 { return float64(ns) / 1e3 }
