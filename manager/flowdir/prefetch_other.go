//go:build !amd64

package flowdir

import "sync/atomic"

// prefetch loads p's word and discards it: without a prefetch instruction (see
// prefetch_amd64.go), a load still starts the cache miss early. An atomic load, so the
// compiler keeps it.
func prefetch(p *atomic.Uint64) {
	p.Load()
}
