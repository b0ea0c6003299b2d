package manager

// The manager's side of chain-level failover between servers
// (RESILIENCY.md, "Failure detection, arbitration and failover between
// servers"; docs/arbiter.md, docs/replicator.md "Failover between servers").
//
//   - A member manager ([arbiter] address) runs an arbiter.Client: the
//     arbiter's Promote, Demote and Yield become PromoteChainEpoch,
//     DemoteChain and a drain, applied in order by one goroutine; each
//     replicated chain's latch releases only while the Client's gate for
//     it is open (this member leads the chain at the current epoch and
//     holds an unexpired lease): at most one releaser (guarantee 5).
//   - The ingress manager ([arbiter] serve) runs an arbiter.Server and
//     moves a chain's traffic (SetChainOutPort) on its Redirect.

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/reinforce-nfv/reinforce/manager/onvmstats"
	"github.com/reinforce-nfv/reinforce/replicator"
	"github.com/reinforce-nfv/reinforce/replicator/arbiter"
	"github.com/reinforce-nfv/reinforce/replicator/bfd"
)

// arbiterLink is the manager's arbiter client or server (or both).
type arbiterLink struct {
	client *arbiter.Client
	server *arbiter.Server
	names  map[arbiter.ChainID]string
	member string                      // this manager's member name (client)
	peers  map[arbiter.MemberID]string // the members' names (server)
	served map[arbiter.ChainID]string  // the chains the server decides for
	acts   chan arbiterAction
	done   chan struct{} // closed when routineArbiterActions ends
	acting bool          // routineArbiterActions was started

	mu         sync.Mutex
	redirected map[string]chan struct{} // Switchover waits for its chain's redirect; guarded by mu
}

type arbiterAction struct {
	kind  arbiter.ActionKind
	chain string
	epoch uint64
}

// startArbiter starts the client (before replication starts: the gates
// must be in place before anything is latched) and the server.
func (m *Manager) startArbiter() error {
	a := &m.cfg.Arbiter
	if !a.IsMember() && !a.IsServer() {
		return nil
	}
	// The maps are filled before the driver that reads them starts, and
	// never written after.
	l := &arbiterLink{names: map[arbiter.ChainID]string{}, peers: map[arbiter.MemberID]string{}, served: map[arbiter.ChainID]string{},
		acts: make(chan arbiterAction, 64), done: make(chan struct{})}
	if a.IsMember() {
		l.member = a.Member
		if m.rep == nil {
			return fmt.Errorf("arbiter: member %q replicates no chain ([replication] chains)", a.Member)
		}
		for _, c := range m.rep.chains {
			l.names[arbiter.ChainID(arbiter.NameID(c.cfg.Chain))] = c.cfg.Chain
		}
		act := func(kind arbiter.ActionKind, ch arbiter.ChainID, e arbiter.Epoch) {
			select {
			case l.acts <- arbiterAction{kind: kind, chain: l.names[ch], epoch: uint64(e)}:
			default:
				m.log.Error().Str("chain", l.names[ch]).Stringer("action", kind).Msg("arbiter: action queue full, action dropped (the arbiter repeats it)")
			}
		}
		cc := m.cfg.ArbiterClientConfig()
		cc.Seed = uint64(time.Now().UnixNano())
		cc.OnPromote = func(ch arbiter.ChainID, e arbiter.Epoch) { act(arbiter.ActPromote, ch, e) }
		cc.OnDemote = func(ch arbiter.ChainID, e arbiter.Epoch, _ arbiter.MemberID) { act(arbiter.ActDemote, ch, e) }
		cc.OnYield = func(ch arbiter.ChainID) { act(arbiter.ActYield, ch, 0) }
		cc.OnFence = func(ch arbiter.ChainID, e arbiter.Epoch) {
			m.log.Warn().Str("chain", l.names[ch]).Uint64("epoch", uint64(e)).Msg("arbiter: FENCED: this manager releases nothing more for the chain")
		}
		cc.OnBFD = func(c bfd.Change) {
			m.log.Info().Stringer("from", c.From).Stringer("to", c.To).Msg("arbiter: BFD session with the arbiter")
		}
		cc.OnPause = m.logArbiterPause
		cl, err := arbiter.StartClient(cc)
		if err != nil {
			return fmt.Errorf("arbiter client: %w", err)
		}
		m.logArbiterScheduling("client", cc.RTPriority, cl.Scheduling())
		l.client = cl
		for _, c := range m.rep.chains {
			g := cl.Gate(arbiter.ChainID(arbiter.NameID(c.cfg.Chain)))
			c.gate = g.Allowed
			id := arbiter.ChainID(arbiter.NameID(c.cfg.Chain))
			c.observe = func(e uint64) { cl.ObserveEpoch(id, arbiter.Epoch(e)) }
			c.standbyReady = func(e uint64, ready bool) { cl.SetStandbyReady(id, arbiter.Epoch(e), ready) }
		}
		// Actions wait in l.acts until Start has started replication
		// (startArbiterActions): a demotion needs the chain's Node.
	}
	if a.IsServer() {
		srv, err := m.startArbiterServer(l)
		if err != nil {
			if l.client != nil {
				l.client.Close()
			}
			return err
		}
		l.server = srv
	}
	m.arb = l
	return nil
}

