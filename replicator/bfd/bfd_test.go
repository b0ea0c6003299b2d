package bfd_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/reinforce-nfv/reinforce/pkt"
	"github.com/reinforce-nfv/reinforce/port/pcap"
	"github.com/reinforce-nfv/reinforce/replicator/bfd"
)

// TestPcapRoundTrip decodes every BFD control packet of a real capture
// (UDP port 3784) and encodes it again byte for byte.
func TestPcapRoundTrip(t *testing.T) {
	f, err := os.Open("../../testdata/pcap/bfd.pcap")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcap.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	states := map[bfd.State]int{}
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var h pkt.Headers
		if err := h.Decode(rec.Data); err != nil || h.Flags&pkt.FlagL4 == 0 || h.Proto != 17 {
			continue
		}
		if dport := uint16(rec.Data[h.L4+2])<<8 | uint16(rec.Data[h.L4+3]); dport != bfd.Port {
			continue
		}
		payload := rec.Data[h.Payload:h.L3End]
		var p bfd.ControlPacket
		if err := bfd.Decode(payload, &p); err != nil {
			t.Fatalf("packet at %d: %v", rec.Offset, err)
		}
		if got := bfd.Append(nil, &p); !bytes.Equal(got, payload) {
			t.Fatalf("packet at %d re-encodes as %x, want %x", rec.Offset, got, payload)
		}
		states[p.State]++
		n++
	}
	if n != 5 || states[bfd.Down] != 1 || states[bfd.Init] != 1 || states[bfd.Up] != 3 {
		t.Fatalf("%d control packets, states %v; want 5: Down, Init, 3× Up", n, states)
	}
}

