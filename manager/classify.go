package manager

import "github.com/reinforce-nfv/reinforce/pkt"

// flowHash is the packet's symmetric 5-tuple hash (both directions of a flow
// get the same instance), or a hash of the first bytes for non-IP frames.
func flowHash(frame []byte) uint32 {
	var h pkt.Headers
	if h.Decode(frame) == nil {
		if ft, ok := h.FiveTuple(frame); ok {
			return pkt.SymmetricHash(ft)
		}
	}
	var x uint32 = 2166136261
	for i := 0; i < len(frame) && i < 14; i++ {
		x = (x ^ uint32(frame[i])) * 16777619
	}
	return x
}
