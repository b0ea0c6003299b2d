package main

import (
	"bytes"
	"testing"

	"github.com/reinforce-nfv/reinforce/shm"
)

func TestBuildWritesONVMsPacket(t *testing.T) {
	dst := [6]byte{0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
	hdr := []byte{0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x02, 0, 0, 0, 0, 0, 0xb5, 0x88}
	tests := []struct {
		name  string
		f     frame
		i     uint32
		want  []byte
		flags uint8
	}{
		{name: "default: Ethernet header only", f: frame{size: 14, src: fakeSrcMAC, dst: dst, count: 128},
			i: 5, want: hdr, flags: speedBit},
		{name: "padded with zeros to -s", f: frame{size: 20, src: fakeSrcMAC, dst: dst, count: 128},
			i: 0, want: append(append([]byte{}, hdr...), 0, 0, 0, 0, 0, 0), flags: speedBit},
		{name: "probe carries a zero timestamp", f: frame{size: 16, src: fakeSrcMAC, dst: dst, count: 128, latency: true},
			i: 8, want: append(append([]byte{}, hdr...), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), flags: speedBit | latencyBit},
		{name: "non-probe under -l has none", f: frame{size: 16, src: fakeSrcMAC, dst: dst, count: 128, latency: true},
			i: 9, want: append(append([]byte{}, hdr...), 0, 0), flags: speedBit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			room := bytes.Repeat([]byte{0xee}, 64) // stale bytes from the slot's last use
			m := &shm.Meta{}
			m.Reset(0)
			if !tt.f.build(room, m, tt.i) {
				t.Fatal("build refused a packet that fits")
			}
			if got := room[:m.Len]; !bytes.Equal(got, tt.want) {
				t.Errorf("packet % x, want % x", got, tt.want)
			}
			if room[m.Len] != 0xee {
				t.Errorf("build wrote past the packet")
			}
			if m.Flags != tt.flags || m.FlowHash != tt.i || m.MetaFlags&shm.FlagHasHash == 0 || m.Port != 0 {
				t.Errorf("meta flags %#x hash %d metaflags %#x port %d; want flags %#x hash %d with FlagHasHash, port 0",
					m.Flags, m.FlowHash, m.MetaFlags, m.Port, tt.flags, tt.i)
			}
		})
	}
}

func TestBuildRefusesWhatDoesNotFit(t *testing.T) {
	f := frame{size: 14, src: fakeSrcMAC, count: 16, latency: true} // every packet a probe: 22 bytes
	room := make([]byte, 21)
	m := &shm.Meta{}
	if f.build(room, m, 0) {
		t.Fatal("build accepted 22 bytes in 21")
	}
	if !bytes.Equal(room, make([]byte, 21)) || *m != (shm.Meta{}) {
		t.Error("a refused build wrote to the packet or its meta")
	}
	if (&frame{size: 13, count: 1}).build(make([]byte, 64), m, 0) {
		t.Error("build accepted a packet shorter than the Ethernet header")
	}
}

func TestProbesAreEverySixteenthOfTheBatch(t *testing.T) {
	tests := []struct {
		count   uint32
		latency bool
		want    int
	}{
		{128, true, 16},
		{16000, true, 16},
		{16384, true, 16},
		{15, true, 15}, // fewer than 16: all of them
		{20, true, 20}, // 20/16 = 1: every packet, as in ONVM
		{40, true, 20}, // every 2nd
		{0, true, 0},
		{128, false, 0},
	}
	for _, tt := range tests {
		f := frame{size: 14, count: tt.count, latency: tt.latency}
		n := 0
		for i := range tt.count {
			if f.isProbe(i) {
				n++
				if f.length(i) != 22 {
					t.Errorf("count %d: probe %d is %d bytes, want 22", tt.count, i, f.length(i))
				}
			}
		}
		if n != tt.want {
			t.Errorf("count %d latency %v: %d probes, want %d", tt.count, tt.latency, n, tt.want)
		}
	}
}
