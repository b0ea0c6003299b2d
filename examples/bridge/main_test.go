package main

import "testing"

func TestBridgeSendsPort0To1AndTheRestTo0(t *testing.T) {
	for in, want := range map[uint16]uint16{0: 1, 1: 0, 2: 0, 7: 0} {
		if got := dest(in); got != want {
			t.Errorf("from port %d: out %d, want %d", in, got, want)
		}
	}
}
