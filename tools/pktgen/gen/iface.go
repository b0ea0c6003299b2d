package gen

import (
	"fmt"
	"os"
	"sync/atomic"

	"github.com/reinforce-nfv/reinforce/port/afpacket"
	"github.com/reinforce-nfv/reinforce/shm"
)

// Iface is an AF_PACKET port on an interface with a private packet pool:
// what pktgen sends from and the sink receives into. The pool is serviced
// by the caller's loop (Service), so no goroutine competes for the CPU.
// For one goroutine.
type Iface struct {
	Port   *afpacket.Port
	Region *shm.Region
	Cache  *shm.Cache
}

var ifaceSeq atomic.Uint32

// Pool bounds: about maxPoolBytes of slots, and never fewer than minSlots.
const (
	maxPoolBytes = 256 << 20
	minSlots     = 1024
)

// OpenIface opens iface (in the calling thread's network namespace) with a
// pool of slots slots of dataBytes each, in a region file under /dev/shm
// that Close removes.
func OpenIface(iface string, slots, dataBytes uint32, cfg afpacket.Config) (*Iface, error) {
	if dataBytes < shm.DefaultDataBytes {
		dataBytes = shm.DefaultDataBytes
	}
	// Big slots (a capture's 64 KiB frames) get fewer of them.
	if limit := uint32(maxPoolBytes / dataBytes); slots > limit {
		slots = max(limit, minSlots)
	}
	r, err := shm.Create(shm.Options{
		Name:      fmt.Sprintf("reinforce-lab-%d-%d", os.Getpid(), ifaceSeq.Add(1)),
		Dir:       "/dev/shm",
		Slots:     slots,
		DataBytes: dataBytes,
		Rings:     1,
		RingCap:   64,
		Owners:    2,
		CacheCap:  512,
		Doorbells: 1,
	})
	if err != nil {
		return nil, err
	}
	const owner = 1
	if err := r.Pool().AddOwner(owner, 0); err != nil {
		r.Close()
		return nil, err
	}
	c, err := r.OpenCache(owner)
	if err != nil {
		r.Close()
		return nil, err
	}
	r.Pool().Service()
	p, err := afpacket.New(0, iface, cfg)
	if err != nil {
		r.Close()
		return nil, err
	}
	return &Iface{Port: p, Region: r, Cache: c}, nil
}

// Service tops the cache up from the pool and takes back what it freed.
func (f *Iface) Service() { f.Region.Pool().Service() }

// Close closes the port and removes the region.
func (f *Iface) Close() error {
	err := f.Port.Close()
	if err2 := f.Region.Close(); err == nil {
		err = err2
	}
	return err
}

// AfpacketDefaults is the port configuration pktgen and the sink use: the
// driver's defaults with a 64 MiB RX ring, so a receiver that sleeps while
// idle still has room for a long burst.
func AfpacketDefaults() afpacket.Config {
	c := afpacket.DefaultConfig()
	c.Blocks = 256
	return c
}
