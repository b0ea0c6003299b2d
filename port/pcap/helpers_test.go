package pcap_test

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/port/pcap"
	"github.com/reinforce-nfv/reinforce/shm"
	"github.com/reinforce-nfv/reinforce/shm/shmtest"
)

// testdataDir holds the captures the tests replay (copied from nDPI's test
// suite; see the repository's testdata).
const testdataDir = "../../testdata/pcap"

// wantFrames is each capture's frame count, counted by refRecords and
// checked by hand against capinfos-style walks of the files.
var wantFrames = map[string]int{
	"4in4tunnel.pcap":            5,
	"6in4tunnel.pcap":            127,
	"badpackets.pcap":            93,
	"bfd.pcap":                   11,
	"dns.pcap":                   5, // pcapng despite its name
	"gre.pcapng":                 1,
	"http_ipv6.pcap":             193,
	"ip_fragmented_garbage.pcap": 1252,
	"tcp_scan.pcapng":            30, // classic pcap despite its name
}

// captures lists the capture files in testdataDir.
func captures(t testing.TB) []string {
	t.Helper()
	var files []string
	for _, pat := range []string{"*.pcap", "*.pcapng"} {
		m, err := filepath.Glob(filepath.Join(testdataDir, pat))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	sort.Strings(files)
	if len(files) == 0 {
		t.Fatalf("no captures in %s", testdataDir)
	}
	return files
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t testing.TB, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// isClassic tells a classic capture by its magic (either byte order).
func isClassic(b []byte) bool {
	if len(b) < 4 {
		return false
	}
	switch binary.LittleEndian.Uint32(b) {
	case 0xa1b2c3d4, 0xa1b23c4d, 0xd4c3b2a1, 0x4d3cb2a1:
		return true
	}
	return false
}

// refRec is a frame as refRecords decodes it.
type refRec struct {
	data []byte
	orig uint32
	ts   int64 // ns since the epoch
	off  int   // file offset of the record or block
}

// refRecords is a minimal decoder, independent of the package's, for the
// captures in testdata: classic pcap in either byte order and resolution,
// and pcapng with enhanced and simple packet blocks at the default (µs)
// resolution. It returns the frames of every complete record or block and
// the offset where decoding stopped (len(b) for a complete file).
func refRecords(t testing.TB, b []byte) (recs []refRec, end int) {
	t.Helper()
	if len(b) < 24 {
		return nil, 0
	}
	if isClassic(b) {
		m := binary.LittleEndian.Uint32(b)
		var bo binary.ByteOrder = binary.LittleEndian
		if m == 0xd4c3b2a1 || m == 0x4d3cb2a1 {
			bo = binary.BigEndian
		}
		unit := int64(1000)
		if m == 0xa1b23c4d || m == 0x4d3cb2a1 {
			unit = 1
		}
		off := 24
		for off+16 <= len(b) {
			n := int(bo.Uint32(b[off+8:]))
			if off+16+n > len(b) {
				break
			}
			recs = append(recs, refRec{data: b[off+16 : off+16+n], orig: bo.Uint32(b[off+12:]),
				ts: int64(bo.Uint32(b[off:]))*1e9 + int64(bo.Uint32(b[off+4:]))*unit, off: off})
			off += 16 + n
		}
		return recs, off
	}
	var bo binary.ByteOrder = binary.LittleEndian
	off := 0
	var snap uint32
	var last int64
	for off+12 <= len(b) {
		if binary.LittleEndian.Uint32(b[off:]) == 0x0a0d0d0a {
			bo = binary.LittleEndian
			if binary.LittleEndian.Uint32(b[off+8:]) != 0x1a2b3c4d {
				bo = binary.BigEndian
			}
		}
		typ, l := bo.Uint32(b[off:]), int(bo.Uint32(b[off+4:]))
		if l < 12 || off+l > len(b) {
			break
		}
		body := b[off+8 : off+l-4]
		switch typ {
		case 1:
			snap = bo.Uint32(body[4:])
		case 6:
			n := bo.Uint32(body[12:])
			last = int64(uint64(bo.Uint32(body[4:]))<<32|uint64(bo.Uint32(body[8:]))) * 1000
			recs = append(recs, refRec{data: body[20 : 20+n], orig: bo.Uint32(body[16:]), ts: last, off: off})
		case 3:
			n := min(bo.Uint32(body), uint32(len(body)-4))
			if snap > 0 {
				n = min(n, snap)
			}
			recs = append(recs, refRec{data: body[4 : 4+n], orig: bo.Uint32(body), ts: last, off: off})
		}
		off += l
	}
	return recs, off
}

// Owner of the test regions' cache.
const owner shm.OwnerID = 1

// newRegion creates a test region with one owner and returns its cache.
// The caller services the pool (Service) as it goes.
func newRegion(t testing.TB, o shm.Options) (*shm.Region, *shm.Cache) {
	t.Helper()
	r := shmtest.TempRegion(t, o)
	if err := r.Pool().AddOwner(owner, 0); err != nil {
		t.Fatal(err)
	}
	c, err := r.OpenCache(owner)
	if err != nil {
		t.Fatal(err)
	}
	r.Pool().Service()
	return r, c
}

// bigOptions sizes a region whose slots hold any frame of the testdata
// captures (the largest data room a region allows).
func bigOptions() shm.Options {
	o := shmtest.SmallOptions()
	o.Slots, o.DataBytes = 512, shm.MaxDataBytes
	return o
}

// got is a received frame: a copy of its bytes and metadata.
type got struct {
	data []byte
	meta gotMeta
}

// gotMeta is the part of shm.Meta a port sets.
type gotMeta struct {
	DataOff   uint16
	Len       uint32
	Port      uint16
	Timestamp int64
}

// rxAll receives from p until it is Done and returns what it delivered,
// freeing the slots, or, when tx is set, passing each burst to
// p.TxBurst as it arrives. It fails t if no progress is made for 5 s.
func rxAll(t testing.TB, r *shm.Region, c *shm.Cache, p *pcap.Port, tx bool) []got {
	t.Helper()
	var out []got
	var buf [shm.BurstSize]shm.Slot
	last := time.Now()
	for {
		n := p.RxBurst(c, buf[:])
		for _, s := range buf[:n] {
			m := r.Meta(s)
			out = append(out, got{data: append([]byte(nil), r.Packet(s)...), meta: gotMeta{
				DataOff: m.DataOff, Len: m.Len, Port: m.Port, Timestamp: m.Timestamp}})
		}
		if tx {
			if k := p.TxBurst(c, buf[:n]); k != n {
				t.Fatalf("TxBurst took %d of %d", k, n)
			}
		} else if k := c.Free(buf[:n]); k != n {
			t.Fatalf("freed %d of %d", k, n)
		}
		r.Pool().Service()
		if n > 0 {
			last = time.Now()
			continue
		}
		if p.Done() {
			return out
		}
		if time.Since(last) > 5*time.Second {
			t.Fatalf("received %d frames, then nothing for 5 s", len(out))
		}
		runtime.Gosched()
	}
}

// checkPoolWhole fails t if c holds slots or counted a bad reference.
func checkPoolWhole(t testing.TB, c *shm.Cache) {
	t.Helper()
	if c.Allocs != c.Frees || c.Bad != 0 {
		t.Fatalf("owner %d: %d allocs, %d frees, %d bad", c.Owner(), c.Allocs, c.Frees, c.Bad)
	}
}

// newPort opens a pcap port, closed when the test ends.
func newPort(t testing.TB, id uint16, o pcap.Options) *pcap.Port {
	t.Helper()
	p, err := pcap.New(id, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}
