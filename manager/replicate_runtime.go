package manager

// Replication of the manager's run-time state of a chain (docs/replicator.md,
// "Manager run-time state"): the flow-director entries and rules NFs add at
// run time for the chain (FlowAdd), and the bucket → instance tables of the
// chain's services. Static [[flow]] entries are not sent: both managers have
// the configuration.
//
//	control plane (m.mu)  FlowAdd → addRuntimeFlow → chain's pending list;
//	                      publishLocked → noteBuckets → changed tables
//	round                 after reading the logs: pending → records at the
//	                      head of the payload, and into the chain's view
//	snapshot (smu)        the whole view: same rounds as the shadows
//	standby apply         records → its own flow director (the chain's index
//	                      there), tables kept for promotion (ReplicatedBuckets)
//
// Every record is idempotent (an entry set or removed, a whole rules list, a
// whole table), so a round applied again after a snapshot that already holds
// it changes nothing. The round takes the pending list after reading the
// NFs' logs: an NF that committed state after its FlowAdd was answered has
// the entry in the same transaction as that state, or an earlier one.

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/reinforce-nfv/reinforce/ctlmsg"
	"github.com/reinforce-nfv/reinforce/manager/config"
	"github.com/reinforce-nfv/reinforce/manager/flowdir"
	"github.com/reinforce-nfv/reinforce/pkt"
)

// Record bodies (after the 16-byte header of replicate_payload.go).
const (
	prFlowBody   = 37 // src IP 16, dst IP 16, src port u16, dst port u16, proto u8
	prRuleBytes  = 56 // one rule, see appendRule
	prBucketBody = 2 * NumBuckets
	prOpAdd      = 1
	prOpDel      = 2
)

// rtFlowOp is an exact entry added to (del false) or removed from the chain.
type rtFlowOp struct {
	del bool
	ft  pkt.FiveTuple
}

// repRuntime is one replicated chain's run-time manager state. mu guards
// everything but the counters; lock order: m.mu or repChain.smu, then mu.
type repRuntime struct {
	mu sync.Mutex

	// Primary, written by the control plane and taken by the next round.
	pend       []rtFlowOp
	rules      []flowdir.Rule // the chain's run-time rules, in order added (Chain 0)
	rulesDirty bool
	seen       map[ServiceID]*[NumBuckets]InstanceID // the registry's tables as last seen
	svcDirty   []ServiceID
	dirty      atomic.Bool // something above waits for a round

	// The replicated view: on a primary the state as of the last round's
	// payload (a snapshot carries it, the same rounds as the shadows); on a
	// standby what was applied.
	exact   map[pkt.FiveTuple]bool // true: entry to this chain; false: a static entry of this chain removed
	vrules  []flowdir.Rule
	buckets map[ServiceID][NumBuckets]InstanceID

	// static holds the chain's exact [[flow]] entries: removing one is
	// remembered (false in exact), removing a run-time one forgets it.
	static map[pkt.FiveTuple]bool

	st struct {
		flowSent, bucketSent, flowApplied, bucketApplied, failed atomic.Uint64
		// bucketFallbacks: buckets of a replicated table that promotion
		// could not install (their instance does not run here).
		bucketFallbacks atomic.Uint64
	}
}

// rtInit makes the maps on first use. rt.mu held.
func (c *repChain) rtInit() *repRuntime {
	rt := &c.rt
	if rt.exact != nil {
		return rt
	}
	rt.exact = map[pkt.FiveTuple]bool{}
	rt.buckets = map[ServiceID][NumBuckets]InstanceID{}
	rt.seen = map[ServiceID]*[NumBuckets]InstanceID{}
	rt.static = map[pkt.FiveTuple]bool{}
	for _, f := range c.r.m.cfg.Flows {
		if f.Chain == c.cfg.Chain && f.Exact() {
			rt.static[flowTuple(f)] = true
		}
	}
	return rt
}

