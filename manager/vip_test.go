package manager_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/reinforce-nfv/reinforce/manager"
	"github.com/reinforce-nfv/reinforce/manager/config"
	"github.com/reinforce-nfv/reinforce/pkt"
	"github.com/reinforce-nfv/reinforce/port"
	"github.com/reinforce-nfv/reinforce/port/afpacket"
	"github.com/reinforce-nfv/reinforce/port/afpacket/afpackettest"
)

// vipManager starts a standby manager of chain c0 with no NFs and no
// primary, memory ports 0 (the chain's output) and 1 (facing the clients),
// and the [arbiter] virtual address keys edit sets.
func vipManager(t *testing.T, edit func(a *config.Arbiter)) (m *manager.Manager, p0, p1 *memPort) {
	t.Helper()
	p0, p1 = &memPort{id: 0}, &memPort{id: 1}
	return vipManagerOn(t, edit, p0, p1), p0, p1
}

// vipManagerOn is vipManager on the ports given, IDs 0 and 1.
func vipManagerOn(t *testing.T, edit func(a *config.Arbiter), ports ...port.Port) *manager.Manager {
	t.Helper()
	cfg := config.DefaultConfig()
	cfg.Manager.Name = fmt.Sprintf("vip%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)
	cfg.Manager.RegionDir = "/dev/shm"
	cfg.Manager.PoolSlots = 2048
	cfg.Manager.StatsOut = config.StatsNone
	cfg.Ports = []config.Port{{ID: 0, Driver: config.DriverNull, PktBytes: 64}, {ID: 1, Driver: config.DriverNull, PktBytes: 64}}
	cfg.Chains = []config.Chain{{Name: "c0", Services: []int{1, 2}, OutPort: 0}}
	cfg.Manager.DefaultChain = "c0"
	cfg.Replication.PSK = "replication test key 0123456789"
	cfg.Replication.Chains = []config.RepChain{{Chain: "c0", Role: config.RepStandby, Local: freeUDP(t), Peer: freeUDP(t),
		Instances: []int{1, 2}, Epoch: 1}}
	if edit != nil {
		edit(&cfg.Arbiter)
	}
	m, err := manager.New(cfg, manager.Options{Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
		SocketPath: filepath.Join(t.TempDir(), "ctl.sock"), Ports: ports})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		m.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// checkGARP checks f is an RFC 5227 ARP announcement of ip at mac.
func checkGARP(t *testing.T, f []byte, mac pkt.MAC, ip netip.Addr) {
	t.Helper()
	var h pkt.Headers
	if err := h.Decode(f); err != nil || h.EtherType != pkt.EtherTypeARP || len(f) != 60 {
		t.Fatalf("not an ARP frame (%v): % x", err, f)
	}
	a := f[14:]
	if pkt.MAC(f[0:6]) != pkt.BroadcastMAC || pkt.MAC(f[6:12]) != mac ||
		binary.BigEndian.Uint16(a[0:]) != 1 || binary.BigEndian.Uint16(a[2:]) != 0x0800 || a[4] != 6 || a[5] != 4 ||
		binary.BigEndian.Uint16(a[6:]) != 1 || pkt.MAC(a[8:14]) != mac || [4]byte(a[14:18]) != ip.As4() ||
		pkt.MAC(a[18:24]) != (pkt.MAC{}) || [4]byte(a[24:28]) != ip.As4() {
		t.Fatalf("not an announcement of %s at %s: % x", ip, mac, f)
	}
}

// checkNA checks f is an unsolicited neighbour advertisement of ip at mac.
func checkNA(t *testing.T, f []byte, mac pkt.MAC, ip netip.Addr) {
	t.Helper()
	var h pkt.Headers
	if err := h.Decode(f); err != nil || h.IPVersion != 6 || h.Proto != pkt.ProtoICMPv6 || h.Flags&pkt.FlagL4 == 0 {
		t.Fatalf("not ICMPv6 (%v): % x", err, f)
	}
	if !h.VerifyL4Checksum(f) {
		t.Fatalf("bad ICMPv6 checksum: % x", f)
	}
	ip6, na := f[h.L3:h.L4], f[h.L4:h.L3End]
	if pkt.MAC(f[0:6]) != pkt.AllNodesMAC || pkt.MAC(f[6:12]) != mac || ip6[7] != 255 ||
		[16]byte(ip6[8:24]) != ip.As16() || [16]byte(ip6[24:40]) != pkt.AllNodes6 || len(na) != 32 ||
		na[0] != 136 || na[1] != 0 || binary.BigEndian.Uint32(na[4:]) != pkt.NAFlagOverride || [16]byte(na[8:24]) != ip.As16() ||
		na[24] != 2 || na[25] != 1 || pkt.MAC(na[26:32]) != mac {
		t.Fatalf("not an unsolicited advertisement of %s at %s: % x", ip, mac, f)
	}
}

var testVIPs = []netip.Addr{netip.MustParseAddr("10.0.0.100"), netip.MustParseAddr("fd00::100"), netip.MustParseAddr("10.0.0.101")}

// TestVIPAnnouncedAtPromotion: promoted, the manager sends vip_announce
// rounds, each a gratuitous ARP per IPv4 and an unsolicited neighbour
// advertisement per IPv6 virtual address, out of vip_port only, at least
// the spacing apart; with vip_mac, or by default the port's MAC.
func TestVIPAnnouncedAtPromotion(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mac    [6]byte
		rounds int
		want   pkt.MAC
	}{
		{"vip_mac", [6]byte{0x02, 0x52, 0x46, 0, 0, 1}, 3, pkt.MAC{0x02, 0x52, 0x46, 0, 0, 1}},
		{"port MAC", [6]byte{}, 0, pkt.MAC{0x02, 0, 0, 0, 0, 1}}, // memPort has none: portRefs' 02:00:00:00:00:<id>
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, p0, p1 := vipManager(t, func(a *config.Arbiter) {
				a.VIP, a.VIPMAC, a.VIPPort, a.VIPAnnounce = testVIPs, tc.mac, 1, tc.rounds
			})
			rounds := max(tc.rounds, config.DefaultVIPAnnounce)
			want := rounds * len(testVIPs)
			start := time.Now()
			if _, err := m.PromoteChain("c0"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 5*time.Second, fmt.Sprintf("%d announcements", want), func() bool { return len(p1.sent()) >= want })
			if took := time.Since(start); took < time.Duration(rounds-1)*10*time.Millisecond {
				t.Errorf("%d rounds in %v: not 10 ms apart", rounds, took)
			}
			time.Sleep(100 * time.Millisecond) // nothing more comes
			sent := p1.sent()
			if len(sent) != want {
				t.Fatalf("%d frames out of vip_port, want %d", len(sent), want)
			}
			for i, f := range sent {
				ip := testVIPs[i%len(testVIPs)] // each round is the set in order
				if ip.Is4() {
					checkGARP(t, f, tc.want, ip)
				} else {
					checkNA(t, f, tc.want, ip)
				}
			}
			if n := len(p0.sent()); n != 0 {
				t.Fatalf("%d frames out of the other port", n)
			}
			if n := m.Snapshot().Drops.VIPAnnouncements; n != uint64(want) {
				t.Fatalf("vip announcements counted %d, want %d", n, want)
			}
		})
	}
}

