package nflib

// SendRoom is how many packets the NF can still send in the open burst or
// callback without one being refused: the least room left in any ring it
// may send to, at most shm.MaxBurst. An NF that holds packets in a Queue
// pops no more than this before injecting them, so that Inject never meets
// a full ring (where it would free the packet: a queued packet must wait
// instead, which is what the queue is for). Call it from the loop's
// goroutine (a handler or callback).
func (nf *NF) SendRoom() int { return nf.outRoom(nf.injectRoutes()) }