// startArbiterServer serves as the arbiter of the configured chains.
func (m *Manager) startArbiterServer(l *arbiterLink) (*arbiter.Server, error) {
	sc := m.cfg.ArbiterServerConfig()
	sc.Seed = uint64(time.Now().UnixNano())
	names := map[arbiter.MemberID]string{}
	for _, sm := range sc.Members {
		names[sm.ID] = sm.Name
		l.peers[sm.ID] = sm.Name
	}
	chains := map[arbiter.ChainID]string{}
	for _, cc := range sc.Chains {
		chains[cc.ID] = cc.Name
		l.served[cc.ID] = cc.Name
	}
	sc.OnRedirect = func(r arbiter.Redirect) {
		chain, member := chains[r.Chain], names[r.To]
		port, ok := m.cfg.ArbiterPort(chain, member)
		if !ok {
			m.log.Error().Str("chain", chain).Str("to", member).Msg("arbiter: no ingress port for the new primary")
			return
		}
		// SetChainOutPort takes the manager's lock; the arbiter's run
		// goroutine must not wait for it.
		go func() {
			if err := m.SetChainOutPort(chain, port); err != nil {
				m.log.Error().Err(err).Msg("arbiter: redirect")
				return
			}
			m.Stats.Redirects.Add(1)
			// l, not m.arb: the first redirect may come before m.arb is set.
			l.mu.Lock()
			if ch := l.redirected[chain]; ch != nil {
				close(ch)
				delete(l.redirected, chain)
			}
			l.mu.Unlock()
			m.log.Warn().Str("chain", chain).Str("to", member).Uint64("epoch", uint64(r.Epoch)).Int("port", port).
				Msg("ARBITER: traffic redirected to the chain's new primary")
			m.RecordEvent(onvmstats.Event{Message: "Chain redirected", Source: []onvmstats.Field{
				onvmstats.StrField("type", "ARBITER"), onvmstats.StrField("chain", chain),
				onvmstats.StrField("to", member), onvmstats.NumField("epoch", int64(r.Epoch))}})
		}()
	}
	sc.OnPause = m.logArbiterPause
	sc.OnEvent = func(e arbiter.Event) {
		m.log.Warn().Str("chain", chains[e.Chain]).Str("member", names[e.Member]).Stringer("event", e.Kind).
			Uint64("epoch", uint64(e.Epoch)).Str("detail", e.Detail).Msg("arbiter")
	}
	srv, err := arbiter.StartServer(sc)
	if err == nil {
		m.logArbiterScheduling("server", sc.RTPriority, srv.Scheduling())
	}
	return srv, err
}

// logArbiterPause reports the BFD thread held off the CPU (tools/e2e's
// fault loops read these lines: a member silent that long was rightly
// declared down).
func (m *Manager) logArbiterPause(d time.Duration) {
	m.log.Warn().Dur("held_off", d).Msg("arbiter: BFD thread held off the CPU; peers may have declared this manager down")
}

// logArbiterScheduling says in one line how the arbiter driver's thread
// runs: a real-time priority the kernel refused (no CAP_SYS_NICE, or an RT
// budget of 0 in a container's cgroup) leaves BFD at the mercy of the
// machine's load, which an operator must know.
func (m *Manager) logArbiterScheduling(role string, prio int, sched string) {
	if prio > 0 && !strings.HasPrefix(sched, "SCHED_FIFO") {
		m.log.Warn().Str("driver", role).Str("scheduling", sched).
			Msg("arbiter: BFD thread NOT real-time; under load it may declare live peers down (arbiter.rt_priority)")
		return
	}
	m.log.Info().Str("driver", role).Str("scheduling", sched).Msg("arbiter: BFD thread")
}

// startArbiterActions starts applying the arbiter's decisions, once the
// replication is running.
func (m *Manager) startArbiterActions() {
	if m.arb != nil && m.arb.client != nil {
		m.arb.acting = true
		go m.routineArbiterActions(m.arb)
	}
}

// routineArbiterActions applies the arbiter's decisions in order.
func (m *Manager) routineArbiterActions(l *arbiterLink) {
	defer close(l.done)
	for {
		select {
		case <-m.stopped:
			return
		case a := <-l.acts:
			m.arbiterAct(l, a)
		}
	}
}

