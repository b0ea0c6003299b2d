package manager

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/reinforce-nfv/reinforce/manager/flowdir"
	"github.com/reinforce-nfv/reinforce/pkt"
)

// ExactFlowForTest returns the chain of ft's exact entry in m's flow
// director (for the external replication tests).
func (m *Manager) ExactFlowForTest(ft pkt.FiveTuple) (uint16, bool) { return m.flows.Exact(&ft) }

// FlowRulesForTest returns m's flow-director rules in the order added.
func (m *Manager) FlowRulesForTest() []flowdir.Rule { return m.flows.Rules() }

// BucketsForTest returns the registry's bucket table of service svc.
func (m *Manager) BucketsForTest(svc ServiceID) [NumBuckets]InstanceID {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reg.Buckets(svc)
}

func rtTestRecords() (fts []pkt.FiveTuple, rules []flowdir.Rule, tbl [NumBuckets]InstanceID, p []byte) {
	fts = []pkt.FiveTuple{
		{SrcIP: pkt.V4Mapped([4]byte{10, 0, 0, 1}), DstIP: pkt.V4Mapped([4]byte{10, 1, 0, 1}), SrcPort: 1000, DstPort: 53, Proto: 17},
		{SrcIP: netip.MustParseAddr("2001:db8::1").As16(), DstIP: netip.MustParseAddr("2001:db8::2").As16(), SrcPort: 7, DstPort: 65535, Proto: 6},
	}
	rules = []flowdir.Rule{
		{SrcPrefix: netip.MustParsePrefix("10.0.0.0/8")},
		{DstPrefix: netip.MustParsePrefix("2001:db8::/32"), SrcPorts: flowdir.PortRange{Lo: 1, Hi: 9},
			DstPorts: flowdir.PortRange{Lo: 53, Hi: 53}, Proto: 17, Priority: -5},
		{SrcPrefix: netip.MustParsePrefix("::ffff:10.0.0.0/104"), DstPrefix: netip.MustParsePrefix("0.0.0.0/0"), Priority: 1 << 40},
	}
	for i := range tbl {
		tbl[i] = InstanceID(1 + i%3)
	}
	p = appendFlowRec(nil, false, &fts[0])
	p = appendFlowRec(p, true, &fts[1])
	p = appendRulesRec(p, rules)
	p = appendRulesRec(p, nil)
	p = appendBucketsRec(p, 7, &tbl)
	p = appendWrite(p, 1, 4096, []byte("abcdefgh"))
	return fts, rules, tbl, p
}

