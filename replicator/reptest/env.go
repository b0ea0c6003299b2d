package reptest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"strings"
	"testing"

	"github.com/reinforce-nfv/reinforce/replicator"
)

// Env is two replicators, "p" and "s", joined by a network the script
// controls frame by frame. Payloads follow a convention that makes every
// applied byte checkable: a proposal for latch L is the record
// [L u64][n u32][n filler bytes], a coalesced transaction is a sequence of
// records, and a snapshot is the records of every latch proposed so far.
// Each node's State is the list of latches its applied transactions carried.
type Env struct {
	Nodes     map[string]*replicator.Replicator
	Queue     map[string][][]byte // frames in flight, by destination
	State     map[string][]replicator.LatchID
	Proposed  map[string][]replicator.LatchID // by primary, in proposal order
	Released  map[string]replicator.LatchID
	Partition bool
	joinIDs   uint64
}

// NewEnv returns an empty Env.
func NewEnv() *Env {
	return &Env{
		Nodes: map[string]*replicator.Replicator{}, Queue: map[string][][]byte{},
		State: map[string][]replicator.LatchID{}, Proposed: map[string][]replicator.LatchID{},
		Released: map[string]replicator.LatchID{},
	}
}

// Peer returns the other node's name.
func Peer(name string) string {
	if name == "p" {
		return "s"
	}
	return "p"
}

// Record returns the payload of a proposal for latch l with n filler bytes.
func Record(l replicator.LatchID, n int) []byte {
	b := binary.BigEndian.AppendUint64(nil, uint64(l))
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	for i := range n {
		b = append(b, byte(uint64(l)+uint64(i)))
	}
	return b
}

// Latches decodes a payload of records, checking every filler byte.
func Latches(p []byte) ([]replicator.LatchID, error) {
	var out []replicator.LatchID
	for len(p) > 0 {
		if len(p) < 12 {
			return out, fmt.Errorf("record header cut at %d bytes", len(p))
		}
		l := replicator.LatchID(binary.BigEndian.Uint64(p))
		n := int(binary.BigEndian.Uint32(p[8:]))
		if len(p) < 12+n {
			return out, fmt.Errorf("latch %d: record of %d bytes cut at %d", l, n, len(p)-12)
		}
		for i := range n {
			if p[12+i] != byte(uint64(l)+uint64(i)) {
				return out, fmt.Errorf("latch %d: filler byte %d differs", l, i)
			}
		}
		out = append(out, l)
		p = p[12+n:]
	}
	return out, nil
}

// New makes node name with cfg (a standby gets a fresh JoinID).
func (e *Env) New(name string, cfg replicator.Config) error {
	e.joinIDs += 100
	cfg.JoinID = e.joinIDs
	r, err := replicator.New(cfg)
	if err != nil {
		return err
	}
	e.Nodes[name] = r
	e.State[name] = nil
	e.Queue[name] = nil
	e.Released[name] = 0
	return nil
}

// Propose steps a proposal for latch l with n filler bytes into name.
func (e *Env) Propose(name string, l replicator.LatchID, n int) error {
	err := e.Nodes[name].Step(replicator.Msg{Type: replicator.MsgPropose, Latch: l, Payload: Record(l, n)})
	if err == nil {
		e.Proposed[name] = append(e.Proposed[name], l)
	}
	return err
}

// Snapshot steps a snapshot of everything name proposed.
func (e *Env) Snapshot(name string) error {
	var b []byte
	for _, l := range e.Proposed[name] {
		b = append(b, Record(l, 0)...)
	}
	return e.Nodes[name].Step(replicator.Msg{Type: replicator.MsgSnapshot, Payload: b})
}

