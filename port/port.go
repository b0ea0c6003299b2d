// Package port is the manager's view of a NIC: a Port receives bursts of
// frames into pool slots and transmits bursts of slots. Drivers here are the
// null generator (Null) and the loopback (Loop); AF_PACKET, pcap and DPDK
// come later and plug in through Open's driver table (Register), with
// Linux-only and cgo code in their own files or packages (STYLE.md §1).
// port/porttest holds an in-memory port for tests.
package port

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/reinforce-nfv/reinforce/shm"
)

// Port is one interface the manager receives from and transmits to.
// RxBurst is called from one goroutine (the manager's RX loop) and TxBurst
// from one (the TX loop), possibly a different one; Stats from any;
// ID and Name from any. Close is called once both loops have stopped.
type Port interface {
	// ID is the port's number (Meta.Port of what it receives).
	ID() uint16
	// Name is the driver name and ID, "null0", "loop1".
	Name() string
	// RxBurst allocates slots from c, fills them with received frames
	// (data at Meta.DataOff = shm.HeadroomBytes, Meta.Len, Meta.Port = ID(),
	// Meta.Timestamp = CLOCK_MONOTONIC ns) and returns how many it wrote to
	// out; the caller owns them. It never blocks: 0 means nothing is due.
	RxBurst(c *shm.Cache, out []shm.Slot) int
	// TxBurst transmits frames and takes ownership of the first n slots it
	// returns (it frees them with c once sent); the caller keeps s[n:] (and
	// typically frees them as TX drops). It never blocks.
	TxBurst(c *shm.Cache, s []shm.Slot) int
	// Stats returns the port's counters; safe from any goroutine.
	Stats() Stats
	// Close releases the port. After Close, RxBurst and TxBurst return 0.
	Close() error
}

// Stats are a port's counters since it was opened, as Port.Stats returns
// them: a caller-owned snapshot. Each field is read atomically, but fields
// are not read together, so RxPkts and RxBytes may be one burst apart.
type Stats struct {
	RxPkts  uint64 `json:"rx_pkts"`  // frames delivered by RxBurst
	RxBytes uint64 `json:"rx_bytes"` // their bytes (Meta.Len)
	TxPkts  uint64 `json:"tx_pkts"`  // frames TxBurst accepted
	TxBytes uint64 `json:"tx_bytes"` // their bytes
	RxDrops uint64 `json:"rx_drops"` // frames lost before RxBurst delivered them (queue overflow, no room in a slot)
	TxDrops uint64 `json:"tx_drops"` // frames TxBurst refused (ONVM: tx_drop); the caller frees them
}

// Counters is the atomic form of Stats that drivers keep. The RX fields are
// written by the RX goroutine only and the TX fields by the TX goroutine
// only; they sit on separate cache lines so the two loops do not contend.
// Snapshot may be called from any goroutine.
type Counters struct {
	_                        [shm.CacheLineBytes]byte
	RxPkts, RxBytes, RxDrops atomic.Uint64 // written by the RX goroutine
	_                        [shm.CacheLineBytes - 24]byte
	TxPkts, TxBytes, TxDrops atomic.Uint64 // written by the TX goroutine
	_                        [shm.CacheLineBytes - 24]byte
}

// Snapshot returns the counters as Stats.
func (c *Counters) Snapshot() Stats {
	return Stats{
		RxPkts: c.RxPkts.Load(), RxBytes: c.RxBytes.Load(), RxDrops: c.RxDrops.Load(),
		TxPkts: c.TxPkts.Load(), TxBytes: c.TxBytes.Load(), TxDrops: c.TxDrops.Load(),
	}
}

// Desc describes a port to open, as the configuration gives it
// (manager/config.Port).
type Desc struct {
	ID       uint16
	Driver   string // DriverNull, DriverLoop, ... or a Register'ed name
	Iface    string // network interface: afpacket, dpdk
	Path     string // capture to replay: pcap
	OutPath  string // capture to write: pcap
	RatePPS  uint64 // null: packets per second, 0 = as fast as polled
	PktBytes int    // null: frame size in bytes, 0 = DefaultNullPktBytes
	Loop     bool   // pcap: replay the capture forever
}

// ErrNotBuilt is matched (errors.Is) by Open's error for a driver the
// project names but has not built yet.
var ErrNotBuilt = errors.New("not built yet")

// ErrUnknownDriver is matched by Open's error for a driver name nobody
// registered.
var ErrUnknownDriver = errors.New("unknown driver")

// OpenFunc opens a port of one driver; Open calls it on the caller's
// goroutine, possibly concurrently with other Opens.
type OpenFunc func(Desc) (Port, error)

var (
	driversMu sync.Mutex
	drivers   = map[string]OpenFunc{} // guarded by driversMu
)

// Register adds driver name to Open's table, for drivers that live in
// their own package (port/dpdk, behind its build tag, registers from init).
// A second registration of the same name panics: it is a programming error.
// Safe for concurrent use.
func Register(name string, open OpenFunc) {
	driversMu.Lock()
	defer driversMu.Unlock()
	if _, dup := drivers[name]; dup || name == DriverNull || name == DriverLoop {
		panic("port: driver " + name + " registered twice")
	}
	drivers[name] = open
}

// Open opens the port d describes: a Null or a Loop (of DefaultLoopDepth),
// or a registered driver. Drivers that are planned but not built return an
// error matching ErrNotBuilt ("driver afpacket not built yet"). Safe for
// concurrent use; the port returned belongs to the caller.
func Open(d Desc) (Port, error) {
	switch d.Driver {
	case DriverNull:
		return NewNull(d.ID, NullOptions{PktBytes: d.PktBytes, RatePPS: d.RatePPS})
	case DriverLoop:
		return NewLoop(d.ID, DefaultLoopDepth)
	}
	driversMu.Lock()
	open := drivers[d.Driver]
	driversMu.Unlock()
	if open != nil {
		return open(d)
	}
	switch d.Driver {
	case DriverAFPacket, DriverPcap, DriverDPDK:
		return nil, fmt.Errorf("driver %s %w", d.Driver, ErrNotBuilt)
	}
	return nil, fmt.Errorf("driver %q: %w", d.Driver, ErrUnknownDriver)
}

// portName is a driver name followed by the port ID ("null0").
func portName(driver string, id uint16) string { return fmt.Sprintf("%s%d", driver, id) }
