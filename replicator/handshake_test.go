package replicator_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/reinforce-nfv/reinforce/replicator"
)

func nonces(seed byte) func() replicator.Nonce {
	var c byte
	return func() replicator.Nonce {
		c++
		var n replicator.Nonce
		n[0], n[1] = seed, c
		return n
	}
}

// handshake runs initiator and responder to completion, delivering every
// datagram, and returns both.
func handshake(t *testing.T, pskI, pskR []byte) (*replicator.Handshaker, *replicator.Handshaker, error) {
	t.Helper()
	i := replicator.NewHandshaker(pskI, true, nonces(1))
	r := replicator.NewHandshaker(pskR, false, nonces(2))
	i.Hello()
	var firstErr error
	for range 4 {
		for _, d := range i.Out() {
			if _, err := r.Step(d); err != nil && firstErr == nil {
				firstErr = err
			}
		}
		for _, d := range r.Out() {
			if _, err := i.Step(d); err != nil && firstErr == nil {
				firstErr = err
			}
		}
	}
	return i, r, firstErr
}

func TestHandshakeEstablishesOneSession(t *testing.T) {
	psk := []byte("a pre-shared key of some length")
	i, r, err := handshake(t, psk, psk)
	if err != nil {
		t.Fatal(err)
	}
	si, sr := i.Session(), r.Session()
	if si == nil || sr == nil || *si != *sr {
		t.Fatalf("sessions %v %v", si, sr)
	}
	d := si.Seal(nil, 4, []byte("frame"))
	if _, p, err := sr.Open(d); err != nil || string(p) != "frame" {
		t.Fatalf("open: %q %v", p, err)
	}
	d[len(d)-1] ^= 1
	if _, _, err := sr.Open(d); !errors.Is(err, replicator.ErrUnauthenticated) {
		t.Fatalf("tampered frame: %v", err)
	}
}

// Each side must prove the key: a responder without it fails the
// initiator's check of the challenge, an initiator without it the
// responder's check of the response.
func TestHandshakeRefusesWrongKey(t *testing.T) {
	good, bad := []byte("the right key, 16+ bytes"), []byte("the wrong key, 16+ bytes")
	for _, c := range []struct{ i, r []byte }{{good, bad}, {bad, good}} {
		i, r, err := handshake(t, c.i, c.r)
		if !errors.Is(err, replicator.ErrUnauthenticated) || r.Session() != nil {
			t.Fatalf("err %v, responder session %v, initiator session %v", err, r.Session(), i.Session())
		}
	}
}

func FuzzDatagram(f *testing.F) {
	psk := []byte("fuzzing pre-shared key")
	i := replicator.NewHandshaker(psk, true, nonces(1))
	i.Hello()
	hello := i.Out()[0]
	r := replicator.NewHandshaker(psk, false, nonces(2))
	_, _ = r.Step(hello)
	challenge := r.Out()[0]
	_, _ = i.Step(challenge)
	response := i.Out()[0]
	_, _ = r.Step(response)
	s := r.Session()
	for _, d := range [][]byte{hello, challenge, response, s.Seal(nil, 4, []byte("payload")), s.Seal(nil, 5, make([]byte, 24))} {
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var h replicator.Handshake
		if err := replicator.DecodeHandshake(b, &h); err == nil {
			if got := replicator.AppendHandshake(nil, &h); !bytes.Equal(got, b) {
				t.Fatalf("handshake re-encodes as %x, want %x", got, b)
			}
		}
		resp := replicator.NewHandshaker(psk, false, nonces(3))
		_, _ = resp.Step(b)
		init := replicator.NewHandshaker(psk, true, nonces(4))
		init.Hello()
		if ok, err := init.Step(b); ok && err == nil && !bytes.Equal(b, challenge) {
			t.Fatalf("a fuzzed datagram established a session: %x", b)
		}
		_, _, _ = s.Open(b)
	})
}
