package replicator_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/reinforce-nfv/reinforce/internal/testenv"
	"github.com/reinforce-nfv/reinforce/replicator"
	"github.com/reinforce-nfv/reinforce/replicator/reptest"
)

func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			e := reptest.NewEnv()
			reptest.RunFile(t, f, func(c *reptest.Cmd) string { return e.Do(t, c) })
		})
	}
}

// TestReleaseModel drives a primary and a standby through seeded random
// schedules of proposals, ticks, loss, duplication, reordering, corruption
// and partitions, and checks every release against the model "release only
// what the standby applied, in order": a released latch and every latch
// before it are in the standby's applied state, which is exactly the
// proposals in order. After the network heals, everything proposed must be
// released (no stall).
func TestReleaseModel(t *testing.T) {
	rng := testenv.Rand(t)
	runs := 3000
	if testing.Short() {
		runs = 300
	}
	for run := range runs {
		seed := rng.Uint64()
		if err := modelRun(seed); err != nil {
			t.Fatalf("run %d (inner seed %d): %v", run, seed, err)
		}
	}
}

func modelRun(seed uint64) error {
	rng := newRand(seed)
	e := reptest.NewEnv()
	var digest replicator.Digest
	window := 1 + rng.IntN(4)
	maxTx := 2000 + rng.IntN(8000)
	if err := e.New("p", replicator.Config{Role: replicator.RolePrimary, Digest: digest, Window: window, MaxTxBytes: maxTx, MaxQueueBytes: 64 << 10, RetransmitTicks: 1 + rng.IntN(5)}); err != nil {
		return err
	}
	if err := e.New("s", replicator.Config{Role: replicator.RoleStandby, Digest: digest, Window: window, MaxTxBytes: maxTx, JoinTicks: 1 + rng.IntN(5)}); err != nil {
		return err
	}
	loss, dup, corrupt := rng.Float64()*0.4, rng.Float64()*0.3, rng.Float64()*0.05
	latch := replicator.LatchID(0)
	everApplied := 0 // the longest prefix any standby incarnation applied
	check := func() error {
		// The standby's state: exactly the proposals, in order, a prefix.
		st := e.State["s"]
		if len(st) > len(e.Proposed["p"]) || !slices.Equal(st, e.Proposed["p"][:len(st)]) {
			return fmt.Errorf("standby state %v is not a prefix of the proposals %v", st, e.Proposed["p"])
		}
		everApplied = max(everApplied, len(st))
		if r := e.Released["p"]; r != 0 && !slices.Contains(e.Proposed["p"][:everApplied], r) {
			return fmt.Errorf("released latch %d, standby applied only %v", r, e.Proposed["p"][:everApplied])
		}
		return nil
	}
	steps := 200 + rng.IntN(400)
	partitioned := 0
	for i := 0; i < steps; i++ {
		switch k := rng.IntN(100); {
		case k < 25:
			latch++
			if err := e.Propose("p", latch, rng.IntN(3000)); err != nil {
				latch-- // backpressure: the round waits
			}
		case k < 30:
			e.Nodes[rng.Pick2()].Tick()
		case k == 30:
			// The standby process restarts: a new transport session, so
			// nothing in flight survives, and it joins again.
			if err := e.New("s", replicator.Config{Role: replicator.RoleStandby, Digest: digest, Window: window, MaxTxBytes: maxTx, JoinTicks: 1 + rng.IntN(5)}); err != nil {
				return err
			}
			e.Queue["p"] = nil
		case k < 32 && partitioned == 0:
			partitioned = 1 + rng.IntN(20)
			e.Partition = true
			e.Queue["p"], e.Queue["s"] = nil, nil
		default:
			if partitioned > 0 {
				if partitioned--; partitioned == 0 {
					e.Partition = false
				}
			}
			n := rng.Pick2()
			if rd := e.Nodes[n].Ready(); rd.NeedSnapshot {
				e.Nodes[n].Advance(replicator.Ready{NeedSnapshot: true})
				if err := e.Snapshot(n); err != nil {
					return err
				}
			}
			if _, err := e.HandleReady(n); err != nil {
				return err
			}
			if err := check(); err != nil {
				return err
			}
			to := rng.Pick2()
			q := e.Queue[to]
			if len(q) == 0 {
				continue
			}
			i := rng.IntN(len(q)) // reordering: any queued frame may go first
			f := q[i]
			switch x := rng.Float64(); {
			case x < loss:
				e.Queue[to] = slices.Delete(q, i, i+1)
				continue
			case x < loss+corrupt:
				f[rng.IntN(len(f))] ^= byte(1 + rng.IntN(255))
			case x < loss+corrupt+dup:
				e.Queue[to] = append(e.Queue[to], slices.Clone(f))
			}
			_ = e.Deliver(to, i)
		}
	}
	// Heal and settle: no loss; ticks drive retransmission.
	e.Partition = false
	for i := 0; i < 10000; i++ {
		for _, n := range []string{"p", "s"} {
			if rd := e.Nodes[n].Ready(); rd.NeedSnapshot {
				e.Nodes[n].Advance(replicator.Ready{NeedSnapshot: true})
				if err := e.Snapshot(n); err != nil {
					return err
				}
			}
			if _, err := e.HandleReady(n); err != nil {
				return err
			}
			if err := check(); err != nil {
				return err
			}
		}
		for _, n := range []string{"p", "s"} {
			for len(e.Queue[n]) > 0 {
				_ = e.Deliver(n, 0)
			}
		}
		if e.Released["p"] == latch {
			return nil
		}
		e.Nodes["p"].Tick()
		e.Nodes["s"].Tick()
	}
	return fmt.Errorf("stalled: proposed up to latch %d, released %d, standby %+v", latch, e.Released["p"], e.Nodes["s"].Counters())
}

func FuzzDecodeFrame(f *testing.F) {
	for _, fr := range []replicator.Frame{
		{Type: replicator.FrameData, Epoch: 1, TxID: 7, Chunk: 0, Chunks: 2, TxLen: 1300, TxCRC: 5, Payload: make([]byte, 1280)},
		{Type: replicator.FrameData, Flags: replicator.FlagSnapshot, Epoch: 2, TxID: 9, Chunk: 0, Chunks: 1, TxLen: 3, Payload: []byte("abc")},
		{Type: replicator.FrameAck, Epoch: 3, TxID: 4},
		{Type: replicator.FrameJoin, Epoch: 3, TxID: 100, Digest: replicator.Digest{1, 2, 3}},
		{Type: replicator.FrameJoinAccept, Epoch: 3, TxID: 5, JoinID: 101},
		{Type: replicator.FrameJoinReject, Epoch: 3, Reason: replicator.RejectLayout},
	} {
		f.Add(replicator.AppendFrame(nil, &fr))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var fr replicator.Frame
		if err := replicator.DecodeFrame(b, &fr); err != nil {
			return
		}
		// A frame that decodes encodes back to the same bytes.
		if got := replicator.AppendFrame(nil, &fr); !slices.Equal(got, b) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", got, b)
		}
		// And a standby survives it.
		r, err := replicator.New(replicator.Config{Role: replicator.RoleStandby, Epoch: 1})
		if err != nil {
			t.Fatal(err)
		}
		_ = r.Step(replicator.Msg{Type: replicator.MsgFrame, Payload: b})
		r.Ready()
	})
}
