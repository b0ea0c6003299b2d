// Package afpacket is the port driver for any Linux network interface
// through AF_PACKET sockets (ARCHITECTURE.md, Ports): what tests use on veth
// pairs, and what the manager uses where DPDK is not an option. It needs
// CAP_NET_RAW (root), no cgo and no library beyond x/sys/unix.
//
// A Port holds two sockets bound to the interface:
//
//   - RX: a TPACKET_V3 ring mapped into the process (ring.go, rx.go).
//     RxBurst polls the blocks' status words, so a burst with frames waiting
//     costs no syscall; it copies each frame once, into a pool slot, and
//     hands each block back to the kernel as soon as it is copied out. The
//     kernel hands a block over when it is full or after BlockTimeout, so
//     at low rates a frame waits up to that long (1 ms by default). The
//     socket ignores outgoing frames (PACKET_IGNORE_OUTGOING), so a port
//     never receives what it, or the host, sent on the interface, and it
//     holds the interface promiscuous (Config.NoPromisc).
//   - TX: sendmmsg straight from the slots (tx.go): one syscall per burst of
//     up to 64 frames, which the kernel copies; the slots are freed as soon
//     as it returns. Frames the kernel refuses go back to the caller.
//
// The two sides share no state but the counters, so RxBurst and TxBurst may
// run on different goroutines, as the manager's RX and TX loops do.
//
// Importing the package registers the driver with port.Open (from init, as
// port/pcap does): a binary that opens afpacket ports from its
// configuration imports it, blank if need be:
//
//	import _ "github.com/reinforce-nfv/reinforce/port/afpacket"
//
// Offloads: frames a kernel stack sent towards the port (from a veth
// peer's namespace, say) may carry partial checksums (counted in
// Detail.RxCsumNotReady) or arrive as GSO super-frames larger than a slot
// (RxTooBig). Switch them off where they are sent (ethtool -K <if> tx off
// gso off) when such traffic must pass through.
//
// While the interface is down, RX delivers nothing and TX refuses every
// frame (Detail.TxLastErrno is ENETDOWN); both resume when it comes up. An
// interface deleted and created again needs the port reopened.
package afpacket

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/reinforce-nfv/reinforce/port"
	"github.com/reinforce-nfv/reinforce/shm"
	"golang.org/x/sys/unix"
)

func init() { port.Register(port.DriverAFPacket, Open) }

// Open is port.Open's entry for driver "afpacket": New(d.ID, d.Iface,
// DefaultConfig()). Safe for concurrent use.
func Open(d port.Desc) (port.Port, error) {
	p, err := New(d.ID, d.Iface, DefaultConfig())
	if err != nil {
		return nil, err // not p: a nil *Port in an interface is not nil
	}
	return p, nil
}

// Config sizes and tunes a Port. Zero fields take DefaultConfig's values,
// so Config{} is the default configuration.
type Config struct {
	// BlockBytes is the size of one RX ring block, in bytes: a power of two,
	// at least a page and large enough for a frame of the interface's MTU.
	BlockBytes int
	// Blocks is the number of RX ring blocks, at least MinBlocks. The ring
	// is Blocks × BlockBytes of kernel memory, at most MaxRingBytes.
	Blocks int
	// BlockTimeout is how long the kernel fills a block before handing it
	// over unfilled, rounded up to whole milliseconds: the latency of a
	// frame at low rates.
	BlockTimeout time.Duration
	// SndBufBytes is the TX socket's send buffer (SO_SNDBUFFORCE, or
	// SO_SNDBUF capped by net.core.wmem_max without CAP_NET_ADMIN).
	SndBufBytes int
	// NoPromisc leaves the interface's promiscuous mode alone. By default
	// a port holds the interface promiscuous while it is open
	// (PACKET_MR_PROMISC: the kernel counts the references and undoes it
	// when the socket closes), because it forwards traffic that is not
	// addressed to the interface's MAC, as ONVM's ports do.
	NoPromisc bool
	// QdiscBypass sends straight to the driver (PACKET_QDISC_BYPASS):
	// no queueing discipline, and packet taps (tcpdump) do not see TX.
	QdiscBypass bool
}

// DefaultConfig returns the configuration port.Open uses.
func DefaultConfig() Config {
	return Config{
		BlockBytes:   DefaultBlockBytes,
		Blocks:       DefaultBlocks,
		BlockTimeout: DefaultBlockTimeout,
		SndBufBytes:  DefaultSndBufBytes,
	}
}