func (m *Manager) arbiterAct(l *arbiterLink, a arbiterAction) {
	c := m.rep.chainNamed(a.chain)
	if c == nil {
		return
	}
	switch a.kind {
	case arbiter.ActPromote:
		if c.primary.Load() {
			// Already leads: the configured primary confirmed, or the
			// primary re-promoted in a higher epoch after the arbiter
			// lost and found it again. Its replication must move to that
			// epoch too (keeping what is in flight), or the standby's
			// frames of the new epoch would fence it.
			m.raiseEpoch(c, a.epoch, replicator.RolePrimary)
			return
		}
		t0 := time.Now()
		if _, err := m.PromoteChainEpoch(a.chain, a.epoch); err != nil {
			m.log.Error().Err(err).Str("chain", a.chain).Msg("arbiter: promotion failed")
			return
		}
		m.log.Warn().Str("chain", a.chain).Uint64("epoch", a.epoch).Dur("took", time.Since(t0)).Msg("arbiter: promoted")
	case arbiter.ActDemote:
		if !c.primary.Load() {
			// A standby already: it joins the primary again in the new
			// epoch (and reports ready once it has).
			m.raiseEpoch(c, a.epoch, replicator.RoleStandby)
			return
		}
		if err := m.DemoteChain(a.chain, a.epoch); err != nil {
			m.log.Error().Err(err).Str("chain", a.chain).Msg("arbiter: demotion failed")
		}
	case arbiter.ActYield:
		m.yieldChain(l, c)
	}
}

// Switchover hands chain to its standby server with no loss; this manager
// must be the arbiter (the ingress). Its RX stops polling, so new input
// waits in the ports' own queues; what is already inside this manager
// reaches the old primary; the arbiter asks the old primary to yield (it
// drains: everything it admitted is released once the standby has the
// state behind it), promotes the standby at a new epoch without waiting
// out a lease, demotes the old primary, and redirects the chain here; then
// RX resumes towards the new primary. The pause lasts a few milliseconds;
// the ports' queues must hold that much traffic.
func (m *Manager) Switchover(chain string) error {
	if m.arb == nil || m.arb.server == nil {
		return fmt.Errorf("switchover of chain %q: this manager is not the arbiter ([arbiter] serve)", chain)
	}
	done := make(chan struct{})
	m.arb.mu.Lock()
	if m.arb.redirected == nil {
		m.arb.redirected = map[string]chan struct{}{}
	}
	if m.arb.redirected[chain] != nil {
		m.arb.mu.Unlock()
		return fmt.Errorf("switchover of chain %q: one is in progress", chain)
	}
	m.arb.redirected[chain] = done
	m.arb.mu.Unlock()
	defer func() {
		m.arb.mu.Lock()
		if m.arb.redirected[chain] == done {
			delete(m.arb.redirected, chain)
		}
		m.arb.mu.Unlock()
	}()
	m.rxPaused.Store(true)
	defer func() {
		m.rxPaused.Store(false)
		m.rxBell.Ring()
	}()
	time.Sleep(2 * time.Millisecond) // this manager's own rings drain towards the old primary
	t0 := time.Now()
	if err := m.arb.server.Switchover(arbiter.ChainID(arbiter.NameID(chain))); err != nil {
		return fmt.Errorf("switchover of chain %q: %w", chain, err)
	}
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		return fmt.Errorf("switchover of chain %q: no redirect within 2 s", chain)
	}
	m.log.Warn().Str("chain", chain).Dur("took", time.Since(t0)).Msg("ARBITER: planned switchover done")
	return nil
}

// raiseEpoch moves a chain that keeps its role here to a higher epoch.
func (m *Manager) raiseEpoch(c *repChain, epoch uint64, role replicator.Role) {
	c.promote.Lock()
	defer c.promote.Unlock()
	n := c.nd()
	if c.closed || n == nil {
		return
	}
	// A Node fenced by the epoch it is now given (the standby, demoted to
	// it first, reached it before the arbiter's word) takes it
	// (replicator.Replicator, MsgEpoch).
	st := n.Stats()
	if cur := max(c.epoch.Load(), uint64(st.Epoch)); epoch < cur || (epoch == cur && st.Role != replicator.RoleFenced) {
		return
	}
	if err := n.SetEpoch(replicator.Epoch(epoch), role); err != nil {
		m.log.Warn().Err(err).Str("chain", c.cfg.Chain).Uint64("epoch", epoch).Msg("arbiter: epoch not raised")
		return
	}
	c.epoch.Store(epoch)
	m.log.Info().Str("chain", c.cfg.Chain).Uint64("epoch", epoch).Str("role", c.roleName()).Msg("arbiter: same role, new epoch")
}

