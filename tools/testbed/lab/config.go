package lab

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strings"

	"github.com/BurntSushi/toml"
)

// Config is a topology: the TOML file `testbed up` reads, or a value a test
// builds. See docs/lab.md for the format.
type Config struct {
	// Servers are the simulated servers ([[server]]), at least one.
	Servers []ServerConfig `toml:"server"`
	// Links are the veth pairs between servers ([[link]]).
	Links []LinkConfig `toml:"link"`
	// Mgmt is the management network ([mgmt]); nil for none.
	Mgmt *MgmtConfig `toml:"mgmt"`
}

// ServerConfig is one [[server]].
type ServerConfig struct {
	// Name identifies the server in the lab: [a-z0-9_-]{1,15}, unique.
	Name string `toml:"name"`
}

// LinkConfig is one [[link]]: a veth pair whose ends are "server:iface".
type LinkConfig struct {
	A   string `toml:"a"`
	B   string `toml:"b"`
	MTU int    `toml:"mtu"` // 0 keeps the kernel's 1500
	// AddrA and AddrB are optional addresses (CIDR, "10.0.0.1/24") for the
	// ends. Without them the link carries only what is sent on it.
	AddrA string `toml:"addr_a"`
	AddrB string `toml:"addr_b"`
}

// MgmtConfig is the management network: a bridge in a hidden hub namespace,
// with one port per server, which sees it as interface MgmtIface.
type MgmtConfig struct {
	// Subnet is an IPv4 prefix ("10.99.0.0/24"); server i (from 0, in file
	// order) gets the prefix's address i+1.
	Subnet string `toml:"subnet"`
}

// MgmtIface is the management interface's name inside every server.
const MgmtIface = "mgmt0"

// MaxMTU bounds LinkConfig.MTU: the veth driver's limit.
const MaxMTU = 65535

var nameRE = regexp.MustCompile(`^[a-z0-9_-]{1,15}$`)

// ParseConfig parses a topology in TOML. name labels errors (a file name).
func ParseConfig(name string, data []byte) (Config, error) {
	var c Config
	md, err := toml.Decode(string(data), &c)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", name, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return Config{}, fmt.Errorf("%s: unknown keys: %s", name, strings.Join(keys, ", "))
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

// LoadConfig reads and parses a topology file.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	return ParseConfig(path, data)
}

// endpoint splits "server:iface".
func endpoint(s string) (server, iface string, err error) {
	server, iface, ok := strings.Cut(s, ":")
	if !ok || !nameRE.MatchString(server) || iface == "" || len(iface) > 15 || strings.ContainsAny(iface, "/: \t") {
		return "", "", fmt.Errorf("endpoint %q: want server:iface (server [a-z0-9_-]{1,15}, iface 1..15 bytes)", s)
	}
	return server, iface, nil
}

// Validate checks names, endpoints, MTUs and addresses, reporting every
// problem at once.
func (c Config) Validate() error {
	var errs []error
	if len(c.Servers) == 0 {
		errs = append(errs, errors.New("no [[server]]"))
	}
	servers := map[string]bool{}
	for i, s := range c.Servers {
		switch {
		case !nameRE.MatchString(s.Name):
			errs = append(errs, fmt.Errorf("server[%d].name %q: want [a-z0-9_-]{1,15}", i, s.Name))
		case servers[s.Name]:
			errs = append(errs, fmt.Errorf("server[%d].name %q: duplicate", i, s.Name))
		}
		servers[s.Name] = true
	}
	ifaces := map[string]bool{}
	for i, l := range c.Links {
		for _, end := range []struct{ ep, addr string }{{l.A, l.AddrA}, {l.B, l.AddrB}} {
			srv, ifc, err := endpoint(end.ep)
			if err != nil {
				errs = append(errs, fmt.Errorf("link[%d]: %w", i, err))
				continue
			}
			if !servers[srv] {
				errs = append(errs, fmt.Errorf("link[%d]: no server %q", i, srv))
			}
			if ifaces[end.ep] || (c.Mgmt != nil && ifc == MgmtIface) || ifc == "lo" {
				errs = append(errs, fmt.Errorf("link[%d]: interface %s used twice", i, end.ep))
			}
			ifaces[end.ep] = true
			if end.addr != "" {
				if _, err := netip.ParsePrefix(end.addr); err != nil {
					errs = append(errs, fmt.Errorf("link[%d]: address %q: %v", i, end.addr, err))
				}
			}
		}
		if l.MTU != 0 && (l.MTU < 68 || l.MTU > MaxMTU) {
			errs = append(errs, fmt.Errorf("link[%d].mtu %d: want 68..%d", i, l.MTU, MaxMTU))
		}
	}
	if c.Mgmt != nil {
		p, err := netip.ParsePrefix(c.Mgmt.Subnet)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("mgmt.subnet %q: %v", c.Mgmt.Subnet, err))
		case !p.Addr().Is4() || p.Bits() > 30 || 1<<(32-p.Bits())-2 < len(c.Servers):
			errs = append(errs, fmt.Errorf("mgmt.subnet %q: want an IPv4 prefix with room for %d servers", c.Mgmt.Subnet, len(c.Servers)))
		}
	}
	return errors.Join(errs...)
}

// mgmtAddr is server i's management address.
func (c Config) mgmtAddr(i int) netip.Prefix {
	p := netip.MustParsePrefix(c.Mgmt.Subnet).Masked()
	a := p.Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v += uint32(i + 1)
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), p.Bits())
}
