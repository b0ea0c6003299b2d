package config

// [[flow]] value syntax: addresses and prefixes, ports and port ranges, protocols. The decoder
// turns each into the Flow field or reports it (fail); checkFlows then checks what a value
// means, for Parse and Validate alike.

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/reinforce-nfv/reinforce/pkt"
)

// protoNames are the protocol names proto accepts, with their IP protocol numbers.
var protoNames = []struct {
	name  string
	proto uint8
}{{"tcp", pkt.ProtoTCP}, {"udp", pkt.ProtoUDP}, {"icmp", pkt.ProtoICMP}, {"icmpv6", pkt.ProtoICMPv6}}

// prefix decodes src or dst: a string holding an address or a prefix.
func (d *decoder) prefix(dst *netip.Prefix) setter {
	return func(key string, v any) {
		s, ok := v.(string)
		if !ok {
			d.r.fail(key, "must be an address or prefix string such as \"10.0.0.0/8\", got %s", typeName(v))
			return
		}
		p, err := parsePrefix(s)
		if err != nil {
			d.r.fail(key, "%v", err)
			return
		}
		*dst = p
	}
}

// parsePrefix parses an IPv4 or IPv6 prefix, or an address as a full-length prefix. A
// v4-mapped prefix of at least 96 bits becomes the IPv4 prefix it maps, as the flow director
// matches IPv4 flows in their v4-mapped form (pkt.FiveTuple). Host bits are kept, for
// checkPrefix to report.
func parsePrefix(s string) (netip.Prefix, error) {
	addr, bits, isPrefix := strings.Cut(s, "/")
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IPv4 or IPv6 address or prefix", s)
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q: an address with a zone cannot match a flow", s)
	}
	n := a.BitLen()
	if isPrefix {
		if n, err = strconv.Atoi(bits); err != nil || n < 0 || n > a.BitLen() || bits != strconv.Itoa(n) {
			return netip.Prefix{}, fmt.Errorf("%q: prefix length %q out of range 0..%d", s, bits, a.BitLen())
		}
	}
	return unmapped(netip.PrefixFrom(a, n)), nil
}

// ports decodes src_port or dst_port: a port number, or a string holding a port or a range
// "lo-hi".
func (d *decoder) ports(dst *[2]uint16) setter {
	return func(key string, v any) {
		var (
			r   [2]uint16
			err error
		)
		switch v := v.(type) {
		case int64:
			if v < 1 || v > 65535 {
				err = fmt.Errorf("port %d out of range 1..65535", v)
			}
			r = [2]uint16{uint16(v), uint16(v)}
		case string:
			r, err = parsePorts(v)
		default:
			err = fmt.Errorf("must be a port number or a range string such as \"1000-2000\", got %s", typeName(v))
		}
		if err != nil {
			d.r.fail(key, "%v", err)
			return
		}
		*dst = r
	}
}

// parsePorts parses "p" (1..65535) or "lo-hi" (0..65535, hi at least 1). A backwards range is
// returned as it is, for checkFlows to report.
func parsePorts(s string) ([2]uint16, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	if !isRange {
		p, err := parsePort(s, s)
		if err == nil && p == 0 || err != nil && isDigits(s) {
			return [2]uint16{}, fmt.Errorf("port %s out of range 1..65535", strings.TrimSpace(s))
		}
		return [2]uint16{p, p}, err
	}
	l, err := parsePort(s, lo)
	if err != nil {
		return [2]uint16{}, err
	}
	h, err := parsePort(s, hi)
	if err != nil {
		return [2]uint16{}, err
	}
	if h == 0 {
		return [2]uint16{}, fmt.Errorf("range %q ends at port 0; a range ends at 1..65535", s)
	}
	return [2]uint16{l, h}, nil
}

// parsePort parses p, one decimal port of the port string s, as 0..65535.
func parsePort(s, p string) (uint16, error) {
	if !isDigits(p) {
		return 0, fmt.Errorf("%q is not a port or a port range such as \"1000-2000\"", s)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(p), 10, 16)
	if err != nil {
		return 0, fmt.Errorf("%q: port %s out of range 0..65535", s, strings.TrimSpace(p))
	}
	return uint16(n), nil
}

// isDigits reports whether s is one or more decimal digits, with optional blanks around.
func isDigits(s string) bool {
	s = strings.TrimSpace(s)
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// proto decodes proto: a protocol name or number.
func (d *decoder) proto(dst *uint8) setter {
	return func(key string, v any) {
		switch v := v.(type) {
		case int64:
			if v < 1 || v > 255 {
				d.r.fail(key, "protocol %d out of range 1..255 (omit proto to match any)", v)
				return
			}
			*dst = uint8(v)
		case string:
			for _, p := range protoNames {
				if p.name == v {
					*dst = p.proto
					return
				}
			}
			names := make([]string, len(protoNames))
			for i, p := range protoNames {
				names[i] = strconv.Quote(p.name)
			}
			d.r.fail(key, "%q is not one of %s or a protocol number 1..255", v, strings.Join(names, ", "))
		default:
			d.r.fail(key, "must be a protocol name such as \"tcp\" or a number 1..255, got %s", typeName(v))
		}
	}
}

// protoName names an IP protocol for messages: its proto name, else its number.
func protoName(proto uint8) string {
	for _, p := range protoNames {
		if p.proto == proto {
			return p.name
		}
	}
	return strconv.Itoa(int(proto))
}

// unmapped returns a v4-mapped prefix of at least 96 bits as the IPv4 prefix it maps (as Parse
// stores it), and any other prefix as it is.
func unmapped(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p
}

// isIPv4Prefix reports whether p matches IPv4 flows: an IPv4 prefix or a v4-mapped one of at
// least 96 bits (which Parse has already unmapped, but a Config built in code may hold).
func isIPv4Prefix(p netip.Prefix) bool {
	return p.Addr().Is4() || p.Addr().Is4In6() && p.Bits() >= 96
}

// familyName names p's address family for messages.
func familyName(p netip.Prefix) string {
	if isIPv4Prefix(p) {
		return "IPv4"
	}
	return "IPv6"
}
