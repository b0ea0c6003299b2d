package arbiter

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

var testPSK = []byte("0123456789abcdef-arbiter-test")

func known(MemberID) bool { return true }

func TestWireRoundTrip(t *testing.T) {
	arb, _ := NewCodec(ArbiterID, testPSK, 1)
	mem, _ := NewCodec(5, testPSK, 1)
	toMember := []Msg{
		{Type: MsgLeaseGrant, Chain: 3, Epoch: 9, Seq: 44, Lease: 6 * time.Millisecond, Inc: 12},
		{Type: MsgPromote, Chain: 3, Epoch: 9},
		{Type: MsgDemote, Chain: 3, Epoch: 9, Primary: 6},
		{Type: MsgYield, Chain: 3, Epoch: 9},
	}
	for _, m := range toMember {
		b := arb.Seal(nil, 5, m)
		if len(b) != MsgLen {
			t.Fatalf("%v: %d bytes", m, len(b))
		}
		from, got, err := mem.Open(b, known)
		if err != nil || from != ArbiterID || got != m {
			t.Fatalf("%v: got %v from %d, %v", m, got, from, err)
		}
	}
	toArbiter := []Msg{
		{Type: MsgLeaseRequest, Chain: 3, Epoch: 9, Seq: 45, Inc: 12},
		{Type: MsgPromoted, Chain: 3, Epoch: 9, Inc: 12},
		{Type: MsgDemoted, Chain: 3, Epoch: 9, Inc: 12},
		{Type: MsgYielded, Chain: 3, Epoch: 9, Inc: 12},
		{Type: MsgHello, Chain: 3, Inc: 12},
		{Type: MsgStandbyStatus, Chain: 3, Epoch: 9, Inc: 12},
		{Type: MsgStandbyStatus, Chain: 3, Epoch: 9, Ready: true, Inc: 12},
	}
	for _, m := range toArbiter {
		from, got, err := arb.Open(mem.Seal(nil, ArbiterID, m), known)
		if err != nil || from != 5 || got != m {
			t.Fatalf("%v: got %v from %d, %v", m, got, from, err)
		}
	}
}

