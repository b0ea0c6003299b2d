// Command test_messaging is ONVM's test_messaging example NF (tag
// "test_messaging", ONVM-COMPAT.md §5.5): the unit tests of NF-to-NF
// messages, run by an NF that messages itself (nflib.NF.SendMsg to its own
// service, received by its Msg callback):
//
//  1. one message arrives with the right data (MAGIC_NUMBER 11);
//  2. ten messages arrive, in order;
//  3. more messages than the NF's rings hold, sent faster than it reads
//     them: the ones that do not fit are refused at once (no free slot, a
//     full ring to the manager) or dropped by the manager at the NF's full
//     input ring, the others arrive in order, and a last message sent
//     after the overflow arrives: messaging survives an overflow. (That
//     the dropped ones go back to the pool is the manager's to check; the
//     example's test does, from the manager's pool count.)
//
// Each test has 5 s. The NF prints ONVM's lines ("TEST MESSAGING STARTED",
// "TEST n: ...", "PASSED TEST n" or "FAILED TEST n", "Passed k/3 Tests"),
// then stops. Packets are dropped.
//
//	test_messaging [EAL args] -- [ONVM args] -- [-p <print_delay>]
//
// Where we differ from ONVM, on purpose:
//   - Each "TEST n: ..." line prints once (ONVM prints it on every loop
//     iteration until the test ends).
//   - A message carries its test's number, so a late message of a test
//     that timed out cannot fail the next one (ONVM empties its message
//     ring instead; messages here travel through the manager).
//   - Test 3 sends twice the ring size + 2 messages (the NF's rings hold
//     1024 by default; ONVM: ring size + 2 into its 128-entry message
//     ring) in chunks of 200, as a callback
//     may allocate at most 256 slots, and ends with a last message instead
//     of expecting ring size - 1 of them: which ones a full ring drops
//     depends on timing here. The leak check (ONVM: the message pool's
//     count) needs the manager's view of the pool: see above.
//   - The exit status is 1 when a test failed (ONVM: always 0).
package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/reinforce-nfv/reinforce/ctlmsg"
	"github.com/reinforce-nfv/reinforce/examples/internal/getopt"
	"github.com/reinforce-nfv/reinforce/examples/internal/nfapp"
	"github.com/reinforce-nfv/reinforce/nflib"
)

// tag names the NF in the manager's stats. ONVM: NF_TAG.
const tag = "test_messaging"

// ONVM's constants.
const (
	magicNumber  = 11                    // MAGIC_NUMBER
	timeLimit    = 5 * time.Second       // TEST_TIME_LIMIT
	batch        = 10                    // test 2's messages
	chunk        = 200                   // test 3's messages per callback: nflib allows 256 allocations
	quiet        = 50 * time.Millisecond // test 3: no message for this long means the flood is over
	slotPatience = time.Second           // how long a send waits for a free slot
	numTests     = 3
)

const rule = "---------------------------\n"

// Test states. ONVM: TEST_INCOMPLETE, TEST_PASSED, TEST_FAILED.
const (
	incomplete = iota
	passed
	failed
)

func main() {
	os.Exit(run(os.Args[0], os.Args[1:], nfapp.Std()))
}

// run is main with its inputs and outputs passed in; it returns the exit
// status.
func run(prog string, argv []string, w nfapp.IO) int {
	if !nfapp.Parse(prog, argv, w, usage, func(app []string) error {
		_, err := getopt.PrintDelay(app, 0) // ONVM accepts -p and ignores it
		return err
	}) {
		return 1
	}
	nf := nfapp.Register(tag, argv, w)
	if nf == nil {
		return 1
	}
	ts := &tester{nf: nf, out: w.Stdout, address: nf.ServiceID(), now: time.Now,
		send: nf.SendMsg, overflow: 2*toManagerCap(nf) + 2}
	code := nfapp.ServeWith(nf, func(nflib.Packet) nflib.Action { return nflib.Drop },
		nflib.Callbacks{Idle: ts.idle, Msg: ts.msg}, w)
	if code == 0 && ts.passed != numTests {
		code = 1
	}
	return code
}

// toManagerCap is the capacity of the NF's ring to the manager, which all
// its messages go through.
func toManagerCap(nf *nflib.NF) int {
	for _, r := range nf.RingRefs() {
		if r.Role == ctlmsg.RoleTX && r.Peer == "manager" {
			if ring, err := nf.Region().OpenRing(r.Index); err == nil {
				return int(ring.Cap())
			}
		}
	}
	return int(nf.Region().RingCap())
}

func usage(w io.Writer, prog string) {
	io.WriteString(w, "Usage:\n"+prog+" [EAL args] -- [NF_LIB args]\n")
}

// tester is the NF's state (ONVM: struct test_msg_data), used by the burst
// loop goroutine only. Messages are 8 bytes: the test's number and a value,
// little-endian int32s.
type tester struct {
	nf       *nflib.NF
	out      io.Writer
	address  uint16 // the NF's own service
	now      func() time.Time
	send     func(service uint16, data []byte) error
	overflow int // test 3's messages

	phase   int // 0: not started; n: test n running; 4: done
	status  [numTests]int
	passed  int
	count   int       // messages received in the running test
	sent    int       // test 3: messages sent so far (taken or refused)
	taken   int       // test 3: messages the ring took
	last    int       // test 3: the last value received, -1 before the first
	lastMsg time.Time // test 3: when the last message arrived or was sent
	start   time.Time
}