// HandleReady processes name's Ready: frames go to the peer's queue (or
// nowhere in a partition), applies update State, releases are checked to
// grow. It returns a description, one line per item.
func (e *Env) HandleReady(name string) (string, error) {
	r := e.Nodes[name]
	rd := r.Ready()
	var sb strings.Builder
	if rd.Role != 0 {
		fmt.Fprintf(&sb, "role %v epoch=%d\n", rd.Role, r.Epoch())
	}
	if rd.NeedSnapshot {
		sb.WriteString("need-snapshot\n")
	}
	for _, f := range rd.Frames {
		fmt.Fprintf(&sb, "send %s\n", Describe(f))
		if !e.Partition {
			e.Queue[Peer(name)] = append(e.Queue[Peer(name)], slices.Clone(f))
		}
	}
	var err error
	for _, a := range rd.Apply {
		ls, derr := Latches(a.Payload)
		if derr != nil {
			err = errors.Join(err, fmt.Errorf("apply tx %d: %w", a.TxID, derr))
		}
		kind := "apply"
		if a.Snapshot {
			kind = "install snapshot"
			e.State[name] = nil
		}
		e.State[name] = append(e.State[name], ls...)
		fmt.Fprintf(&sb, "%s tx=%d latches=%s\n", kind, a.TxID, joinLatches(ls))
	}
	if rd.Release != 0 {
		if rd.Release <= e.Released[name] {
			err = errors.Join(err, fmt.Errorf("release %d after %d", rd.Release, e.Released[name]))
		}
		e.Released[name] = rd.Release
		fmt.Fprintf(&sb, "release <=%d\n", rd.Release)
	}
	r.Advance(rd)
	return sb.String(), err
}

func joinLatches(ls []replicator.LatchID) string {
	if len(ls) == 0 {
		return "-"
	}
	s := make([]string, len(ls))
	for i, l := range ls {
		s[i] = fmt.Sprint(l)
	}
	return strings.Join(s, ",")
}

// Deliver steps frame i of to's queue into to, removing it; it returns the
// Step result.
func (e *Env) Deliver(to string, i int) error {
	f := e.Queue[to][i]
	e.Queue[to] = slices.Delete(e.Queue[to], i, i+1)
	return e.Nodes[to].Step(replicator.Msg{Type: replicator.MsgFrame, Payload: f})
}

// Describe summarises an encoded frame.
func Describe(b []byte) string {
	var f replicator.Frame
	if err := replicator.DecodeFrame(b, &f); err != nil {
		return "undecodable: " + err.Error()
	}
	switch f.Type {
	case replicator.FrameData:
		s := fmt.Sprintf("data epoch=%d tx=%d chunk=%d/%d len=%d", f.Epoch, f.TxID, f.Chunk, f.Chunks, f.TxLen)
		if f.Flags&replicator.FlagSnapshot != 0 {
			s += " snapshot"
		}
		return s
	case replicator.FrameAck:
		return fmt.Sprintf("ack epoch=%d tx=%d", f.Epoch, f.TxID)
	case replicator.FrameJoin:
		return fmt.Sprintf("join epoch=%d id=%d", f.Epoch, f.TxID)
	case replicator.FrameJoinAccept:
		return fmt.Sprintf("join-accept epoch=%d cut=%d id=%d", f.Epoch, f.TxID, f.JoinID)
	case replicator.FrameJoinReject:
		return fmt.Sprintf("join-reject epoch=%d reason=%d", f.Epoch, f.Reason)
	}
	return "?"
}

