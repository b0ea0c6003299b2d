// Package pcap is the port driver that replays a capture file on RX and
// writes one on TX (driver "pcap", ARCHITECTURE.md, Ports). It reads
// classic pcap in either byte order with µs or ns timestamps, and pcapng
// (enhanced, simple and obsolete packet blocks, per-interface if_tsresol
// and if_tsoffset, sections of either byte order), telling them apart by
// magic number, never by file name; it writes classic pcap. Reader and
// Writer are usable on their own.
//
// Importing the package registers the driver with port.Open (from init,
// as port/dpdk does): a binary that opens pcap ports from its
// configuration imports it, blank if need be:
//
//	import _ "github.com/reinforce-nfv/reinforce/port/pcap"
package pcap

// The port's two pipelines:
//
//	RxBurst (RX goroutine, under rxMu):
//	  stage records from the Reader, up to a burst, without moving its
//	  buffer (a refill happens only when nothing is staged)
//	  → pacer: how many staged records are due
//	  → count those that fit a slot's data room; Alloc exactly that many
//	  → copy each into its slot, fill Meta, note its capture record in
//	    the side table; count the oversized as RxDrops and skip them
//	  → at the end of the capture: rewind (Loop) or stop; a reader error
//	    stops RX once the good records before it are delivered (Err)
//	TxBurst (TX goroutine, under txMu), per chunk of txChunk slots:
//	  append one record per frame to the Writer's buffer (the capture
//	  timestamp and original length from the side table when this port
//	  read the frame, else the wall clock and the frame's length)
//	  → Free the chunk → truncate the records of slots Free did not take
//	  → flush once flushBytes are buffered or FlushInterval has passed
//
// Locking: rxMu and txMu are never held together except by Close, which
// takes rxMu, then txMu. Both are uncontended on the packet path; they let
// Close and Flush run from any goroutine. The side table is written by RX
// and read by TX through atomics: a slot goes from RX to TX through rings
// that other processes (NFs) produce into, a hand-off that neither Go's
// memory model nor its race detector can see.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reinforce-nfv/reinforce/port"
	"github.com/reinforce-nfv/reinforce/shm"
)

func init() { port.Register(port.DriverPcap, Open) }

// Options configures a pcap port.
type Options struct {
	// Path is the capture RxBurst replays; "" means RxBurst never delivers.
	Path string
	// OutPath is the capture TxBurst writes, created or truncated by New;
	// "" means TxBurst refuses every frame (TxDrops). It may not name the
	// file Path names.
	OutPath string
	// Loop replays Path forever (a capture with no deliverable frame ends).
	Loop bool
	// RatePPS replays at this many frames per second; 0 means as fast as
	// polled unless Recorded is set.
	RatePPS uint64
	// Recorded replays at the capture's own pace: each frame is delivered
	// its recorded gap after the previous one. A gap is honoured however
	// long: a capture with an hour's silence waits an hour. Not with RatePPS.
	Recorded bool
}

// Port replays a capture on RX and writes one on TX. RxBurst is for one
// goroutine and TxBurst for one (possibly another); ID, Name, Stats, Err,
// Done, Flush and Close are safe from any.
//
// Frames this port reads and then transmits itself keep their capture
// timestamp and original length in the file it writes, and its output
// copies a classic input's file header (byte order, timestamp resolution,
// snapshot length, version, link type field): reading a classic capture
// and transmitting every frame unchanged and in order writes the same
// file, byte for byte. Meta.Timestamp stays what the port interface
// promises, the CLOCK_MONOTONIC delivery time; the capture record is kept
// in a table beside the slots, found again by slot reference and that
// delivery stamp. Other frames, and every frame when the input is pcapng
// or absent, are written with the wall-clock time of TxBurst and their
// length, under DefaultHeader.
type Port struct {
	id    uint16
	name  string
	o     Options
	stats port.Counters

	closed    atomic.Bool
	done      atomic.Bool               // RX has ended (end of capture or error)
	rxErr     atomic.Pointer[error]     // why RX stopped, if not the capture's end
	txErr     atomic.Pointer[error]     // why TX stopped
	side      atomic.Pointer[sideTable] // stored by RX once, loaded by TX
	closeOnce sync.Once
	closeErr  error // set inside closeOnce

	rxMu   sync.Mutex
	in     *os.File             // guarded by rxMu; nil without Path
	rd     *Reader              // set by New, then its state is guarded by rxMu
	stage  [shm.MaxBurst]Record // guarded by rxMu: stage[sh:sn] are parsed, not yet delivered
	sh, sn int                  // guarded by rxMu
	pend   error                // guarded by rxMu: the reader's error behind the staged records
	pace   pacer                // guarded by rxMu
	pass   uint64               // guarded by rxMu: frames delivered in this pass over the file
	rxSide *sideTable           // guarded by rxMu: == side

	txMu      sync.Mutex
	out       *os.File // guarded by txMu; nil without OutPath
	w         *Writer  // guarded by txMu; nil without OutPath
	lastFlush int64    // guarded by txMu: port.Nanotime of the last flush
}

