package manager

// Remote replication of chains (RESILIENCY.md "Remote standby", guarantees
// 1 and 4; docs/replicator.md). Per replicated chain, on the primary:
//
//	TX loop (routineTX)     chain output → latch ring (holdOutput)
//	                        latch up to `released` → ports (flushLatches)
//	routineRound (1/chain)  seal the latch (its write count w) → read the
//	                        NFs' state logs, last NF first (a causally
//	                        closed cut) → coalesce → shadow → Propose(latch)
//	Node (replicator)       send, retransmit, ack → Release(latch) →
//	                        released = w of that latch, ring bellTX
//	RX loop (routineRX)     latch at its quota → drop at entry (admit)
//
// and on the standby, the Node's Apply callback writes each transaction
// into the chain's NF state files (replicate_standby.go).
//
// Why a packet at TX is covered by the transaction of the round that seals
// it: every NF that touched it published it only after its commit record
// (docs/state.md), and TX saw it after that publication; the round reads
// the logs after sealing, so every such commit is in what it reads.

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/reinforce-nfv/reinforce/manager/config"
	"github.com/reinforce-nfv/reinforce/manager/onvmstats"
	"github.com/reinforce-nfv/reinforce/port"
	"github.com/reinforce-nfv/reinforce/replicator"
	"github.com/reinforce-nfv/reinforce/replicator/bfd"
	"github.com/reinforce-nfv/reinforce/shm"
	"github.com/reinforce-nfv/reinforce/shm/state"
)

// Sizes of the state files the manager creates for replicated NFs are
// configuration ([replication] state_bytes, state_log_bytes); the NF opens
// the existing file and keeps them (docs/replicator.md).
const (
	// repStandbyLog: a standby's log holds a whole round (undo + redo of
	// every NF's redo) without back-pressure.
	repStandbyLog = 64 << 20
	// repSnapChunk bounds one Apply while a snapshot is installed into a
	// new file (see installSnapshot).
	repSnapChunk = 8 << 20
)

// repNodeTick is the replicator Node's timer period (see startNode).
const repNodeTick = time.Millisecond

// Chain replication status.
const (
	RepProtected   = "protected"
	RepCatchingUp  = "catching_up"
	RepUnprotected = "unprotected"
)

// RepStats are one replicated chain's counters (Snapshot.Replication).
type RepStats struct {
	Chain  string `json:"chain"`
	Role   string `json:"role"`
	Status string `json:"status"`
	Epoch  uint64 `json:"epoch"`
	// Latch: packets held now, the quota, packets latched and released in
	// all, released without an acknowledgement (policy "continue" under
	// lease), dropped at RX because the latch was full, dropped at TX
	// because the latch ring overflowed (packets already inside the chain
	// when RX started dropping).
	Latched         uint64 `json:"latched"`
	LatchQuota      uint64 `json:"latch_quota"`
	LatchedTotal    uint64 `json:"latched_total"`
	Released        uint64 `json:"released"`
	ReleasedUnacked uint64 `json:"released_unprotected"`
	RXLatchDrops    uint64 `json:"rx_latch_drops"`
	// Discarded: packets of a chain demoted here, freed instead of sent
	// (latched but never acknowledged in the epoch that leads now, or
	// arriving after the demotion).
	Discarded        uint64 `json:"discarded"`
	TXLatchOverflows uint64 `json:"tx_latch_overflows"`
	// Rounds proposed, writes read and shipped (after coalescing), payload
	// bytes, back-pressured rounds.
	Rounds       uint64 `json:"rounds"`
	WritesRead   uint64 `json:"writes_read"`
	WritesSent   uint64 `json:"writes_sent"`
	PayloadBytes uint64 `json:"payload_bytes"`
	Backpressure uint64 `json:"backpressure"`
	// Standby: transactions and snapshots applied, layout digest mismatches.
	Applied          uint64 `json:"applied"`
	SnapshotsApplied uint64 `json:"snapshots_applied"`
	DigestMismatches uint64 `json:"digest_mismatches"`
	// Manager run-time state (replicate_runtime.go): flow records (exact
	// entries, rules lists) and bucket tables sent by rounds (primary) or
	// applied, snapshots included (standby); flow records the standby's
	// flow director refused.
	FlowRecordsSent     uint64 `json:"flow_records_sent"`
	BucketTablesSent    uint64 `json:"bucket_tables_sent"`
	FlowRecordsApplied  uint64 `json:"flow_records_applied"`
	BucketTablesApplied uint64 `json:"bucket_tables_applied"`
	FlowRecordsFailed   uint64 `json:"flow_records_failed"`
	// The replicator's and BFD's own counters.
	Node replicator.NodeStats `json:"node"`
}

