package config

import (
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestFlowsDecodeToValues(t *testing.T) {
	data, err := os.ReadFile("testdata/good/flows.toml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := parse("flows.toml", data, testCPUs)
	if err != nil {
		t.Fatal(err)
	}
	p := netip.MustParsePrefix
	want := []Flow{
		{Chain: "web", Src: p("192.0.2.10/32"), Dst: p("10.1.2.3/32"), SrcPorts: [2]uint16{40000, 40000}, DstPorts: [2]uint16{80, 80}, Proto: 6},
		{Chain: "web", Src: p("2001:db8::10/128"), Dst: p("2001:db8:1::3/128"), SrcPorts: [2]uint16{40000, 40000}, DstPorts: [2]uint16{443, 443}, Proto: 6},
		{Chain: "dns", Dst: p("10.0.0.0/8"), DstPorts: [2]uint16{53, 53}, Proto: 17, Priority: 10},
		{Chain: "web", Src: p("2001:db8::/32"), DstPorts: [2]uint16{8000, 8999}},
		{Chain: "web", SrcPorts: [2]uint16{0, 1023}, Priority: -1},
		{Chain: "dns", Src: p("198.51.100.0/24"), Proto: 47},
		{Chain: "default", Dst: p("::/0"), Proto: 58},
	}
	if !reflect.DeepEqual(cfg.Flows, want) {
		t.Fatalf("flows:\n%+v\nwant:\n%+v", cfg.Flows, want)
	}
	for i, f := range cfg.Flows {
		if got := f.Exact(); got != (i < 2) {
			t.Errorf("flow[%d].Exact() = %v", i, got)
		}
	}
	// Without [[flow]] there are none, as in DefaultConfig.
	if cfg := wantOK(t, "[manager]\n"); cfg.Flows != nil {
		t.Errorf("flows without [[flow]]: %+v", cfg.Flows)
	}
}

func TestFlowExact(t *testing.T) {
	p := netip.MustParsePrefix
	exact := Flow{Chain: "c", Src: p("10.0.0.1/32"), Dst: p("10.0.0.2/32"), SrcPorts: [2]uint16{1, 1}, DstPorts: [2]uint16{2, 2}, Proto: 6}
	if !exact.Exact() {
		t.Fatalf("%+v is exact", exact)
	}
	for name, change := range map[string]func(f *Flow){
		"src prefix":     func(f *Flow) { f.Src = p("10.0.0.0/31") },
		"dst any":        func(f *Flow) { f.Dst = netip.Prefix{} },
		"src port range": func(f *Flow) { f.SrcPorts = [2]uint16{1, 2} },
		"dst port any":   func(f *Flow) { f.DstPorts = [2]uint16{} },
		"proto any":      func(f *Flow) { f.Proto = 0 },
	} {
		f := exact
		change(&f)
		if f.Exact() {
			t.Errorf("%s: %+v is not exact", name, f)
		}
	}
}

func TestFlowValueSyntax(t *testing.T) {
	base := "[[flow]]\nchain = \"default\"\n"
	tests := []struct {
		line string // one key = value line
		want Flow   // expected with Chain "default"
		err  string // expected message after "cfg.toml:3: flow[0].<key>: ", or ""
	}{
		{`src = "10.0.0.0/8"`, Flow{Src: netip.MustParsePrefix("10.0.0.0/8")}, ""},
		{`src = "10.0.0.1"`, Flow{Src: netip.MustParsePrefix("10.0.0.1/32")}, ""},
		{`src = "0.0.0.0/0"`, Flow{Src: netip.MustParsePrefix("0.0.0.0/0")}, ""},
		{`dst = "2001:db8::1"`, Flow{Dst: netip.MustParsePrefix("2001:db8::1/128")}, ""},
		{`dst = "::ffff:10.0.0.1"`, Flow{Dst: netip.MustParsePrefix("10.0.0.1/32")}, ""},
		{`dst = "::ffff:0:0/96"`, Flow{Dst: netip.MustParsePrefix("0.0.0.0/0")}, ""},
		{`dst = "::ffff:0:0/95"`, Flow{Dst: netip.MustParsePrefix("::fffe:0:0/95")}, "::ffff:0.0.0.0/95 has host bits set; did you mean ::fffe:0:0/95?"},
		{`src = "10.0.0.0/08"`, Flow{}, `"10.0.0.0/08": prefix length "08" out of range 0..32`},
		{`src = "10.0.0.0/"`, Flow{}, `"10.0.0.0/": prefix length "" out of range 0..32`},
		{`src = "2001:db8::/129"`, Flow{}, `"2001:db8::/129": prefix length "129" out of range 0..128`},
		{`src = ""`, Flow{}, `"" is not an IPv4 or IPv6 address or prefix`},
		{`src = "example.com"`, Flow{}, `"example.com" is not an IPv4 or IPv6 address or prefix`},
		{`src_port = 80`, Flow{SrcPorts: [2]uint16{80, 80}}, ""},
		{`src_port = 65535`, Flow{SrcPorts: [2]uint16{65535, 65535}}, ""},
		{`src_port = "80"`, Flow{SrcPorts: [2]uint16{80, 80}}, ""},
		{`src_port = "1000-2000"`, Flow{SrcPorts: [2]uint16{1000, 2000}}, ""},
		{`src_port = " 1000 - 2000 "`, Flow{SrcPorts: [2]uint16{1000, 2000}}, ""},
		{`src_port = "0-65535"`, Flow{SrcPorts: [2]uint16{0, 65535}}, ""},
		{`dst_port = "7-7"`, Flow{DstPorts: [2]uint16{7, 7}}, ""},
		{`src_port = -1`, Flow{}, "port -1 out of range 1..65535"},
		{`src_port = "0"`, Flow{}, "port 0 out of range 1..65535"},
		{`src_port = "99999999999999999999"`, Flow{}, "port 99999999999999999999 out of range 1..65535"},
		{`src_port = "-5"`, Flow{}, `"-5" is not a port or a port range such as "1000-2000"`},
		{`src_port = "1-2-3"`, Flow{}, `"1-2-3" is not a port or a port range such as "1000-2000"`},
		{`src_port = "http"`, Flow{}, `"http" is not a port or a port range such as "1000-2000"`},
		{`src_port = 8.0`, Flow{}, `must be a port number or a range string such as "1000-2000", got float 8`},
		{`proto = "udp"`, Flow{Proto: 17}, ""},
		{`proto = "icmp"`, Flow{Proto: 1}, ""},
		{`proto = 255`, Flow{Proto: 255}, ""},
		{`proto = 0`, Flow{}, "protocol 0 out of range 1..255 (omit proto to match any)"},
		{`proto = "TCP"`, Flow{}, `"TCP" is not one of "tcp", "udp", "icmp", "icmpv6" or a protocol number 1..255`},
		{`proto = "6"`, Flow{}, `"6" is not one of "tcp", "udp", "icmp", "icmpv6" or a protocol number 1..255`},
		{`priority = -100`, Flow{Priority: -100}, ""},
		{`chain = ""`, Flow{}, "must name a [[chain]]"},
	}
	for _, tt := range tests {
		src := base + tt.line + "\n"
		if strings.HasPrefix(tt.line, "chain") {
			src = "[[flow]]\n# no other chain key\n" + tt.line + "\n"
		}
		if tt.err != "" {
			key := "flow[0]." + strings.TrimSpace(strings.SplitN(tt.line, "=", 2)[0])
			wantErrors(t, src, "cfg.toml:3: "+key+": "+tt.err)
			continue
		}
		cfg := wantOK(t, src)
		tt.want.Chain = "default"
		if len(cfg.Flows) != 1 || cfg.Flows[0] != tt.want {
			t.Errorf("%s: flows %+v, want [%+v]", tt.line, cfg.Flows, tt.want)
		}
	}
}

func TestFlowsInlineArray(t *testing.T) {
	cfg := wantOK(t, "flow = [\n  { chain = \"default\", proto = \"tcp\" },\n  { chain = \"default\", dst = \"10.0.0.0/8\" },\n]\n")
	if len(cfg.Flows) != 2 || cfg.Flows[0].Proto != 6 || cfg.Flows[1].Dst.Bits() != 8 {
		t.Errorf("flows = %+v", cfg.Flows)
	}
	wantErrors(t, "flow = [\n  { chain = \"default\" },\n  { chain = \"default\",\n    dstport = 80 },\n]\n",
		"cfg.toml:4: flow[1].dstport: unknown key (did you mean dst_port?)")
}

func TestValidateChecksFlowsBuiltInCode(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Flows = []Flow{
		{Chain: "default", Src: netip.PrefixFrom(netip.MustParseAddr("10.0.0.1"), 33)},
		{Chain: "default", Dst: netip.MustParsePrefix("10.1.0.0/8"), DstPorts: [2]uint16{9, 8}},
		{Chain: "nope", Proto: 58, Src: netip.MustParsePrefix("::ffff:10.0.0.0/104")},
		{Src: netip.MustParsePrefix("::ffff:10.0.0.0/104"), Dst: netip.MustParsePrefix("10.0.0.0/8"), Proto: 17, SrcPorts: [2]uint16{5, 5}},
		{Chain: "default", Src: netip.MustParsePrefix("10.0.0.1/32"), Dst: netip.MustParsePrefix("10.0.0.2/32"), SrcPorts: [2]uint16{1, 1}, DstPorts: [2]uint16{2, 2}, Proto: 6},
		{Chain: "default", Src: netip.MustParsePrefix("::ffff:10.0.0.1/128"), Dst: netip.MustParsePrefix("10.0.0.2/32"), SrcPorts: [2]uint16{1, 1}, DstPorts: [2]uint16{2, 2}, Proto: 6},
	}
	want := []string{
		"flow[0].src: prefix of 10.0.0.1 has a length out of range 0..32",
		"flow[1].dst: 10.1.0.0/8 has host bits set; did you mean 10.0.0.0/8?",
		"flow[1].dst_port: range 9-8 is backwards",
		`flow[2].chain: "nope" names no configured chain (chains: "default")`,
		`flow[2].proto: IPv4 flows never carry icmpv6; use "icmp"`,
		"flow[3].chain: must name a [[chain]]",
		"flow[5]: duplicate exact flow, already given by flow[4]",
	}
	if got := errStrings(cfg.Validate()); !slices.Equal(got, want) {
		t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestCloneCopiesFlows(t *testing.T) {
	a := DefaultConfig()
	a.Flows = []Flow{{Chain: "default", Proto: 6}}
	b := a.Clone()
	b.Flows[0].Proto = 17
	if a.Flows[0].Proto != 6 {
		t.Errorf("Clone shares Flows with the original")
	}
}