// New opens the port with ID id: it opens Path and reads its header (a
// capture of a link type other than Ethernet is refused with ErrLinkType),
// and creates OutPath, writing its file header at once so that even an
// idle port leaves a valid capture. Files are closed again on error.
func New(id uint16, o Options) (*Port, error) {
	switch {
	case o.RatePPS > 0 && o.Recorded:
		return nil, fmt.Errorf("pcap port %d: RatePPS and Recorded pacing are exclusive", id)
	case o.Loop && o.Path == "":
		return nil, fmt.Errorf("pcap port %d: Loop needs a Path", id)
	}
	p := &Port{id: id, name: fmt.Sprintf("%s%d", port.DriverPcap, id), o: o}
	p.pace = pacer{rate: o.RatePPS, recorded: o.Recorded, lastTs: noTs}
	ok := false
	defer func() {
		if !ok {
			p.closeFiles()
		}
	}()
	h := DefaultHeader()
	if o.Path != "" {
		f, err := os.Open(o.Path)
		if err != nil {
			return nil, fmt.Errorf("pcap port %d: %w", id, err)
		}
		p.in = f
		if p.rd, err = NewReader(f); err != nil {
			return nil, fmt.Errorf("pcap port %d: read %s: %w", id, o.Path, err)
		}
		if p.rd.Format() == FormatPcap {
			h = p.rd.Header()
			if lt := h.LinkType & linkTypeMask; lt != LinkTypeEthernet {
				return nil, fmt.Errorf("pcap port %d: read %s: link type %d: %w", id, o.Path, lt, ErrLinkType)
			}
		}
	}
	if o.OutPath != "" {
		if err := p.openOut(h); err != nil {
			return nil, fmt.Errorf("pcap port %d: %w", id, err)
		}
	}
	ok = true
	return p, nil
}

// openOut creates OutPath and writes the file header h.
func (p *Port) openOut(h FileHeader) error {
	if p.in != nil {
		if a, err := p.in.Stat(); err == nil {
			if b, err := os.Stat(p.o.OutPath); err == nil && os.SameFile(a, b) {
				return fmt.Errorf("out_path %s is the input capture", p.o.OutPath)
			}
		}
	}
	f, err := os.OpenFile(p.o.OutPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	p.out = f
	if p.w, err = NewWriter(f, h); err != nil {
		return err
	}
	if err := p.w.Flush(); err != nil {
		return fmt.Errorf("%s: %w", p.o.OutPath, err)
	}
	p.lastFlush = port.Nanotime()
	return nil
}

// Open opens the pcap port d describes: Path, OutPath, Loop, and RatePPS
// (frames per second, 0 = as fast as polled; Desc cannot ask for the
// recorded pace, New can). It is the driver port.Open calls for "pcap".
func Open(d port.Desc) (port.Port, error) {
	p, err := New(d.ID, Options{Path: d.Path, OutPath: d.OutPath, Loop: d.Loop, RatePPS: d.RatePPS})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// ID is the port number. Safe from any goroutine.
func (p *Port) ID() uint16 { return p.id }

// Name is "pcap" and the ID. Safe from any goroutine.
func (p *Port) Name() string { return p.name }

// Stats returns the counters; RxDrops counts frames longer than a slot's
// data room, skipped. Safe from any goroutine.
func (p *Port) Stats() port.Stats { return p.stats.Snapshot() }

// Err returns why the port stopped reading or writing: the input's error
// (a truncated or corrupt capture, a packet of a link type other than
// Ethernet: a *FormatError inside), else the output's (a failed write),
// else nil. The end of the capture is not an error. RxBurst and TxBurst
// report a stop only by returning 0, so the caller logs Err once when
// Done turns true. Safe from any goroutine.
func (p *Port) Err() error {
	if e := p.rxErr.Load(); e != nil {
		return *e
	}
	if e := p.txErr.Load(); e != nil {
		return *e
	}
	return nil
}

// Done reports whether RX has ended: the capture was read to its end (and
// is not looped), reading it failed (Err says why), there is no Path, or
// the port is closed. Safe from any goroutine.
func (p *Port) Done() bool { return p.rd == nil || p.done.Load() }

// Flush writes the frames TxBurst has buffered to OutPath and returns the
// output's error, if any. Safe from any goroutine; a no-op without
// OutPath or after Close.
func (p *Port) Flush() error {
	p.txMu.Lock()
	if p.w != nil && !p.closed.Load() {
		p.flushLocked()
	}
	p.txMu.Unlock()
	if e := p.txErr.Load(); e != nil {
		return *e
	}
	return nil
}

// Close stops the port: RxBurst and TxBurst return 0 afterwards. It waits
// for a burst in progress, flushes the output and closes both files,
// returning their errors joined. Idempotent, safe from any goroutine.
func (p *Port) Close() error {
	p.closeOnce.Do(func() {
		p.closed.Store(true)
		p.closeErr = p.closeFiles()
	})
	return p.closeErr
}

// closeFiles closes the input (under rxMu), then flushes and closes the
// output (under txMu).
func (p *Port) closeFiles() error {
	var errs []error
	p.rxMu.Lock()
	if p.in != nil {
		if err := p.in.Close(); err != nil {
			errs = append(errs, fmt.Errorf("pcap port %d: %w", p.id, err))
		}
	}
	p.done.Store(true)
	p.rxMu.Unlock()
	p.txMu.Lock()
	if p.w != nil {
		if err := p.w.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("pcap port %d: %s: %w", p.id, p.o.OutPath, err))
		}
	}
	if p.out != nil {
		if err := p.out.Close(); err != nil {
			errs = append(errs, fmt.Errorf("pcap port %d: %w", p.id, err))
		}
	}
	p.txMu.Unlock()
	return errors.Join(errs...)
}

