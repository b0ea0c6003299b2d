// Command simple_fwd_tb is ONVM's simple_fwd_tb example NF (tag
// "simple_fwd_tb", ONVM-COMPAT.md §5.2): simple_forward behind a token
// bucket. The bucket holds up to -D bytes of tokens and fills at -R
// megabytes (10^6 bytes) per second; a packet leaves for the service given
// with -d when the bucket holds its length in tokens, which it then takes.
// Packets wait in arrival order; a packet longer than the bucket's depth
// can never leave and is dropped. Every -p packets it shows the std packet
// print.
//
//	simple_fwd_tb [EAL args] -- [ONVM args] -- -d <destination> [-p <print_delay>]
//	    [-D <depth bytes>] [-R <rate MBps>]
//
// ONVM runs this NF in advanced-rings mode, busy-waiting on its RX ring for
// tokens. Here the waiting packets are in a state queue (nflib.Queue) and
// the tokens in a state value, both part of every burst's transaction: an
// NF that takes over after a crash finds the same packets waiting and the
// same tokens, and time is CLOCK_MONOTONIC, which it shares. The idle
// callback (called on every loop iteration, so the NF polls as ONVM's
// does) sends what the tokens allow.
//
// Where we differ from ONVM, on purpose: the arguments are checked before
// registering, numbers strictly; -d must be a service ID (1..31); a packet
// that finds the queue full (16384 packets, ONVM's ring size) is dropped;
// queued packets leave only as fast as the output ring takes them, so none
// is lost to a full ring.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/reinforce-nfv/reinforce/examples/internal/getopt"
	"github.com/reinforce-nfv/reinforce/examples/internal/nfapp"
	"github.com/reinforce-nfv/reinforce/examples/internal/pktprint"
	"github.com/reinforce-nfv/reinforce/nflib"
	"github.com/reinforce-nfv/reinforce/port"
	"github.com/reinforce-nfv/reinforce/shm/state"
)

// tag names the NF in the manager's stats. ONVM: NF_TAG.
const tag = "simple_fwd_tb"

// ONVM's constants.
const (
	defaultPrintDelay = 1000000
	defaultDepth      = 10000 // -D, bytes
	defaultRate       = 1000  // -R, MB/s
	queueSize         = 16384 // NF_QUEUE_RINGSIZE
)

func main() {
	os.Exit(run(os.Args[0], os.Args[1:], nfapp.Std()))
}

// run is main with its inputs and outputs passed in; it returns the exit
// status.
func run(prog string, argv []string, w nfapp.IO) int {
	var cfg config
	if !nfapp.Parse(prog, argv, w, usage, func(app []string) (err error) {
		cfg, err = parseArgs(app)
		return err
	}) {
		return 1
	}
	nf := nfapp.Register(tag, argv, w)
	if nf == nil {
		return 1
	}
	q, err := nf.NewQueue("tb_queue", queueSize)
	if err != nil {
		return nfapp.Fail(nf, w, err.Error())
	}
	b, err := nflib.NewValue[bucket](nf, "tb_bucket")
	if err != nil {
		return nfapp.Fail(nf, w, err.Error())
	}
	fmt.Fprintf(w.Stdout, "Token bucket: depth %d bytes, rate %d MBps; sending to service %d\n", cfg.depth, cfg.rate, cfg.dst)
	tb := newShaper(cfg, b, w.Stdout, port.Nanotime)
	tb.nf, tb.q = nf, q
	return nfapp.ServeWith(nf, tb.handle, nflib.Callbacks{Idle: tb.idle}, w)
}

// config is the NF's own command line.
type config struct {
	dst        uint16 // -d
	printDelay uint64 // -p; 0 never prints
	depth      uint64 // -D: bytes
	rate       uint64 // -R: MB/s
}

// usage prints ONVM's usage text for simple_fwd_tb.
func usage(w io.Writer, prog string) {
	io.WriteString(w, "Usage:\n"+
		prog+" [EAL args] -- [NF_LIB args] -- -d <destination> -p <print_delay> -D <tb_depth> -R <tb_rate>\n"+
		prog+" -F <CONFIG_FILE.json> [EAL args] -- [NF_LIB args] -- [NF args]\n\n"+
		"Flags:\n"+
		" - `-d <dst>`: destination service ID to foward to\n"+
		" - `-p <print_delay>`: number of packets between each print, e.g. `-p 1` prints every packets.\n"+
		" - `-D <tb_depth>`: depth of the token bucket (in bytes)\n"+
		" - `-R <tb_rate>`: rate of token regeneration (in MBps)\n")
}