// TestVIPNoneWithoutConfig: a manager without virtual addresses announces
// nothing when promoted.
func TestVIPNoneWithoutConfig(t *testing.T) {
	m, p0, p1 := vipManager(t, nil)
	if _, err := m.PromoteChain("c0"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if n0, n1 := len(p0.sent()), len(p1.sent()); n0 != 0 || n1 != 0 {
		t.Fatalf("frames sent: %d, %d", n0, n1)
	}
	if n := m.Snapshot().Drops.VIPAnnouncements; n != 0 {
		t.Fatalf("vip announcements counted %d", n)
	}
}

// TestVIPAnnouncementsStopAtDemotion: the rounds still owed when the chain
// is demoted (the other server has it, and announces) are not sent.
func TestVIPAnnouncementsStopAtDemotion(t *testing.T) {
	m, _, p1 := vipManager(t, func(a *config.Arbiter) {
		a.VIP, a.VIPPort, a.VIPAnnounce = testVIPs, 1, config.MaxVIPAnnounce // 1 s of rounds
	})
	if _, err := m.PromoteChain("c0"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "a first round", func() bool { return len(p1.sent()) >= len(testVIPs) })
	if err := m.DemoteChain("c0", 3); err != nil {
		t.Fatal(err)
	}
	// A round being handed over at the demotion may still go out.
	time.Sleep(30 * time.Millisecond)
	n := len(p1.sent())
	time.Sleep(150 * time.Millisecond)
	if n2 := len(p1.sent()); n2 != n || n >= config.MaxVIPAnnounce*len(testVIPs) || n%len(testVIPs) != 0 {
		t.Fatalf("%d frames at the demotion, %d later (%d rounds configured)", n, n2, config.MaxVIPAnnounce)
	}
}

// TestVIPBadConfigRefused: the manager refuses a configuration whose
// virtual addresses it could not announce.
func TestVIPBadConfigRefused(t *testing.T) {
	cfg := config.DefaultConfig()
	cfg.Replication.PSK = "replication test key 0123456789"
	cfg.Replication.Chains = []config.RepChain{{Chain: cfg.Chains[0].Name, Role: config.RepStandby,
		Local: netip.MustParseAddrPort("127.0.0.1:1"), Peer: netip.MustParseAddrPort("127.0.0.1:2"), Instances: []int{1}, Epoch: 1}}
	cfg.Arbiter.VIP, cfg.Arbiter.VIPPort = []netip.Addr{netip.MustParseAddr("ff02::1")}, 5
	_, err := manager.New(cfg, manager.Options{Log: zerolog.Nop()})
	var ce *config.Error
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "arbiter.vip[0]: ff02::1 is not a unicast address") ||
		!strings.Contains(err.Error(), "arbiter.vip_port: port 5 is not a configured [[port]]") {
		t.Fatalf("New: %v", err)
	}
}

