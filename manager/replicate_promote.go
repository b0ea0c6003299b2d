package manager

// Standby NFs of a remote standby chain, and promotion (docs/replicator.md,
// "Standby NFs"). On the standby server the manager owns the chain's state
// files: it applies the primary's transactions into them. The chain's NFs
// still run here, registered with their instance IDs like anywhere else,
// but held: the registration reply says Hold, they do not open their state
// files, have no place in the registry's service lists or the routes, and
// sleep. Promotion (PromoteChain: an operator's "promote" command now, the
// arbiter's decision in the failover issue) stops applying, closes the
// manager's handles, enters the NFs in the registry and the routes, and
// tells each to open its file and run: from the applied transactions only.

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/reinforce-nfv/reinforce/ctlmsg"
	"github.com/reinforce-nfv/reinforce/manager/onvmstats"
	"github.com/reinforce-nfv/reinforce/shm"
	"github.com/reinforce-nfv/reinforce/shm/state"
)

// ErrNotStandby reports a promotion of a chain this manager is not the
// standby of (or already promoted).
var ErrNotStandby = errors.New("not a replicated standby chain here")

// holds reports whether instance id belongs to a chain this manager is the
// (not yet promoted) standby of: its NF must wait, and its state file is
// the manager's.
func (r *replication) holds(id InstanceID) bool {
	if r == nil {
		return false
	}
	for _, c := range r.chains {
		if !c.primary.Load() && c.instByID(uint16(id)) != nil {
			return true
		}
	}
	return false
}

// ownsFile reports whether the manager, not the NF, decides when instance
// id's state file goes: a replicated instance's file is read (primary) or
// written (standby) by the replicator, and outlives its NFs.
func (r *replication) ownsFile(id InstanceID) bool {
	if r == nil {
		return false
	}
	for _, c := range r.chains {
		if c.instByID(uint16(id)) != nil {
			return true
		}
	}
	return false
}

// PromoteChain makes this manager the chain's primary, from the
// transactions its standby side has applied, in the next epoch. See
// PromoteChainEpoch.
func (m *Manager) PromoteChain(name string) (missing []uint16, err error) {
	return m.PromoteChainEpoch(name, 0)
}

// ErrStaleEpoch refuses a promotion whose epoch is not above the chain's.
var ErrStaleEpoch = errors.New("promotion epoch not above the chain's")