// viewFlow records an entry added or removed in the view. rt.mu held.
func (rt *repRuntime) viewFlow(del bool, ft pkt.FiveTuple) {
	switch {
	case !del:
		rt.exact[ft] = true
	case rt.static[ft]:
		rt.exact[ft] = false
	default:
		delete(rt.exact, ft)
	}
}

// ---- Primary: recording (control plane, m.mu held) ----

// primaryChain is the repChain of chain index idx if it is replicated here
// as primary.
func (r *replication) primaryChain(idx uint16) *repChain {
	if r == nil || int(idx) >= len(r.byChain) {
		return nil
	}
	return r.byChain[idx].Load()
}

// addRuntimeFlow is addFlow for a flow an NF asked for at run time: a change
// of a replicated primary chain (an entry or rule added to it, an exact
// entry moved away from it) goes to that chain's next round. mu held.
func (m *Manager) addRuntimeFlow(f config.Flow) error {
	var ft pkt.FiveTuple
	var old uint16
	had := false
	if f.Exact() {
		ft = flowTuple(f)
		old, had = m.flows.Exact(&ft)
	}
	if err := m.addFlow(f); err != nil {
		return err
	}
	chain, _ := m.chainIndex(f.Chain) // addFlow checked it
	if !f.Exact() {
		if c := m.rep.primaryChain(chain); c != nil {
			c.recordRule(flowRule(f, 0))
		}
		return nil
	}
	if had && old != chain {
		if c := m.rep.primaryChain(old); c != nil {
			c.recordFlow(true, ft)
		}
	}
	if c := m.rep.primaryChain(chain); c != nil {
		c.recordFlow(false, ft)
	}
	return nil
}

func (c *repChain) recordFlow(del bool, ft pkt.FiveTuple) {
	c.rt.mu.Lock()
	rt := c.rtInit()
	rt.pend = append(rt.pend, rtFlowOp{del: del, ft: ft})
	rt.dirty.Store(true)
	c.rt.mu.Unlock()
	c.wakeRound()
}

// wakeRound wakes the chain's round loop if it sleeps idle, so a change
// is replicated at the next tick rather than after repIdleWait. The send
// does not look at idle first: a token left in the channel costs one early
// round, a wake lost between the loop's check and its sleep would cost the
// wait.
func (c *repChain) wakeRound() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *repChain) recordRule(r flowdir.Rule) {
	c.rt.mu.Lock()
	rt := c.rtInit()
	rt.rules = append(rt.rules, r)
	rt.rulesDirty = true
	rt.dirty.Store(true)
	c.rt.mu.Unlock()
	c.wakeRound()
}

// noteBuckets records the bucket tables that changed since the last call,
// of every service a primary chain uses. It runs from publishLocked, which
// follows every registry change. mu held.
//
// A closing manager records nothing: its NFs leave one by one and would
// empty the tables, and the standby must keep the tables of the running
// chain, the ones its promotion installs (installReplicatedBuckets).
func (r *replication) noteBuckets() {
	if r == nil || r.m.shutdown.Load() {
		return
	}
	m := r.m
	for _, c := range r.chains {
		if !c.primary.Load() {
			continue
		}
		changed := false
		for _, s := range m.cfg.Chains[c.index].Services {
			svc := ServiceID(s)
			tbl := m.reg.Buckets(svc)
			c.rt.mu.Lock()
			rt := c.rtInit()
			prev := rt.seen[svc]
			if (prev == nil && tbl != [NumBuckets]InstanceID{}) || (prev != nil && *prev != tbl) {
				rt.seen[svc] = &tbl
				if !slices.Contains(rt.svcDirty, svc) {
					rt.svcDirty = append(rt.svcDirty, svc)
				}
				rt.dirty.Store(true)
				changed = true
			}
			c.rt.mu.Unlock()
		}
		if changed {
			c.wakeRound()
		}
	}
}

// ---- Primary: rounds and snapshots ----