// RxBurst copies the next due frames of the capture into slots allocated
// from c and returns how many it wrote to out; the caller owns them. Data
// is at shm.HeadroomBytes; Meta.Timestamp is the CLOCK_MONOTONIC delivery
// time (not the capture time, see Port). Frames longer than the slot's data
// room are skipped and counted in RxDrops. It returns 0, without blocking,
// when nothing is due, the cache is empty (the frames stay due), the
// capture has ended or failed (Done, Err), or the port is closed. For one
// goroutine only.
func (p *Port) RxBurst(c *shm.Cache, out []shm.Slot) int {
	if len(out) == 0 || p.rd == nil || p.closed.Load() {
		return 0
	}
	n := 0
	p.rxMu.Lock()
	if !p.done.Load() {
		n = p.rxBurst(c, out)
	}
	p.rxMu.Unlock()
	return n
}

// rxBurst is RxBurst's pipeline; rxMu is held and RX has not ended.
func (p *Port) rxBurst(c *shm.Cache, out []shm.Slot) int {
	p.fill(len(out))
	staged := p.stage[p.sh:p.sn]
	if len(staged) == 0 {
		p.finish()
		return 0
	}
	now := port.Nanotime()
	staged = staged[:p.pace.due(now, staged)]
	if len(staged) == 0 {
		return 0
	}
	r := c.Region()
	room := int(r.DataBytes())
	// Allocate exactly the slots this burst fills, so none is left over to
	// give back: the due frames that fit.
	want := 0
	for i := range staged {
		if len(staged[i].Data) <= room {
			want++
		}
	}
	k := 0
	if want > 0 {
		k = c.Alloc(out[:want])
	}
	tab := p.sideFor(r)
	j, used := 0, 0
	var bytes, drops uint64
	for used < len(staged) {
		rec := &staged[used]
		if len(rec.Data) > room {
			drops++
			used++
			continue
		}
		if j == k {
			break // the cache ran short: the rest stay staged and due
		}
		s := out[j]
		j++
		used++
		copy(r.Buf(s)[shm.HeadroomBytes:], rec.Data)
		m := r.Meta(s)
		m.DataOff, m.Len, m.Port, m.Timestamp = shm.HeadroomBytes, uint32(len(rec.Data)), p.id, now
		if tab != nil {
			tab.note(s, now, rec)
		}
		bytes += uint64(len(rec.Data))
	}
	p.pace.consumed(staged[:used])
	p.sh += used
	p.pass += uint64(j)
	p.stats.RxPkts.Add(uint64(j))
	p.stats.RxBytes.Add(bytes)
	if drops > 0 {
		p.stats.RxDrops.Add(drops)
	}
	return j
}