// TestRuntimeRecordsRoundTrip: flow, rules and bucket records decode to
// what was encoded (IPv4, IPv6, v4-mapped and absent prefixes, a negative
// and a large priority), in order, among write records.
func TestRuntimeRecordsRoundTrip(t *testing.T) {
	fts, rules, tbl, p := rtTestRecords()
	var got []string
	err := decodePayload(p, func(r *payloadRec) error {
		switch r.typ {
		case prFlow:
			i := len(got)
			if ft := tupleOf(r.data); ft != fts[i] || (r.op == prOpDel) != (i == 1) {
				t.Fatalf("flow record %d: %+v op %d", i, ft, r.op)
			}
			got = append(got, "flow")
		case prRules:
			want := rules
			if slices.Contains(got, "rules") {
				want = nil
			}
			if rs := rulesOf(r.data); !slices.Equal(rs, want) {
				t.Fatalf("rules %+v, want %+v", rs, want)
			}
			got = append(got, "rules")
		case prBuckets:
			if r.svc != 7 || bucketsOf(r.data) != tbl {
				t.Fatalf("buckets of service %d", r.svc)
			}
			got = append(got, "buckets")
		case prWrite:
			got = append(got, "write")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"flow", "flow", "rules", "rules", "buckets", "write"}; !slices.Equal(got, want) {
		t.Fatalf("records %v, want %v", got, want)
	}
}

// TestDecodePayloadRejectsRuntime: run-time records with a bad length,
// op, prefix, port range, service or instance are errors; a cut anywhere
// but at a record boundary is an error.
func TestDecodePayloadRejectsRuntime(t *testing.T) {
	fts, rules, tbl, _ := rtTestRecords()
	none := func(*payloadRec) error { return nil }
	good := [][]byte{appendFlowRec(nil, false, &fts[0]), appendRulesRec(nil, rules), appendBucketsRec(nil, 2, &tbl)}
	var all []byte
	var bounds []int
	for _, g := range good {
		all = append(all, g...)
		bounds = append(bounds, len(all))
	}
	if err := decodePayload(all, none); err != nil {
		t.Fatal(err)
	}
	for cut := 1; cut < len(all); cut++ {
		err := decodePayload(all[:cut], none)
		if slices.Contains(bounds, cut) != (err == nil) || (err != nil && !errors.Is(err, errPayload)) {
			t.Fatalf("cut at %d of %d: %v", cut, len(all), err)
		}
	}
	le := binary.LittleEndian
	bad := map[string][]byte{}
	mut := func(name string, rec int, f func(b []byte) []byte) {
		bad[name] = f(bytes.Clone(good[rec]))
	}
	mut("flow one byte short", 0, func(b []byte) []byte { le.PutUint32(b[4:], prFlowBody-1); return b[:len(b)-1] })
	mut("flow one byte long", 0, func(b []byte) []byte { le.PutUint32(b[4:], prFlowBody+1); return append(b, 0) })
	mut("flow length beyond the payload", 0, func(b []byte) []byte { le.PutUint32(b[4:], 1<<31); return b })
	mut("flow op 0", 0, func(b []byte) []byte { b[1] = 0; return b })
	mut("flow op 3", 0, func(b []byte) []byte { b[1] = 3; return b })
	mut("rules not a multiple", 1, func(b []byte) []byte { le.PutUint32(b[4:], uint32(len(b)-prWriteHdr+1)); return append(b, 0) })
	mut("rules length beyond the payload", 1, func(b []byte) []byte { le.PutUint32(b[4:], uint32(len(b))); return b })
	mut("rule family 5", 1, func(b []byte) []byte { b[prWriteHdr] = 5; return b })
	mut("rule v4 bits 33", 1, func(b []byte) []byte { b[prWriteHdr+1] = 33; return b })
	mut("rule v6 bits 129", 1, func(b []byte) []byte { b[prWriteHdr+prRuleBytes+3] = 129; return b })
	mut("rule no prefix with bits", 1, func(b []byte) []byte { b[prWriteHdr+3] = 8; return b })
	mut("rule source ports upside down", 1, func(b []byte) []byte {
		le.PutUint16(b[prWriteHdr+36:], 2)
		le.PutUint16(b[prWriteHdr+38:], 1)
		return b
	})
	mut("rule destination ports upside down", 1, func(b []byte) []byte { le.PutUint16(b[prWriteHdr+40:], 2); return b })
	mut("buckets short", 2, func(b []byte) []byte { le.PutUint32(b[4:], prBucketBody-2); return b[:len(b)-2] })
	mut("buckets long", 2, func(b []byte) []byte { le.PutUint32(b[4:], prBucketBody+2); return append(b, 0, 0) })
	mut("buckets of service 0", 2, func(b []byte) []byte { le.PutUint16(b[2:], 0); return b })
	mut("buckets of service 65535", 2, func(b []byte) []byte { le.PutUint16(b[2:], 0xFFFF); return b })
	mut("bucket instance out of range", 2, func(b []byte) []byte { le.PutUint16(b[prWriteHdr+10:], 0xFFFF); return b })
	for name, b := range bad {
		if err := decodePayload(b, none); !errors.Is(err, errPayload) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestFlowdirExact: Exact finds exact entries of both families, not rules,
// and not after Delete (addRuntimeFlow uses it to see an entry move).
func TestFlowdirExact(t *testing.T) {
	fts, _, _, _ := rtTestRecords()
	fd, err := flowdir.New(16)
	if err != nil {
		t.Fatal(err)
	}
	if err := fd.AddRule(flowdir.Rule{Chain: 5}); err != nil {
		t.Fatal(err)
	}
	for i := range fts {
		if ch, ok := fd.Exact(&fts[i]); ok {
			t.Fatalf("flow %d: exact entry %d before any insert", i, ch)
		}
		if err := fd.Insert(&fts[i], uint16(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range fts {
		if ch, ok := fd.Exact(&fts[i]); !ok || ch != uint16(i+1) {
			t.Fatalf("flow %d: chain %d, %v", i, ch, ok)
		}
	}
	fd.Delete(&fts[0])
	if _, ok := fd.Exact(&fts[0]); ok {
		t.Fatal("deleted entry still found")
	}
	if ch, ok := fd.Lookup(&fts[0]); !ok || ch != 5 {
		t.Fatalf("lookup after delete: %d, %v (want the rule's 5)", ch, ok)
	}
}
