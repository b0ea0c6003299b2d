package main

import (
	"math"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/internal/testenv"
)

func TestImpairerRatesAndOrder(t *testing.T) {
	seed := testenv.Seed(t)
	m := NewImpairer(Params{Loss: 0.1, Dup: 0.1, Reorder: 0.1, ReorderDelay: 5 * time.Millisecond}, seed, 0)
	now := time.Unix(0, 0)
	const n = 20000
	var out [][]byte
	for i := range n {
		m.Arrive(now, []byte{byte(i >> 8), byte(i)})
		now = now.Add(100 * time.Microsecond)
		out = m.Due(now, out)
	}
	out = m.Due(now.Add(time.Second), out)
	near := func(got uint64, p float64) bool { return math.Abs(float64(got)/n-p) < 0.02 }
	if !near(m.C.Lost, 0.1) || !near(m.C.Duplicated, 0.09) {
		t.Fatalf("counters %+v", m.C)
	}
	if uint64(len(out)) != m.C.Out || m.C.Out != n-m.C.Lost+m.C.Duplicated {
		t.Fatalf("out %d, counters %+v", len(out), m.C)
	}
	inversions := 0
	for i := 1; i < len(out); i++ {
		if int(out[i][0])<<8|int(out[i][1]) < int(out[i-1][0])<<8|int(out[i-1][1]) {
			inversions++
		}
	}
	if inversions < n/20 {
		t.Fatalf("only %d inversions: no reordering", inversions)
	}
}

func TestImpairerBlackout(t *testing.T) {
	m := NewImpairer(Params{}, 1, 0)
	now := time.Unix(0, 0)
	m.BlackUntil = now.Add(200 * time.Millisecond)
	m.Arrive(now.Add(199*time.Millisecond), []byte{1})
	m.Arrive(now.Add(200*time.Millisecond), []byte{2})
	out := m.Due(now.Add(time.Second), nil)
	if len(out) != 1 || out[0][0] != 2 || m.C.Blackholed != 1 {
		t.Fatalf("out %v counters %+v", out, m.C)
	}
}

func TestCommands(t *testing.T) {
	r := &relay{dirs: [2]*Impairer{NewImpairer(Params{}, 1, 0), NewImpairer(Params{}, 1, 1)}}
	for cmd, want := range map[string]string{
		"loss 0.25": "ok", "loss 2": `error: probability "2"`, "delay 3ms": "ok", "blackout x": `error: duration "x"`,
		"frobnicate 1": `error: unknown command "frobnicate"`, "": "error: empty command",
	} {
		if got := r.command(cmd); got != want {
			t.Errorf("%q: %q, want %q", cmd, got, want)
		}
	}
	if r.dirs[1].P.Loss != 0.25 || r.dirs[0].P.Delay != 3*time.Millisecond {
		t.Fatalf("params %+v", r.dirs[1].P)
	}
}
