package manager

import (
	"github.com/reinforce-nfv/reinforce/port"
	"github.com/reinforce-nfv/reinforce/shm"
)

// txBacklogCap bounds the frames a port may owe: a kernel port refuses
// frames while its socket buffer is full (veth: ENOBUFS), typically for
// microseconds after a burst (a promoted standby flushing its backlog).
// Holding them, in order, is back-pressure; dropping them would lose
// packets whose state is already committed.
const txBacklogCap = 8192

// txBacklog holds, in order, frames a port refused, for the TX loop to send
// before anything newer for that port. TX loop goroutine only.
type txBacklog struct {
	s []shm.Slot
}

// flush sends what the port takes from the front and returns how many.
func (b *txBacklog) flush(c *shm.Cache, p port.Port) int {
	sent := 0
	for sent < len(b.s) {
		k := p.TxBurst(c, b.s[sent:min(len(b.s), sent+shm.MaxBurst)])
		sent += k
		if k == 0 {
			break
		}
	}
	b.s = b.s[:copy(b.s, b.s[sent:])]
	return sent
}

// add queues s after what waits and returns what did not fit (to drop).
func (b *txBacklog) add(s []shm.Slot) (over []shm.Slot) {
	if b.s == nil {
		b.s = make([]shm.Slot, 0, txBacklogCap)
	}
	n := min(len(s), cap(b.s)-len(b.s))
	b.s = append(b.s, s[:n]...)
	return s[n:]
}
