package shm_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/internal/testenv"
	"github.com/reinforce-nfv/reinforce/shm"
	"github.com/reinforce-nfv/reinforce/shm/shmtest"
)

func childPID(t *testing.T, c *shmtest.Child) string {
	line := c.ReadLine(t, 30*time.Second)
	if !strings.HasPrefix(line, "pid ") {
		t.Fatalf("child said %q, want its pid", line)
	}
	return strings.TrimPrefix(line, "pid ")
}

// TestRingCrossProcessOrdering moves ≥ 10^8 numbered entries (fewer under
// -race) from a producer process to a consumer process in random bursts
// of 1..64 and checks every one arrives once, in order.
func TestRingCrossProcessOrdering(t *testing.T) {
	count := 100_000_000
	if raceEnabled || testing.Short() {
		count = 2_000_000
	}
	r := shmtest.TempRegion(t, shmtest.SmallOptions())
	if err := r.Pool().AssignRing(3, 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	env := []string{"REGION=" + r.Path(), "RING=3", fmt.Sprintf("COUNT=%d", count), "BURST=0"}
	cons := shmtest.StartChild(t, t.Name(), "seq-consumer", env...)
	prod := shmtest.StartChild(t, t.Name(), "seq-producer", env...)
	pc, pp := childPID(t, cons), childPID(t, prod)
	t.Logf("producer pid %s, consumer pid %s, test pid %d, %d entries", pp, pc, os.Getpid(), count)
	if pc == pp {
		t.Fatal("producer and consumer are the same process")
	}
	if got := cons.ReadLine(t, 5*time.Minute); got != fmt.Sprintf("ok %d", count) {
		t.Fatalf("consumer: %s", got)
	}
	prod.Wait(t)
	cons.Wait(t)
}

// The crash test's children: a producer that allocates slots, stamps each
// with its ring position and publishes them, and a consumer that checks
// every slot it receives carries the position it was read from, then frees
// it. Both pause at random between the two phases of a burst so that
// SIGKILL often lands between them.

func crashSetup() (*shm.Region, *shm.Cache, *shm.Ring, error) {
	r, err := attachEnv()
	if err != nil {
		return nil, nil, nil, err
	}
	c, err := r.OpenCache(shm.OwnerID(envU64("OWNER")))
	if err != nil {
		return nil, nil, nil, err
	}
	ring, err := r.OpenRing(uint32(envU64("RING")))
	return r, c, ring, err
}

func spin(rng *rand.Rand) {
	for i, n := 0, rng.IntN(20000); i < n; i++ {
		_ = rng.Uint32()
	}
}

func childCrashProducer() error {
	r, c, ring, err := crashSetup()
	if err != nil {
		return err
	}
	shmtest.Reportf("pid %d", os.Getpid())
	rng := rand.New(rand.NewPCG(uint64(os.Getpid()), 7))
	var buf [64]shm.Slot
	_, pos := ring.Window() // continue from the published producer index
	for {
		want := rng.IntN(64) + 1
		n := c.Alloc(buf[:want])
		for i := 0; i < n; i++ {
			r.Meta(buf[i]).Seq = uint64(pos + uint32(i))
		}
		k, err := c.Stage(ring, buf[:n])
		if err != nil {
			return err
		}
		c.Free(buf[k:n])
		spin(rng) // staged, not published
		ring.Publish()
		pos += uint32(k)
	}
}

func childCrashConsumer() error {
	r, c, ring, err := crashSetup()
	if err != nil {
		return err
	}
	shmtest.Reportf("pid %d", os.Getpid())
	rng := rand.New(rand.NewPCG(uint64(os.Getpid()), 9))
	var buf [64]shm.Slot
	pos, _ := ring.Window() // continue from the released consumer index
	for {
		n, err := c.Peek(ring, buf[:rng.IntN(64)+1])
		if err != nil {
			return err
		}
		if c.Bad != 0 {
			return fmt.Errorf("hand-over check refused %d entries at position %d", c.Bad, pos)
		}
		for i := 0; i < n; i++ {
			if got := r.Meta(buf[i]).Seq; got != uint64(pos+uint32(i)) {
				return fmt.Errorf("position %d holds packet %d: lost or duplicated", pos+uint32(i), got)
			}
		}
		spin(rng) // peeked, not released
		// Release before Free: a freed slot may be reallocated at once, so
		// it must no longer be in the ring's window when it is.
		ring.Release()
		pos += uint32(n)
		for k := 0; k < n; { // a full drain ring waits for the creator's service loop
			k += c.Free(buf[k:n])
		}
	}
}

// TestRingCrashSafety SIGKILLs a producer process and a consumer process in
// the middle of bursts, many times, restarting each after the creator has
// reclaimed what the dead one held, and shows that the ring neither freezes
// nor loses nor duplicates a published entry and that every slot comes back.
func TestRingCrashSafety(t *testing.T) {
	kills := 200
	if raceEnabled || testing.Short() {
		kills = 30
	}
	if n := envU64("REINFORCE_CRASH_KILLS"); n > 0 { // long tier: tools/soak
		kills = int(n)
	}
	o := shmtest.SmallOptions()
	o.RingCap = 256
	r := shmtest.TempRegion(t, o)
	p := r.Pool()
	const prodOwner, consOwner, ringID = 1, 2, 4
	p.AddOwner(prodOwner, 0)
	p.AddOwner(consOwner, 0)
	if err := p.AssignRing(ringID, prodOwner, consOwner, 4); err != nil {
		t.Fatal(err)
	}
	p.StartService()
	defer p.StopService()
	probe, _ := r.OpenRing(ringID)

	start := func(role string, owner int) (*shmtest.Child, string) {
		c := shmtest.StartChild(t, t.Name(), role, "REGION="+r.Path(), fmt.Sprintf("RING=%d", ringID), fmt.Sprintf("OWNER=%d", owner))
		return c, childPID(t, c)
	}
	prod, prodPID := start("crash-producer", prodOwner)
	cons, consPID := start("crash-consumer", consOwner)
	t.Logf("test pid %d, first producer pid %s, first consumer pid %s", os.Getpid(), prodPID, consPID)
	if prodPID == consPID {
		t.Fatal("producer and consumer share a process")
	}
	rng := rand.New(rand.NewPCG(testenv.Seed(t), 3))
	var moved, prodKills, consKills, reclaimed int
	kill := func(c *shmtest.Child, owner shm.OwnerID, keep bool) {
		c.Cmd.Process.Signal(syscall.SIGKILL)
		c.Cmd.Wait()
		if ws, ok := c.Cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("child %d ended on its own (%v) before the kill: see its stderr", c.Cmd.Process.Pid, c.Cmd.ProcessState)
		}
		_, _, bad := p.OwnerStats(owner)
		if bad != 0 {
			t.Fatalf("owner %d refused %d hand-overs before it died", owner, bad)
		}
		n, err := p.Reclaim(owner, shm.ReclaimOptions{KeepInputs: keep})
		if err != nil {
			t.Fatal(err)
		}
		reclaimed += n
		if err := p.AddOwner(owner, 0); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < kills; i++ {
		cons0, _ := probe.Window()
		deadline := time.Now().Add(30 * time.Second)
		for { // let traffic flow: the ring must not be frozen
			if c, _ := probe.Window(); c-cons0 > uint32(rng.IntN(3000)) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("kill %d: no progress for 30 s: the ring froze", i)
			}
		}
		c1, _ := probe.Window()
		moved += int(c1 - cons0)
		switch rng.IntN(3) {
		case 0:
			kill(prod, prodOwner, false)
			prod, _ = start("crash-producer", prodOwner)
			prodKills++
		case 1:
			kill(cons, consOwner, true)
			cons, _ = start("crash-consumer", consOwner)
			consKills++
		default:
			kill(prod, prodOwner, false)
			kill(cons, consOwner, true)
			prod, _ = start("crash-producer", prodOwner)
			cons, _ = start("crash-consumer", consOwner)
			prodKills++
			consKills++
		}
	}
	kill(prod, prodOwner, false)
	kill(cons, consOwner, false)
	p.Reclaim(prodOwner, shm.ReclaimOptions{})
	p.Reclaim(consOwner, shm.ReclaimOptions{})
	if err := p.ReleaseRing(ringID); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d kills of the producer, %d of the consumer, %d entries checked, %d slots reclaimed from dead processes",
		prodKills, consKills, moved, reclaimed)
	if free := p.FreeCount(); free != p.Capacity() {
		t.Fatalf("pool has %d of %d slots after every process was reclaimed: %d leaked", free, p.Capacity(), p.Capacity()-free)
	}
}
