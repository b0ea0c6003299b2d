package manager

// The standby side of a replicated chain: the Node's Apply callback writes
// each transaction into the chain's NF state files (docs/replicator.md,
// "Standby"). The Node acknowledges a transaction only after Apply returns
// nil, so the primary releases output only for state that is here.

import (
	"fmt"
	"os"

	"github.com/reinforce-nfv/reinforce/manager/config"
	"github.com/reinforce-nfv/reinforce/replicator"
	"github.com/reinforce-nfv/reinforce/shm/state"
)

// apply runs on the Node's goroutine.
func (c *repChain) apply(a replicator.Apply) error {
	if a.Snapshot {
		if err := c.installSnapshot(a.Payload); err != nil {
			return err
		}
		c.st.snapshots.Add(1)
		c.st.applied.Add(1)
		return nil
	}
	// One state-file transaction per instance, in payload order. Records
	// of one instance are applied together; across files there is no
	// crash atomicity (a standby that restarts joins again with a snapshot).
	// The manager's run-time state first, as in the payload.
	if err := c.applyRuntime(a.Payload); err != nil {
		return fmt.Errorf("transaction %d: %w", a.TxID, err)
	}
	for _, in := range c.insts {
		c.writes = c.writes[:0]
		err := decodePayload(a.Payload, func(r *payloadRec) error {
			if isRuntimeRec(r.typ) {
				return nil
			}
			if r.typ != prWrite {
				return fmt.Errorf("file record outside a snapshot: %w", errPayload)
			}
			if c.instByID(r.inst) == nil {
				return fmt.Errorf("write for instance %d, not in chain %q: %w", r.inst, c.cfg.Chain, errPayload)
			}
			if r.inst == in.id {
				c.writes = append(c.writes, state.Write{Off: r.off, Data: r.data})
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("transaction %d: %w", a.TxID, err)
		}
		if len(c.writes) == 0 {
			continue
		}
		if in.file == nil {
			return fmt.Errorf("transaction %d: instance %d has no state file (no snapshot installed)", a.TxID, in.id)
		}
		if err := in.file.Apply(c.writes); err != nil {
			return fmt.Errorf("transaction %d, instance %d: %w", a.TxID, in.id, err)
		}
	}
	c.st.applied.Add(1)
	return nil
}

// installSnapshot discards the chain's state files and builds new ones
// from p: each is written beside its final path and renamed over it when
// complete, so a crash leaves either the old file or the whole new one.
func (c *repChain) installSnapshot(p []byte) error {
	if err := c.installSnapshotWith(p, c.r.m.region.Epoch()); err != nil {
		return err
	}
	return c.installRuntime(p)
}

// installSnapshotWith is installSnapshot for the region with identity
// regionID (the files record it).
func (c *repChain) installSnapshotWith(p []byte, regionID uint64) error {
	type building struct {
		in     *repInst
		f      *state.File
		tmp    string
		digest uint64
		writes []state.Write
		bytes  int
	}
	var cur *building
	var done []*building
	flush := func() error {
		if cur == nil || len(cur.writes) == 0 {
			return nil
		}
		err := cur.f.Apply(cur.writes)
		cur.writes, cur.bytes = cur.writes[:0], 0
		return err
	}
	fail := func(err error) error {
		for _, b := range append(done, cur) {
			if b != nil && b.f != nil {
				b.f.Remove()
			}
		}
		return fmt.Errorf("install snapshot of chain %q: %w", c.cfg.Chain, err)
	}
	err := decodePayload(p, func(r *payloadRec) error {
		if isRuntimeRec(r.typ) {
			return nil // installRuntime's
		}
		in := c.instByID(r.inst)
		if in == nil {
			return fmt.Errorf("instance %d is not in the chain: %w", r.inst, errPayload)
		}
		switch r.typ {
		case prFile:
			if err := flush(); err != nil {
				return err
			}
			if cur != nil {
				done = append(done, cur)
			}
			if r.dataBytes == 0 || r.dataBytes > 1<<40 || r.logBytes > 1<<40 {
				return fmt.Errorf("instance %d: file sizes %d/%d: %w", r.inst, r.dataBytes, r.logBytes, errPayload)
			}
			cur = &building{in: in, tmp: in.path + ".snap", digest: r.digest}
			os.Remove(cur.tmp)
			f, err := state.Open(cur.tmp, state.Options{DataBytes: r.dataBytes, LogBytes: max(repStandbyLog, 4*min(r.logBytes, config.MaxStateLogBytes)),
				RegionID: regionID, Seed: r.seed})
			if err != nil {
				return err
			}
			cur.f = f
		case prWrite:
			if cur == nil || cur.in != in {
				return fmt.Errorf("write for instance %d before its file record: %w", r.inst, errPayload)
			}
			// Chunks: one Apply must fit the new file's log; the file is
			// not visible under its name until it is complete.
			if cur.bytes+len(r.data) > repSnapChunk {
				if err := flush(); err != nil {
					return err
				}
			}
			cur.writes = append(cur.writes, state.Write{Off: r.off, Data: r.data})
			cur.bytes += len(r.data)
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return fail(err)
	}
	if cur != nil {
		done = append(done, cur)
	}
	for _, b := range done {
		if got := b.f.LayoutDigest(); got != b.digest {
			// The NF allocated a container between the primary's last round
			// and its snapshot; the next transaction brings the directory
			// entry. Counted, not fatal.
			c.st.digestMismatch.Add(1)
			c.r.m.log.Warn().Str("chain", c.cfg.Chain).Uint16("instance", b.in.id).
				Uint64("got", got).Uint64("want", b.digest).Msg("replication: state layout digest differs after snapshot")
		}
		if err := b.f.Close(); err != nil {
			return fail(err)
		}
		b.f = nil
		if b.in.file != nil {
			b.in.file.Close()
			b.in.file = nil
		}
		if err := os.Rename(b.tmp, b.in.path); err != nil {
			return fail(err)
		}
		f, err := state.Open(b.in.path, state.Options{RegionID: regionID})
		if err != nil {
			return fail(err)
		}
		b.in.file = f
	}
	return nil
}
