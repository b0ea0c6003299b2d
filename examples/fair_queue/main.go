// Command fair_queue is ONVM's fair_queue example NF (tag "fair_queue",
// ONVM-COMPAT.md §5.5): it classifies packets by a CRC32 of their 5-tuple
// into -n queues of 16384 packets and sends them on to the service given
// with -d, taking one packet from each non-empty queue in turn (round
// robin), so a flow that floods its queue cannot starve the others. A
// packet whose queue is full is dropped. -p prints per-queue stats every
// second.
//
//	fair_queue [EAL args] -- [ONVM args] -- -d <destination> [-n <num_queues>] [-p]
//
// The queues are state queues (nflib.NF.NewQueue): a packet pushed in a
// burst is held by the NF until a later idle callback (ONVM: the child
// NF's tx_loop) pops it and injects it, never more than the rings ahead
// can take (nflib.NF.SendRoom). Queues, their counters and the round
// robin's position are the NF's state and fail over with it.
//
// Known limitation: nflib's burst loop takes no more input per burst than
// every output ring has room for, kept packets included, so a slow
// destination throttles this NF's input rather than filling its queues:
// the backlog forms in its input ring, first come first served, and the
// queues only share what arrives within one loop iteration. Fair sharing
// under a backlog needs the loop to let a queueing NF take input without
// output room (reported; TestSharesFairlyUnderBacklog waits for it).
//
// Where we differ from ONVM, on purpose: one NF process does both halves
// (ONVM: the NF's rx_loop and a child NF thread's tx_loop under the same
// service ID, over advanced rings); -n is at most 32 (each queue is a state
// container); non-IPv4 packets go to queue 0 (ONVM reads garbage as their
// 5-tuple); the arguments are checked before registering.
package main

import (
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"time"

	"github.com/reinforce-nfv/reinforce/examples/internal/getopt"
	"github.com/reinforce-nfv/reinforce/examples/internal/nfapp"
	"github.com/reinforce-nfv/reinforce/nflib"
	"github.com/reinforce-nfv/reinforce/pkt"
	"github.com/reinforce-nfv/reinforce/shm/state"
)

// tag names the NF in the manager's stats. ONVM: NF_TAG.
const tag = "fair_queue"

const (
	queueSize     = 16384 // ONVM: the fair queue rings' size
	defaultQueues = 2
	maxQueues     = 32
	statsEvery    = time.Second
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
	if !cfg.queuesGiven {
		fmt.Fprintln(w.Stdout, "Default number of queues (2) used. Specify a number using flag -n.")
	}
	nf := nfapp.Register(tag, argv, w)
	if nf == nil {
		return 1
	}
	fq, err := open(nf, cfg, w.Stdout)
	if err != nil {
		return nfapp.Fail(nf, w, err.Error())
	}
	return nfapp.ServeWith(nf, fq.handle, nflib.Callbacks{Idle: fq.idle, QueuesInput: true}, w)
}

// config is the NF's own command line.
type config struct {
	dst         uint16 // -d
	queues      int    // -n
	queuesGiven bool
	print       bool // -p
}

func usage(w io.Writer, prog string) {
	io.WriteString(w, "Usage:\n"+
		prog+" [EAL args] -- [NF_LIB args] -- -d <destination> -p <print_delay> -D <tb_depth> -R <tb_rate>\n"+
		prog+" -F <CONFIG_FILE.json> [EAL args] -- [NF_LIB args] -- [NF args]\n\n"+
		"Flags:\n"+
		" - `-d <dst>`: Destination service ID to forward to\n"+
		" - `-n <num_queues>`: Number of queues to simulate round robin fair queueing\n"+
		" - `-p`: Print per queue stats on the terminal (Not recommended for use with large value of num_queues)\n")
}

// parseArgs parses the NF's own arguments with ONVM's getopt string
// "d:n:p". Errors are *getopt.Error.
func parseArgs(args []string) (config, error) {
	cfg := config{queues: defaultQueues}
	opts, _, perr := getopt.Parse(args, "d:n:p")
	haveDst := false
	for _, o := range opts {
		switch o.Name {
		case 'd':
			n, err := o.ServiceID()
			if err != nil {
				return config{}, err
			}
			cfg.dst, haveDst = uint16(n), true
		case 'n':
			n, err := o.Uint(maxQueues)
			if err != nil {
				return config{}, err
			}
			if n == 0 {
				return config{}, getopt.Errorf("Option -n must be at least 1")
			}
			cfg.queues, cfg.queuesGiven = int(n), true
		case 'p':
			cfg.print = true
		}
	}
	if perr != nil {
		return config{}, perr
	}
	if !haveDst {
		return config{}, getopt.Errorf("Fair Queue NF requires destination flag -d.")
	}
	return cfg, nil
}

// queueStats are one queue's counters (ONVM: struct fairqueue_queue's).
type queueStats struct {
	RX, TX, RXDrop, TXDrop uint64
}

// fairQueue is the NF's state, used by the burst loop goroutine only.
type fairQueue struct {
	nf     *nflib.NF
	act    nflib.Action
	qs     []*nflib.Queue
	pop    []popper // qs, for schedule
	sendFn func(i int, p nflib.Packet)
	stats  *state.Array[queueStats]
	next   *state.Value[uint32] // the queue the round robin takes from next
	last   []queueStats         // at the last print
	print  bool
	lastAt time.Time
	out    io.Writer
	h      pkt.Headers
	key    [13]byte
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli) // rte_hash_crc's polynomial

