package nflib

// Peek returns the oldest queued packet without taking it, for an NF that
// must look at a packet before deciding to send it (a token bucket checks
// its length against the tokens). The packet stays queued: read it, don't
// Inject or Free it.
func (q *Queue) Peek() (Packet, bool) {
	s, ok := q.q.Peek(0)
	if !ok {
		return Packet{}, false
	}
	return Packet{r: q.nf.region, slot: s, nf: q.nf}, true
}
