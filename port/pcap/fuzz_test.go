package pcap

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// chunkReader returns at most size bytes per Read, so that records end
// between reads and the staged path meets errShort.
type chunkReader struct {
	b    []byte
	size int
}

// Len sizes the Reader's buffer to the input, as for a small file (and
// keeps each fuzzing run from allocating a full-size buffer).
func (c *chunkReader) Len() int { return len(c.b) }

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.size)], c.b)
	c.b = c.b[n:]
	return n, nil
}

// fuzzSeeds are hand-built captures covering what the testdata lacks.
func fuzzSeeds() [][]byte {
	recs := []TRec{{TS: 1e18, Data: Frame(1, 60)}, {TS: 1e18 + 1, Data: Frame(2, 70), Orig: 1500}}
	var n NGBuilder
	n.SHB(false)
	n.IDB(1, 64, n.Opt(9, []byte{9}), n.Opt(14, []byte{1, 0, 0, 0, 0, 0, 0, 0}))
	n.IDB(1, 0, n.Opt(9, []byte{0x80 | 20}))
	n.EPB(0, 12345, 0, Frame(3, 60))
	n.Block(5, make([]byte, 12))
	n.SPB(100, Frame(4, 100))
	n.OPB(1, 7, Frame(5, 61))
	n.SHB(true)
	n.IDB(1, 0)
	n.EPB(0, 1, 0, Frame(6, 62))
	return [][]byte{
		BuildClassic(false, false, 65535, 1, recs),
		BuildClassic(true, true, 65535, 1, recs),
		BuildClassic(true, false, 100, 105, recs),
		n.B,
	}
}

// FuzzReader feeds arbitrary bytes to the Reader twice: through Next, and
// through the port's staging path (next without refill until errShort,
// the staged records kept), from a source that returns short reads. It
// must never panic, must fail only with io.EOF or a *FormatError, and both
// paths must return the same records and the same error; records staged
// without refill must stay intact until the refill.
func FuzzReader(f *testing.F) {
	files, _ := filepath.Glob("../../testdata/pcap/*")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[:min(len(b), 4<<10)]) // small seeds: the fuzzer minimises large ones slowly
	}
	for _, b := range fuzzSeeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rd, err := NewReader(bytes.NewReader(b))
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("NewReader: %v is not a *FormatError", err)
			}
			return
		}
		var want [][]byte
		var end error
		for {
			rec, err := rd.Next()
			if err != nil {
				end = err
				break
			}
			if len(rec.Data) > len(b) {
				t.Fatalf("record of %d bytes from %d bytes of input", len(rec.Data), len(b))
			}
			want = append(want, append([]byte(nil), rec.Data...))
		}
		var fe *FormatError
		if end != io.EOF && !errors.As(end, &fe) {
			t.Fatalf("Next ended with %v, neither io.EOF nor a *FormatError", end)
		}

		rd2, err := NewReader(&chunkReader{b: b, size: 1 + len(b)%61})
		if err != nil {
			t.Fatalf("second NewReader: %v", err)
		}
		var held []Record
		i := 0
		for {
			rec, err := rd2.next(len(held) == 0)
			if err == errShort {
				for j, h := range held {
					if !bytes.Equal(h.Data, want[i-len(held)+j]) {
						t.Fatalf("staged record %d changed before the refill", i-len(held)+j)
					}
				}
				held = held[:0]
				continue
			}
			if err != nil {
				if err.Error() != end.Error() {
					t.Fatalf("staged path ended with %v, Next with %v", err, end)
				}
				break
			}
			if i >= len(want) || !bytes.Equal(rec.Data, want[i]) {
				t.Fatalf("staged path: record %d differs", i)
			}
			held = append(held, rec)
			i++
		}
		if i != len(want) {
			t.Fatalf("staged path: %d records, Next: %d", i, len(want))
		}
	})
}