// PromoteChainEpoch promotes the chain with epoch (0: one above the
// current): applying stops (an apply in progress finishes), the manager
// takes the state files as a primary does (log readers attached before any
// NF opens them, its snapshot copy seeded from their contents), the chain's
// output is latched from now on, a replicator Node in the primary role and
// the new epoch serves the peer (the old primary rejoins through it as the
// standby: snapshot + catch-up), and the held NFs are entered into the
// registry and routes and told to run. It returns the instances that had
// no NF attached (they start from their file when one registers).
func (m *Manager) PromoteChainEpoch(name string, epoch uint64) (missing []uint16, err error) {
	r := m.rep
	var c *repChain
	if r != nil {
		for _, rc := range r.chains {
			if rc.cfg.Chain == name && !rc.primary.Load() {
				c = rc
			}
		}
	}
	if c == nil {
		return nil, fmt.Errorf("promote chain %q: %w", name, ErrNotStandby)
	}
	cur := c.epoch.Load()
	if c.nd() != nil {
		cur = max(cur, uint64(c.nd().Stats().Epoch)) // a standby adopts its primary's epoch
	}
	if epoch == 0 {
		epoch = cur + 1
	}
	if epoch <= cur {
		return nil, fmt.Errorf("promote chain %q to epoch %d, at %d: %w", name, epoch, cur, ErrStaleEpoch)
	}
	c.promote.Lock()
	defer c.promote.Unlock()
	if c.closed {
		return nil, fmt.Errorf("promote chain %q: the manager is closing", name)
	}
	if !c.promoted.CompareAndSwap(false, true) {
		return nil, fmt.Errorf("promote chain %q: %w", name, ErrNotStandby)
	}
	snapshots, applied := c.st.snapshots.Load(), c.st.applied.Load()
	if c.nd() != nil {
		if err := c.nd().Stop(); err != nil {
			m.log.Warn().Err(err).Str("chain", name).Msg("promotion: the replication node had stopped on an error")
		}
	}
	rp := &m.cfg.Replication
	for _, in := range c.insts {
		if in.file != nil {
			in.file.Close()
			in.file = nil
		}
		o := state.Options{DataBytes: uint64(rp.StateBytes), LogBytes: uint64(rp.StateLogBytes), RegionID: m.region.Epoch()}
		// A process this manager is forking (an NF it launches) holds a
		// copy of our descriptor, and with it the lock, until it execs.
		err := in.attach(o)
		for end := time.Now().Add(time.Second); errors.Is(err, state.ErrBusy) && time.Now().Before(end); err = in.attach(o) {
			time.Sleep(time.Millisecond)
		}
		if err != nil {
			// The files stay as applied; nothing runs from them.
			return nil, fmt.Errorf("promote chain %q: instance %d: %w", name, in.id, err)
		}
		c.smu.Lock()
		in.file.Image(func(off uint64, b []byte) { in.shadow.write(off, b) })
		c.smu.Unlock()
	}
	c.rt.mu.Lock()
	c.rt.rules = append(c.rt.rules[:0], c.rt.vrules...)
	c.rt.mu.Unlock()
	c.epoch.Store(epoch)
	c.primary.Store(true)
	r.byChain[c.index].Store(c) // output latched from here on
	if err := c.startNode(true); err != nil {
		m.log.Error().Err(err).Str("chain", name).Msg("promotion: no replication node: the chain's output stays held")
	}
	var run []*nfProc
	m.mu.Lock()
	for _, in := range c.insts {
		nf := m.nfs[InstanceID(in.id)]
		if nf == nil || !nf.held || nf.dead {
			missing = append(missing, in.id)
			continue
		}
		nf.held = false
		if !nf.heldIdle {
			continue // still registering: serveNF enters it and sends Promote after Ready
		}
		m.reg.Ready(nf.id)
		nf.running = true
		m.connectDirect(nf)
		run = append(run, nf)
	}
	m.publishLocked()
	m.mu.Unlock()
	for _, nf := range run {
		nf.send(ctlmsg.Promote{})
	}
	m.Stats.Promotions.Add(1)
	m.log.Warn().Str("chain", name).Uint64("epoch", epoch).Int("nfs", len(run)).Uints16("without_nf", missing).
		Uint64("snapshots_applied", snapshots).Uint64("transactions_applied", applied).
		Msg("PROMOTED: this manager is now the chain's primary, from its applied transactions")
	m.RecordEvent(onvmstats.Event{Message: "Chain promoted", Source: []onvmstats.Field{
		onvmstats.StrField("type", "REPLICATION"), onvmstats.StrField("chain", name),
		onvmstats.NumField("epoch", int64(epoch))}})
	m.announceVIP(name) // without an ingress, the clients follow the virtual addresses (vip.go)
	return missing, nil
}

// discardLatched frees what a demoted chain's latch holds (TX loop only,
// like every latch read).
func (c *repChain) discardLatched(cache *shm.Cache) int {
	rd, w := c.rd.Load(), c.w.Load()
	n := 0
	var batch [shm.MaxBurst]shm.Slot
	for rd < w {
		k := 0
		for rd+uint64(k) < w && k < len(batch) {
			batch[k] = c.lslots[(rd+uint64(k))&c.mask]
			k++
		}
		for j := 0; j < k && !c.r.m.stopping.Load(); {
			j += cache.Free(batch[j:k])
		}
		rd += uint64(k)
		n += k
	}
	c.rd.Store(rd)
	c.st.discarded.Add(uint64(n))
	return n
}