// yieldChain drains the chain for a planned switchover: the ingress holds
// new input back (Switchover); once nothing more has come out of the chain
// for 20 ms and its latch has released everything (the standby has all
// the state behind the output), the arbiter is told; it then promotes the
// standby and demotes this manager.
func (m *Manager) yieldChain(l *arbiterLink, c *repChain) {
	deadline := time.Now().Add(2 * time.Second)
	quiet := time.Time{}
	for time.Now().Before(deadline) {
		if c.w.Load() == c.rd.Load() && c.release.Load() >= c.w.Load() {
			if quiet.IsZero() {
				quiet = time.Now()
			} else if time.Since(quiet) > 20*time.Millisecond {
				break // nothing in the latch for 20 ms: the chain is empty
			}
		} else {
			quiet = time.Time{}
		}
		time.Sleep(time.Millisecond)
	}
	id := arbiter.ChainID(arbiter.NameID(c.cfg.Chain))
	if err := l.client.Yielded(id); err != nil {
		m.log.Error().Err(err).Str("chain", c.cfg.Chain).Msg("arbiter: yielded")
	}
}

// closeArbiter stops the client and server.
func (m *Manager) closeArbiter() {
	if m.arb == nil {
		return
	}
	if m.arb.client != nil {
		m.arb.client.Close()
	}
	if m.arb.server != nil {
		m.arb.server.Close()
	}
	if m.arb.acting {
		<-m.arb.done
	}
}

// chainNamed finds a replicated chain by name.
func (r *replication) chainNamed(name string) *repChain {
	if r == nil {
		return nil
	}
	for _, c := range r.chains {
		if c.cfg.Chain == name {
			return c
		}
	}
	return nil
}

// arbiterSnapshot copies the arbiter client's or server's state for
// Snapshot: their Stats copy under a mutex, so this is for the stats
// period and the control socket, never the data path.
func (m *Manager) arbiterSnapshot() *ArbiterSnapshot {
	l := m.arb
	if l == nil {
		return nil
	}
	s := &ArbiterSnapshot{}
	if l.client != nil {
		st := l.client.Stats()
		cs := &ArbiterClientStats{Member: l.member, Scheduling: l.client.Scheduling(), BFDState: st.BFDState.String(),
			BFD: st.BFD, Wire: arbiterWire(st.Wire), Counters: st.Member}
		for _, c := range st.Chains {
			cs.Chains = append(cs.Chains, ArbiterMemberChain{Chain: nameOr(l.names, c.Chain), Role: c.Role.String(),
				Epoch: uint64(c.Epoch), LeaseLeftUs: c.LeaseLeft.Microseconds(), StandbyReady: c.StandbyReady})
		}
		s.Client = cs
	}
	if l.server != nil {
		st := l.server.Stats()
		ss := &ArbiterServerStats{Scheduling: l.server.Scheduling(), Counters: st.Arbiter, Wire: arbiterWire(st.Wire)}
		for _, c := range st.Chains {
			ss.Chains = append(ss.Chains, ArbiterChainState{Chain: nameOr(l.served, c.Chain), Epoch: uint64(c.Epoch),
				Primary: nameOr(l.peers, c.Primary), Phase: c.Phase.String(), PrimaryAcked: c.PrimaryAcked,
				StandbyAcked: c.StandbyAcked, PrimaryLive: c.PrimaryLive, StandbyLive: c.StandbyLive, StandbyReady: c.StandbyReady})
		}
		for _, ml := range st.Members {
			name := ml.Name
			if name == "" {
				name = nameOr(l.peers, ml.ID)
			}
			addr := ""
			if ml.Addr.IsValid() {
				addr = ml.Addr.String()
			}
			ss.Members = append(ss.Members, ArbiterMemberLink{Member: name, Addr: addr, BFDState: ml.BFDState.String(), BFD: ml.BFD})
		}
		s.Server = ss
	}
	return s
}

// nameOr names a chain or member by its wire ID; an ID the configuration
// does not name (none should reach here) shows as a number.
func nameOr[K ~uint32](names map[K]string, id K) string {
	if n, ok := names[id]; ok {
		return n
	}
	return fmt.Sprintf("#%08x", uint32(id))
}

func arbiterWire(w arbiter.WireCounters) ArbiterWire {
	return ArbiterWire{Datagrams: w.Datagrams, Malformed: w.Malformed, AuthFailed: w.AuthFailed, Replayed: w.Replayed,
		Unknown: w.Unknown, StepErrors: w.StepErrors, SendErrors: w.SendErrors, Pauses: w.Pauses,
		MaxPauseUs: w.MaxPause.Microseconds(), NeighborDowns: w.NeighborDowns}
}
