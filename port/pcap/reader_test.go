package pcap_test

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/reinforce-nfv/reinforce/port/pcap"
)

// readAll returns the records of b (copied) and the error Next ended with.
func readAll(t testing.TB, src io.Reader) ([]pcap.Record, error) {
	t.Helper()
	rd, err := pcap.NewReader(src)
	if err != nil {
		return nil, err
	}
	var recs []pcap.Record
	for {
		rec, err := rd.Next()
		if err != nil {
			return recs, err
		}
		rec.Data = append([]byte(nil), rec.Data...)
		recs = append(recs, rec)
	}
}

// sameAsRef fails t unless recs are the frames of ref, in order.
func sameAsRef(t testing.TB, name string, recs []pcap.Record, ref []refRec) {
	t.Helper()
	if len(recs) != len(ref) {
		t.Fatalf("%s: %d records, want %d", name, len(recs), len(ref))
	}
	for i, r := range recs {
		w := ref[i]
		if !bytes.Equal(r.Data, w.data) || r.OrigLen != w.orig || r.Timestamp != w.ts || r.Offset != int64(w.off) ||
			r.LinkType != pcap.LinkTypeEthernet {
			t.Fatalf("%s: record %d: len %d orig %d ts %d off %d lt %d, want len %d orig %d ts %d off %d",
				name, i, len(r.Data), r.OrigLen, r.Timestamp, r.Offset, r.LinkType, len(w.data), w.orig, w.ts, w.off)
		}
	}
}

func TestReaderDecodesEveryTestdataCapture(t *testing.T) {
	for _, path := range captures(t) {
		name := filepath.Base(path)
		b := readFile(t, path)
		ref, end := refRecords(t, b)
		if end != len(b) {
			t.Fatalf("%s: reference decoder stopped at byte %d of %d", name, end, len(b))
		}
		if n, ok := wantFrames[name]; ok && n != len(ref) {
			t.Fatalf("%s: reference decoder found %d frames, want %d", name, len(ref), n)
		}
		recs, err := readAll(t, bytes.NewReader(b))
		if err != io.EOF {
			t.Fatalf("%s: ended with %v, want io.EOF", name, err)
		}
		sameAsRef(t, name, recs, ref)

		// The same through one-byte reads: need's loop and compaction.
		recs, err = readAll(t, iotest.OneByteReader(bytes.NewReader(b)))
		if err != io.EOF {
			t.Fatalf("%s, one-byte reads: ended with %v", name, err)
		}
		sameAsRef(t, name+" (one-byte reads)", recs, ref)
	}
}

func TestReaderDetectsFormatByMagic(t *testing.T) {
	for name, want := range map[string]pcap.Format{
		"dns.pcap":        pcap.FormatPcapNG,
		"gre.pcapng":      pcap.FormatPcapNG,
		"tcp_scan.pcapng": pcap.FormatPcap,
		"bfd.pcap":        pcap.FormatPcap,
	} {
		rd, err := pcap.NewReader(bytes.NewReader(readFile(t, filepath.Join(testdataDir, name))))
		if err != nil {
			t.Fatal(err)
		}
		if rd.Format() != want {
			t.Errorf("%s: format %v, want %v", name, rd.Format(), want)
		}
	}
}

func TestReaderClassicByteOrdersAndResolutions(t *testing.T) {
	for _, tt := range []struct {
		be, nano bool
	}{{false, false}, {false, true}, {true, false}, {true, true}} {
		// µs files cannot hold the ns digits: the timestamps are multiples of 1 µs there.
		unit := int64(1000)
		if tt.nano {
			unit = 1
		}
		recs := []pcap.TRec{
			{TS: 1_700_000_000_123_456_789 / unit * unit, Data: pcap.Frame(1, 60)},
			{TS: 1_700_000_001_000_000_001 / unit * unit, Data: pcap.Frame(2, 100), Orig: 1514},
			{TS: 1_700_000_001_999_999_999 / unit * unit, Data: pcap.Frame(3, 0)},
		}
		b := pcap.BuildClassic(tt.be, tt.nano, 4096, pcap.LinkTypeEthernet, recs)
		rd, err := pcap.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		h := rd.Header()
		want := pcap.FileHeader{BigEndian: tt.be, Nanosecond: tt.nano, VersionMajor: 2, VersionMinor: 4, SnapLen: 4096, LinkType: 1}
		if rd.Format() != pcap.FormatPcap || h != want {
			t.Fatalf("be=%v nano=%v: format %v header %+v", tt.be, tt.nano, rd.Format(), h)
		}
		for i, w := range recs {
			r, err := rd.Next()
			orig := w.Orig
			if orig == 0 {
				orig = uint32(len(w.Data))
			}
			if err != nil || !bytes.Equal(r.Data, w.Data) || r.Timestamp != w.TS || r.OrigLen != orig {
				t.Fatalf("be=%v nano=%v record %d: %v, ts %d orig %d, want ts %d orig %d", tt.be, tt.nano, i, err, r.Timestamp, r.OrigLen, w.TS, orig)
			}
		}
		if _, err := rd.Next(); err != io.EOF {
			t.Fatalf("be=%v nano=%v: end: %v", tt.be, tt.nano, err)
		}
	}
}

