package pkt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// onesSum is a plain RFC 1071 sum, independent of the package's.
func onesSum(bs ...[]byte) uint16 {
	var acc uint32
	for _, b := range bs {
		for i := 0; i+1 < len(b); i += 2 {
			acc += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			acc += uint32(b[len(b)-1]) << 8
		}
	}
	for acc > 0xFFFF {
		acc = acc&0xFFFF + acc>>16
	}
	return uint16(acc)
}

func TestBuildGARPIsAnARPAnnouncement(t *testing.T) {
	mac := MAC{0x02, 0x52, 0x46, 0, 0, 1}
	ip := [4]byte{10, 0, 0, 100}
	buf := bytes.Repeat([]byte{0xEE}, 100) // garbage the builder must overwrite
	n, err := BuildGARP(buf, mac, ip)
	if err != nil || n != 60 {
		t.Fatalf("n %d, %v", n, err)
	}
	f := buf[:n]
	var h Headers
	if err := h.Decode(f); err != nil || h.EtherType != EtherTypeARP || h.IPVersion != 0 || h.L3 != 14 {
		t.Fatalf("decode: %+v %v", h, err)
	}
	want := []byte{
		0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, // to everyone
		0x02, 0x52, 0x46, 0, 0, 1, // from mac
		0x08, 0x06, // ARP
		0, 1, 0x08, 0x00, 6, 4, // Ethernet, IPv4, address lengths
		0, 1, // request (RFC 5227 announcement)
		0x02, 0x52, 0x46, 0, 0, 1, 10, 0, 0, 100, // sender: mac, ip
		0, 0, 0, 0, 0, 0, 10, 0, 0, 100, // target: zero MAC, ip
	}
	want = append(want, make([]byte, 60-len(want))...) // zero padding
	if !bytes.Equal(f, want) {
		t.Fatalf("frame\n% x\nwant\n% x", f, want)
	}
	if binary.BigEndian.Uint16(f[OffARPOp:]) != ARPOpRequest || [4]byte(f[OffARPSPA:]) != ip || [4]byte(f[OffARPTPA:]) != ip ||
		MAC(f[OffARPSHA:]) != mac || MAC(f[OffARPTHA:]) != (MAC{}) {
		t.Fatal("offsets disagree with the frame")
	}
	if _, err := BuildGARP(make([]byte, 59), mac, ip); !errors.Is(err, ErrShortBuffer) {
		t.Fatalf("short buffer: %v", err)
	}
}

func TestBuildUnsolicitedNA(t *testing.T) {
	mac := MAC{0x02, 0x52, 0x46, 0, 0, 1}
	ip := [16]byte{0xFD, 14: 0x01} // fd00::100
	buf := bytes.Repeat([]byte{0xEE}, 200)
	n, err := BuildUnsolicitedNA(buf, mac, ip)
	if err != nil || n != 86 || UnsolicitedNAFrameBytes != 86 {
		t.Fatalf("n %d, %v", n, err)
	}
	f := buf[:n]
	var h Headers
	if err := h.Decode(f); err != nil {
		t.Fatal(err)
	}
	if h.EtherType != EtherTypeIPv6 || h.IPVersion != 6 || h.Proto != ProtoICMPv6 || h.Flags != FlagL4 || h.L3 != 14 || h.L4 != 54 ||
		h.L3End != 86 {
		t.Fatalf("decode: %+v", h)
	}
	if !h.VerifyL4Checksum(f) {
		t.Fatal("pkt says the ICMPv6 checksum is wrong")
	}
	// Ethernet: to 33:33:00:00:00:01 (ff02::1), from mac, IPv6.
	if MAC(f[0:6]) != (MAC{0x33, 0x33, 0, 0, 0, 1}) || MAC(f[6:12]) != mac || binary.BigEndian.Uint16(f[12:]) != 0x86DD {
		t.Fatalf("ethernet % x", f[:14])
	}
	// IPv6: version 6, class and label 0, payload 32, ICMPv6, hop limit 255, ip → ff02::1.
	ip6 := f[14:54]
	allNodes := [16]byte{0xFF, 0x02, 15: 1}
	if binary.BigEndian.Uint32(ip6[0:]) != 0x60000000 || binary.BigEndian.Uint16(ip6[4:]) != 32 || ip6[6] != 58 || ip6[7] != 255 ||
		[16]byte(ip6[8:24]) != ip || [16]byte(ip6[24:40]) != allNodes {
		t.Fatalf("ipv6 % x", ip6)
	}
	// ICMPv6: type 136, code 0, flags O only, target ip, option 2 length 1 with mac.
	na := f[54:86]
	if na[0] != 136 || na[1] != 0 || binary.BigEndian.Uint32(na[4:]) != 0x20000000 || [16]byte(na[8:24]) != ip ||
		na[24] != 2 || na[25] != 1 || MAC(na[26:32]) != mac {
		t.Fatalf("advertisement % x", na)
	}
	// The checksum, by hand: pseudo-header (src, dst, length, next header) and the message.
	pseudo := make([]byte, 40)
	copy(pseudo[0:32], ip6[8:40])
	binary.BigEndian.PutUint32(pseudo[32:], 32)
	pseudo[39] = 58
	if s := onesSum(pseudo, na); s != 0xFFFF {
		t.Fatalf("checksum %#04x does not verify (sum %#04x)", binary.BigEndian.Uint16(na[2:]), s)
	}
	if binary.BigEndian.Uint16(f[OffNAChecksum:]) != binary.BigEndian.Uint16(na[2:]) || [16]byte(f[OffNATarget:]) != ip ||
		MAC(f[OffNAOptionLL:]) != mac || binary.BigEndian.Uint32(f[OffNAFlags:]) != NAFlagOverride ||
		[16]byte(f[OffIPv6Src:]) != ip || [16]byte(f[OffIPv6Dst:]) != AllNodes6 || f[OffNAOption] != NDOptTargetLinkAddr {
		t.Fatal("offsets disagree with the frame")
	}
	// Another address and MAC: a different, still valid checksum.
	ip2 := [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 0xFF}
	if _, err := BuildUnsolicitedNA(buf, MAC{0x0e, 1, 2, 3, 4, 5}, ip2); err != nil {
		t.Fatal(err)
	}
	if err := h.Decode(buf[:n]); err != nil || !h.VerifyL4Checksum(buf[:n]) {
		t.Fatalf("second advertisement: %v", err)
	}
	if _, err := BuildUnsolicitedNA(make([]byte, 85), mac, ip); !errors.Is(err, ErrShortBuffer) {
		t.Fatalf("short buffer: %v", err)
	}
}

func TestAnnounceBuildersAllocateNothing(t *testing.T) {
	buf := make([]byte, 128)
	mac := MAC{2, 0, 0, 0, 0, 1}
	if a := testing.AllocsPerRun(100, func() {
		BuildGARP(buf, mac, [4]byte{10, 0, 0, 1})
		BuildUnsolicitedNA(buf, mac, [16]byte{0xFD, 15: 1})
	}); a != 0 {
		t.Fatalf("%v allocations", a)
	}
}