// TestVIPTakeoverMovesKernelNeighbours (root): the announcements, sent by
// the manager out of an afpacket port on a veth, make Linux on the other
// end move its ARP and neighbour entries of the virtual addresses (stale,
// at another MAC) to the port's MAC: the kernel accepts both frames.
func TestVIPTakeoverMovesKernelNeighbours(t *testing.T) {
	pair := afpackettest.NewVethPair(t, 0)
	sh := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("ip", append([]string{"-n", pair.NS}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	// B is a client on the VIPs' subnet, with IPv6 (the pair comes without).
	if err := pair.Do(func() error {
		return os.WriteFile("/proc/sys/net/ipv6/conf/"+pair.B+"/disable_ipv6", []byte("0"), 0)
	}); err != nil {
		t.Skipf("no IPv6 here: %v", err)
	}
	sh("addr", "add", "10.9.0.1/24", "dev", pair.B)
	sh("addr", "add", "fd00:0:0:9::2/64", "dev", pair.B, "nodad")
	vips := []netip.Addr{netip.MustParseAddr("10.9.0.100"), netip.MustParseAddr("fd00:0:0:9::100")}
	for _, ip := range vips {
		sh("neigh", "replace", ip.String(), "lladdr", "02:00:00:00:00:99", "dev", pair.B, "nud", "stale")
	}
	var a *afpacket.Port
	if err := pair.Do(func() (err error) {
		a, err = afpacket.New(1, pair.A, afpacket.DefaultConfig())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	mac := a.HardwareAddr().String()
	m := vipManagerOn(t, func(c *config.Arbiter) { c.VIP, c.VIPPort = vips, 1 }, &memPort{id: 0}, a)
	if _, err := m.PromoteChain("c0"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "B's neighbour entries of the VIPs at "+mac, func() bool {
		out := sh("neigh", "show", "dev", pair.B)
		for _, ip := range vips {
			if !strings.Contains(out, ip.String()+" lladdr "+mac) {
				return false
			}
		}
		return true
	})
	want := uint64(config.DefaultVIPAnnounce * len(vips)) // the first round may have done it: wait for the rest
	waitFor(t, 5*time.Second, "every round sent", func() bool { return m.Snapshot().Drops.VIPAnnouncements >= want })
	time.Sleep(50 * time.Millisecond)
	if n := m.Snapshot().Drops.VIPAnnouncements; n != want {
		t.Fatalf("vip announcements counted %d, want %d", n, want)
	}
}