// fill stages records until want are staged, the buffer holds no further
// whole record (the Reader may refill only when nothing is staged, since
// a refill moves the bytes staged records point into), or the Reader
// stops. At the end of the capture it rewinds when looping, at most once
// per burst.
func (p *Port) fill(want int) {
	if p.sh == p.sn {
		p.sh, p.sn = 0, 0
	}
	rewound := false
	for p.pend == nil && p.sn-p.sh < want && p.sn < len(p.stage) {
		rec, err := p.rd.next(p.sh == p.sn)
		switch {
		case err == nil:
			if rec.LinkType != LinkTypeEthernet {
				p.pend = &FormatError{Offset: rec.Offset, What: fmt.Sprintf("packet of link type %d", rec.LinkType), Err: ErrLinkType}
				return
			}
			p.stage[p.sn] = rec
			p.sn++
		case err == errShort:
			return
		case err == io.EOF && p.o.Loop && p.pass > 0 && !rewound:
			if err := p.rd.rewind(); err != nil {
				p.pend = err
				return
			}
			p.pass, rewound = 0, true
			p.pace.rewound()
		default:
			p.pend = err
			return
		}
	}
}

// finish ends RX once every staged record is delivered: at the end of the
// capture quietly, on a reader error with Err set.
func (p *Port) finish() {
	if p.pend == nil {
		return // not reached: fill stops with nothing staged only on an error or the end
	}
	if p.pend != io.EOF {
		err := fmt.Errorf("pcap port %d: read %s: %w", p.id, p.o.Path, p.pend)
		p.rxErr.Store(&err)
	}
	p.done.Store(true)
}

// TxBurst writes the frames of s to OutPath (buffered; see Flush), frees
// their slots with c and returns how many it consumed: all of s unless c's
// drain ring is full (the pool's service loop is behind), in which case the
// caller keeps s[n:] and their records are taken back out of the output.
// Without OutPath, or once writing has failed (Err), it refuses every
// frame and counts them as TxDrops; it returns 0 once closed. For one
// goroutine only.
func (p *Port) TxBurst(c *shm.Cache, s []shm.Slot) int {
	if len(s) == 0 || p.closed.Load() {
		return 0
	}
	n := 0
	p.txMu.Lock()
	if p.w != nil && !p.closed.Load() && p.txErr.Load() == nil {
		n = p.txBurst(c, s)
	}
	p.txMu.Unlock()
	if n < len(s) {
		p.stats.TxDrops.Add(uint64(len(s) - n))
	}
	return n
}

// txBurst is TxBurst's pipeline; txMu is held and the output is open.
func (p *Port) txBurst(c *shm.Cache, s []shm.Slot) int {
	r := c.Region()
	tab := p.side.Load()
	var (
		marks [txChunk]int    // Buffered before each frame's record
		lens  [txChunk]uint32 // frame lengths, read before Free
		wall  int64           // wall clock for frames not read here, read once
		bytes uint64
	)
	done := 0
	for done < len(s) {
		if p.w.Buffered() >= flushBytes && !p.flushLocked() {
			break
		}
		chunk := s[done:min(len(s), done+txChunk)]
		for i, sl := range chunk {
			f := r.Packet(sl)
			ts, orig, ok := tab.lookup(sl, r.Meta(sl), p.id, len(f))
			if !ok {
				if wall == 0 {
					wall = time.Now().UnixNano()
				}
				ts, orig = wall, 0
			}
			marks[i], lens[i] = p.w.Buffered(), uint32(len(f))
			p.w.appendRecord(ts, orig, f)
		}
		// Free after writing: a freed slot may be reallocated at once.
		k := c.Free(chunk)
		if k < len(chunk) {
			p.w.truncate(marks[k])
		}
		for _, l := range lens[:k] {
			bytes += uint64(l)
		}
		done += k
		if k < len(chunk) {
			break
		}
	}
	if p.w.Buffered() >= flushBytes || port.Nanotime()-p.lastFlush >= int64(FlushInterval) {
		p.flushLocked()
	}
	p.stats.TxPkts.Add(uint64(done))
	p.stats.TxBytes.Add(bytes)
	return done
}

// flushLocked flushes the Writer; on failure it sets the TX error and
// returns false. txMu is held.
func (p *Port) flushLocked() bool {
	if err := p.w.Flush(); err != nil {
		if p.txErr.Load() == nil {
			e := fmt.Errorf("pcap port %d: %s: %w", p.id, p.o.OutPath, err)
			p.txErr.Store(&e)
		}
		return false
	}
	p.lastFlush = port.Nanotime()
	return true
}

var _ port.Port = (*Port)(nil)
