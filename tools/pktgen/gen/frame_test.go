package gen

import (
	"net/netip"
	"testing"

	"github.com/reinforce-nfv/reinforce/pkt"
	"github.com/reinforce-nfv/reinforce/pkt/probe"
)

func flows(v6 bool, vlan int, sizes ...int) Flows {
	f := Flows{Count: 3, SrcMAC: pkt.MAC{2, 0, 0, 0, 0, 1}, DstMAC: pkt.MAC{2, 0, 0, 0, 0, 2},
		SrcIP: netip.MustParseAddr("10.0.0.1"), DstIP: netip.MustParseAddr("10.1.0.1"),
		SrcPort: 65534, DstPort: 5000, VLAN: vlan, Sizes: sizes}
	if v6 {
		f.SrcIP, f.DstIP = netip.MustParseAddr("fd00::ff:ffff:ffff"), netip.MustParseAddr("fd01::1")
	}
	return f
}

func TestTemplatesDecodeWithProbe(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    Flows
	}{
		{"ipv4", flows(false, 0)},
		{"ipv4 sizes", flows(false, 0, 90, 128, 1514)},
		{"ipv6 vlan", flows(true, 42, 200, 9018)},
		{"ipv6", flows(true, 0)},
		{"ipv4 vlan", flows(false, 4094)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.f.Validate(); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, MaxFrame)
			for i := range tc.f.Count {
				ts, err := tc.f.Templates(i)
				if err != nil {
					t.Fatal(err)
				}
				for k, tm := range ts {
					want := tc.f.MinFrame()
					if len(tc.f.Sizes) > 0 {
						want = tc.f.Sizes[k]
					}
					n := tm.Put(buf, uint64(k)<<33|7, 0xfedcba9876543210)
					frame := buf[:n]
					if n != want {
						t.Fatalf("flow %d size %d: frame of %d bytes", i, want, n)
					}
					var h pkt.Headers
					off, ok := probe.Find(&h, frame)
					if !ok {
						t.Fatalf("flow %d: no probe in %x", i, frame)
					}
					if !h.VerifyL4Checksum(frame) || (h.IPVersion == 4 && !h.VerifyIPv4Checksum(frame)) {
						t.Fatalf("flow %d: bad checksum after Put", i)
					}
					var r probe.Record
					if !r.Get(frame[off:]) || r.Flow != uint32(i) || r.Seq != uint64(k)<<33|7 || r.SentNs != 0xfedcba9876543210 || r.Mutate != 0 || r.Stamp != [4]uint32{} {
						t.Fatalf("flow %d: record %+v", i, r)
					}
					if tc.f.VLAN != 0 && (h.VLANs != 1 || h.VLANID(0) != uint16(tc.f.VLAN)) {
						t.Fatalf("flow %d: VLANs %d id %d", i, h.VLANs, h.VLANID(0))
					}
					ft, _ := h.FiveTuple(frame)
					src := tc.f.SrcIP
					for range i {
						src = src.Next()
					}
					if netip.AddrFrom16(ft.SrcIP).Unmap() != src || netip.AddrFrom16(ft.DstIP).Unmap() != tc.f.DstIP || ft.DstPort != 5000 || ft.Proto != pkt.ProtoUDP {
						t.Fatalf("flow %d: 5-tuple %v", i, ft)
					}
					// Ports wrap within 1024..65535.
					if wantPort := []uint16{65534, 65535, 1024}[i]; ft.SrcPort != wantPort {
						t.Fatalf("flow %d: source port %d, want %d", i, ft.SrcPort, wantPort)
					}
				}
			}
		})
	}
}

func TestFlowsValidate(t *testing.T) {
	for name, f := range map[string]Flows{
		"no flows":   func() Flows { f := flows(false, 0); f.Count = 0; return f }(),
		"mixed ip":   func() Flows { f := flows(false, 0); f.DstIP = netip.MustParseAddr("fd00::1"); return f }(),
		"vlan 4095":  flows(false, 4095),
		"too small":  flows(false, 0, 89),
		"too small6": flows(true, 7, 113),
		"too big":    flows(false, 0, MaxFrame+1),
		"no address": {Count: 1},
	} {
		if err := f.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if _, err := f.Templates(0); err == nil {
			t.Errorf("%s: templates built", name)
		}
	}
}

func TestPutDoesNotAllocate(t *testing.T) {
	ts, err := flows(true, 3, 300).Templates(1)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	seq := uint64(0)
	if n := testing.AllocsPerRun(1000, func() { seq++; ts[0].Put(buf, seq, seq*3) }); n != 0 {
		t.Errorf("Put allocates %.1f times", n)
	}
}