// parseArgs parses the NF's own arguments with ONVM's getopt string
// "d:p:D:R:". Errors are *getopt.Error.
func parseArgs(args []string) (config, error) {
	cfg := config{printDelay: defaultPrintDelay, depth: defaultDepth, rate: defaultRate}
	opts, _, perr := getopt.Parse(args, "d:p:D:R:")
	haveDst := false
	for _, o := range opts {
		switch o.Name {
		case 'd':
			n, err := o.ServiceID()
			if err != nil {
				return config{}, err
			}
			cfg.dst, haveDst = uint16(n), true
		case 'p':
			n, err := o.Uint(1<<64 - 1)
			if err != nil {
				return config{}, err
			}
			cfg.printDelay = n
		case 'D':
			n, err := o.Uint(1 << 40)
			if err != nil {
				return config{}, err
			}
			cfg.depth = n
		case 'R':
			n, err := o.Uint(1 << 24) // 16 TB/s: no overflow in bytes per ns arithmetic
			if err != nil {
				return config{}, err
			}
			if n == 0 {
				return config{}, getopt.Errorf("Option -R must be at least 1 MBps")
			}
			cfg.rate = n
		}
	}
	if perr != nil {
		return config{}, perr
	}
	if !haveDst {
		return config{}, getopt.Errorf("Simple Forward NF requires destination flag -d.")
	}
	return cfg, nil
}

// bucket is the token bucket's state.
type bucket struct {
	Tokens uint64 // bytes
	LastNs int64  // CLOCK_MONOTONIC of the last refill; 0 before the first
}

// shaper is the NF's packet path, for the burst loop goroutine only.
type shaper struct {
	cfg     config
	act     nflib.Action
	b       *state.Value[bucket]
	nf      *nflib.NF
	q       *nflib.Queue
	now     func() int64
	counter uint64
	printed uint64
	out     io.Writer
	buf     []byte
}

func newShaper(cfg config, b *state.Value[bucket], out io.Writer, now func() int64) *shaper {
	return &shaper{cfg: cfg, act: nflib.ToNF(cfg.dst), b: b, now: now, out: out, buf: make([]byte, 0, 1024)}
}

// handle queues every packet that can ever leave (Keep), then sends what
// the tokens allow.
func (s *shaper) handle(p nflib.Packet) nflib.Action {
	m := p.Meta()
	if s.counter++; s.counter == s.cfg.printDelay {
		s.counter = 0
		s.printed += s.cfg.printDelay
		s.buf = pktprint.AppendStd(s.buf[:0], m.Port, m.Len, s.printed, p.Data())
		s.out.Write(s.buf)
	}
	if uint64(m.Len) > s.cfg.depth {
		return nflib.Drop
	}
	if s.q.Push(p) != nil {
		return nflib.Drop // the queue is full
	}
	s.drain()
	return nflib.Keep
}

// idle sends what the tokens allow (ONVM busy-waits for them).
func (s *shaper) idle(*nflib.NF) bool {
	if s.q.Len() > 0 {
		s.drain()
	}
	return false
}

// drain refills the bucket and sends queued packets, oldest first, while
// the tokens cover the next one.
func (s *shaper) drain() {
	b := s.refill(s.b.Load(), s.now())
	// No more than the rings can take now: a packet that would meet a full
	// ring stays queued (Inject would free it).
	for room := s.nf.SendRoom(); room > 0; room-- {
		p, ok := s.q.Peek()
		if !ok || uint64(p.Meta().Len) > b.Tokens {
			break
		}
		p, _ = s.q.Pop()
		b.Tokens -= uint64(p.Meta().Len)
		s.nf.Inject(p, s.act)
	}
	s.b.Store(b)
}

// refill adds the tokens accrued since b.LastNs, up to the depth.
func (s *shaper) refill(b bucket, now int64) bucket {
	if b.LastNs == 0 {
		b.Tokens, b.LastNs = s.cfg.depth, now // a full bucket to start with
		return b
	}
	if now <= b.LastNs {
		return b
	}
	// rate MB/s is rate bytes per µs: bytes = ns * rate / 1000. The clock
	// advances only by the ns the whole bytes added stand for, so calls a
	// few ns apart still accrue tokens.
	add := uint64(now-b.LastNs) * s.cfg.rate / 1000
	if b.Tokens+add >= s.cfg.depth {
		b.Tokens, b.LastNs = s.cfg.depth, now
		return b
	}
	b.Tokens += add
	b.LastNs += int64((add*1000 + s.cfg.rate - 1) / s.cfg.rate) // rounded up: never credits time twice
	return b
}