// fill applies the defaults and checks the ranges that do not depend on
// the interface.
func (c *Config) fill() error {
	d := DefaultConfig()
	if c.BlockBytes == 0 {
		c.BlockBytes = d.BlockBytes
	}
	if c.Blocks == 0 {
		c.Blocks = d.Blocks
	}
	if c.BlockTimeout == 0 {
		c.BlockTimeout = d.BlockTimeout
	}
	if c.SndBufBytes == 0 {
		c.SndBufBytes = d.SndBufBytes
	}
	page := unix.Getpagesize()
	switch {
	case c.BlockBytes < page || c.BlockBytes > MaxBlockBytes || c.BlockBytes&(c.BlockBytes-1) != 0:
		return fmt.Errorf("block size %d: not a power of two in %d..%d", c.BlockBytes, page, MaxBlockBytes)
	case c.Blocks < MinBlocks || c.Blocks > MaxRingBytes/c.BlockBytes:
		return fmt.Errorf("%d blocks of %d bytes: outside %d..%d blocks (ring at most %d bytes)",
			c.Blocks, c.BlockBytes, MinBlocks, MaxRingBytes/c.BlockBytes, MaxRingBytes)
	case c.BlockTimeout < 0 || c.BlockTimeout > time.Second:
		return fmt.Errorf("block timeout %v: outside 1ms..1s", c.BlockTimeout)
	case c.SndBufBytes < 0:
		return fmt.Errorf("send buffer %d bytes: negative", c.SndBufBytes)
	}
	return nil
}

// Port is an AF_PACKET port on one interface. RxBurst is for one goroutine
// and TxBurst for one (possibly another, concurrently); ID, Name, Iface,
// MTU, Stats and Detail are safe from any; Close is called once both loops
// have stopped (port.Port's contract).
//
// Lock order: mu only; the burst paths take no lock.
type Port struct {
	// Fixed by New.
	id    uint16
	name  string
	iface string
	index int // interface index both sockets are bound to
	mtu   int // the interface's MTU when the port opened, in bytes
	hw    net.HardwareAddr
	ether bool   // the interface is Ethernet (not loopback): TX allows a VLAN tag beyond the MTU
	cfg   Config // with defaults applied
	ring  rxRing
	rxFD  int // -1 once closed; used without mu only by RxBurst (see Close)
	txFD  int // -1 once closed; used without mu only by TxBurst

	stats port.Counters

	_ [shm.CacheLineBytes]byte
	// RX goroutine only: the read cursor. rxLeft > 0 iff block rxBlk is
	// ours (handed over, not yet released), and then rxOff is the offset of
	// its next frame.
	rxBlk, rxLeft, rxOff uint32
	// Written by the RX goroutine, read by Detail.
	rxTooBig, rxTruncated, rxMalformed, rxCsum atomic.Uint64

	_ [shm.CacheLineBytes]byte
	// TX goroutine only: sendmmsg's vectors, preallocated so a burst needs
	// no allocation. msgs[i] points at iov[i]; iov[i] at a slot's data.
	msgs      [txBatch]unix.Mmsghdr
	iov       [txBatch]unix.Iovec
	pos       [txBatch]uint8    // position in the chunk of the frame msgs[i] carries
	pend      [txBatch]shm.Slot // sent but not yet freed: the drain ring was full
	npend     int
	pendCache *shm.Cache // the cache that holds pend[:npend]
	// Written by the TX goroutine, read by Detail.
	txInvalid, txRefused atomic.Uint64
	txErrno              atomic.Uintptr // last sendmmsg error (syscall.Errno)
	_                    [shm.CacheLineBytes]byte

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error

	mu sync.Mutex
	// PACKET_STATISTICS, accumulated: the kernel resets its counters on
	// every read. Guarded by mu.
	kernDrops, kernFreezes uint64
}

// New opens a port with ID id on interface iface (which must exist in the
// calling thread's network namespace; the sockets stay bound to it). It
// needs CAP_NET_RAW. Zero fields of cfg take DefaultConfig's values. Safe
// for concurrent use; the port belongs to the caller, who closes it.
func New(id uint16, iface string, cfg Config) (*Port, error) {
	p := &Port{id: id, name: port.DriverAFPacket + strconv.Itoa(int(id)), iface: iface, rxFD: -1, txFD: -1}
	if err := cfg.fill(); err != nil {
		return nil, fmt.Errorf("afpacket port %d (%s): %w", id, iface, err)
	}
	p.cfg = cfg
	if iface == "" {
		return nil, fmt.Errorf("afpacket port %d: no interface", id)
	}
	if err := p.open(); err != nil {
		p.release()
		return nil, fmt.Errorf("afpacket port %d (%s): %w", id, iface, err)
	}
	for i := range p.msgs {
		p.msgs[i].Hdr.Iov = &p.iov[i]
		p.msgs[i].Hdr.SetIovlen(1)
	}
	return p, nil
}

// ID is the port number. Safe from any goroutine.
func (p *Port) ID() uint16 { return p.id }

// Name is "afpacket" and the ID. Safe from any goroutine.
func (p *Port) Name() string { return p.name }

// Iface is the interface's name. Safe from any goroutine.
func (p *Port) Iface() string { return p.iface }