func TestReaderPcapNGBlocksAndOptions(t *testing.T) {
	var n pcap.NGBuilder
	n.SHB(false, n.Opt(2, []byte("test hw")), []byte{0, 0, 0, 0})
	n.IDB(1, 40)                                                                          // iface 0: µs, snaplen 40 (cuts simple packets)
	n.IDB(1, 0, n.Opt(9, []byte{9}))                                                      // iface 1: ns
	n.IDB(1, 0, n.Opt(9, []byte{0x80 | 10}), n.Opt(14, []byte{100, 0, 0, 0, 0, 0, 0, 0})) // iface 2: 2^-10 s, +100 s
	n.Block(0x00000bad, []byte("custom block, skipped"))
	n.Block(4, []byte{0, 0, 0, 0})                        // name resolution block, skipped
	n.EPB(0, 1_500_000_000_000_001, 0, pcap.Frame(1, 60)) // µs
	n.Block(5, make([]byte, 12))                          // interface statistics block, skipped
	n.EPB(1, 1_500_000_000_000_000_007, 1500, pcap.Frame(2, 64))
	n.EPB(2, 3*1024+512, 0, pcap.Frame(3, 61)) // 3.5 s after +100 s
	n.SPB(60, pcap.Frame(4, 60))               // cut to iface 0's snaplen; the last timestamp
	n.OPB(1, 42, pcap.Frame(5, 70))
	n.SHB(true) // a big-endian section: the interface table starts over
	n.IDB(1, 0, n.Opt(9, []byte{3}))
	n.EPB(0, 1234, 0, pcap.Frame(6, 80))
	want := []struct {
		data []byte
		orig uint32
		ts   int64
	}{
		{pcap.Frame(1, 60), 60, 1_500_000_000_000_001_000},
		{pcap.Frame(2, 64), 1500, 1_500_000_000_000_000_007},
		{pcap.Frame(3, 61), 61, 103_500_000_000},
		{pcap.Frame(4, 60)[:40], 60, 103_500_000_000},
		{pcap.Frame(5, 70), 70, 42},
		{pcap.Frame(6, 80), 80, 1_234_000_000},
	}
	rd, err := pcap.NewReader(bytes.NewReader(n.B))
	if err != nil {
		t.Fatal(err)
	}
	if rd.Format() != pcap.FormatPcapNG || rd.Header() != (pcap.FileHeader{}) {
		t.Fatalf("format %v, header %+v", rd.Format(), rd.Header())
	}
	for i, w := range want {
		r, err := rd.Next()
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if !bytes.Equal(r.Data, w.data) || r.OrigLen != w.orig || r.Timestamp != w.ts || r.LinkType != 1 {
			t.Fatalf("record %d: len %d orig %d ts %d lt %d, want len %d orig %d ts %d", i, len(r.Data), r.OrigLen, r.Timestamp, r.LinkType, len(w.data), w.orig, w.ts)
		}
	}
	if _, err := rd.Next(); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
}

func TestReaderTimestampResolutions(t *testing.T) {
	for _, tt := range []struct {
		tsresol byte
		ticks   uint64
		want    int64
	}{
		{0, 7, 7_000_000_000},    // seconds
		{3, 7, 7_000_000},        // ms
		{6, 7, 7_000},            // µs, the default
		{9, 7, 7},                // ns
		{12, 7_000, 7},           // ps
		{30, 1 << 62, 0},         // far below 1 ns
		{0x80, 3, 3_000_000_000}, // 2^0 s
		{0x80 | 10, 1024 + 256, 1_250_000_000},
		{0x80 | 30, 1 << 30, 1_000_000_000},
		{0x80 | 64, 1 << 63, 500_000_000},
		{0x80 | 127, ^uint64(0), 0},
	} {
		var n pcap.NGBuilder
		n.SHB(false)
		n.IDB(1, 0, n.Opt(9, []byte{tt.tsresol}))
		n.EPB(0, tt.ticks, 0, pcap.Frame(0, 60))
		recs, err := readAll(t, bytes.NewReader(n.B))
		if err != io.EOF || len(recs) != 1 || recs[0].Timestamp != tt.want {
			t.Errorf("tsresol %#x, %d ticks: %v, %+v, want %d ns", tt.tsresol, tt.ticks, err, recs, tt.want)
		}
	}
}

