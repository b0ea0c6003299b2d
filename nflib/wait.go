package nflib

import "github.com/reinforce-nfv/reinforce/shm"

// waiter is how the burst loop sleeps when it has no work.
func (nf *NF) waiter() shm.Waiter { return shm.Waiter{Bell: nf.bell} }