// HardwareAddr is the interface's MAC address when the port opened (nil if
// it has none): the manager tells NFs, which write it as a source address.
func (p *Port) HardwareAddr() net.HardwareAddr { return p.hw }

// MTU is the interface's MTU when the port opened, in bytes: TxBurst drops
// longer frames (plus the Ethernet header, and a VLAN tag). Reopen the port
// after changing it. Safe from any goroutine.
func (p *Port) MTU() int { return p.mtu }

// Config is the port's configuration, defaults applied. Safe from any
// goroutine.
func (p *Port) Config() Config { return p.cfg }

// Stats returns the port's counters. RxDrops includes the kernel's drops
// (ring full), which it reads with a getsockopt: call it at stats rate, not
// per burst. Safe from any goroutine.
func (p *Port) Stats() port.Stats {
	kern, _ := p.kernelStats()
	s := p.stats.Snapshot()
	s.RxDrops += kern
	return s
}

// Detail breaks a port's drops down by cause, beyond port.Stats: a
// caller-owned snapshot.
type Detail struct {
	RxKernelDrops  uint64 // frames the kernel dropped, ring full (PACKET_STATISTICS tp_drops); in RxDrops
	RxFreezes      uint64 // times the kernel found the ring full (tp_freeze_q_cnt)
	RxTooBig       uint64 // frames longer than the slot's data room; in RxDrops
	RxTruncated    uint64 // frames the kernel cut to fit a block; in RxDrops
	RxMalformed    uint64 // frames behind an out-of-bounds ring header; in RxDrops
	RxCsumNotReady uint64 // delivered frames whose L4 checksum the sender left to offload: not valid on the wire

	TxInvalid   uint64        // frames TxBurst dropped unsent: shorter than an Ethernet header or longer than the MTU allows; in TxDrops
	TxRefused   uint64        // frames TxBurst returned to its caller (the kernel refused them); not in TxDrops: the caller retries or drops them
	TxLastErrno syscall.Errno // the last error sendmmsg returned, 0 if none
}

// Detail returns the port's drop breakdown. Safe from any goroutine.
func (p *Port) Detail() Detail {
	kern, freezes := p.kernelStats()
	return Detail{
		RxKernelDrops:  kern,
		RxFreezes:      freezes,
		RxTooBig:       p.rxTooBig.Load(),
		RxTruncated:    p.rxTruncated.Load(),
		RxMalformed:    p.rxMalformed.Load(),
		RxCsumNotReady: p.rxCsum.Load(),
		TxInvalid:      p.txInvalid.Load(),
		TxRefused:      p.txRefused.Load(),
		TxLastErrno:    syscall.Errno(p.txErrno.Load()),
	}
}

// kernelStats folds the kernel's RX counters into the port's and returns
// the totals.
func (p *Port) kernelStats() (drops, freezes uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pollKernelLocked()
	return p.kernDrops, p.kernFreezes
}

// pollKernelLocked reads and accumulates PACKET_STATISTICS, which the
// kernel resets on each read. Called with mu held; a no-op once closed.
func (p *Port) pollKernelLocked() {
	if p.rxFD < 0 {
		return
	}
	st, err := unix.GetsockoptTpacketStatsV3(p.rxFD, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		return // cannot fail on a live packet socket; the counters stay as they were
	}
	p.kernDrops += uint64(st.Drops)
	p.kernFreezes += uint64(st.Freeze_q_cnt)
}

// Close releases the port: it reads the kernel's counters a last time,
// unmaps the ring and closes both sockets (which ends promiscuous mode).
// RxBurst and TxBurst return 0 afterwards. It MUST be called only AFTER the
// RX and TX loops have stopped calling them: the ring they read is unmapped.
// Slots TxBurst sent but could not free yet (only while its cache's drain
// ring was full) stay with that cache's owner; a last TxBurst(c, nil)
// frees them. Idempotent; safe from any goroutine.
func (p *Port) Close() error {
	p.closeOnce.Do(func() {
		p.closed.Store(true)
		p.mu.Lock()
		defer p.mu.Unlock()
		p.pollKernelLocked()
		p.closeErr = p.release()
	})
	return p.closeErr
}

// release unmaps the ring and closes the sockets that are open: Close's
// work, and New's undo when a step fails. Called with mu held or before the
// port is shared.
func (p *Port) release() error {
	var errs []error
	if p.ring.mem != nil {
		if err := unix.Munmap(p.ring.mem); err != nil {
			errs = append(errs, fmt.Errorf("unmap rx ring: %w", err))
		}
		p.ring.mem = nil
	}
	for _, fd := range []*int{&p.rxFD, &p.txFD} {
		if *fd >= 0 {
			if err := unix.Close(*fd); err != nil {
				errs = append(errs, fmt.Errorf("close socket: %w", err))
			}
			*fd = -1
		}
	}
	return errors.Join(errs...)
}

var _ port.Port = (*Port)(nil)
