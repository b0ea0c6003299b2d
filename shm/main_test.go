package shm_test

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/shm"
	"github.com/reinforce-nfv/reinforce/shm/shmtest"
)

// TestMain dispatches re-executed children to their role: they attach to
// the parent's region, play it, report on fd 3 and exit.
func TestMain(m *testing.M) {
	switch role := shmtest.Role(); role {
	case "":
		os.Exit(m.Run())
	default:
		fn, ok := childRoles[role]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown child role %q\n", role)
			os.Exit(2)
		}
		if err := fn(); err != nil {
			fmt.Fprintf(os.Stderr, "child %s (pid %d): %v\n", role, os.Getpid(), err)
			shmtest.Reportf("FAIL %v", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

var childRoles = map[string]func() error{
	"seq-producer":   childSeqProducer,
	"seq-consumer":   childSeqConsumer,
	"crash-producer": childCrashProducer,
	"crash-consumer": childCrashConsumer,
	"echo":           childEcho,
	"count-consumer": childCountConsumer,
}

func envU64(name string) uint64 {
	v, _ := strconv.ParseUint(os.Getenv(name), 10, 64)
	return v
}

func attachEnv() (*shm.Region, error) { return shm.Attach(os.Getenv("REGION")) }

// attachRing attaches to $REGION, opens ring $RING and reports this
// child's pid: the start of every single-ring child role.
func attachRing() (*shm.Region, *shm.Ring, error) {
	r, err := attachEnv()
	if err != nil {
		return nil, nil, err
	}
	ring, err := r.OpenRing(uint32(envU64("RING")))
	if err != nil {
		return nil, nil, err
	}
	shmtest.Reportf("pid %d", os.Getpid())
	return r, ring, nil
}

// childSeqProducer enqueues 0..COUNT-1 into ring RING in bursts of BURST
// (0 = random 1..64), then reports "done".
func childSeqProducer() error {
	_, ring, err := attachRing()
	if err != nil {
		return err
	}
	count, burst := envU64("COUNT"), int(envU64("BURST"))
	var buf [64]shm.Slot
	rnd := uint64(os.Getpid())
	next := uint64(0)
	for next < count {
		b := burst
		if b == 0 {
			rnd = rnd*6364136223846793005 + 1442695040888963407
			b = int(rnd>>58) + 1
		}
		b = int(min(uint64(b), count-next))
		for i := 0; i < b; i++ {
			buf[i] = shm.Slot(uint32(next) + uint32(i))
		}
		n, err := ring.Enqueue(buf[:b])
		if err != nil {
			return err
		}
		next += uint64(n)
	}
	shmtest.Reportf("done")
	return nil
}

// childSeqConsumer dequeues COUNT entries from ring RING, checking each is
// the next number (no loss, no duplicate, in order), then reports "ok N".
func childSeqConsumer() error {
	_, ring, err := attachRing()
	if err != nil {
		return err
	}
	count := envU64("COUNT")
	var buf [64]shm.Slot
	want := uint64(0)
	idle := time.Now()
	for want < count {
		n, err := ring.Dequeue(buf[:])
		if err != nil {
			return err
		}
		if n == 0 {
			if time.Since(idle) > 30*time.Second {
				return fmt.Errorf("ring froze at entry %d", want)
			}
			continue
		}
		idle = time.Now()
		for _, s := range buf[:n] {
			if uint32(s) != uint32(want) {
				return fmt.Errorf("entry %d is %d: lost or duplicated entries", want, uint32(s))
			}
			want++
		}
	}
	shmtest.Reportf("ok %d", want)
	return nil
}