func newSession(t *testing.T, disc uint32, auth bfd.AuthType, seed uint64) *bfd.Session {
	t.Helper()
	s, err := bfd.New(bfd.Config{LocalDisc: disc, DesiredMinTxMicros: 1000, RequiredMinRxMicros: 1000, DetectMult: 3,
		TickMicros: 100, SlowTxMicros: 10000, AuthType: auth, Key: []byte("secret"), KeyID: 7,
		Rand: rand.New(rand.NewPCG(seed, seed))})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// pair runs two sessions for ticks ticks, delivering every packet unless
// drop says otherwise; it returns the changes each saw.
type pair struct {
	a, b     *bfd.Session
	changesA []bfd.Change
	changesB []bfd.Change
	errs     int
}

func (p *pair) run(t *testing.T, ticks int, drop func(from string) bool) {
	t.Helper()
	for range ticks {
		p.a.Tick()
		p.b.Tick()
		for i := 0; i < 4; i++ { // let Poll/Final answers cross in the same tick
			ra, rb := p.a.Ready(), p.b.Ready()
			p.a.Advance(ra)
			p.b.Advance(rb)
			p.changesA = append(p.changesA, ra.Changes...)
			p.changesB = append(p.changesB, rb.Changes...)
			p.deliver(t, ra.Packets, p.b, drop, "a")
			p.deliver(t, rb.Packets, p.a, drop, "b")
		}
	}
}

func (p *pair) deliver(t *testing.T, pkts [][]byte, to *bfd.Session, drop func(string) bool, from string) {
	for _, b := range pkts {
		if drop != nil && drop(from) {
			continue
		}
		var c bfd.ControlPacket
		if err := bfd.Decode(b, &c); err != nil {
			t.Fatalf("own packet does not decode: %v", err)
		}
		if err := to.Step(&c, b); err != nil {
			p.errs++
		}
	}
}

func TestSessionUpNegotiatesAndDetects(t *testing.T) {
	for _, auth := range []bfd.AuthType{bfd.AuthNone, bfd.AuthKeyedSHA1, bfd.AuthMeticulousSHA1} {
		p := &pair{a: newSession(t, 0x11, auth, 1), b: newSession(t, 0x22, auth, 2)}
		p.run(t, 300, nil) // slow start: 10 ms intervals, 100 µs ticks
		if p.a.State() != bfd.Up || p.b.State() != bfd.Up || p.errs != 0 {
			t.Fatalf("auth %d: states %v %v, %d discarded", auth, p.a.State(), p.b.State(), p.errs)
		}
		if p.a.RemoteDisc() != 0x22 || p.b.RemoteDisc() != 0x11 {
			t.Fatalf("discriminators %x %x", p.a.RemoteDisc(), p.b.RemoteDisc())
		}
		// Once Up, the Poll sequence moved both to 1 ms; detection 3 ms.
		p.run(t, 100, nil)
		if p.a.TxIntervalMicros() != 1000 || p.a.DetectMicros() != 3000 {
			t.Fatalf("tx %d µs, detect %d µs", p.a.TxIntervalMicros(), p.a.DetectMicros())
		}
		// b falls silent: a detects within 3 ms (30 ticks) and says why.
		p.changesA = nil
		p.run(t, 31, func(from string) bool { return from == "b" })
		if len(p.changesA) == 0 || p.changesA[0] != (bfd.Change{From: bfd.Up, To: bfd.Down, Diag: bfd.DiagDetectExpired}) {
			t.Fatalf("auth %d: a saw %v after 3.1 ms of silence", auth, p.changesA)
		}
	}
}

func TestSessionDataTrafficIsLiveness(t *testing.T) {
	p := &pair{a: newSession(t, 1, bfd.AuthMeticulousSHA1, 3), b: newSession(t, 2, bfd.AuthMeticulousSHA1, 4)}
	p.run(t, 400, nil)
	if p.a.State() != bfd.Up {
		t.Fatal("not up")
	}
	// b's heartbeats are lost, but replication frames from b keep coming.
	for range 20 {
		p.a.Heard()
		p.run(t, 10, func(from string) bool { return from == "b" })
	}
	if p.a.State() != bfd.Up {
		t.Fatalf("a went %v while data flowed", p.a.State())
	}
}

func TestSessionRejectsForgedAndReplayed(t *testing.T) {
	a := newSession(t, 1, bfd.AuthMeticulousSHA1, 5)
	b := newSession(t, 2, bfd.AuthMeticulousSHA1, 6)
	a.Tick()
	rd := a.Ready()
	a.Advance(rd)
	pktb := rd.Packets[0]
	var c bfd.ControlPacket
	if err := bfd.Decode(pktb, &c); err != nil {
		t.Fatal(err)
	}
	if err := b.Step(&c, pktb); err != nil {
		t.Fatal(err)
	}
	// The same packet again: meticulous keying refuses the old sequence.
	if err := b.Step(&c, pktb); !errors.Is(err, bfd.ErrAuth) {
		t.Fatalf("replay: %v", err)
	}
	// A forged packet (wrong key) and a tampered one.
	forged := newSession(t, 1, bfd.AuthMeticulousSHA1, 5)
	forged.Tick()
	fb := forged.Ready().Packets[0]
	bad := bytes.Clone(fb)
	bfd.Sign(bad, bfd.AuthMeticulousSHA1, []byte("guess"))
	_ = bfd.Decode(bad, &c)
	if err := b.Step(&c, bad); !errors.Is(err, bfd.ErrAuth) {
		t.Fatalf("wrong key: %v", err)
	}
	if got := b.Counters().AuthFailures; got != 2 {
		t.Fatalf("%d auth failures, want 2", got)
	}
}

func FuzzDecode(f *testing.F) {
	s, _ := bfd.New(bfd.Config{LocalDisc: 9, AuthType: bfd.AuthMeticulousSHA1, Key: []byte("k"), Rand: rand.New(rand.NewPCG(1, 1))})
	s.Tick()
	f.Add(s.Ready().Packets[0])
	f.Add([]byte{0x20, 0x40, 0x03, 0x18, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0x0f, 0x42, 0x40, 0, 0x0f, 0x42, 0x40, 0, 0x07, 0xa1, 0x20})
	f.Add(bfd.Append(nil, &bfd.ControlPacket{Version: 1, State: bfd.Down, DetectMult: 3, MyDisc: 1, Auth: true, AuthType: bfd.AuthSimplePassword, AuthData: []byte("pw")}))
	f.Fuzz(func(t *testing.T, b []byte) {
		var p bfd.ControlPacket
		if err := bfd.Decode(b, &p); err != nil {
			return
		}
		got := bfd.Append(nil, &p)
		if !bytes.Equal(got, b[:p.Length]) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", got, b[:p.Length])
		}
		s, _ := bfd.New(bfd.Config{LocalDisc: 1, AuthType: bfd.AuthMeticulousSHA1, Key: []byte("k"), Rand: rand.New(rand.NewPCG(1, 1))})
		_ = s.Step(&p, b)
		s.Tick()
	})
}
