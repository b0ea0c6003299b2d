package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/examples/internal/chaintest"
	"github.com/reinforce-nfv/reinforce/examples/internal/nfapp"
	mgrconfig "github.com/reinforce-nfv/reinforce/manager/config"
	"github.com/reinforce-nfv/reinforce/nflib"
	"github.com/reinforce-nfv/reinforce/pkt"
)

// TestMain turns a child started by chaintest into the NF or chaintest's
// forwarder.
func TestMain(m *testing.M) {
	if argv, ok := chaintest.ChildArgv(); ok {
		if chaintest.IsNext(argv) {
			os.Exit(chaintest.RunNext(argv[1:]))
		}
		os.Exit(run("arp_response", argv, nfapp.Std()))
	}
	os.Exit(m.Run())
}

// arpFrame builds an ARP packet with opcode op from (mac, ip) about target tip.
func arpFrame(op uint16, mac [6]byte, ip, tip [4]byte) []byte {
	b := make([]byte, arpFrameBytes)
	for i := range 6 {
		b[i] = 0xff
	}
	copy(b[6:], mac[:])
	binary.BigEndian.PutUint16(b[12:], pkt.EtherTypeARP)
	binary.BigEndian.PutUint16(b[14:], 1)
	binary.BigEndian.PutUint16(b[16:], pkt.EtherTypeIPv4)
	b[18], b[19] = 6, 4
	binary.BigEndian.PutUint16(b[arpOp:], op)
	copy(b[arpSHA:], mac[:])
	copy(b[arpSPA:], ip[:])
	copy(b[arpTPA:], tip[:])
	return b
}

func TestParseArgs(t *testing.T) {
	cfg, err := parseArgs([]string{"-d", "2", "-s", "10.0.0.37,11.0.0.37", "-p"})
	if err != nil || cfg.dst != 2 || len(cfg.ips) != 2 || cfg.ips[1] != [4]byte{11, 0, 0, 37} || !cfg.print {
		t.Fatalf("parseArgs = %+v, %v", cfg, err)
	}
	for _, tt := range []struct {
		args []string
		err  string
	}{
		{[]string{"-s", "10.0.0.1"}, "ARP Response NF needs a destination NF service ID with the -d flag"},
		{[]string{"-d", "1"}, "ARP Response NF needs comma separated IPs with the -s flag"},
		{[]string{"-d", "1", "-s", "10.0.0.1,x"}, `Invalid IP entered: "x"`},
		{[]string{"-d", "1", "-s", "10.0.0.1", "-q"}, "Unknown option `-q'."},
	} {
		if _, err := parseArgs(tt.args); err == nil || err.Error() != tt.err {
			t.Errorf("parseArgs(%q) = %v, want %q", tt.args, err, tt.err)
		}
	}
}

// On two ports with configured MACs: requests for each port's address are
// answered out of that port with its MAC and address; requests for other
// addresses (or for the other port's address), replies, unknown opcodes
// and IP packets go on to -d unchanged.
func TestAnswersARPWithConfiguredAddress(t *testing.T) {
	lab := chaintest.NewMultiLab(t, 2, mgrconfig.DeadNFReclaim, []int{1})
	l := lab.Lab()
	mac0, mac1 := [6]byte{0x02, 0xaa, 0, 0, 0, 0x10}, [6]byte{0x02, 0xaa, 0, 0, 0, 0x11}
	env := []string{nflib.PortsEnv + "=0=02:aa:00:00:00:10,1=02:aa:00:00:00:11"}
	nf := l.Start(t, env, "--", "-r", "1", "--", "-d", "2", "-s", "10.0.0.37,11.0.0.37", "-p")
	l.Start(t, nil, chaintest.NextWord, "--", "-r", "2")
	l.WaitRunning(t, 2)

	client := [6]byte{0x02, 0xcc, 0, 0, 0, 1}
	cip := [4]byte{10, 0, 0, 5}
	req0 := arpFrame(1, client, cip, [4]byte{10, 0, 0, 37})
	other := arpFrame(1, client, cip, [4]byte{10, 0, 0, 99})
	reply := arpFrame(2, client, cip, [4]byte{10, 0, 0, 37})
	odd := arpFrame(9, client, cip, [4]byte{10, 0, 0, 37})
	udp := chaintest.PlainFrame(t, 1, 10)
	lab.Ports[0].Inject(req0, other, reply, odd, udp)
	req1 := arpFrame(1, client, [4]byte{11, 0, 0, 5}, [4]byte{11, 0, 0, 37})
	wrongPort := arpFrame(1, client, [4]byte{11, 0, 0, 5}, [4]byte{10, 0, 0, 37})
	lab.Ports[1].Inject(req1, wrongPort)

	chaintest.WaitFor(t, 10*time.Second, "6 frames out of port 0 and 1 out of port 1", func() bool {
		return len(lab.Ports[0].Sent()) >= 6 && len(lab.Ports[1].Sent()) >= 1
	})
	out0, out1 := lab.Ports[0].Sent(), lab.Ports[1].Sent()
	if len(out0) != 6 || len(out1) != 1 {
		t.Fatalf("%d frames out of port 0 and %d out of port 1, want 6 and 1", len(out0), len(out1))
	}
	want0 := make([]byte, arpFrameBytes)
	buildReply(want0, req0, mac0, [4]byte{10, 0, 0, 37})
	want1 := make([]byte, arpFrameBytes)
	buildReply(want1, req1, mac1, [4]byte{11, 0, 0, 37})
	// The reply's fields, spelled out once.
	if binary.BigEndian.Uint16(want0[arpOp:]) != 2 || !bytes.Equal(want0[0:6], client[:]) || !bytes.Equal(want0[6:12], mac0[:]) ||
		!bytes.Equal(want0[arpSHA:arpSHA+6], mac0[:]) || !bytes.Equal(want0[arpSPA:arpSPA+4], []byte{10, 0, 0, 37}) ||
		!bytes.Equal(want0[arpTHA:arpTHA+6], client[:]) || !bytes.Equal(want0[arpTPA:arpTPA+4], cip[:]) {
		t.Fatalf("reply built wrong: % x", want0)
	}
	if !bytes.Equal(out1[0], want1) {
		t.Fatalf("out of port 1: % x, want the reply % x", out1[0], want1)
	}
	rest := [][]byte{want0, other, reply, odd, udp, wrongPort}
	for _, w := range rest {
		found := false
		for _, f := range out0 {
			if bytes.Equal(f, w) {
				found = true
			}
		}
		if !found {
			t.Fatalf("port 0 did not send % x; sent %x", w, out0)
		}
	}
	if err := nf.Stop(t, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Sending packets to service ID 2\n", "ARP Reply From Port 0 (ID 0): 0\n",
		"ARP Reply From Port 1 (ID 1): 0\n", "ARP with opcode 9, port 0 (ID 0) DROPPED\n"} {
		if !bytes.Contains([]byte(nf.Output()), []byte(want)) {
			t.Errorf("output lacks %q:\n%s", want, nf.Output())
		}
	}
}