func TestWireRejects(t *testing.T) {
	arb, _ := NewCodec(ArbiterID, testPSK, 100)
	mem, _ := NewCodec(5, testPSK, 100)
	other, _ := NewCodec(6, testPSK, 1)
	wrongKey, _ := NewCodec(ArbiterID, []byte("another key of 16+ bytes"), 1000)
	grant := Msg{Type: MsgLeaseGrant, Chain: 3, Epoch: 9, Seq: 44, Lease: time.Millisecond}

	first := arb.Seal(nil, 5, grant)
	second := arb.Seal(nil, 5, grant)
	third := arb.Seal(nil, 5, grant)
	// Reordered: third, then first and second still pass (window), then
	// each again is a replay.
	for _, b := range [][]byte{third, first, second} {
		if _, _, err := mem.Open(b, known); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range [][]byte{third, first, second} {
		if _, _, err := mem.Open(b, known); !errors.Is(err, ErrReplay) {
			t.Fatalf("replay: %v", err)
		}
	}
	// Far behind the window.
	old := arb.Seal(nil, 5, grant)
	for range replayWindow + 1 {
		if _, _, err := mem.Open(arb.Seal(nil, 5, grant), known); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := mem.Open(old, known); !errors.Is(err, ErrReplay) {
		t.Fatalf("old: %v", err)
	}
	// Forged, tampered, wrong key, wrong recipient, unknown sender.
	tampered := bytes.Clone(arb.Seal(nil, 5, grant))
	tampered[30] ^= 1
	if _, _, err := mem.Open(tampered, known); !errors.Is(err, ErrAuth) {
		t.Fatalf("tampered: %v", err)
	}
	if _, _, err := mem.Open(wrongKey.Seal(nil, 5, grant), known); !errors.Is(err, ErrAuth) {
		t.Fatalf("wrong key: %v", err)
	}
	var we *WireError
	if _, _, err := other.Open(arb.Seal(nil, 5, grant), known); !errors.As(err, &we) {
		t.Fatalf("not for us: %v", err)
	}
	if _, _, err := mem.Open(arb.Seal(nil, 5, grant), func(MemberID) bool { return false }); !errors.Is(err, ErrUnknownSender) {
		t.Fatalf("unknown sender: %v", err)
	}
	// Malformed.
	good := arb.Seal(nil, 5, grant)
	for name, mut := range map[string]func([]byte) []byte{
		"short":         func(b []byte) []byte { return b[:MsgLen-1] },
		"long":          func(b []byte) []byte { return append(b, 0) },
		"kind":          func(b []byte) []byte { b[0] = KindBFD; return b },
		"version 1":     func(b []byte) []byte { b[1] = 1; return b },
		"version 3":     func(b []byte) []byte { b[1] = 3; return b },
		"type 0":        func(b []byte) []byte { b[2] = 0; return b },
		"type 99":       func(b []byte) []byte { b[2] = 99; return b },
		"reserved":      func(b []byte) []byte { b[3] = 1; return b },
		"seq 0":         func(b []byte) []byte { clear(b[12:20]); return b },
		"epoch 0":       func(b []byte) []byte { clear(b[24:32]); return b },
		"grant 0 µs":    func(b []byte) []byte { clear(b[40:44]); return b },
		"grant > 1 h":   func(b []byte) []byte { b[40] = 0xff; return b },
		"direction":     func(b []byte) []byte { b[2] = byte(MsgLeaseRequest); return b },
		"inc 0":         func(b []byte) []byte { return mem.Seal(nil, ArbiterID, Msg{Type: MsgYielded, Chain: 1, Epoch: 1}) },
		"from == to":    func(b []byte) []byte { copy(b[4:8], b[8:12]); return b },
		"promote+arg":   func(b []byte) []byte { b[2] = byte(MsgPromote); return b },
		"demote to arb": func(b []byte) []byte { b[2] = byte(MsgDemote); clear(b[32:44]); return b },
	} {
		if _, _, err := Decode(mut(bytes.Clone(good))); !errors.As(err, &we) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// StandbyStatus: the flag is 0 or 1, nothing else; only to the arbiter;
	// never at epoch 0.
	status := mem.Seal(nil, ArbiterID, Msg{Type: MsgStandbyStatus, Chain: 3, Epoch: 9, Ready: true, Inc: 12})
	for name, mut := range map[string]func([]byte) []byte{
		"status flag 2":     func(b []byte) []byte { b[43] = 2; return b },
		"status flag high":  func(b []byte) []byte { b[40] = 1; return b },
		"status with seq":   func(b []byte) []byte { b[39] = 1; return b },
		"status epoch 0":    func(b []byte) []byte { clear(b[24:32]); return b },
		"status to member":  func(b []byte) []byte { copy(b[4:8], b[8:12]); b[11] = 5; return b },
		"status inc 0":      func(b []byte) []byte { clear(b[44:52]); return b },
		"status from arbit": func(b []byte) []byte { clear(b[4:8]); b[11] = 5; return b },
	} {
		if _, _, err := Decode(mut(bytes.Clone(status))); !errors.As(err, &we) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, _, err := Decode(status); err != nil {
		t.Fatal(err)
	}
	if _, err := NewCodec(1, []byte("short"), 1); err == nil {
		t.Fatal("short PSK accepted")
	}
}

func TestWireAllocationFree(t *testing.T) {
	arb, _ := NewCodec(ArbiterID, testPSK, 1)
	mem, _ := NewCodec(5, testPSK, 1)
	buf := make([]byte, 0, MsgLen)
	m := Msg{Type: MsgLeaseGrant, Chain: 3, Epoch: 9, Seq: 44, Lease: time.Millisecond}
	mem.Open(arb.Seal(buf[:0], 5, m), known) // creates the sender's window
	if n := testing.AllocsPerRun(100, func() {
		if _, _, err := mem.Open(arb.Seal(buf[:0], 5, m), known); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per seal+open", n)
	}
}

func TestBFDKeyPerMember(t *testing.T) {
	if k := BFDKey(testPSK, 1); len(k) != 20 || bytes.Equal(k, BFDKey(testPSK, 2)) || !bytes.Equal(k, BFDKey(testPSK, 1)) {
		t.Fatal("BFD keys must be 20 bytes, per member, deterministic")
	}
}

// FuzzDecode: any datagram decodes without panicking; a decoded message
// re-encodes to the same bytes (MAC aside); opening it never panics and
// feeding it to both state machines never panics.
func FuzzDecode(f *testing.F) {
	arb, _ := NewCodec(ArbiterID, testPSK, 1)
	mem, _ := NewCodec(1, testPSK, 1)
	f.Add(arb.Seal(nil, 1, Msg{Type: MsgLeaseGrant, Chain: 7, Epoch: 1, Seq: 3, Lease: time.Millisecond}))
	f.Add(arb.Seal(nil, 1, Msg{Type: MsgDemote, Chain: 7, Epoch: 2, Primary: 2}))
	f.Add(mem.Seal(nil, ArbiterID, Msg{Type: MsgLeaseRequest, Chain: 7, Epoch: 1, Seq: 3, Inc: 1}))
	f.Add(mem.Seal(nil, ArbiterID, Msg{Type: MsgYielded, Chain: 7, Epoch: 1, Inc: 1}))
	f.Add(mem.Seal(nil, ArbiterID, Msg{Type: MsgHello, Chain: 7, Inc: 5}))
	f.Add(mem.Seal(nil, ArbiterID, Msg{Type: MsgStandbyStatus, Chain: 7, Epoch: 1, Ready: true, Inc: 5}))
	f.Add(mem.Seal(nil, ArbiterID, Msg{Type: MsgStandbyStatus, Chain: 7, Epoch: 3, Inc: 5}))
	f.Add([]byte{KindMsg})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, m, err := Decode(b)
		if err == nil {
			re := Encode(nil, h, m)
			if !bytes.Equal(re[:MsgLen-macLen], b[:MsgLen-macLen]) {
				t.Fatalf("re-encoding differs:\n%x\n%x", re, b)
			}
		}
		rx, _ := NewCodec(1, testPSK, 1)
		rx.Open(b, known)
		a, _ := NewArbiter(Config{Chains: []ChainConfig{{ID: 7, Members: [2]MemberID{1, 2}, Primary: 1, Epoch: 1}}}, 0)
		mm, _ := NewMember(MemberConfig{ID: 1, Chains: []ChainID{7}})
		if err == nil {
			a.Step(time.Second, h.From, m)
			mm.Step(time.Second, m)
			mm.SetStandbyReady(7, m.Epoch, m.Ready)
			mm.Tick(2 * time.Second)
			a.SetLive(2*time.Second, 1, false)
			a.Tick(time.Hour)
			a.Ready()
			mm.Ready()
		}
	})
}