// replication is the manager's replication: one repChain per configured
// chain, found by chain index from the data path.
type replication struct {
	m       *Manager
	chains  []*repChain
	byChain []atomic.Pointer[repChain] // by chain index (cfg.Chains order); nil if not a primary
	stop    chan struct{}
	wg      sync.WaitGroup
}

// repInst is one NF instance of a replicated chain.
type repInst struct {
	id     uint16
	path   string
	file   *state.File // primary: mapped without the lock; standby: owned
	reader *state.LogReader
	shadow shadow // primary: guarded by repChain.smu
}

type latchPair struct {
	latch replicator.LatchID
	w     uint64
}

// repChain is one replicated chain.
type repChain struct {
	r     *replication
	cfg   config.RepChain
	index int
	insts []*repInst                      // chain order
	nodeP atomic.Pointer[replicator.Node] // replaced at promotion
	quota uint64

	// promoted: a standby chain this manager promoted (PromoteChain);
	// primary: the chain's role here now (configured, or promoted); epoch:
	// its replication epoch here (configured, raised at promotion).
	promoted atomic.Bool
	primary  atomic.Bool
	epoch    atomic.Uint64
	promote  sync.Mutex // serialises a promotion with close
	closed   bool       // guarded by promote
	// The round loop's stop and end (demotion stops it); guarded by promote.
	roundStop, roundDone chan struct{}
	// discard: demoted here; latched output is freed, never sent (TX loop).
	discard atomic.Bool
	// gate, if set before start, must say yes before latched output
	// leaves: the arbiter's lease (guarantee 5).
	gate func() bool
	// observe tells the arbiter's client of a higher epoch the replicator
	// saw (its gate closes at once); nil without an arbiter.
	observe func(epoch uint64)
	// standbyReady tells the arbiter's client whether this standby has
	// caught up in epoch; nil without an arbiter.
	standbyReady func(epoch uint64, ready bool)

	// idle: the round loop sleeps (sleepIdle); holdOutput sends on wake.
	idle atomic.Bool
	wake chan struct{}

	// The latch: a ring of slots and their ports. The TX loop is its only
	// writer (w) and reader (rd); the round goroutine reads w to seal; the
	// Node's release callback (or the lease) moves release.
	lslots  []shm.Slot
	lports  []uint16
	mask    uint64
	w, rd   atomic.Uint64
	release atomic.Uint64

	pmu   sync.Mutex // guards pairs
	pairs []latchPair

	smu sync.Mutex // guards the instances' shadows (round vs snapshot)

	rt repRuntime // the manager's run-time state of the chain

	// The round goroutine's (writes: also the standby's Apply, on the
	// Node's goroutine; a chain has one role).
	co        coalescer
	payload   []byte
	pending   bool // payload proposed and refused (back-pressure): retry it
	pendLatch replicator.LatchID
	ends      []uint64
	writes    []state.Write
	nextLatch replicator.LatchID
	sealedW   uint64
	lostSince time.Time
	leaseLog  bool

	st struct {
		latched, released, unacked, rxDrops, txOverflow            atomic.Uint64
		rounds, writesRead, writesSent, payloadBytes, backpressure atomic.Uint64
		applied, snapshots, digestMismatch                         atomic.Uint64
		discarded                                                  atomic.Uint64
	}
}

