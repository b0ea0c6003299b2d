package pkt

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// pcapDir holds the real captures the fuzz seeds and the checksum
// cross-check read. They are not in the repository (third-party traces);
// REINFORCE_PCAP_DIR overrides the default sibling checkout.
func pcapDir() string {
	if d := os.Getenv("REINFORCE_PCAP_DIR"); d != "" {
		return d
	}
	return "../../shared/testdata/pcap"
}

// pcapFrames returns the Ethernet frames of every capture in pcapDir, or
// nil (logged) when there is none. Only what the tests need is parsed:
// classic pcap in either byte order and pcapng enhanced/simple packet blocks
// on Ethernet interfaces.
func pcapFrames(t testing.TB) [][]byte {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(pcapDir(), "*.pcap*"))
	if len(files) == 0 {
		t.Logf("no captures in %s: using built frames only", pcapDir())
		return nil
	}
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("read %s: %v", f, err)
		}
		fr, err := parseCapture(b)
		if err != nil {
			t.Fatalf("parse %s: %v", f, err)
		}
		out = append(out, fr...)
	}
	return out
}

type captureError string

func (e captureError) Error() string { return string(e) }

func parseCapture(b []byte) ([][]byte, error) {
	if len(b) < 24 {
		return nil, captureError("short file")
	}
	switch binary.LittleEndian.Uint32(b) {
	case 0xA1B2C3D4, 0xA1B23C4D:
		return parsePcap(b, binary.LittleEndian)
	case 0xD4C3B2A1, 0x4D3CB2A1:
		return parsePcap(b, binary.BigEndian)
	case 0x0A0D0D0A:
		return parsePcapng(b)
	}
	return nil, captureError("unknown magic")
}

func parsePcap(b []byte, bo binary.ByteOrder) ([][]byte, error) {
	if bo.Uint32(b[20:])&0xFFFF != 1 {
		return nil, captureError("link type is not Ethernet")
	}
	var out [][]byte
	for p := 24; p+16 <= len(b); {
		n := int(bo.Uint32(b[p+8:]))
		p += 16
		if n > len(b)-p {
			break
		}
		out = append(out, b[p:p+n:p+n])
		p += n
	}
	return out, nil
}

func parsePcapng(b []byte) ([][]byte, error) {
	var (
		out   [][]byte
		bo    binary.ByteOrder = binary.LittleEndian
		links []uint16
	)
	for p := 0; p+12 <= len(b); {
		typ := bo.Uint32(b[p:])
		if typ == 0x0A0D0D0A { // section header: re-read the byte order
			if binary.LittleEndian.Uint32(b[p+8:]) == 0x1A2B3C4D {
				bo = binary.LittleEndian
			} else {
				bo = binary.BigEndian
			}
			links = links[:0]
		}
		n := int(bo.Uint32(b[p+4:]))
		if n < 12 || n > len(b)-p {
			return out, nil
		}
		body := b[p+8 : p+n-4]
		switch typ {
		case 1: // interface description
			if len(body) >= 2 {
				links = append(links, bo.Uint16(body))
			}
		case 6: // enhanced packet
			if len(body) >= 20 {
				iface, capLen := int(bo.Uint32(body)), int(bo.Uint32(body[12:]))
				if iface < len(links) && links[iface] == 1 && capLen <= len(body)-20 {
					out = append(out, body[20:20+capLen:20+capLen])
				}
			}
		case 3: // simple packet
			if len(body) >= 4 && len(links) > 0 && links[0] == 1 {
				capLen := min(int(bo.Uint32(body)), len(body)-4)
				out = append(out, body[4:4+capLen:4+capLen])
			}
		}
		p += n
	}
	return out, nil
}
