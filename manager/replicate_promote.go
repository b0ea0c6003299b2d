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

	"github.com/reinforce-nfv/reinforce/ctlmsg"
	"github.com/reinforce-nfv/reinforce/manager/config"
	"github.com/reinforce-nfv/reinforce/manager/onvmstats"
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
		if c.cfg.Role == config.RepStandby && !c.promoted.Load() && c.instByID(uint16(id)) != nil {
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
// transactions its standby side has applied: applying stops (an apply in
// progress finishes), the state files are released, and the held NFs are
// entered into the registry and routes and told to run. The chain's output
// then leaves directly (it is not replicated further until re-protection,
// which comes with the arbiter). It returns the instances that had no NF
// attached (they start from the file when one registers).
func (m *Manager) PromoteChain(name string) (missing []uint16, err error) {
	r := m.rep
	var c *repChain
	if r != nil {
		for _, rc := range r.chains {
			if rc.cfg.Chain == name && rc.cfg.Role == config.RepStandby {
				c = rc
			}
		}
	}
	if c == nil || !c.promoted.CompareAndSwap(false, true) {
		return nil, fmt.Errorf("promote chain %q: %w", name, ErrNotStandby)
	}
	snapshots := c.st.snapshots.Load()
	if c.node != nil {
		if err := c.node.Stop(); err != nil {
			m.log.Warn().Err(err).Str("chain", name).Msg("promotion: the replication node had stopped on an error")
		}
	}
	for _, in := range c.insts {
		if in.file != nil {
			in.file.Close()
			in.file = nil
		}
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
	m.log.Warn().Str("chain", name).Int("nfs", len(run)).Uints16("without_nf", missing).Uint64("snapshots_applied", snapshots).
		Uint64("transactions_applied", c.st.applied.Load()).Msg("PROMOTED: this manager is now the chain's primary, from its applied transactions")
	m.RecordEvent(onvmstats.Event{Message: "Chain promoted", Source: []onvmstats.Field{
		onvmstats.StrField("type", "REPLICATION"), onvmstats.StrField("chain", name)}})
	return missing, nil
}