// newReplication prepares the configured chains (nil if none). Nothing
// runs until start.
func newReplication(m *Manager) (*replication, error) {
	rp := &m.cfg.Replication
	if len(rp.Chains) == 0 {
		return nil, nil
	}
	r := &replication{m: m, byChain: make([]atomic.Pointer[repChain], len(m.cfg.Chains)), stop: make(chan struct{})}
	for _, rc := range rp.Chains {
		idx := -1
		for i, ch := range m.cfg.Chains {
			if ch.Name == rc.Chain {
				idx = i
			}
		}
		if idx < 0 {
			return nil, fmt.Errorf("replication: chain %q is not configured", rc.Chain)
		}
		c := &repChain{r: r, cfg: rc, index: idx, wake: make(chan struct{}, 1)}
		c.quota = uint64(rp.LatchQuota)
		if rc.LatchQuota > 0 {
			c.quota = uint64(rc.LatchQuota)
		}
		// Room for the quota and for what is inside the chain when RX
		// starts dropping (at most the pool).
		size := uint64(1)
		for size < c.quota+uint64(m.cfg.Manager.PoolSlots) {
			size <<= 1
		}
		// Every chain has its latch, so one promoted here needs no new
		// memory the TX loop could see half made.
		c.lslots, c.lports, c.mask = make([]shm.Slot, size), make([]uint16, size), size-1
		c.epoch.Store(uint64(rc.Epoch))
		if rc.Role == config.RepPrimary {
			c.primary.Store(true)
			r.byChain[idx].Store(c)
		}
		for _, id := range m.cfg.RepInstances(rc) {
			c.insts = append(c.insts, &repInst{id: uint16(id), path: state.PathFor(m.region.Path(), m.region.Huge(), uint16(id))})
		}
		r.chains = append(r.chains, c)
	}
	return r, nil
}

// digest is what both managers must agree on before a standby joins: the
// chain and its instances. The containers' own layout (and hash seed)
// travels in the snapshot, and the standby checks its file's digest
// against the primary's after installing it.
func (c *repChain) digest() replicator.Digest {
	h := sha256.New()
	h.Write([]byte("reinforce chain\x00" + c.cfg.Chain + "\x00"))
	for _, in := range c.insts {
		h.Write([]byte{byte(in.id >> 8), byte(in.id)})
	}
	var d replicator.Digest
	copy(d[:], h.Sum(nil))
	return d
}

// start attaches the primaries' log readers (before any NF opens its
// file: the reader must see every write from the first) and starts the
// nodes and round loops.
func (r *replication) start() error {
	m := r.m
	rp := &m.cfg.Replication
	for _, c := range r.chains {
		primary := c.primary.Load()
		if primary {
			for _, in := range c.insts {
				o := state.Options{DataBytes: uint64(rp.StateBytes), LogBytes: uint64(rp.StateLogBytes), RegionID: m.region.Epoch()}
				if err := in.attach(o); err != nil {
					return fmt.Errorf("replication of chain %q: %w", c.cfg.Chain, err)
				}
			}
		}
		if err := c.startNode(primary); err != nil {
			return err
		}
		m.log.Info().Str("chain", c.cfg.Chain).Str("role", c.roleName()).Stringer("local", c.cfg.Local).
			Stringer("peer", c.cfg.Peer).Int("instances", len(c.insts)).Msg("replication started")
	}
	r.wg.Add(1)
	go r.routineStatus()
	return nil
}