func (ts *tester) printf(format string, args ...any) { fmt.Fprintf(ts.out, format, args...) }

// sendN sends n messages of test phase with values first, first+1, ... and
// returns how many the ring took.
func (ts *tester) sendN(n, first int) int {
	ok := 0
	var b [8]byte
	binary.LittleEndian.PutUint32(b[0:], uint32(ts.phase))
	waited := time.Duration(0)
	for i := 0; i < n; i++ {
		binary.LittleEndian.PutUint32(b[4:], uint32(first+i))
		err := ts.send(ts.address, b[:])
		if errors.Is(err, nflib.ErrNoSlot) && waited < slotPatience {
			// The NF's cache is empty until the pool's service refills it.
			time.Sleep(time.Millisecond)
			waited += time.Millisecond
			i--
			continue
		}
		if err != nil {
			if !errors.Is(err, nflib.ErrMsgDropped) {
				ts.printf("Message was unable to be sent: %v\n", err)
			}
			continue
		}
		ok++
	}
	return ok
}

// idle runs the tests in turn (ONVM: test_handler, the user_actions
// callback); true stops the NF.
func (ts *tester) idle(*nflib.NF) bool {
	now := ts.now()
	if ts.phase >= 1 && ts.phase <= numTests && now.Sub(ts.start) > timeLimit {
		if ts.status[ts.phase-1] == incomplete {
			ts.status[ts.phase-1] = failed
		}
	}
	switch ts.phase {
	case 0:
		ts.printf("\nTEST MESSAGING STARTED\n" + rule)
		ts.phase, ts.start = 1, now
		ts.printf("TEST 1: Send/Receive One Message with correct data...\n" + rule)
		if ts.sendN(1, magicNumber) != 1 {
			ts.printf("Message was unable to be sent\n")
		}
	case 1:
		if ts.report(0) {
			ts.phase, ts.count, ts.start = 2, 0, now
			ts.printf("TEST 2: Send/Receive Multiple Messages...\n" + rule)
			ts.sendN(batch, 0)
		}
	case 2:
		if ts.report(1) {
			ts.phase, ts.count, ts.start, ts.last = 3, 0, now, -1
			ts.printf("TEST 3: Message Ring Overflow...\n" + rule)
		}
	case 3:
		switch {
		case ts.status[2] != incomplete:
		case ts.sent < ts.overflow:
			n := min(chunk, ts.overflow-ts.sent)
			ts.taken += ts.sendN(n, ts.sent)
			ts.sent += n
			ts.lastMsg = now
		case ts.sent == ts.overflow && now.Sub(ts.lastMsg) >= quiet:
			// The flood has drained: the last message must get through.
			if k := ts.sendN(1, ts.overflow); k == 1 {
				ts.taken++
				ts.sent++
			}
		}
		if ts.report(2) {
			ts.printf("%d of %d messages arrived, %d refused when sent\n", ts.count, ts.sent, ts.sent-ts.taken)
			ts.phase = 4
		}
	case 4:
		ts.printf("Passed %d/%d Tests\n", ts.passed, numTests)
		return true
	}
	return false
}

// report prints test i's result once it has one, and says whether it has.
func (ts *tester) report(i int) bool {
	switch ts.status[i] {
	case passed:
		ts.printf("PASSED TEST %d\n"+rule, i+1)
	case failed:
		ts.printf("FAILED TEST %d\n"+rule, i+1)
	default:
		return false
	}
	return true
}

// msg checks each message against the running test (ONVM: nf_msg_handler).
func (ts *tester) msg(_ *nflib.NF, _ uint16, data []byte) {
	if len(data) != 8 {
		ts.printf("FAILURE: a message of %d bytes, want 8\n"+rule, len(data))
		return
	}
	phase, v := int(int32(binary.LittleEndian.Uint32(data))), int(int32(binary.LittleEndian.Uint32(data[4:])))
	if phase != ts.phase || ts.phase < 1 || ts.phase > numTests || ts.status[ts.phase-1] != incomplete {
		return // a late message of a test that is over
	}
	st := &ts.status[ts.phase-1]
	switch ts.phase {
	case 1:
		if v == magicNumber {
			*st = passed
			ts.passed++
		} else {
			ts.printf("FAILURE: Received %d instead of %d\n"+rule, v, magicNumber)
			*st = failed
		}
	case 2:
		if v != ts.count {
			ts.printf("FAILURE: Received %d instead of %d\n"+rule, v, ts.count)
			*st = failed
			break
		}
		ts.count++
		if ts.count == batch {
			*st = passed
			ts.passed++
		}
	case 3:
		if v <= ts.last || v > ts.overflow {
			ts.printf("FAILURE: Received %d after %d\n"+rule, v, ts.last)
			*st = failed
			break
		}
		ts.last, ts.lastMsg = v, ts.now()
		ts.count++
		if v == ts.overflow {
			*st = passed
			ts.passed++
		}
	}
	ts.printf(rule)
}
