package pcap_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/reinforce-nfv/reinforce/port/pcap"
)

func TestWriterMatchesIndependentEncoding(t *testing.T) {
	recs := []pcap.TRec{
		{TS: 1_700_000_000_123_456_789, Data: pcap.Frame(1, 60)},
		{TS: 1_700_000_001_000_001_000, Data: pcap.Frame(2, 1514), Orig: 9000},
		{TS: 5, Data: pcap.Frame(3, 0)},
	}
	for _, tt := range []struct {
		be, nano bool
	}{{false, false}, {false, true}, {true, false}, {true, true}} {
		h := pcap.DefaultHeader()
		h.BigEndian, h.Nanosecond, h.SnapLen = tt.be, tt.nano, 4096
		var out bytes.Buffer
		w, err := pcap.NewWriter(&out, h)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if err := w.WriteRecord(r.TS, r.Orig, r.Data); err != nil {
				t.Fatal(err)
			}
		}
		if out.Len() != 0 {
			t.Fatalf("wrote %d bytes before Flush", out.Len())
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if want := pcap.BuildClassic(tt.be, tt.nano, 4096, 1, recs); !bytes.Equal(out.Bytes(), want) {
			t.Fatalf("be=%v nano=%v: output differs from the independent encoding", tt.be, tt.nano)
		}
	}
}

func TestWriterCopiesEveryHeaderField(t *testing.T) {
	h := pcap.FileHeader{BigEndian: true, Nanosecond: true, VersionMajor: 2, VersionMinor: 3,
		ThisZone: -3600, SigFigs: 7, SnapLen: 1234, LinkType: 0x10000001}
	var out bytes.Buffer
	w, err := pcap.NewWriter(&out, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	rd, err := pcap.NewReader(&out)
	if err != nil {
		t.Fatal(err)
	}
	if rd.Header() != h || w.Header() != h {
		t.Fatalf("header %+v, want %+v", rd.Header(), h)
	}
}

func TestWriterCutsFramesAtSnapLen(t *testing.T) {
	h := pcap.DefaultHeader()
	h.SnapLen = 100
	var out bytes.Buffer
	w, _ := pcap.NewWriter(&out, h)
	w.WriteRecord(1e9, 0, pcap.Frame(1, 300))
	w.WriteRecord(2e9, 0, pcap.Frame(2, 100))
	w.Flush()
	recs, err := readAll(t, &out)
	if err != io.EOF || len(recs) != 2 {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	if !bytes.Equal(recs[0].Data, pcap.Frame(1, 100)) || recs[0].OrigLen != 300 || recs[1].OrigLen != 100 {
		t.Fatalf("records %d/%d bytes, orig %d/%d", len(recs[0].Data), len(recs[1].Data), recs[0].OrigLen, recs[1].OrigLen)
	}
}

func TestWriterRefusesUnknownVersion(t *testing.T) {
	if _, err := pcap.NewWriter(io.Discard, pcap.FileHeader{}); !errors.Is(err, pcap.ErrUnsupported) {
		t.Fatalf("zero header: %v", err)
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(b []byte) (int, error) {
	f.n++
	return 0, errors.New("disk full")
}

func TestWriterErrorIsSticky(t *testing.T) {
	fw := &failWriter{}
	w, _ := pcap.NewWriter(fw, pcap.DefaultHeader())
	first := w.Flush()
	if first == nil || first.Error() != "write: disk full" {
		t.Fatalf("Flush: %v", first)
	}
	if err := w.WriteRecord(1, 0, pcap.Frame(1, 60)); err != first {
		t.Fatalf("WriteRecord after failure: %v", err)
	}
	if err := w.Flush(); err != first || fw.n != 1 {
		t.Fatalf("Flush after failure: %v, %d writes", err, fw.n)
	}
}

func TestWriterFlushesLargeBuffers(t *testing.T) {
	var out bytes.Buffer
	w, _ := pcap.NewWriter(&out, pcap.DefaultHeader())
	for i := range 200 {
		if err := w.WriteRecord(int64(i)*1e6, 0, pcap.Frame(i, 1500)); err != nil {
			t.Fatal(err)
		}
	}
	if out.Len() == 0 || w.Buffered() >= 128<<10 {
		t.Fatalf("%d bytes written, %d buffered after 300 KB of records", out.Len(), w.Buffered())
	}
}