// runtimePending reports whether run-time changes wait for a round.
func (c *repChain) runtimePending() bool { return c.rt.dirty.Load() }

// appendRuntime appends the changes recorded since the last round to b and
// enters them in the view. The round calls it under smu, after reading the
// logs and before encoding their writes.
func (c *repChain) appendRuntime(b []byte) []byte {
	if !c.rt.dirty.Load() {
		return b
	}
	c.rt.mu.Lock()
	defer c.rt.mu.Unlock()
	rt := c.rtInit()
	rt.dirty.Store(false)
	for i := range rt.pend {
		op := &rt.pend[i]
		b = appendFlowRec(b, op.del, &op.ft)
		rt.viewFlow(op.del, op.ft)
	}
	n := uint64(len(rt.pend))
	rt.pend = rt.pend[:0]
	if rt.rulesDirty {
		b = appendRulesRec(b, rt.rules)
		rt.vrules = append(rt.vrules[:0], rt.rules...)
		rt.rulesDirty = false
		n++
	}
	rt.st.flowSent.Add(n)
	for _, s := range rt.svcDirty {
		t := *rt.seen[s]
		b = appendBucketsRec(b, s, &t)
		rt.buckets[s] = t
	}
	rt.st.bucketSent.Add(uint64(len(rt.svcDirty)))
	rt.svcDirty = rt.svcDirty[:0]
	return b
}

// appendRuntimeSnapshot appends the whole view: every run-time entry of the
// chain, its rules and the tables of all its services. smu held (the view
// is then that of the rounds the shadows hold).
func (c *repChain) appendRuntimeSnapshot(b []byte) []byte {
	c.rt.mu.Lock()
	defer c.rt.mu.Unlock()
	rt := c.rtInit()
	keys := make([]pkt.FiveTuple, 0, len(rt.exact))
	for ft := range rt.exact {
		keys = append(keys, ft)
	}
	// Sorted: the same state gives the same snapshot.
	slices.SortFunc(keys, func(a, b pkt.FiveTuple) int {
		var ka, kb [prFlowBody]byte
		putTuple(ka[:], &a)
		putTuple(kb[:], &b)
		return slices.Compare(ka[:], kb[:])
	})
	for i := range keys {
		b = appendFlowRec(b, !rt.exact[keys[i]], &keys[i])
	}
	b = appendRulesRec(b, rt.vrules)
	for _, s := range c.r.m.cfg.Chains[c.index].Services {
		t := rt.buckets[ServiceID(s)]
		b = appendBucketsRec(b, ServiceID(s), &t)
	}
	return b
}

// ---- Standby ----

// applyRuntime applies a transaction's run-time records to this manager's
// flow director (the chain's index here) and bucket tables. Node goroutine.
func (c *repChain) applyRuntime(p []byte) error {
	c.rt.mu.Lock()
	defer c.rt.mu.Unlock()
	rt := c.rtInit()
	return decodePayload(p, func(r *payloadRec) error {
		switch r.typ {
		case prFlow:
			ft := tupleOf(r.data)
			c.applyFlow(r.op == prOpDel, &ft)
			rt.viewFlow(r.op == prOpDel, ft)
		case prRules:
			c.applyRules(rulesOf(r.data))
		case prBuckets:
			if !c.usesService(r.svc) {
				return fmt.Errorf("bucket table of service %d, not in chain %q here: %w", r.svc, c.cfg.Chain, errPayload)
			}
			rt.buckets[r.svc] = bucketsOf(r.data)
			rt.st.bucketApplied.Add(1)
		}
		return nil
	})
}

