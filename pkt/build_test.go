package pkt

import (
	"errors"
	"testing"
)

func TestBuildersWriteValidFrames(t *testing.T) {
	buf := make([]byte, 9600)
	for _, payload := range []int{0, 1, 18, 1000, 9000} {
		for _, tc := range []struct {
			name  string
			build func() (int, error)
			proto uint8
			hdr   int
		}{
			{"udp4", func() (int, error) { return BuildUDP4(buf, macA, macB, ipA, ipB, 1, 2, payload) }, ProtoUDP, 42},
			{"tcp4", func() (int, error) { return BuildTCP4(buf, macA, macB, ipA, ipB, 1, 2, payload) }, ProtoTCP, 54},
			{"icmp4", func() (int, error) { return BuildICMP4Echo(buf, macA, macB, ipA, ipB, 1, 2, payload) }, ProtoICMP, 42},
		} {
			for i := range buf {
				buf[i] = 0xEE // garbage the builder must overwrite
			}
			n, err := tc.build()
			if err != nil {
				t.Fatalf("%s payload %d: %v", tc.name, payload, err)
			}
			if n != tc.hdr+payload {
				t.Fatalf("%s payload %d: length %d", tc.name, payload, n)
			}
			f := buf[:n]
			var h Headers
			if err := h.Decode(f); err != nil {
				t.Fatalf("%s payload %d: Decode: %v", tc.name, payload, err)
			}
			if h.Proto != tc.proto || int(h.Payload) != tc.hdr || int(h.L3End) != n || h.Flags != FlagL4 {
				t.Fatalf("%s payload %d: decoded %+v", tc.name, payload, h)
			}
			if !h.VerifyIPv4Checksum(f) || !h.VerifyL4Checksum(f) {
				t.Fatalf("%s payload %d: checksums do not verify", tc.name, payload)
			}
			for i := tc.hdr; i < n; i++ {
				if f[i] != 0 {
					t.Fatalf("%s payload %d: payload byte %d is %#x, want 0", tc.name, payload, i, f[i])
				}
			}
			if [6]byte(f[0:6]) != macB || [6]byte(f[6:12]) != macA || [4]byte(f[OffIPv4Src:]) != ipA || [4]byte(f[OffIPv4Dst:]) != ipB {
				t.Fatalf("%s: addresses not where the Off constants say", tc.name)
			}
		}
	}
}

func TestBuildErrors(t *testing.T) {
	small := make([]byte, 41)
	if _, err := BuildUDP4(small, macA, macB, ipA, ipB, 1, 2, 0); !errors.Is(err, ErrShortBuffer) {
		t.Fatalf("41-byte buffer: %v", err)
	}
	if small[0] != 0 {
		t.Fatal("buffer written on error")
	}
	big := make([]byte, 70000)
	if _, err := BuildUDP4(big, macA, macB, ipA, ipB, 1, 2, -1); !errors.Is(err, ErrBadLength) {
		t.Fatalf("negative payload: %v", err)
	}
	if _, err := BuildTCP4(big, macA, macB, ipA, ipB, 1, 2, 65535-40+1); !errors.Is(err, ErrBadLength) {
		t.Fatalf("oversized payload: %v", err)
	}
	if n, err := BuildTCP4(big, macA, macB, ipA, ipB, 1, 2, 65535-40); err != nil || n != 65535+14 {
		t.Fatalf("largest payload: n %d, %v", n, err)
	}
	if _, err := BuildICMP4Echo(big[:50], macA, macB, ipA, ipB, 1, 2, 9); !errors.Is(err, ErrShortBuffer) {
		t.Fatalf("icmp short buffer: %v", err)
	}
}

// TestPatchWithIncrementalUpdate is what the null port does per packet:
// patch a built frame's source address and port, update both checksums with
// RFC 1624, and the frame still verifies.
func TestPatchWithIncrementalUpdate(t *testing.T) {
	f := udp4(t, 18)
	be := func(b []byte) uint32 { return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) }
	put16 := func(b []byte, v uint16) { b[0], b[1] = byte(v>>8), byte(v) }
	get16 := func(b []byte) uint16 { return uint16(b[0])<<8 | uint16(b[1]) }
	for i := range 1000 {
		oldIP, newIP := be(f[OffIPv4Src:]), uint32(0x0A000000+i*7919)
		oldPort, newPort := get16(f[OffSrcPort:]), uint16(1024+i)
		f[OffIPv4Src], f[OffIPv4Src+1], f[OffIPv4Src+2], f[OffIPv4Src+3] = byte(newIP>>24), byte(newIP>>16), byte(newIP>>8), byte(newIP)
		put16(f[OffSrcPort:], newPort)
		put16(f[OffIPv4Checksum:], ChecksumUpdate32(get16(f[OffIPv4Checksum:]), oldIP, newIP))
		u := ChecksumUpdate16(ChecksumUpdate32(get16(f[OffUDPChecksum:]), oldIP, newIP), oldPort, newPort)
		if u == 0 {
			u = 0xFFFF
		}
		put16(f[OffUDPChecksum:], u)
		var h Headers
		if err := h.Decode(f); err != nil {
			t.Fatal(err)
		}
		if !h.VerifyIPv4Checksum(f) || !h.VerifyL4Checksum(f) {
			t.Fatalf("iteration %d: patched frame does not verify", i)
		}
	}
}

func TestMACString(t *testing.T) {
	if s := (MAC{0x02, 0xab, 0, 0x10, 0xff, 9}).String(); s != "02:ab:00:10:ff:09" {
		t.Fatalf("MAC.String = %q", s)
	}
}

func TestBuildAllocs(t *testing.T) {
	buf := make([]byte, 2048)
	allocs := testing.AllocsPerRun(1000, func() {
		_, _ = BuildUDP4(buf, macA, macB, ipA, ipB, 1, 2, 100)
		_, _ = BuildTCP4(buf, macA, macB, ipA, ipB, 1, 2, 100)
		_, _ = BuildICMP4Echo(buf, macA, macB, ipA, ipB, 1, 2, 100)
		_, _ = BuildUDP4(buf[:10], macA, macB, ipA, ipB, 1, 2, 100) // the error path too
	})
	if allocs != 0 {
		t.Fatalf("%v allocs per run, want 0", allocs)
	}
}

func BenchmarkBuildUDP4(b *testing.B) {
	buf := make([]byte, 2048)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := BuildUDP4(buf, macA, macB, ipA, ipB, 1, 2, 18); err != nil {
			b.Fatal(err)
		}
	}
}