// startNode starts the chain's replicator Node in its role and epoch, and
// a primary's round loop.
func (c *repChain) startNode(primary bool) error {
	r, m := c.r, c.r.m
	rp := &m.cfg.Replication
	var jid [8]byte
	_, _ = rand.Read(jid[:])
	rcfg := replicator.DefaultConfig()
	rcfg.Epoch = replicator.Epoch(c.epoch.Load())
	rcfg.Digest = c.digest()
	rcfg.JoinID = binary.LittleEndian.Uint64(jid[:])
	rcfg.Window = rp.Window
	// A round is never split (a part would not be a closed cut): a
	// transaction holds every NF's redo (at most half of each log).
	rcfg.MaxTxBytes = max(rcfg.MaxTxBytes, len(c.insts)*int(rp.StateLogBytes))
	rcfg.MaxQueueBytes = max(rcfg.MaxQueueBytes, 4*rcfg.MaxTxBytes)
	// A snapshot holds every instance's written containers (records
	// add 16 bytes per run of pages).
	rcfg.MaxSnapshotBytes = max(rcfg.MaxSnapshotBytes, len(c.insts)*(int(rp.StateBytes)+1<<20))
	// The Node's timers need no finer grain than BFD's 5 ms interval and a
	// 2 ms retransmission: a 1 ms tick (data and acks are sent as they
	// come, not on ticks) costs both managers a tenth of a 100 µs one,
	// which was most of replication's CPU at moderate rates (T5 remote).
	rcfg.RetransmitTicks = int(2 * time.Millisecond / repNodeTick)
	rcfg.JoinTicks = int(5 * time.Millisecond / repNodeTick)
	rcfg.Role = replicator.RoleStandby
	nc := replicator.NodeConfig{
		Replicator: rcfg,
		Tick:       repNodeTick,
		// Conservative until failover needs speed (the next issue):
		// 5 ms × 5 survives a loaded 2-CPU test machine.
		BFD: bfd.Config{DetectMult: 5, DesiredMinTxMicros: 5000, RequiredMinRxMicros: 5000, SlowTxMicros: 20000,
			AuthType: bfd.AuthMeticulousSHA1},
		Local: c.cfg.Local, Peer: c.cfg.Peer, PSK: []byte(rp.PSK),
		Seed: binary.LittleEndian.Uint64(jid[:]),
	}
	nc.OnRole = func(role replicator.Role, e replicator.Epoch) {
		if role == replicator.RoleFenced {
			// A frame of a higher epoch: another manager leads the chain.
			m.log.Warn().Str("chain", c.cfg.Chain).Uint64("epoch", uint64(e)).Msg("replication: fenced by a higher epoch")
			if c.observe != nil {
				c.observe(uint64(e))
			}
		}
	}
	if primary {
		nc.Replicator.Role = replicator.RolePrimary
		nc.Snapshot = c.snapshot
		nc.Release = c.onRelease
	} else {
		nc.Initiator = true
		nc.Apply = c.apply
		nc.OnApplyError = func(err error) {
			// Not ready from now: the arbiter must not promote a standby
			// whose last round is half applied (the status loop would say
			// so only at its next poll).
			if c.standbyReady != nil {
				c.standbyReady(c.epoch.Load(), false)
			}
			c.r.m.log.Warn().Err(err).Str("chain", c.cfg.Chain).Msg("replication: the standby could not apply a transaction; it joins again for a snapshot")
		}
	}
	n, err := replicator.StartNode(nc)
	// A process this manager is forking (an NF it launches) holds a copy
	// of the socket it just closed (a demotion or promotion restarts the
	// Node on the same address) until that process execs.
	for end := time.Now().Add(time.Second); errors.Is(err, syscall.EADDRINUSE) && time.Now().Before(end); n, err = replicator.StartNode(nc) {
		time.Sleep(time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("replication of chain %q: %w", c.cfg.Chain, err)
	}
	c.nodeP.Store(n)
	if primary {
		c.lostSince = time.Now()
		c.roundStop, c.roundDone = make(chan struct{}), make(chan struct{})
		r.wg.Add(1)
		go c.routineRound(c.roundStop, c.roundDone)
	}
	return nil
}

// nd is the chain's current replicator Node (nil before start).
func (c *repChain) nd() *replicator.Node { return c.nodeP.Load() }

// roleName is the chain's role here now: "primary" (configured),
// "promoted" (a standby promoted here: PromoteChain), or "standby"
// (configured, or demoted: DemoteChain).
func (c *repChain) roleName() string {
	switch {
	case c.primary.Load() && c.promoted.Load():
		return "promoted"
	case c.primary.Load():
		return string(config.RepPrimary)
	}
	return string(config.RepStandby)
}

// repStatusEvery is how often status changes are looked for (events and
// logs only: nothing on the output path waits for it).
const repStatusEvery = 20 * time.Millisecond

// routineStatus logs and records (web events) each chain's status changes.
func (r *replication) routineStatus() {
	defer r.wg.Done()
	last := make([]string, len(r.chains))
	lastReady := make([]struct {
		epoch uint64
		ready bool
	}, len(r.chains))
	t := time.NewTicker(repStatusEvery)
	defer t.Stop()
	warned := map[InstanceID]bool{}
	for n := 0; ; n++ {
		if n%20 == 0 {
			r.checkInstances(warned)
		}
		for i, c := range r.chains {
			ns := c.nd().Stats()
			if c.standbyReady != nil {
				// The arbiter promotes only a standby that has joined the
				// primary's stream (installed its snapshot) in this epoch.
				ready := !c.primary.Load() && ns.Joined
				if ready != lastReady[i].ready || uint64(ns.Epoch) != lastReady[i].epoch || n%50 == 0 {
					c.standbyReady(uint64(ns.Epoch), ready)
					lastReady[i].ready, lastReady[i].epoch = ready, uint64(ns.Epoch)
				}
			}
			st := c.status(ns)
			if st == last[i] {
				continue
			}
			ev := r.m.log.Info()
			if last[i] == RepProtected {
				ev = r.m.log.Warn()
			}
			ev.Str("chain", c.cfg.Chain).Str("role", c.roleName()).Str("from", last[i]).Str("to", st).Msg("replication status")
			r.m.RecordEvent(onvmstats.Event{Message: "Chain " + st, Source: []onvmstats.Field{
				onvmstats.StrField("type", "REPLICATION"), onvmstats.StrField("chain", c.cfg.Chain),
				onvmstats.StrField("role", c.roleName())}})
			last[i] = st
		}
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
	}
}

// attach creates the NF's state file (so that it exists before the NF
// writes anything), marks its log as read, and maps it for reading.
func (in *repInst) attach(o state.Options) error {
	f, err := state.Open(in.path, o)
	if err != nil {
		return err
	}
	f.NewLogReader() // sets the file's reader word; kept when we unlock
	if err := f.Close(); err != nil {
		return err
	}
	if in.file, err = state.Prepare(in.path); err != nil {
		return err
	}
	in.reader = in.file.NewLogReader()
	return nil
}

// close stops the nodes and round loops and unmaps the files. The TX loop
// has stopped: held output is dropped with the region.
func (r *replication) close() {
	for _, c := range r.chains {
		c.promote.Lock()
		c.closed = true
		c.promote.Unlock()
	}
	close(r.stop)
	// Nodes first: a round blocked in Propose returns once its node stops.
	for _, c := range r.chains {
		if c.nd() != nil {
			if err := c.nd().Stop(); err != nil {
				r.m.log.Warn().Str("chain", c.cfg.Chain).Err(err).Msg("replication node had stopped")
			}
		}
	}
	r.wg.Wait()
	for _, c := range r.chains {
		for _, in := range c.insts {
			if in.reader != nil {
				in.reader.Close()
			}
			if in.file != nil {
				in.file.Close()
			}
		}
	}
}

// checkInstances warns (once per instance) about a running NF that serves
// a primary chain's service but whose instance the chain does not
// replicate: output it touches is latched and released on acknowledgement
// of state that does not include its own.
func (r *replication) checkInstances(warned map[InstanceID]bool) {
	m := r.m
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, nf := range m.nfs {
		if nf == nil || warned[nf.id] {
			continue
		}
		for _, c := range r.chains {
			if !c.primary.Load() || c.instByID(uint16(nf.id)) != nil {
				continue
			}
			ch := m.cfg.Chains[c.index]
			for _, s := range ch.Services {
				if s == int(nf.service) {
					warned[nf.id] = true
					m.log.Error().Str("chain", c.cfg.Chain).Uint16("instance", uint16(nf.id)).Int("service", s).
						Msg("replication: an NF of a replicated chain runs with an instance not in replication.chain.instances: its state is NOT replicated")
				}
			}
		}
	}
}

// ---- TX and RX loop side (allocation-free) ----

// holdOutput latches s, leaving the chain on port dest, if its chain is
// replicated here as primary. It reports whether it took the packet
// (latched, or freed and counted when the latch ring overflows).
func (r *replication) holdOutput(c *shm.Cache, s shm.Slot, chain uint16, dest uint16) bool {
	if int(chain) >= len(r.byChain) {
		return false
	}
	ch := r.byChain[chain].Load()
	if ch == nil {
		return false
	}
	if ch.discard.Load() {
		ch.st.discarded.Add(1)
		one := [1]shm.Slot{s}
		for c.Free(one[:]) == 0 && !r.m.stopping.Load() {
		}
		return true
	}
	w := ch.w.Load()
	if w-ch.rd.Load() > ch.mask {
		ch.st.txOverflow.Add(1)
		one := [1]shm.Slot{s}
		for c.Free(one[:]) == 0 && !r.m.stopping.Load() {
		}
		return true
	}
	ch.lslots[w&ch.mask], ch.lports[w&ch.mask] = s, dest
	ch.w.Store(w + 1) // the round seals after this store: s is covered
	ch.st.latched.Add(1)
	if ch.idle.Load() {
		select {
		case ch.wake <- struct{}{}:
		default:
		}
	}
	return true
}

// admit reports whether RX may let a packet into chain: not while its
// latch is at its quota (the packet is freed and counted; other chains go
// on).
func (r *replication) admit(c *shm.Cache, s shm.Slot, chain uint16) bool {
	if int(chain) >= len(r.byChain) {
		return true
	}
	ch := r.byChain[chain].Load()
	if ch == nil || (ch.w.Load()-ch.rd.Load() < ch.quota && !ch.discard.Load()) {
		return true
	}
	ch.st.rxDrops.Add(1)
	one := [1]shm.Slot{s}
	for c.Free(one[:]) == 0 && !r.m.stopping.Load() {
	}
	return false
}

// releasable reports whether some latch has released output to send.
func (r *replication) releasable() bool {
	for _, ch := range r.chains {
		if ch.lslots != nil && (ch.release.Load() > ch.rd.Load() || (ch.discard.Load() && ch.w.Load() > ch.rd.Load())) {
			return true
		}
	}
	return false
}

// flushLatches sends released output, in latch order, and returns how
// many packets it handled.
func (r *replication) flushLatches(c *shm.Cache, dp *dataPlane) int {
	total := 0
	var batch [shm.MaxBurst]shm.Slot
	for _, ch := range r.chains {
		if ch.lslots == nil {
			continue
		}
		if ch.discard.Load() {
			total += ch.discardLatched(c)
			continue
		}
		if ch.gate != nil && !ch.gate() {
			continue // no lease: held (the arbiter may be promoting the standby)
		}
		to, rd := ch.release.Load(), ch.rd.Load()
		for rd < to {
			// A run of packets for one port, in order.
			pid := ch.lports[rd&ch.mask]
			n := 0
			for rd+uint64(n) < to && n < len(batch) && ch.lports[(rd+uint64(n))&ch.mask] == pid {
				batch[n] = ch.lslots[(rd+uint64(n))&ch.mask]
				n++
			}
			k := 0
			var p port.Port
			if int(pid) < maxPorts {
				p = dp.portByID[pid]
			}
			if p != nil {
				k = p.TxBurst(c, batch[:n])
				if _, loop := p.(*port.Loop); loop && k > 0 {
					r.m.rxBell.Ring()
				}
			}
			r.m.Stats.TXPortDrop.Add(uint64(n - k))
			for j := k; j < n && !r.m.stopping.Load(); {
				j += c.Free(batch[j:n])
			}
			rd += uint64(n)
			ch.rd.Store(rd)
			ch.st.released.Add(uint64(n))
			total += n
		}
	}
	return total
}

// ---- Primary: rounds ----

// onRelease runs on the Node's goroutine when the standby acknowledged
// every transaction up to the one carrying latch l.
func (c *repChain) onRelease(l replicator.LatchID) {
	c.pmu.Lock()
	var w uint64
	found := false
	i := 0
	for ; i < len(c.pairs) && c.pairs[i].latch <= l; i++ {
		w, found = c.pairs[i].w, true
	}
	c.pairs = c.pairs[:copy(c.pairs, c.pairs[i:])]
	c.pmu.Unlock()
	if found {
		c.setRelease(w)
	}
}

// setRelease lets the output up to latch write count w leave.
func (c *repChain) setRelease(w uint64) {
	for {
		old := c.release.Load()
		if w <= old || c.release.CompareAndSwap(old, w) {
			break
		}
	}
	c.r.m.txBell.Ring()
}

func (c *repChain) routineRound(stop <-chan struct{}, done chan<- struct{}) {
	defer c.r.wg.Done()
	defer close(done)
	m := c.r.m
	tk, err := replicator.NewTicker(m.cfg.Replication.RoundEvery)
	if err != nil {
		m.log.Error().Err(err).Str("chain", c.cfg.Chain).Msg("replication round ticker: rounds stop")
		return
	}
	defer tk.Close()
	go func() {
		select {
		case <-c.r.stop:
		case <-stop:
		}
		tk.Close()
	}()
	idle := time.NewTimer(time.Hour)
	idle.Stop()
	empty := 0
	for {
		select {
		case <-c.r.stop:
			return
		case <-stop:
			return
		default:
		}
		if empty >= repIdleRounds {
			// Idle: a round after each sleep, and back to ticking only
			// when one finds work.
			if !c.sleepIdle(idle, stop) {
				return
			}
		} else if _, err := tk.Wait(); err != nil {
			return
		}
		rounds := c.st.rounds.Load()
		if err := c.round(); err != nil {
			m.log.Error().Err(err).Str("chain", c.cfg.Chain).Msg("replication round failed: output of this chain stays held")
			return
		}
		if c.pending || c.st.rounds.Load() != rounds {
			empty = 0
		} else {
			empty++
		}
		c.applyPolicy()
	}
}

// An idle chain's round loop sleeps instead of ticking: after
// repIdleRounds empty rounds in a row it waits until output is latched
// (holdOutput wakes it) or repIdleWait passes, within which state changes
// that produce no output (an NF's timer callback, a flow rule) are
// replicated.
const (
	repIdleRounds = 100
	repIdleWait   = 10 * time.Millisecond
)

// sleepIdle waits as described above; false when replication stops.
func (c *repChain) sleepIdle(t *time.Timer, stop <-chan struct{}) bool {
	c.idle.Store(true)
	// holdOutput stores w before it reads idle, and we store idle before
	// reading w: one of us sees the other, so no packet waits out the timer.
	if c.w.Load() == c.sealedW {
		t.Reset(repIdleWait)
		select {
		case <-c.r.stop:
			c.idle.Store(false)
			return false
		case <-stop:
			c.idle.Store(false)
			return false
		case <-c.wake:
		case <-t.C:
		}
		t.Stop()
	}
	c.idle.Store(false)
	return true
}

// round runs one replication round: seal, cut, coalesce, propose.
func (c *repChain) round() error {
	if c.pending {
		if !c.propose(c.pendLatch) {
			return nil
		}
	}
	w := c.w.Load() // seal: every packet latched so far is in this round
	c.co.reset()
	c.ends = c.ends[:0]
	// The cut: the last NF first, so anything a later NF committed is
	// preceded by its upstream commits in what is read after it.
	for i := len(c.insts) - 1; i >= 0; i-- {
		in := c.insts[i]
		end := uint64(0)
		for {
			tx, ok, err := in.reader.Next(c.writes)
			if err != nil {
				return fmt.Errorf("instance %d: %w", in.id, err)
			}
			if !ok {
				break
			}
			c.writes = tx.Writes[:0]
			for _, wr := range tx.Writes {
				c.co.add(in.id, wr)
			}
			c.st.writesRead.Add(uint64(len(tx.Writes)))
			end = tx.End
		}
		c.ends = append(c.ends, end)
	}
	if c.co.empty() && w == c.sealedW && !c.runtimePending() {
		c.releaseLogs()
		return nil
	}
	c.payload = c.payload[:0]
	sent := uint64(0)
	c.smu.Lock()
	c.payload = c.appendRuntime(c.payload) // before the writes; see replicate_runtime.go
	c.payload = c.co.encode(c.payload, func(inst uint16, off uint64, d []byte) {
		sent++
		c.instByID(inst).shadow.write(off, d)
	})
	c.smu.Unlock()
	c.st.writesSent.Add(sent)
	c.nextLatch++
	c.sealedW = w
	c.pmu.Lock()
	c.pairs = append(c.pairs, latchPair{latch: c.nextLatch, w: w})
	c.pmu.Unlock()
	c.propose(c.nextLatch)
	return nil
}

// propose hands the round's payload to the Node; on back-pressure it keeps
// it for the next round and holds the NFs' logs (they back-pressure in
// turn). It reports whether the payload went.
func (c *repChain) propose(l replicator.LatchID) bool {
	err := c.nd().Propose(l, c.payload)
	if errors.Is(err, replicator.ErrBackpressure) {
		c.pending, c.pendLatch = true, l
		c.st.backpressure.Add(1)
		return false
	}
	if err != nil {
		// Not primary any more (fenced), or stopped: nothing is released
		// for this latch; keep the logs freed so NFs go on.
		c.r.m.log.Warn().Err(err).Str("chain", c.cfg.Chain).Msg("replication proposal refused")
	}
	c.pending = false
	c.st.rounds.Add(1)
	c.st.payloadBytes.Add(uint64(len(c.payload)))
	c.releaseLogs()
	return true
}

// releaseLogs frees what the round read: its writes are in the shadow and
// in the replicator's queue now.
func (c *repChain) releaseLogs() {
	for k, end := range c.ends {
		if end != 0 {
			c.insts[len(c.insts)-1-k].reader.Release(end)
		}
	}
	c.ends = c.ends[:0]
}

func (c *repChain) instByID(id uint16) *repInst {
	for _, in := range c.insts {
		if in.id == id {
			return in
		}
	}
	return nil
}

// snapshot runs on the Node's goroutine after a standby joined: the
// shadows as of the last round (every write proposed so far; a round
// whose shadow update came first but whose proposal comes after
// re-applies the same bytes, which changes nothing).
func (c *repChain) snapshot() []byte {
	c.smu.Lock()
	defer c.smu.Unlock()
	b := c.appendRuntimeSnapshot(nil)
	rp := &c.r.m.cfg.Replication
	for _, in := range c.insts {
		// The configured sizes, not this file's: a promoted standby's file
		// has a standby's larger log (installSnapshotWith), and sending
		// that made each generation's log 4 times the last until, after a
		// few failovers back and forth, no standby could create it.
		b = appendFile(b, in.id, in.file.Seed(), uint64(rp.StateBytes), uint64(rp.StateLogBytes), in.file.LayoutDigest())
		b = in.shadow.appendTo(b, in.id)
	}
	return b
}

// status is the chain's protection as the Node sees it.
func (c *repChain) status(ns replicator.NodeStats) string {
	switch {
	case ns.BFDState == bfd.Up && ns.Joined:
		return RepProtected
	case ns.BFDState == bfd.Up || (ns.Joined && !c.primary.Load()):
		return RepCatchingUp
	}
	return RepUnprotected
}

// applyPolicy runs the "standby lost" policy after each round: with
// "continue", output leaves unacknowledged while the lease (counted from
// the loss) lasts; with "hold", or once the lease is over, it stays held.
func (c *repChain) applyPolicy() {
	rp := &c.r.m.cfg.Replication
	ns := c.nd().Stats()
	if c.status(ns) == RepProtected {
		if !c.lostSince.IsZero() && c.leaseLog {
			c.r.m.log.Warn().Str("chain", c.cfg.Chain).Msg("replication: standby back, chain protected again")
		}
		c.lostSince, c.leaseLog = time.Time{}, false
		return
	}
	if c.lostSince.IsZero() {
		c.lostSince = time.Now()
	}
	if rp.OnStandbyLost != config.LostContinue || time.Since(c.lostSince) >= rp.Lease {
		return
	}
	if !c.leaseLog {
		c.leaseLog = true
		c.r.m.log.Warn().Str("chain", c.cfg.Chain).Dur("lease", rp.Lease).
			Msg("REPLICATION STANDBY LOST: releasing output UNPROTECTED under the static lease")
	}
	if w := c.sealedW; w > c.release.Load() {
		c.st.unacked.Add(w - c.release.Load())
		c.setRelease(w)
	}
}

// stats reads the chain's counters.
func (c *repChain) stats() RepStats {
	s := RepStats{Chain: c.cfg.Chain, Role: c.roleName(), Epoch: c.epoch.Load(), LatchQuota: c.quota}
	if c.nd() != nil {
		s.Node = c.nd().Stats()
		s.Status = c.status(s.Node)
		s.Epoch = max(s.Epoch, uint64(s.Node.Epoch))
	}
	s.Latched = c.w.Load() - c.rd.Load()
	s.LatchedTotal, s.Released, s.ReleasedUnacked = c.st.latched.Load(), c.st.released.Load(), c.st.unacked.Load()
	s.RXLatchDrops, s.TXLatchOverflows = c.st.rxDrops.Load(), c.st.txOverflow.Load()
	s.Discarded = c.st.discarded.Load()
	s.Rounds, s.WritesRead, s.WritesSent = c.st.rounds.Load(), c.st.writesRead.Load(), c.st.writesSent.Load()
	s.PayloadBytes, s.Backpressure = c.st.payloadBytes.Load(), c.st.backpressure.Load()
	s.Applied, s.SnapshotsApplied, s.DigestMismatches = c.st.applied.Load(), c.st.snapshots.Load(), c.st.digestMismatch.Load()
	c.runtimeStats(&s)
	return s
}