func TestReaderGrowsForLargeBlocks(t *testing.T) {
	var n pcap.NGBuilder
	n.SHB(false)
	n.IDB(1, 0)
	n.EPB(0, 1, 0, pcap.Frame(1, 60))
	n.EPB(0, 2, 0, pcap.Frame(2, 700_000)) // above the initial buffer
	n.EPB(0, 3, 0, pcap.Frame(3, 60))
	recs, err := readAll(t, iotest.HalfReader(bytes.NewReader(n.B)))
	if err != io.EOF || len(recs) != 3 || !bytes.Equal(recs[1].Data, pcap.Frame(2, 700_000)) {
		t.Fatalf("%v, %d records", err, len(recs))
	}
}

func TestReaderTruncatedDeliversGoodPrefix(t *testing.T) {
	for _, path := range captures(t) {
		name := filepath.Base(path)
		full := readFile(t, path)
		cuts := []int{len(full) / 2, len(full) - 1}
		if len(full) < 4096 {
			cuts = cuts[:0]
			for i := range len(full) {
				cuts = append(cuts, i)
			}
		}
		for _, cut := range cuts {
			b := full[:cut]
			ref, end := refRecords(t, b)
			recs, err := readAll(t, bytes.NewReader(b))
			if ref == nil && end == 0 {
				// Not even the file header (classic) or the first section header:
				// NewReader refuses the file.
				if recs != nil || !errors.Is(err, pcap.ErrTruncated) && !errors.Is(err, pcap.ErrNotCapture) {
					t.Fatalf("%s cut at %d: %d records, %v", name, cut, len(recs), err)
				}
				continue
			}
			if end == len(b) {
				if err != io.EOF {
					t.Fatalf("%s cut at %d (a record boundary): %v", name, cut, err)
				}
			} else {
				var fe *pcap.FormatError
				if !errors.As(err, &fe) || !errors.Is(err, pcap.ErrTruncated) || fe.Offset != int64(end) {
					t.Fatalf("%s cut at %d: ended with %v, want truncated at byte %d", name, cut, err, end)
				}
			}
			sameAsRef(t, name, recs, ref)
		}
	}
}

func TestReaderRefusesBadHeaders(t *testing.T) {
	classic := pcap.BuildClassic(false, false, 65535, 1, nil)
	v3 := append([]byte(nil), classic...)
	v3[4] = 3
	var ng pcap.NGBuilder
	ng.SHB(false)
	badBOM := append([]byte(nil), ng.B...)
	badBOM[8] = 0x99
	v2 := append([]byte(nil), ng.B...)
	v2[12] = 2
	short := append([]byte(nil), ng.B...)
	short[4] = 24
	short[len(short)-4] = 24
	trailer := append([]byte(nil), ng.B...)
	trailer[len(trailer)-4]++
	for _, tt := range []struct {
		name string
		b    []byte
		err  error
		msg  string
	}{
		{"empty", nil, pcap.ErrTruncated, "byte 0: file header: capture truncated"},
		{"three bytes", classic[:3], pcap.ErrTruncated, "file header"},
		{"classic header cut", classic[:20], pcap.ErrTruncated, "file header"},
		{"text", []byte("GET / HTTP/1.1\r\n\r\n"), pcap.ErrNotCapture, "byte 0: magic 0x20544547: not a pcap or pcapng capture"},
		{"classic version 3", v3, pcap.ErrUnsupported, "pcap version 3.4"},
		{"pcapng byte-order magic", badBOM, pcap.ErrCorrupt, "byte-order magic"},
		{"pcapng version 2", v2, pcap.ErrUnsupported, "pcapng version 2.0"},
		{"pcapng section too short", short, pcap.ErrCorrupt, "section header: length 24"},
		{"pcapng trailer", trailer, pcap.ErrCorrupt, "trailing length 29"},
		{"pcapng header cut", ng.B[:20], pcap.ErrTruncated, "section header of 28 bytes"},
	} {
		_, err := pcap.NewReader(bytes.NewReader(tt.b))
		var fe *pcap.FormatError
		if !errors.Is(err, tt.err) || !errors.As(err, &fe) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: %v, want %v containing %q", tt.name, err, tt.err, tt.msg)
		}
	}
}