// installRuntime replaces the chain's run-time state with a snapshot's:
// entries the new state lacks go (a static one comes back), the rules and
// tables are the snapshot's. Node goroutine.
func (c *repChain) installRuntime(p []byte) error {
	c.rt.mu.Lock()
	defer c.rt.mu.Unlock()
	rt := c.rtInit()
	exact := map[pkt.FiveTuple]bool{}
	var rules []flowdir.Rule
	buckets := map[ServiceID][NumBuckets]InstanceID{}
	err := decodePayload(p, func(r *payloadRec) error {
		switch r.typ {
		case prFlow:
			exact[tupleOf(r.data)] = r.op == prOpAdd
		case prRules:
			rules = rulesOf(r.data)
		case prBuckets:
			if !c.usesService(r.svc) {
				return fmt.Errorf("bucket table of service %d, not in chain %q here: %w", r.svc, c.cfg.Chain, errPayload)
			}
			buckets[r.svc] = bucketsOf(r.data)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("install snapshot of chain %q: %w", c.cfg.Chain, err)
	}
	for ft := range rt.exact {
		if _, ok := exact[ft]; !ok {
			// The primary's state has no run-time change of ft: the
			// configuration's entry if there is one, else none.
			if rt.static[ft] {
				c.applyFlow(false, &ft)
			} else {
				c.applyFlow(true, &ft)
			}
		}
	}
	for ft, on := range exact {
		c.applyFlow(!on, &ft)
	}
	rt.exact = exact
	c.applyRules(rules)
	rt.buckets = buckets
	rt.st.bucketApplied.Add(uint64(len(buckets)))
	return nil
}

// applyFlow adds ft to the chain in the flow director, or removes its
// entry if it is the chain's. rt.mu held.
func (c *repChain) applyFlow(del bool, ft *pkt.FiveTuple) {
	fd, idx := c.r.m.flows, uint16(c.index)
	c.rt.st.flowApplied.Add(1)
	if del {
		if ch, ok := fd.Exact(ft); ok && ch == idx {
			fd.Delete(ft)
		}
		return
	}
	if err := fd.Insert(ft, idx); err != nil {
		// The standby's table is full (its own entries for other chains):
		// it differs from the primary's. Counted and logged; failing the
		// apply would hold the chain's output for good.
		c.rt.st.failed.Add(1)
		c.r.m.log.Error().Err(err).Str("chain", c.cfg.Chain).Msg("replication: a run-time flow entry could not be applied")
	}
}

// applyRules makes the chain's run-time rules in the flow director rules:
// new ones appended when the old list is a prefix (the usual case: an NF
// added one), else the old removed and the new added. rt.mu held.
func (c *repChain) applyRules(rules []flowdir.Rule) {
	rt, fd, idx := &c.rt, c.r.m.flows, uint16(c.index)
	rt.st.flowApplied.Add(1)
	add := rules
	if len(rules) >= len(rt.vrules) && slices.Equal(rules[:len(rt.vrules)], rt.vrules) {
		add = rules[len(rt.vrules):]
	} else {
		for _, r := range rt.vrules {
			r.Chain = idx
			fd.DeleteRule(r)
		}
	}
	for _, r := range add {
		r.Chain = idx
		if err := fd.AddRule(r); err != nil {
			rt.st.failed.Add(1)
			c.r.m.log.Error().Err(err).Str("chain", c.cfg.Chain).Msg("replication: a run-time flow rule could not be applied")
		}
	}
	rt.vrules = rules
}

func (c *repChain) usesService(svc ServiceID) bool {
	return slices.Contains(c.r.m.cfg.Chains[c.index].Services, int(svc))
}

// ReplicatedBuckets returns the bucket → instance tables of the services of
// the replicated chain called chain, as replicated: on its standby, those
// applied (what promotion installs into the registry:
// installReplicatedBuckets); on its primary, those sent. Nil if the
// chain is not replicated here.
func (m *Manager) ReplicatedBuckets(chain string) map[ServiceID][NumBuckets]InstanceID {
	if m.rep == nil {
		return nil
	}
	for _, c := range m.rep.chains {
		if c.cfg.Chain != chain {
			continue
		}
		c.rt.mu.Lock()
		defer c.rt.mu.Unlock()
		rt := c.rtInit()
		out := make(map[ServiceID][NumBuckets]InstanceID, len(rt.buckets))
		for s, t := range rt.buckets {
			out[s] = t
		}
		return out
	}
	return nil
}

// runtimeStats adds the run-time state's counters to s.
func (c *repChain) runtimeStats(s *RepStats) {
	st := &c.rt.st
	s.FlowRecordsSent, s.BucketTablesSent = st.flowSent.Load(), st.bucketSent.Load()
	s.FlowRecordsApplied, s.BucketTablesApplied, s.FlowRecordsFailed = st.flowApplied.Load(), st.bucketApplied.Load(), st.failed.Load()
}

// bucketFallbacks sums the buckets promotions could not install, over the
// chains.
func (r *replication) bucketFallbacks() uint64 {
	if r == nil {
		return 0
	}
	n := uint64(0)
	for _, c := range r.chains {
		n += c.rt.st.bucketFallbacks.Load()
	}
	return n
}

// ---- Records ----

func appendRTHeader(b []byte, typ, op uint8, svc ServiceID, n int) []byte {
	le := binary.LittleEndian
	b = append(b, typ, op)
	b = le.AppendUint16(b, uint16(svc))
	b = le.AppendUint32(b, uint32(n))
	return le.AppendUint64(b, 0)
}

func putTuple(d []byte, ft *pkt.FiveTuple) {
	le := binary.LittleEndian
	copy(d[0:16], ft.SrcIP[:])
	copy(d[16:32], ft.DstIP[:])
	le.PutUint16(d[32:], ft.SrcPort)
	le.PutUint16(d[34:], ft.DstPort)
	d[36] = ft.Proto
}

func appendFlowRec(b []byte, del bool, ft *pkt.FiveTuple) []byte {
	op := uint8(prOpAdd)
	if del {
		op = prOpDel
	}
	b = appendRTHeader(b, prFlow, op, 0, prFlowBody)
	var d [prFlowBody]byte
	putTuple(d[:], ft)
	return append(b, d[:]...)
}

func tupleOf(d []byte) pkt.FiveTuple {
	le := binary.LittleEndian
	var ft pkt.FiveTuple
	copy(ft.SrcIP[:], d[0:16])
	copy(ft.DstIP[:], d[16:32])
	ft.SrcPort, ft.DstPort, ft.Proto = le.Uint16(d[32:]), le.Uint16(d[34:]), d[36]
	return ft
}

func appendRulesRec(b []byte, rules []flowdir.Rule) []byte {
	b = appendRTHeader(b, prRules, 0, 0, len(rules)*prRuleBytes)
	for i := range rules {
		b = appendRule(b, &rules[i])
	}
	return b
}

// appendRule: per prefix (source, destination) its family (0 none, 4, 6) and
// bits; the two addresses (16 bytes each, an IPv4 one in the first 4); the
// port ranges (lo, hi); proto, 3 pad; priority i64. The chain is the
// record's.
func appendRule(b []byte, r *flowdir.Rule) []byte {
	le := binary.LittleEndian
	var d [prRuleBytes]byte
	for k, p := range []netip.Prefix{r.SrcPrefix, r.DstPrefix} {
		if !p.IsValid() {
			continue
		}
		a := p.Addr()
		if a.Is4() {
			d[2*k] = 4
			a4 := a.As4()
			copy(d[4+16*k:], a4[:])
		} else {
			d[2*k] = 6
			a16 := a.As16()
			copy(d[4+16*k:], a16[:])
		}
		d[2*k+1] = uint8(p.Bits())
	}
	le.PutUint16(d[36:], r.SrcPorts.Lo)
	le.PutUint16(d[38:], r.SrcPorts.Hi)
	le.PutUint16(d[40:], r.DstPorts.Lo)
	le.PutUint16(d[42:], r.DstPorts.Hi)
	d[44] = r.Proto
	le.PutUint64(d[48:], uint64(int64(r.Priority)))
	return append(b, d[:]...)
}

// ruleOf decodes one rule checked by checkRuntimeRec.
func ruleOf(d []byte) flowdir.Rule {
	le := binary.LittleEndian
	var r flowdir.Rule
	for k, p := range []*netip.Prefix{&r.SrcPrefix, &r.DstPrefix} {
		a := d[4+16*k : 20+16*k]
		switch d[2*k] {
		case 4:
			*p = netip.PrefixFrom(netip.AddrFrom4([4]byte(a[:4])), int(d[2*k+1]))
		case 6:
			*p = netip.PrefixFrom(netip.AddrFrom16([16]byte(a)), int(d[2*k+1]))
		}
	}
	r.SrcPorts = flowdir.PortRange{Lo: le.Uint16(d[36:]), Hi: le.Uint16(d[38:])}
	r.DstPorts = flowdir.PortRange{Lo: le.Uint16(d[40:]), Hi: le.Uint16(d[42:])}
	r.Proto = d[44]
	r.Priority = int(int64(le.Uint64(d[48:])))
	return r
}

func rulesOf(d []byte) []flowdir.Rule {
	rules := make([]flowdir.Rule, 0, len(d)/prRuleBytes)
	for ; len(d) >= prRuleBytes; d = d[prRuleBytes:] {
		rules = append(rules, ruleOf(d))
	}
	return rules
}

func appendBucketsRec(b []byte, svc ServiceID, t *[NumBuckets]InstanceID) []byte {
	b = appendRTHeader(b, prBuckets, 0, svc, prBucketBody)
	for _, id := range t {
		b = binary.LittleEndian.AppendUint16(b, uint16(id))
	}
	return b
}

func bucketsOf(d []byte) [NumBuckets]InstanceID {
	var t [NumBuckets]InstanceID
	for i := range t {
		t[i] = InstanceID(binary.LittleEndian.Uint16(d[2*i:]))
	}
	return t
}

// checkRuntimeRec checks a run-time record's body (decodePayload: it comes
// from the network), so that the decoders above cannot fail.
func checkRuntimeRec(r *payloadRec) error {
	le := binary.LittleEndian
	switch r.typ {
	case prFlow:
		if len(r.data) != prFlowBody || (r.op != prOpAdd && r.op != prOpDel) {
			return fmt.Errorf("flow record: %d bytes, op %d: %w", len(r.data), r.op, errPayload)
		}
	case prRules:
		if len(r.data)%prRuleBytes != 0 {
			return fmt.Errorf("rules record of %d bytes: %w", len(r.data), errPayload)
		}
		for d := r.data; len(d) > 0; d = d[prRuleBytes:] {
			for k := range 2 {
				fam, bits := d[2*k], d[2*k+1]
				if (fam == 0 && bits != 0) || (fam == 4 && bits > 32) || (fam == 6 && bits > 128) || (fam != 0 && fam != 4 && fam != 6) {
					return fmt.Errorf("rule prefix family %d bits %d: %w", fam, bits, errPayload)
				}
			}
			if le.Uint16(d[36:]) > le.Uint16(d[38:]) || le.Uint16(d[40:]) > le.Uint16(d[42:]) {
				return fmt.Errorf("rule port range upside down: %w", errPayload)
			}
		}
	case prBuckets:
		if len(r.data) != prBucketBody || r.svc == 0 || int(r.svc) >= ctlmsg.MaxServices {
			return fmt.Errorf("bucket record: %d bytes, service %d: %w", len(r.data), r.svc, errPayload)
		}
		for i := 0; i < len(r.data); i += 2 {
			if id := le.Uint16(r.data[i:]); int(id) >= ctlmsg.MaxNFs {
				return fmt.Errorf("bucket record: instance %d: %w", id, errPayload)
			}
		}
	}
	return nil
}

// isRuntimeRec reports whether a record type is run-time state (applied by
// applyRuntime, skipped by the state-file paths).
func isRuntimeRec(typ uint8) bool { return typ == prFlow || typ == prRules || typ == prBuckets }
