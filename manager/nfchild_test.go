package manager_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/nflib"
	"github.com/reinforce-nfv/reinforce/shm"
	"github.com/reinforce-nfv/reinforce/shm/shmtest"
)

// TestMain turns re-executed children into NFs: real processes attached to
// the test's manager over its real control socket and region.
func TestMain(m *testing.M) {
	if shmtest.Role() == "nf" {
		if err := runChildNF(); err != nil {
			fmt.Fprintf(os.Stderr, "child NF %d: %v\n", os.Getpid(), err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Payload layout of test frames (after the 42-byte Ethernet+IPv4+UDP headers):
// byte markAt+k holds the service ID of the k-th NF that handled the packet,
// and instAt the instance ID of the last one.
const (
	markAt = 42
	instAt = 58
)

// runChildNF registers with NF_ARGS (ONVM syntax, space-separated) and runs
// the behaviour in NF_DO:
//
//	next           mark and return Next
//	tonf:S         mark and send to service S
//	out:P          mark and send out of port P
//	drop-odd:X     mark; drop packets whose UDP source port is odd, else X (a behaviour above)
//	garbage        send out-of-range, stale and foreign slot references, then scribble its ring
func runChildNF() error {
	args := strings.Fields(os.Getenv("NF_ARGS"))
	if os.Getenv("NF_ARGS") == "" {
		args = os.Args[1:] // launched by the manager from an [[nf]] entry
	}
	nf, err := nflib.Init("testnf", args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "child NF: %v\n", err)
		shmtest.Reportf("error %v", err)
		return nil
	}
	nf.SetSummary(false)
	defer nf.Close()
	shmtest.Reportf("ready %d", nf.InstanceID())
	do := os.Getenv("NF_DO")
	if do == "garbage" {
		return garbage(nf)
	}
	if s, ok := strings.CutPrefix(do, "msg-send:"); ok {
		// Setup sends three messages to service s, then the NF idles.
		v, _ := strconv.Atoi(s)
		return nf.RunWith(func(nflib.Packet) nflib.Action { return nflib.Drop }, nflib.Callbacks{
			Setup: func(nf *nflib.NF) {
				for i := 0; i < 3; i++ {
					if err := nf.SendMsg(uint16(v), []byte(fmt.Sprintf("hello %d from %d", i, nf.InstanceID()))); err != nil {
						shmtest.Reportf("send error %v", err)
					}
				}
				shmtest.Reportf("sent")
			},
		})
	}
	if do == "msg-recv" {
		return nf.RunWith(func(nflib.Packet) nflib.Action { return nflib.Drop }, nflib.Callbacks{
			Msg: func(nf *nflib.NF, from uint16, data []byte) { shmtest.Reportf("msg %d %s", from, data) },
		})
	}
	if do == "idle-stop" {
		// The idle callback runs on every iteration and stops the NF at the tenth.
		n := 0
		err := nf.RunWith(func(nflib.Packet) nflib.Action { return nflib.Drop }, nflib.Callbacks{
			Idle: func(*nflib.NF) bool { n++; return n == 10 },
		})
		shmtest.Reportf("idle stopped after %d", n)
		return err
	}
	if do == "txstamp" {
		return txStamp(nf)
	}
	if do == "pass" { // forward along the chain without touching the packet
		return nf.Run(func(nflib.Packet) nflib.Action { return nflib.Next })
	}
	dropOdd := false
	if rest, ok := strings.CutPrefix(do, "drop-odd:"); ok {
		dropOdd, do = true, rest
	}
	act := nflib.Next
	if s, ok := strings.CutPrefix(do, "tonf:"); ok {
		v, _ := strconv.Atoi(s)
		act = nflib.ToNF(uint16(v))
	} else if s, ok := strings.CutPrefix(do, "out:"); ok {
		v, _ := strconv.Atoi(s)
		act = nflib.Out(uint16(v))
	}
	svc, inst := byte(nf.ServiceID()), byte(nf.InstanceID())
	return nf.Run(func(p nflib.Packet) nflib.Action {
		d := p.Writable()
		if len(d) <= instAt {
			return nflib.Drop
		}
		for k := markAt; k < instAt; k++ {
			if d[k] == 0 {
				d[k] = svc
				break
			}
		}
		d[instAt] = inst
		if dropOdd && d[35]&1 == 1 { // low byte of the UDP source port
			return nflib.Drop
		}
		return act
	})
}

// garbage plays an NF that writes nonsense into its ring to the manager.
func garbage(nf *nflib.NF) error {
	r := nf.Region()
	var toMgr uint32
	for _, rr := range nf.RingRefs() {
		if rr.Peer == "manager" {
			toMgr = rr.Index
		}
	}
	ring, err := r.OpenRing(toMgr)
	if err != nil {
		return err
	}
	c, err := r.OpenCache(nf.Owner())
	if err != nil {
		return err
	}
	var s [4]shm.Slot
	for c.Alloc(s[:]) < 4 {
	}
	stale := s[0]
	c.Free(s[:1])
	bad := []shm.Slot{shm.Slot(r.NumSlots() + 7), stale, s[1] ^ 0x01000000, 12345}
	ring.Enqueue(bad) // raw entries: no ownership hand-over
	for deadline := time.Now().Add(10 * time.Second); ring.Count() != 0; {
		if time.Now().After(deadline) {
			return fmt.Errorf("the manager never consumed the garbage")
		}
	}
	shmtest.Reportf("garbage consumed")
	ring.InjectProducerIndex(1 << 31) // and now the ring itself
	select {}
}
