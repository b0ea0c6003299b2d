package nflib

import "testing"

func TestPorts(t *testing.T) {
	t.Setenv(PortsEnv, "")
	ps, err := Ports()
	if err != nil || len(ps) != 1 || ps[0] != (Port{ID: 0, MAC: [6]byte{2, 0, 0, 0, 0, 0}}) {
		t.Fatalf("unset: %+v, %v; want port 0 alone", ps, err)
	}
	t.Setenv(PortsEnv, " 1, 0=aa:bb:cc:dd:ee:f ,3")
	ps, err = Ports()
	want := []Port{{1, PortMAC(1)}, {0, [6]byte{0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x0f}}, {3, [6]byte{2, 0, 0, 0, 0, 3}}}
	if err != nil || len(ps) != 3 || ps[0] != want[0] || ps[1] != want[1] || ps[2] != want[2] {
		t.Fatalf("got %+v, %v; want %+v", ps, err, want)
	}
	for _, bad := range []string{"x", "32", "0,0", "0=aa:bb", "1=aa:bb:cc:dd:ee:fff", "0,"} {
		if _, err := ParsePorts(bad); err == nil {
			t.Errorf("ParsePorts(%q) accepted", bad)
		}
	}
}