func TestReaderStopsAtCorruptRecord(t *testing.T) {
	good := []pcap.TRec{{TS: 1e9, Data: pcap.Frame(1, 60)}, {TS: 2e9, Data: pcap.Frame(2, 60)}}
	classic := pcap.BuildClassic(false, false, 65535, 1, good)
	classic = append(classic, pcap.BuildClassic(false, false, 65535, 1, []pcap.TRec{{Data: pcap.Frame(3, 60)}})[24:]...)
	classic[24+2*(16+60)+11] = 0xff // third record's caplen: 0xff00003c, above MaxRecordBytes

	ng := func(f func(n *pcap.NGBuilder)) []byte {
		var n pcap.NGBuilder
		n.SHB(false)
		n.IDB(1, 0)
		n.EPB(0, 1, 0, pcap.Frame(1, 60))
		n.EPB(0, 2, 0, pcap.Frame(2, 60))
		f(&n)
		return n.B
	}
	for _, tt := range []struct {
		name string
		b    []byte
		msg  string
	}{
		{"classic record length", classic, "record length 4278190140 above 262144"},
		{"block length not a multiple of 4", ng(func(n *pcap.NGBuilder) { n.B = append(n.B, 6, 0, 0, 0, 13, 0, 0, 0) }), "block type 0x6: length 13"},
		{"block length below 12", ng(func(n *pcap.NGBuilder) { n.B = append(n.B, 6, 0, 0, 0, 8, 0, 0, 0) }), "length 8"},
		{"block trailer", ng(func(n *pcap.NGBuilder) { n.EPB(0, 3, 0, pcap.Frame(3, 60)); n.B[len(n.B)-1] = 1 }), "trailing length"},
		{"captured length past the block", ng(func(n *pcap.NGBuilder) {
			n.EPB(0, 3, 0, pcap.Frame(3, 60))
			n.B[len(n.B)-92+20] = 200 // the 92-byte block's captured length (60)
		}), "captured length 200 overruns the block"},
		{"undescribed interface", ng(func(n *pcap.NGBuilder) { n.EPB(1, 3, 0, pcap.Frame(3, 60)) }), "packet on interface 1 of 1 described"},
		{"interface of a previous section", ng(func(n *pcap.NGBuilder) { n.SHB(false); n.EPB(0, 3, 0, pcap.Frame(3, 60)) }), "packet on interface 0 of 0 described"},
		{"option past the block", ng(func(n *pcap.NGBuilder) { n.IDB(1, 0, []byte{9, 0, 200, 0}) }), "option 9 of 200 bytes overruns"},
		{"simple packet without interface", func() []byte {
			var n pcap.NGBuilder
			n.SHB(false)
			n.SPB(60, pcap.Frame(1, 60))
			return n.B
		}(), "simple packet before any interface description"},
	} {
		recs, err := readAll(t, bytes.NewReader(tt.b))
		wantRecs := 2
		if strings.HasPrefix(tt.name, "simple") {
			wantRecs = 0
		}
		if len(recs) != wantRecs || !errors.Is(err, pcap.ErrCorrupt) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: %d records, %v; want %d then ErrCorrupt containing %q", tt.name, len(recs), err, wantRecs, tt.msg)
		}
	}
}

func TestReaderErrorIsSticky(t *testing.T) {
	b := readFile(t, filepath.Join(testdataDir, "bfd.pcap"))
	rd, err := pcap.NewReader(bytes.NewReader(b[:len(b)-10]))
	if err != nil {
		t.Fatal(err)
	}
	var first error
	for first == nil {
		_, first = rd.Next()
	}
	for range 3 {
		if _, err := rd.Next(); err != first {
			t.Fatalf("after %v: %v", first, err)
		}
	}
}

func TestReaderPassesReadErrors(t *testing.T) {
	boom := errors.New("disk on fire")
	b := readFile(t, filepath.Join(testdataDir, "bfd.pcap"))
	ref, _ := refRecords(t, b)
	src := io.MultiReader(bytes.NewReader(b[:ref[1].off]), iotest.ErrReader(boom))
	recs, err := readAll(t, src)
	if !errors.Is(err, boom) || len(recs) != 1 {
		t.Fatalf("%d records, %v", len(recs), err)
	}
}
