package pkt

import (
	"encoding/binary"
	"testing"
)

// FuzzDecode checks that no input makes Decode or the accessors panic or
// read outside the frame, and that what Decode accepts is self-consistent:
// offsets ordered and inside the frame, checksums settable and then
// verifiable, the 5-tuple hash symmetric. Seeds: every frame of the captures
// in pcapDir when present, plus built frames of each kind.
func FuzzDecode(f *testing.F) {
	for _, fr := range pcapFrames(f) {
		f.Add(fr)
	}
	f.Add(udp4(f, 18))
	f.Add(tcp4(f, 6))
	f.Add(icmp4(f, 18))
	f.Add(withTags(udp4(f, 18), EtherTypeQinQ, 1, EtherTypeVLAN, 2))
	f.Add(ipv6Frame(f, protoHopByHop, []byte{protoFragment, 0, 1, 4, 0, 0, 0, 0, ProtoTCP, 0, 0, 0, 0, 0, 0, 1}, ProtoTCP, make([]byte, 20)))
	f.Add(ipv6Frame(f, 0, nil, ProtoICMPv6, make([]byte, 8)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, frame []byte) {
		var h Headers
		if err := h.Decode(frame); err != nil {
			if _, ok := err.(*FrameError); !ok {
				t.Fatalf("error %v is not a *FrameError", err)
			}
			return
		}
		n := len(frame)
		if int(h.L3) > n || h.L3End < h.L3 || int(h.L3End) > n || h.VLANs > MaxVLANTags {
			t.Fatalf("offsets out of order or range: %+v (len %d)", h, n)
		}
		if h.Flags&FlagL4 != 0 && (h.L4 < h.L3 || h.Payload < h.L4 || h.Payload > h.L3End) {
			t.Fatalf("L4 offsets out of order: %+v", h)
		}
		if h.IPVersion == 0 && h.Flags != 0 {
			t.Fatalf("flags on a non-IP frame: %+v", h)
		}
		ft, ok := h.FiveTuple(frame)
		if ok != (h.IPVersion != 0) {
			t.Fatalf("FiveTuple ok = %v for IP version %d", ok, h.IPVersion)
		}
		if SymmetricHash(ft) != SymmetricHash(ft.Reverse()) {
			t.Fatal("hash not symmetric")
		}
		h.VerifyIPv4Checksum(frame)
		if c, ok := h.L4Checksum(frame); ok {
			if want := naiveL4Checksum(frame, &h); c != want {
				t.Fatalf("L4Checksum %#04x, naive %#04x", c, want)
			}
			g := append([]byte(nil), frame...)
			if !h.SetL4Checksum(g) || !h.VerifyL4Checksum(g) {
				t.Fatal("checksum set but does not verify")
			}
		}
		if h.IPVersion == 4 {
			g := append([]byte(nil), frame...)
			if !h.SetIPv4Checksum(g) || !h.VerifyIPv4Checksum(g) {
				t.Fatal("IPv4 checksum set but does not verify")
			}
			if binary.BigEndian.Uint16(g[h.L3+2:]) != h.L3End-h.L3 {
				t.Fatal("L3End disagrees with the total length")
			}
		}
	})
}