// Do runs one script command. The commands, with examples:
//
//	new p role=primary epoch=1 window=3 digest=a maxtx=4096 retransmit=5 join=20
//	propose p latch=1 size=100
//	snapshot p
//	ready p                  (Ready, then Advance)
//	deliver s                (every queued frame, in order)
//	deliver s drop=0,2 dup=1 (drop some, repeat some)
//	deliver s order=2,0      (these, in this order; the rest stay queued)
//	deliver s corrupt=1      (flip a byte of frame 1 first)
//	tick p n=5
//	epoch s epoch=2 role=primary
//	inject s type=data epoch=1 tx=9 size=4 (a frame from nowhere: forged, stale)
//	inject p type=ack tx=9
//	partition on|off
//	restart s                (a new process: state and queue lost)
//	rejoin s                 (the standby's Apply failed: Replicator.Rejoin)
//	stabilize                (ready and deliver on both until quiet)
//	queue | state | stats p
func (e *Env) Do(t testing.TB, c *Cmd) string {
	name := "p"
	if len(c.Args) > 0 && c.Args[0].Vals == nil && (c.Args[0].Key == "p" || c.Args[0].Key == "s") {
		name = c.Args[0].Key
	}
	switch c.Name {
	case "new", "restart":
		cfg := replicator.Config{Epoch: replicator.Epoch(c.Int(t, "epoch", 1)), Window: c.Int(t, "window", 0),
			MaxTxBytes: c.Int(t, "maxtx", 0), RetransmitTicks: c.Int(t, "retransmit", 0), JoinTicks: c.Int(t, "join", 0)}
		cfg.Role = replicator.RoleStandby
		if c.Str("role", "") == "primary" {
			cfg.Role = replicator.RolePrimary
		}
		if c.Name == "restart" {
			if old := e.Nodes[name]; old != nil && c.Str("epoch", "") == "" {
				cfg.Epoch = old.Epoch()
			}
		}
		copy(cfg.Digest[:], c.Str("digest", "a"))
		if err := e.New(name, cfg); err != nil {
			return "error: " + err.Error()
		}
		return "ok"
	case "propose":
		if err := e.Propose(name, replicator.LatchID(c.Int(t, "latch", 0)), c.Int(t, "size", 0)); err != nil {
			return "error: " + err.Error()
		}
		return "ok"
	case "snapshot":
		if err := e.Snapshot(name); err != nil {
			return "error: " + err.Error()
		}
		return "ok"
	case "ready":
		s, err := e.HandleReady(name)
		if err != nil {
			t.Errorf("%s: %v", c.Pos, err)
		}
		return s
	case "deliver":
		return e.deliverCmd(t, name, c)
	case "rejoin":
		e.Nodes[name].Rejoin()
		return "ok"
	case "tick":
		for range c.Int(t, "n", 1) {
			e.Nodes[name].Tick()
		}
		return "ok"
	case "epoch":
		role := replicator.RoleStandby
		if c.Str("role", "") == "primary" {
			role = replicator.RolePrimary
		}
		was := e.Nodes[name].Role()
		err := e.Nodes[name].Step(replicator.Msg{Type: replicator.MsgEpoch, Epoch: replicator.Epoch(c.Int(t, "epoch", 0)), Role: role})
		if err != nil {
			return "error: " + err.Error()
		}
		if role == replicator.RolePrimary && was != replicator.RolePrimary {
			// The new primary's proposals continue from its state.
			e.Proposed[name] = slices.Clone(e.State[name])
		}
		return "ok"
	case "inject":
		// inject s type=data epoch=1 tx=9 chunk=0 chunks=1 size=4 [snapshot]
		// inject p type=ack epoch=1 tx=9
		f := replicator.Frame{Epoch: replicator.Epoch(c.Int(t, "epoch", int(e.Nodes[name].Epoch()))), TxID: replicator.TxID(c.Int(t, "tx", 0))}
		switch c.Str("type", "") {
		case "data":
			f.Type = replicator.FrameData
			f.Payload = Record(replicator.LatchID(c.Int(t, "latch", 99)), c.Int(t, "size", 0))
			f.Chunk, f.Chunks, f.TxLen = uint32(c.Int(t, "chunk", 0)), uint32(c.Int(t, "chunks", 1)), uint32(len(f.Payload))
			f.TxCRC = crc32.Checksum(f.Payload, crc32.MakeTable(crc32.Castagnoli))
			if c.Has("snapshot") {
				f.Flags = replicator.FlagSnapshot
			}
		case "ack":
			f.Type = replicator.FrameAck
		default:
			t.Fatalf("%s: inject type=data|ack", c.Pos)
		}
		b := replicator.AppendFrame(nil, &f)
		err := e.Nodes[name].Step(replicator.Msg{Type: replicator.MsgFrame, Payload: b})
		return fmt.Sprintf("%s <- %s%s", name, Describe(b), errSuffix(err))
	case "partition":
		e.Partition = c.Has("on")
		if e.Partition {
			e.Queue["p"], e.Queue["s"] = nil, nil
		}
		return "ok"
	case "stabilize":
		var sb strings.Builder
		for i := 0; i < 100; i++ {
			busy := false
			for _, n := range []string{"p", "s"} {
				if e.Nodes[n] == nil {
					continue
				}
				if e.Nodes[n].HasReady() {
					busy = true
					s, err := e.HandleReady(n)
					if err != nil {
						t.Errorf("%s: %v", c.Pos, err)
					}
					for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
						fmt.Fprintf(&sb, "%s: %s\n", n, l)
					}
				}
			}
			for _, n := range []string{"p", "s"} {
				for len(e.Queue[n]) > 0 && e.Nodes[n] != nil {
					busy = true
					d := Describe(e.Queue[n][0])
					err := e.Deliver(n, 0)
					fmt.Fprintf(&sb, "%s <- %s%s\n", n, d, errSuffix(err))
				}
			}
			if !busy {
				break
			}
		}
		return sb.String()
	case "queue":
		var sb strings.Builder
		for _, n := range []string{"p", "s"} {
			for i, f := range e.Queue[n] {
				fmt.Fprintf(&sb, "to %s [%d] %s\n", n, i, Describe(f))
			}
		}
		return sb.String()
	case "state":
		var sb strings.Builder
		for _, n := range []string{"p", "s"} {
			if r := e.Nodes[n]; r != nil {
				fmt.Fprintf(&sb, "%s: %v epoch=%d joined=%v applied=%d released=%d state=%s\n", n, r.Role(), r.Epoch(), r.Joined(), r.Applied(), e.Released[n], joinLatches(e.State[n]))
			}
		}
		return sb.String()
	case "stats":
		return fmt.Sprintf("%+v", e.Nodes[name].Counters())
	}
	t.Fatalf("%s: unknown command %q", c.Pos, c.Name)
	return ""
}