// open creates or reopens the queues and counters in nf's state.
func open(nf *nflib.NF, cfg config, out io.Writer) (*fairQueue, error) {
	fq := &fairQueue{nf: nf, act: nflib.ToNF(cfg.dst), print: cfg.print, out: out, lastAt: time.Now(),
		last: make([]queueStats, cfg.queues)}
	fq.sendFn = fq.send // once: a method value per call would allocate
	for i := 0; i < cfg.queues; i++ {
		q, err := nf.NewQueue(fmt.Sprintf("fq%d", i), queueSize)
		if err != nil {
			return nil, err
		}
		fq.qs = append(fq.qs, q)
		fq.pop = append(fq.pop, q)
	}
	var err error
	if fq.stats, err = nflib.NewArray[queueStats](nf, "fq_stats", cfg.queues); err != nil {
		return nil, err
	}
	if fq.next, err = nflib.NewValue[uint32](nf, "fq_next"); err != nil {
		return nil, err
	}
	return fq, nil
}

// classify is the packet's queue: CRC32C of its 5-tuple (addresses, ports,
// protocol) modulo the queue count; 0 for a packet that is not IPv4.
func (fq *fairQueue) classify(frame []byte) int {
	return classify(&fq.h, &fq.key, frame, len(fq.qs))
}

func classify(h *pkt.Headers, key *[13]byte, frame []byte, n int) int {
	if h.Decode(frame) != nil || h.IPVersion != 4 {
		return 0
	}
	l3 := int(h.L3)
	copy(key[0:8], frame[l3+12:l3+20])
	key[8], key[9], key[10], key[11] = 0, 0, 0, 0
	if h.Flags&pkt.FlagL4 != 0 && (h.Proto == pkt.ProtoTCP || h.Proto == pkt.ProtoUDP) {
		copy(key[8:12], frame[h.L4:h.L4+4])
	}
	key[12] = h.Proto
	return int(crc32.Checksum(key[:], castagnoli) % uint32(n))
}

// handle queues the packet (ONVM: rx_loop's fairqueue_enqueue).
func (fq *fairQueue) handle(p nflib.Packet) nflib.Action {
	i := fq.classify(p.Data())
	st, _ := fq.stats.Get(i)
	if err := fq.qs[i].Push(p); err != nil {
		st.RXDrop++
		fq.stats.Set(i, st)
		return nflib.Drop
	}
	st.RX++
	fq.stats.Set(i, st)
	return nflib.Keep
}

// idle sends packets on, one from each non-empty queue in turn, as many as
// the rings ahead take (ONVM: the child's tx_loop), and prints the stats.
func (fq *fairQueue) idle(nf *nflib.NF) bool {
	start := int(fq.next.Load()) % len(fq.qs)
	next := schedule(fq.pop, start, nf.SendRoom(), fq.sendFn)
	if next != start {
		fq.next.Store(uint32(next))
	}
	if fq.print {
		if now := time.Now(); now.Sub(fq.lastAt) >= statsEvery {
			fq.lastAt = now
			fq.display()
		}
	}
	return false
}

// send injects a packet popped from queue i and counts it.
func (fq *fairQueue) send(i int, p nflib.Packet) {
	st, _ := fq.stats.Get(i)
	if fq.nf.Inject(p, fq.act) {
		st.TX++
	} else {
		st.TXDrop++
	}
	fq.stats.Set(i, st)
}

// popper is a queue the round robin takes from (*nflib.Queue).
type popper interface {
	Pop() (nflib.Packet, bool)
}

// schedule takes up to room packets from qs, one from each non-empty queue
// in turn starting with qs[next], hands each to send with its queue's
// index, and returns the queue to start from next time.
func schedule(qs []popper, next, room int, send func(i int, p nflib.Packet)) int {
	n := len(qs)
	for empty := 0; room > 0 && empty < n; next = (next + 1) % n {
		p, ok := qs[next].Pop()
		if !ok {
			empty++
			continue
		}
		empty = 0
		send(next, p)
		room--
	}
	return next
}

// display is ONVM's do_fq_stats_display.
func (fq *fairQueue) display() {
	b := []byte("\x1b[2J\x1b[1;1H\n" +
		"QUEUE ID         rx_pps  /  tx_pps             rx  /  tx      \n" +
		"               drop_pps  /  drop_pps      rx_drop  /  tx_drop \n" +
		"--------------------------------------------------------------\n")
	for i := range fq.qs {
		s, _ := fq.stats.Get(i)
		l := fq.last[i]
		b = fmt.Appendf(b, "%2d             %9d / %-9d   %11d / %-11d\n               %9d / %-9d   %11d / %-11d\n\n",
			i+1, s.RX-l.RX, s.TX-l.TX, s.RX, s.TX, s.RXDrop-l.RXDrop, s.TXDrop-l.TXDrop, s.RXDrop, s.TXDrop)
		fq.last[i] = s
	}
	fq.out.Write(b)
}
