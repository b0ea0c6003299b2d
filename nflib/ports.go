package nflib

import (
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/reinforce-nfv/reinforce/ctlmsg"
)

// PortsEnv names the environment variable that tells an NF which ports the
// manager has and their MAC addresses: "0,1" or "0=aa:bb:cc:dd:ee:ff,1".
// It overrides the list the manager sends at registration; a port without
// a MAC gets PortMAC's locally administered one.
const PortsEnv = "REINFORCE_PORTS"

// Port is one manager port as an NF sees it.
type Port struct {
	ID  uint16
	MAC [6]byte
}

// PortMAC is the MAC a port is given when PortsEnv names none:
// 02:00:00:00:00:<id> (locally administered; DPDK's null and ring PMDs use
// the same scheme).
func PortMAC(id uint16) [6]byte { return [6]byte{0x02, 0, 0, 0, byte(id >> 8), byte(id)} }

// Ports returns the ports PortsEnv lists, in its order; without it, the
// ports the manager listed when this process registered; before that, port
// 0 alone.
func Ports() ([]Port, error) {
	v := strings.TrimSpace(os.Getenv(PortsEnv))
	if v == "" {
		if p := managerPorts.Load(); p != nil {
			return slices.Clone(*p), nil
		}
		return []Port{{ID: 0, MAC: PortMAC(0)}}, nil
	}
	return ParsePorts(v)
}

// managerPorts are the ports of the registration reply.
var managerPorts atomic.Pointer[[]Port]

// setManagerPorts records the registration reply's ports; entries it
// cannot parse get PortMAC's address.
func setManagerPorts(refs []ctlmsg.PortRef) {
	if len(refs) == 0 {
		return
	}
	ps := make([]Port, 0, len(refs))
	for _, r := range refs {
		p := Port{ID: r.ID, MAC: PortMAC(r.ID)}
		if hw, err := net.ParseMAC(r.MAC); err == nil && len(hw) == 6 {
			copy(p.MAC[:], hw)
		}
		ps = append(ps, p)
	}
	managerPorts.Store(&ps)
}

// ParsePorts parses PortsEnv's format.
func ParsePorts(v string) ([]Port, error) {
	var ps []Port
	seen := map[uint16]bool{}
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		idStr, macStr, hasMAC := strings.Cut(f, "=")
		id, err := strconv.ParseUint(idStr, 10, 16)
		if err != nil || id >= 32 {
			return nil, fmt.Errorf("%s=%q: %q is not a port ID from 0 to 31", PortsEnv, v, idStr)
		}
		if seen[uint16(id)] {
			return nil, fmt.Errorf("%s=%q: port %d listed twice", PortsEnv, v, id)
		}
		seen[uint16(id)] = true
		p := Port{ID: uint16(id), MAC: PortMAC(uint16(id))}
		if hasMAC {
			mac, ok := parseMAC(macStr)
			if !ok {
				return nil, fmt.Errorf("%s=%q: %q is not a MAC address such as aa:bb:cc:dd:ee:ff", PortsEnv, v, macStr)
			}
			p.MAC = mac
		}
		ps = append(ps, p)
	}
	return ps, nil
}

func parseMAC(s string) ([6]byte, bool) {
	var mac [6]byte
	parts := strings.Split(s, ":")
	if len(parts) != 6 {
		return mac, false
	}
	for i, p := range parts {
		b, err := strconv.ParseUint(p, 16, 8)
		if err != nil || len(p) == 0 || len(p) > 2 {
			return mac, false
		}
		mac[i] = byte(b)
	}
	return mac, true
}