func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return ": " + err.Error()
}

func (e *Env) deliverCmd(t testing.TB, to string, c *Cmd) string {
	q := e.Queue[to]
	for _, i := range c.Ints(t, "corrupt") {
		q[i][len(q[i])/2] ^= 0x40
	}
	var order []int
	if c.Has("order") {
		order = c.Ints(t, "order")
	} else {
		for i := range q {
			order = append(order, i)
		}
	}
	drop := c.Ints(t, "drop")
	dup := c.Ints(t, "dup")
	frames := slices.Clone(q)
	var rest [][]byte
	for i, f := range q {
		if !slices.Contains(order, i) {
			rest = append(rest, f)
		}
	}
	e.Queue[to] = nil
	var sb strings.Builder
	for _, i := range order {
		if i >= len(frames) {
			fmt.Fprintf(&sb, "error: no frame %d (%d queued)\n", i, len(frames))
			continue
		}
		if slices.Contains(drop, i) {
			fmt.Fprintf(&sb, "drop %s\n", Describe(frames[i]))
			continue
		}
		n := 1
		if slices.Contains(dup, i) {
			n = 2
		}
		for range n {
			err := e.Nodes[to].Step(replicator.Msg{Type: replicator.MsgFrame, Payload: frames[i]})
			fmt.Fprintf(&sb, "%s <- %s%s\n", to, Describe(frames[i]), errSuffix(err))
		}
	}
	e.Queue[to] = append(rest, e.Queue[to]...)
	return sb.String()
}
