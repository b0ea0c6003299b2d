package main

import (
	"bytes"
	"encoding/binary"
	"strings"
	"syscall"
	"testing"
	"time"

	"os"

	"github.com/reinforce-nfv/reinforce/examples/internal/chaintest"
	"github.com/reinforce-nfv/reinforce/examples/internal/nfapp"
	mgrconfig "github.com/reinforce-nfv/reinforce/manager/config"
	"github.com/reinforce-nfv/reinforce/nflib"
)

// TestMain turns a child started by chaintest into the NF.
func TestMain(m *testing.M) {
	if argv, ok := chaintest.ChildArgv(); ok {
		os.Exit(run("test_messaging", argv, nfapp.Std()))
	}
	os.Exit(m.Run())
}

// The NF's own three tests pass against a real manager, and it stops by
// itself with status 0; afterwards every slot is back in the manager's
// pool (ONVM's "no mempool leak"), the overflowed messages included.
func TestItsOwnTestsPass(t *testing.T) {
	lab := chaintest.NewLab(t, mgrconfig.DeadNFReclaim, []int{1})
	free := lab.M.Snapshot().Pool.Free
	nf := lab.Start(t, nil, "--", "-r", "1")
	chaintest.WaitFor(t, 19*time.Second, "the NF to finish and exit", func() bool {
		return syscall.Kill(nf.Cmd.Process.Pid, 0) == syscall.ESRCH // exited and reaped
	})
	if err := nf.Stop(t, 10*time.Second); err != nil { // returns its exit status
		t.Fatalf("exit: %v\n%s", err, nf.Output())
	}
	out := nf.Output()
	for _, want := range []string{
		"\nTEST MESSAGING STARTED\n---------------------------\nTEST 1: Send/Receive One Message with correct data...\n",
		"PASSED TEST 1\n---------------------------\nTEST 2: Send/Receive Multiple Messages...\n",
		"PASSED TEST 2\n---------------------------\nTEST 3: Message Ring Overflow...\n",
		"PASSED TEST 3\n---------------------------\n", "Passed 3/3 Tests\n",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "FAIL") {
		t.Fatalf("a failure in:\n%s", out)
	}
	chaintest.WaitFor(t, 5*time.Second, "every slot back in the pool", func() bool {
		return len(lab.M.Snapshot().NFs) == 0 && lab.M.Snapshot().Pool.Free == free
	})
	// The overflow happened: the manager dropped messages at the NF's ring.
	if d := lab.M.Snapshot().Drops; d.TXRingFull == 0 {
		t.Fatalf("no message was dropped: the test did not overflow anything\n%s", out)
	} else {
		t.Logf("manager: %d messages dropped at the NF's full ring", d.TXRingFull)
	}
}

// loop is a fake message path: sends are delivered on the next deliver
// call, after fault has had its say; the ring holds cap messages.
type loop struct {
	ts      *tester
	q       [][]byte
	cap     int
	corrupt int // value added to every message's value
}

func (l *loop) send(_ uint16, data []byte) error {
	if len(l.q) >= l.cap {
		return nflib.ErrMsgDropped
	}
	b := bytes.Clone(data)
	binary.LittleEndian.PutUint32(b[4:], binary.LittleEndian.Uint32(b[4:])+uint32(l.corrupt))
	l.q = append(l.q, b)
	return nil
}

func (l *loop) deliver() {
	q := l.q
	l.q = nil
	for _, m := range q {
		l.ts.msg(nil, 0, m)
	}
}

// runFake runs the tester on l until it stops and returns its output.
func runFake(t *testing.T, l *loop, clock *time.Time) string {
	var out bytes.Buffer
	ts := &tester{out: &out, address: 1, now: func() time.Time { return *clock }, send: l.send, overflow: l.cap + 2}
	l.ts = ts
	for i := 0; i < 1000; i++ {
		if ts.idle(nil) {
			return out.String()
		}
		l.deliver()
		*clock = clock.Add(time.Millisecond)
	}
	t.Fatalf("tester did not finish:\n%s", out.String())
	return ""
}

func TestTesterDetectsFaults(t *testing.T) {
	clock := time.Unix(1000, 0)
	if out := runFake(t, &loop{cap: 16}, &clock); !strings.Contains(out, "Passed 3/3 Tests\n") {
		t.Fatalf("a correct path fails:\n%s", out)
	}
	out := runFake(t, &loop{cap: 16, corrupt: 1}, &clock)
	for _, want := range []string{"FAILURE: Received 12 instead of 11\n", "FAILED TEST 1\n", "FAILURE: Received 1 instead of 0\n",
		"FAILED TEST 2\n", "FAILURE: Received 19 after 16\n", "FAILED TEST 3\n", "Passed 0/3 Tests\n"} {
		if !strings.Contains(out, want) {
			t.Fatalf("corrupted messages: output lacks %q:\n%s", want, out)
		}
	}
	// Nothing arrives: each test fails after 5 s.
	l := &loop{cap: 0}
	var buf bytes.Buffer
	ts := &tester{out: &buf, address: 1, now: func() time.Time { return clock }, send: l.send, overflow: 2}
	for i := 0; i < 100 && !ts.idle(nil); i++ {
		clock = clock.Add(2 * time.Second)
	}
	if !strings.Contains(buf.String(), "FAILED TEST 1\n") || !strings.Contains(buf.String(), "Passed 0/3 Tests\n") {
		t.Fatalf("timeouts not reported:\n%s", buf.String())
	}
}