// DemoteChain makes this manager the chain's standby in epoch (above the
// current): a primary that another manager replaced (the arbiter decided,
// or an operator). Output latched and not yet released is discarded: it
// was never acknowledged, and the epoch that leads now may not have its
// state (guarantee 5: one releaser). The chain's NFs are stopped (launched
// ones come back held), its state files discarded, and a standby Node
// joins the new primary: snapshot and catch-up.
func (m *Manager) DemoteChain(name string, epoch uint64) error {
	r := m.rep
	var c *repChain
	if r != nil {
		for _, rc := range r.chains {
			if rc.cfg.Chain == name && rc.primary.Load() {
				c = rc
			}
		}
	}
	if c == nil {
		return fmt.Errorf("demote chain %q: %w", name, ErrNotPrimary)
	}
	c.promote.Lock()
	defer c.promote.Unlock()
	if c.closed {
		return fmt.Errorf("demote chain %q: the manager is closing", name)
	}
	cur := c.epoch.Load()
	if n := c.nd(); n != nil {
		cur = max(cur, uint64(n.Stats().Epoch))
	}
	if epoch <= cur {
		return fmt.Errorf("demote chain %q to epoch %d, at %d: %w", name, epoch, cur, ErrStaleEpoch)
	}
	c.discard.Store(true) // first: from here nothing latched leaves
	m.txBell.Ring()
	if n := c.nd(); n != nil {
		if err := n.Stop(); err != nil {
			m.log.Warn().Err(err).Str("chain", name).Msg("demotion: the replication node had stopped on an error")
		}
	}
	if c.roundStop != nil {
		close(c.roundStop)
		<-c.roundDone
		c.roundStop = nil
	}
	c.primary.Store(false)
	c.promoted.Store(false)
	c.epoch.Store(epoch)

	// The NFs stop; launched ones are started again and register held.
	var gone []chan struct{}
	m.mu.Lock()
	for _, in := range c.insts {
		if nf := m.nfs[InstanceID(in.id)]; nf != nil && !nf.dead && !nf.held {
			gone = append(gone, nf.gone)
			nf.send(ctlmsg.Stop{Reason: "chain demoted: this server is its standby now"})
		}
	}
	m.mu.Unlock()
	deadline := time.After(2 * time.Second)
	for _, g := range gone {
		select {
		case <-g:
		case <-deadline:
			m.log.Warn().Str("chain", name).Msg("demotion: an NF did not stop within 2 s")
		}
	}
	for _, in := range c.insts {
		if in.reader != nil {
			in.reader.Close()
			in.reader = nil
		}
		if in.file != nil {
			in.file.Close()
			in.file = nil
		}
		os.Remove(in.path) // discarded: the snapshot brings the new primary's state
		c.smu.Lock()
		in.shadow = shadow{}
		c.smu.Unlock()
	}
	// The TX loop frees what is latched; then the latch starts afresh.
	for end := time.Now().Add(time.Second); c.rd.Load() != c.w.Load() && time.Now().Before(end); {
		m.txBell.Ring()
		time.Sleep(100 * time.Microsecond)
	}
	c.release.Store(c.w.Load())
	c.pmu.Lock()
	c.pairs = c.pairs[:0]
	c.pmu.Unlock()
	c.sealedW, c.pending, c.nextLatch = c.w.Load(), false, 0
	r.byChain[c.index].Store(nil)
	c.discard.Store(false)
	if err := c.startNode(false); err != nil {
		return fmt.Errorf("demote chain %q: %w", name, err)
	}
	m.Stats.Demotions.Add(1)
	m.log.Warn().Str("chain", name).Uint64("epoch", epoch).Uint64("discarded", c.st.discarded.Load()).
		Msg("DEMOTED: this manager is the chain's standby now; unacknowledged output discarded")
	m.RecordEvent(onvmstats.Event{Message: "Chain demoted", Source: []onvmstats.Field{
		onvmstats.StrField("type", "REPLICATION"), onvmstats.StrField("chain", name),
		onvmstats.NumField("epoch", int64(epoch))}})
	return nil
}

// ErrNotPrimary reports a demotion of a chain this manager is not the
// primary of.
var ErrNotPrimary = errors.New("not the chain's primary here")
