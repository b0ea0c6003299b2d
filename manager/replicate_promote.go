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
// The chain's services then route flows by the primary's bucket tables, as
// replicated, so a flow reaches the instance whose file holds its state.

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
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
// standby: snapshot + catch-up), the held NFs are entered into the
// registry and routes, the primary's bucket tables are installed over the
// registry's (installReplicatedBuckets), and the NFs are told to run. It
// returns the instances that had no NF attached (they start from their
// file when one registers).
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
	m.installReplicatedBuckets(c)
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

// installReplicatedBuckets makes the promoted chain's services route flows
// as the old primary did: each service's bucket table, as replicated, goes
// into the registry for the buckets whose instance runs here. A flow's
// state is in its instance's file; joinBuckets' own order (the held NFs
// enter in configuration order, an instance already running here came
// first) would send some flows to the other instance, which lacks it. A
// bucket naming an instance that does not run here keeps the registry's
// own choice: counted (BucketFallbacks) and logged. Later joins and
// leaves change the tables as always. m.mu held (before publishLocked,
// whose noteBuckets then replicates the tables to the next standby).
func (m *Manager) installReplicatedBuckets(c *repChain) {
	c.rt.mu.Lock()
	rt := c.rtInit()
	tables := maps.Clone(rt.buckets)
	// Seen afresh: a manager that was this chain's primary before its
	// demotion still has the tables of then; noteBuckets must compare the
	// registry with nothing, and send every table once more.
	clear(rt.seen)
	rt.svcDirty = rt.svcDirty[:0]
	c.rt.mu.Unlock()
	for _, s := range m.cfg.Chains[c.index].Services {
		svc := ServiceID(s)
		tbl, ok := tables[svc]
		if !ok {
			continue // never replicated: the primary had no table yet
		}
		installed, absent := m.reg.installBuckets(svc, &tbl)
		if len(absent) == 0 {
			m.log.Info().Str("chain", c.cfg.Chain).Uint16("service", uint16(svc)).Int("buckets", installed).
				Msg("promotion: the primary's bucket table installed")
			continue
		}
		n := 0
		for _, x := range tbl {
			if slices.Contains(absent, x) {
				n++
			}
		}
		c.rt.st.bucketFallbacks.Add(uint64(n))
		ids := make([]uint16, len(absent))
		for i, x := range absent {
			ids[i] = uint16(x)
		}
		m.log.Warn().Str("chain", c.cfg.Chain).Uint16("service", uint16(svc)).Int("installed", installed).
			Int("fallback_buckets", n).Uints16("instances_not_here", ids).
			Msg("promotion: the primary's bucket table names instances not running here; their buckets go where this registry chooses, away from the instance with their flows' state")
	}
}

// installBuckets sets the service's table to tbl where tbl names one of the
// service's running instances; other buckets keep the registry's choice,
// so every bucket still names a running instance and joinBuckets and
// leaveBuckets work on as before. It returns the buckets set and the
// instances tbl names that are not running here (0, the primary having no
// instance, is not one). It lives here rather than in registry.go because
// only promotion overrides the registry's own balancing.
func (r *Registry) installBuckets(svc ServiceID, tbl *[NumBuckets]InstanceID) (installed int, absent []InstanceID) {
	if svc == 0 || int(svc) >= ctlmsg.MaxServices {
		return 0, nil
	}
	var here [ctlmsg.MaxNFs]bool
	for _, x := range r.services[svc] {
		here[x] = true
	}
	b := &r.buckets[svc]
	for i, x := range tbl {
		switch {
		case x == 0:
		case int(x) < len(here) && here[x]:
			b[i] = x
			installed++
		case !slices.Contains(absent, x):
			absent = append(absent, x)
		}
	}
	return installed, absent
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

	// The NFs stop, one after another in the chain's order, each gone
	// before the next is told: an NF sends into its downstream neighbour's
	// ring directly, so stopping them together left packets sent after the
	// neighbour's rings were emptied, in a ring that outlives both ends,
	// for the held NF to process when promoted much later (ctl.go,
	// startNF, drains what still gets through). Launched ones are started
	// again and register held.
	for _, in := range c.insts {
		m.mu.Lock()
		nf := m.nfs[InstanceID(in.id)]
		if nf == nil || nf.dead || nf.held {
			m.mu.Unlock()
			continue
		}
		nf.send(ctlmsg.Stop{Reason: "chain demoted: this server is its standby now"})
		m.mu.Unlock()
		select {
		case <-nf.gone:
		case <-time.After(2 * time.Second):
			// Killed, so that it is gone before its downstream neighbour
			// is told (and the demotion cannot hang on it).
			m.log.Warn().Str("chain", name).Str("nf", nf.name()).Msg("demotion: the NF did not stop within 2 s: killed")
			nf.kill()
			select {
			case <-nf.gone:
			case <-time.After(2 * time.Second):
			}
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
