// Command relay forwards raw Ethernet frames between two interfaces (veth
// ends) over AF_PACKET sockets and impairs them on the way: seeded loss,
// duplication, reordering, delay and blackouts, so the impairment hits
// TCP, UDP and heartbeats alike (the kernel here has no netem;
// RESILIENCY.md, "How it is tested"; docs/replication.md, "Relay").
//
//	relay -a veth0 -b veth1 -seed 7 -loss 0.1 -dup 0.1 -reorder 0.1 -ctl /tmp/relay.sock
//
// Run-time control: datagrams on the -ctl unix socket, one command each,
// answered with one line:
//
//	blackout 200ms       drop everything, both ways, for 200 ms from now
//	loss 0.2 | dup 0.05 | reorder 0.1 | delay 2ms | jitter 1ms
//	stats                the counters of both directions, as JSON
//
// SIGUSR1 starts a blackout of -blackout (default 200 ms).
//
// Each direction is one goroutine with a blocking receive (1 ms timeout,
// for held frames that fall due): a relay that spun would take a CPU from
// what it tests on a 2-CPU machine, which is why it uses plain AF_PACKET
// sockets rather than port/afpacket's polled rings.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

type relay struct {
	mu   sync.Mutex // guards both impairers
	dirs [2]*Impairer
	name [2]string
}

func main() {
	a := flag.String("a", "", "first interface")
	b := flag.String("b", "", "second interface")
	seed := flag.Uint64("seed", 1, "seed of the impairment decisions")
	loss := flag.Float64("loss", 0, "loss probability")
	dup := flag.Float64("dup", 0, "duplication probability")
	reorder := flag.Float64("reorder", 0, "reordering probability (the frame is held -reorder-delay)")
	reorderDelay := flag.Duration("reorder-delay", 2*time.Millisecond, "extra delay of a reordered frame")
	delay := flag.Duration("delay", 0, "delay of every frame")
	jitter := flag.Duration("jitter", 0, "random extra delay, up to this")
	blackout := flag.Duration("blackout", 200*time.Millisecond, "length of a SIGUSR1 blackout")
	ctl := flag.String("ctl", "", "unix datagram socket for run-time commands")
	flag.Parse()
	if *a == "" || *b == "" {
		fmt.Fprintln(os.Stderr, "relay: -a and -b are required")
		os.Exit(2)
	}
	p := Params{Loss: *loss, Dup: *dup, Reorder: *reorder, ReorderDelay: *reorderDelay, Delay: *delay, Jitter: *jitter}
	r := &relay{name: [2]string{*a + ">" + *b, *b + ">" + *a}}
	r.dirs[0] = NewImpairer(p, *seed, 0)
	r.dirs[1] = NewImpairer(p, *seed, 1)
	fa, err := openRaw(*a)
	if err != nil {
		fatal(err)
	}
	fb, err := openRaw(*b)
	if err != nil {
		fatal(err)
	}
	if *ctl != "" {
		if err := r.serveCtl(*ctl); err != nil {
			fatal(err)
		}
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1, syscall.SIGTERM, syscall.SIGINT)
	go r.routineForward(0, fa, fb)
	go r.routineForward(1, fb, fa)
	fmt.Printf("relay: forwarding %s <-> %s (seed %d)\n", *a, *b, *seed)
	for s := range sig {
		if s == syscall.SIGUSR1 {
			fmt.Printf("relay: blackout for %v\n", *blackout)
			r.blackout(*blackout)
			continue
		}
		out, _ := json.Marshal(r.stats())
		fmt.Printf("relay: %s\n", out)
		if *ctl != "" {
			os.Remove(*ctl)
		}
		os.Exit(0)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "relay:", err)
	os.Exit(1)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// openRaw opens an AF_PACKET socket bound to iface that receives every
// frame arriving on it, but not the ones it sends (PACKET_IGNORE_OUTGOING).
func openRaw(iface string) (int, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return -1, err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return -1, fmt.Errorf("AF_PACKET socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
		return -1, fmt.Errorf("bind %s: %w", iface, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		return -1, fmt.Errorf("PACKET_IGNORE_OUTGOING: %w", err)
	}
	tv := unix.NsecToTimeval(int64(time.Millisecond))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return -1, err
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	// Promiscuous: frames for the far side's MAC must be received too.
	mr := unix.PacketMreq{Ifindex: int32(ifi.Index), Type: unix.PACKET_MR_PROMISC}
	if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mr); err != nil {
		return -1, fmt.Errorf("promiscuous %s: %w", iface, err)
	}
	return fd, nil
}

// routineForward moves frames from src to dst through direction d's
// impairer, for the life of the process.
func (r *relay) routineForward(d int, src, dst int) {
	buf := make([]byte, 65536)
	var out [][]byte
	for {
		n, _, err := unix.Recvfrom(src, buf, 0)
		now := time.Now()
		r.mu.Lock()
		if err == nil && n > 0 {
			f := make([]byte, n)
			copy(f, buf[:n])
			r.dirs[d].Arrive(now, f)
		}
		out = r.dirs[d].Due(now, out[:0])
		r.mu.Unlock()
		for _, f := range out {
			_ = unix.Send(dst, f, 0)
		}
	}
}

func (r *relay) blackout(d time.Duration) {
	r.mu.Lock()
	until := time.Now().Add(d)
	r.dirs[0].BlackUntil, r.dirs[1].BlackUntil = until, until
	r.mu.Unlock()
}

func (r *relay) stats() map[string]Counters {
	r.mu.Lock()
	defer r.mu.Unlock()
	return map[string]Counters{r.name[0]: r.dirs[0].C, r.name[1]: r.dirs[1].C}
}

// command runs one control command and returns its answer.
func (r *relay) command(line string) string {
	f := strings.Fields(line)
	if len(f) == 0 {
		return "error: empty command"
	}
	if f[0] == "stats" {
		b, _ := json.Marshal(r.stats())
		return string(b)
	}
	if len(f) != 2 {
		return "error: want <command> <value>"
	}
	switch f[0] {
	case "blackout", "delay", "jitter":
		d, err := time.ParseDuration(f[1])
		if err != nil || d < 0 {
			return fmt.Sprintf("error: duration %q", f[1])
		}
		if f[0] == "blackout" {
			r.blackout(d)
			return "ok"
		}
		r.mu.Lock()
		for _, m := range r.dirs {
			if f[0] == "delay" {
				m.P.Delay = d
			} else {
				m.P.Jitter = d
			}
		}
		r.mu.Unlock()
		return "ok"
	case "loss", "dup", "reorder":
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil || v < 0 || v > 1 {
			return fmt.Sprintf("error: probability %q", f[1])
		}
		r.mu.Lock()
		for _, m := range r.dirs {
			switch f[0] {
			case "loss":
				m.P.Loss = v
			case "dup":
				m.P.Dup = v
			default:
				m.P.Reorder = v
			}
		}
		r.mu.Unlock()
		return "ok"
	}
	return fmt.Sprintf("error: unknown command %q", f[0])
}

func (r *relay) serveCtl(path string) error {
	os.Remove(path)
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return err
	}
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := c.ReadFromUnix(buf)
			if err != nil {
				return
			}
			ans := r.command(string(buf[:n]))
			if from != nil && from.Name != "" {
				_, _ = c.WriteToUnix([]byte(ans), from)
			}
		}
	}()
	return nil
}
