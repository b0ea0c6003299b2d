package pcap_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/reinforce-nfv/reinforce/port"
	"github.com/reinforce-nfv/reinforce/port/pcap"
	"github.com/reinforce-nfv/reinforce/shm"
	"github.com/reinforce-nfv/reinforce/shm/shmtest"
)

func TestPortDeliversEveryCapture(t *testing.T) {
	r, c := newRegion(t, bigOptions())
	for _, path := range captures(t) {
		name := filepath.Base(path)
		ref, _ := refRecords(t, readFile(t, path))
		p := newPort(t, 7, pcap.Options{Path: path})
		before := port.Nanotime()
		frames := rxAll(t, r, c, p, false)
		if len(frames) != len(ref) {
			t.Fatalf("%s: delivered %d frames, want %d", name, len(frames), len(ref))
		}
		var bytesIn uint64
		for i, f := range frames {
			m := f.meta
			if !bytes.Equal(f.data, ref[i].data) || m.DataOff != shm.HeadroomBytes || m.Port != 7 ||
				m.Len != uint32(len(ref[i].data)) || m.Timestamp < before || m.Timestamp > port.Nanotime() {
				t.Fatalf("%s: frame %d: %d bytes, meta %+v", name, i, len(f.data), m)
			}
			bytesIn += uint64(len(f.data))
		}
		if st := p.Stats(); st != (port.Stats{RxPkts: uint64(len(ref)), RxBytes: bytesIn}) {
			t.Fatalf("%s: stats %+v", name, st)
		}
		if p.Err() != nil || !p.Done() {
			t.Fatalf("%s: err %v, done %v", name, p.Err(), p.Done())
		}
		var buf [4]shm.Slot
		if p.RxBurst(c, buf[:]) != 0 {
			t.Fatalf("%s: RxBurst after the end delivered", name)
		}
	}
	checkPoolWhole(t, c)
}

func TestPortSkipsFramesLargerThanSlots(t *testing.T) {
	r, c := newRegion(t, shmtest.SmallOptions())
	room := int(r.DataBytes())
	path := filepath.Join(testdataDir, "http_ipv6.pcap")
	ref, _ := refRecords(t, readFile(t, path))
	var fit [][]byte
	for _, rr := range ref {
		if len(rr.data) <= room {
			fit = append(fit, rr.data)
		}
	}
	if len(fit) == 0 || len(fit) == len(ref) {
		t.Fatalf("%d of %d frames fit %d bytes: the test needs both kinds", len(fit), len(ref), room)
	}
	p := newPort(t, 0, pcap.Options{Path: path})
	frames := rxAll(t, r, c, p, false)
	if len(frames) != len(fit) {
		t.Fatalf("delivered %d, want %d", len(frames), len(fit))
	}
	for i := range frames {
		if !bytes.Equal(frames[i].data, fit[i]) {
			t.Fatalf("frame %d differs", i)
		}
	}
	if st := p.Stats(); st.RxPkts != uint64(len(fit)) || st.RxDrops != uint64(len(ref)-len(fit)) {
		t.Fatalf("stats %+v, want %d delivered, %d dropped", st, len(fit), len(ref)-len(fit))
	}
	checkPoolWhole(t, c)
}

// roundTrip replays in through a port that transmits every frame it
// receives and returns what it wrote.
func roundTrip(t *testing.T, r *shm.Region, c *shm.Cache, in string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out.pcap")
	p := newPort(t, 1, pcap.Options{Path: in, OutPath: out})
	rxAll(t, r, c, p, true)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if p.Err() != nil {
		t.Fatal(p.Err())
	}
	return readFile(t, out)
}

func TestPortRoundTripsClassicCapturesByteForByte(t *testing.T) {
	r, c := newRegion(t, bigOptions())
	n := 0
	for _, path := range captures(t) {
		in := readFile(t, path)
		if !isClassic(in) {
			continue
		}
		n++
		if out := roundTrip(t, r, c, path); !bytes.Equal(out, in) {
			t.Errorf("%s: output (%d bytes) differs from input (%d bytes)", filepath.Base(path), len(out), len(in))
		}
	}
	// Byte orders and resolutions testdata lacks, and truncated frames.
	recs := []pcap.TRec{
		{TS: 1_600_000_000_000_001_000, Data: pcap.Frame(1, 60)},
		{TS: 1_600_000_000_500_000_000, Data: pcap.Frame(2, 200), Orig: 1514},
		{TS: 1_600_000_003_999_999_000, Data: pcap.Frame(3, 1500)},
	}
	for _, tt := range []struct{ be, nano bool }{{false, false}, {false, true}, {true, false}, {true, true}} {
		rs := append([]pcap.TRec(nil), recs...)
		if tt.nano {
			rs[0].TS += 7
		}
		in := pcap.BuildClassic(tt.be, tt.nano, 262144, 1, rs)
		if out := roundTrip(t, r, c, writeFile(t, "in.pcap", in)); !bytes.Equal(out, in) {
			t.Errorf("be=%v nano=%v: output differs from input", tt.be, tt.nano)
		}
		n++
	}
	if n < 5 {
		t.Fatalf("only %d classic captures", n)
	}
	checkPoolWhole(t, c)
}

func TestPortWritesPcapNGInputAsClassic(t *testing.T) {
	r, c := newRegion(t, bigOptions())
	path := filepath.Join(testdataDir, "dns.pcap") // pcapng
	ref, _ := refRecords(t, readFile(t, path))
	out := roundTrip(t, r, c, path)
	rd, err := pcap.NewReader(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if rd.Format() != pcap.FormatPcap || rd.Header() != pcap.DefaultHeader() {
		t.Fatalf("output format %v, header %+v", rd.Format(), rd.Header())
	}
	for i, w := range ref {
		rec, err := rd.Next()
		if err != nil || !bytes.Equal(rec.Data, w.data) || rec.Timestamp != w.ts/1000*1000 || rec.OrigLen != w.orig {
			t.Fatalf("record %d: %v, ts %d orig %d, want ts %d orig %d", i, err, rec.Timestamp, rec.OrigLen, w.ts, w.orig)
		}
	}
	if _, err := rd.Next(); err != io.EOF {
		t.Fatalf("after %d records: %v", len(ref), err)
	}
}

func TestPortTruncatedCaptureDeliversGoodPrefix(t *testing.T) {
	r, c := newRegion(t, bigOptions())
	for _, name := range []string{"6in4tunnel.pcap", "dns.pcap", "tcp_scan.pcapng"} {
		full := readFile(t, filepath.Join(testdataDir, name))
		half := full[:len(full)/2]
		ref, end := refRecords(t, half)
		if end == len(half) {
			t.Fatalf("%s: the cut falls on a record boundary", name)
		}
		p := newPort(t, 2, pcap.Options{Path: writeFile(t, name, half)})
		frames := rxAll(t, r, c, p, false)
		if len(frames) != len(ref) {
			t.Fatalf("%s: delivered %d frames of the half, want %d", name, len(frames), len(ref))
		}
		err := p.Err()
		var fe *pcap.FormatError
		if !errors.Is(err, pcap.ErrTruncated) || !errors.As(err, &fe) || fe.Offset != int64(end) ||
			!strings.HasPrefix(err.Error(), "pcap port 2: read ") {
			t.Fatalf("%s: Err %v, want truncated at byte %d", name, err, end)
		}
		var buf [8]shm.Slot
		if p.RxBurst(c, buf[:]) != 0 || p.Err() != err {
			t.Fatalf("%s: RxBurst after the error delivered, or Err changed", name)
		}
	}
	checkPoolWhole(t, c)
}

func TestPortRefusesCorruptHeader(t *testing.T) {
	path := writeFile(t, "junk.pcap", []byte("this is not a capture at all"))
	_, err := pcap.New(3, pcap.Options{Path: path})
	if !errors.Is(err, pcap.ErrNotCapture) || !strings.Contains(err.Error(), "pcap port 3: read "+path+": byte 0: magic 0x73696874") {
		t.Fatalf("New: %v", err)
	}
	if _, err := pcap.New(3, pcap.Options{Path: filepath.Join(t.TempDir(), "missing.pcap")}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("New of a missing file: %v", err)
	}
}

func TestPortStopsAtCorruptRecord(t *testing.T) {
	r, c := newRegion(t, bigOptions())
	b := pcap.BuildClassic(false, false, 65535, 1, []pcap.TRec{{Data: pcap.Frame(1, 60)}, {Data: pcap.Frame(2, 60)}, {Data: pcap.Frame(3, 60)}})
	b[24+2*(16+60)+11] = 0x7f // third caplen above MaxRecordBytes
	p := newPort(t, 0, pcap.Options{Path: writeFile(t, "c.pcap", b)})
	if frames := rxAll(t, r, c, p, false); len(frames) != 2 || !errors.Is(p.Err(), pcap.ErrCorrupt) {
		t.Fatalf("%d frames, %v", len(frames), p.Err())
	}
}

func TestPortRefusesNonEthernet(t *testing.T) {
	path := writeFile(t, "wifi.pcap", pcap.BuildClassic(false, false, 65535, 105, []pcap.TRec{{Data: pcap.Frame(1, 60)}}))
	if _, err := pcap.New(0, pcap.Options{Path: path}); !errors.Is(err, pcap.ErrLinkType) || !strings.Contains(err.Error(), "link type 105") {
		t.Fatalf("classic 802.11 capture: %v", err)
	}

	// pcapng: the link type is per interface, so the error comes at the
	// first packet of a non-Ethernet one, after the Ethernet ones before it.
	var n pcap.NGBuilder
	n.SHB(false)
	n.IDB(1, 0)
	n.IDB(105, 0)
	n.EPB(0, 1, 0, pcap.Frame(1, 60))
	n.EPB(0, 2, 0, pcap.Frame(2, 60))
	n.EPB(1, 3, 0, pcap.Frame(3, 60))
	n.EPB(0, 4, 0, pcap.Frame(4, 60))
	r, c := newRegion(t, shmtest.SmallOptions())
	p := newPort(t, 0, pcap.Options{Path: writeFile(t, "mixed.pcapng", n.B)})
	frames := rxAll(t, r, c, p, false)
	if len(frames) != 2 || !errors.Is(p.Err(), pcap.ErrLinkType) || !strings.Contains(p.Err().Error(), "packet of link type 105") {
		t.Fatalf("%d frames, %v", len(frames), p.Err())
	}
}

func TestPortLoopReplaysForever(t *testing.T) {
	r, c := newRegion(t, shmtest.SmallOptions())
	path := filepath.Join(testdataDir, "bfd.pcap")
	ref, _ := refRecords(t, readFile(t, path))
	p := newPort(t, 0, pcap.Options{Path: path, Loop: true})
	var buf [5]shm.Slot // not a divisor of 11: bursts straddle the rewinds
	want := 4 * len(ref)
	for got, tries := 0, 0; got < want; tries++ {
		k := p.RxBurst(c, buf[:min(len(buf), want-got)])
		for _, s := range buf[:k] {
			if !bytes.Equal(r.Packet(s), ref[got%len(ref)].data) {
				t.Fatalf("frame %d differs from the capture's frame %d", got, got%len(ref))
			}
			got++
		}
		c.Free(buf[:k])
		r.Pool().Service()
		if tries > 10000 {
			t.Fatalf("got %d of %d", got, want)
		}
	}
	if p.Done() || p.Err() != nil {
		t.Fatalf("looping port done %v, err %v", p.Done(), p.Err())
	}
	checkPoolWhole(t, c)
}

func TestPortLoopOverEmptyCaptureEnds(t *testing.T) {
	r, c := newRegion(t, shmtest.SmallOptions())
	p := newPort(t, 0, pcap.Options{Path: writeFile(t, "empty.pcap", pcap.BuildClassic(false, false, 65535, 1, nil)), Loop: true})
	if frames := rxAll(t, r, c, p, false); len(frames) != 0 || p.Err() != nil {
		t.Fatalf("%d frames, %v", len(frames), p.Err())
	}
}

func TestPortRatePaced(t *testing.T) {
	r, c := newRegion(t, shmtest.SmallOptions())
	const rate, want = 2000, 41
	p := newPort(t, 0, pcap.Options{Path: filepath.Join(testdataDir, "bfd.pcap"), Loop: true, RatePPS: rate})
	var buf [shm.BurstSize]shm.Slot
	start := port.Nanotime()
	if k := p.RxBurst(c, buf[:]); k != 1 {
		t.Fatalf("first burst: %d frames, want only frame 0 due", k)
	}
	c.Free(buf[:1])
	got := 1
	for got < want {
		k := p.RxBurst(c, buf[:min(len(buf), want-got)])
		c.Free(buf[:k])
		r.Pool().Service()
		got += k
		if el := time.Duration(port.Nanotime() - start); got > 1+int(el.Seconds()*rate) {
			t.Fatalf("%d frames after %v at %d/s", got, el, rate)
		}
		if port.Nanotime()-start > int64(5*time.Second) {
			t.Fatalf("%d of %d frames in 5 s", got, want)
		}
		runtime.Gosched()
	}
	if el := time.Duration(port.Nanotime() - start); el < (want-1)*time.Second/rate {
		t.Fatalf("%d frames in %v at %d/s", want, el, rate)
	}
}

func TestPortRecordedPace(t *testing.T) {
	r, c := newRegion(t, shmtest.SmallOptions())
	const gap = 15 * time.Millisecond
	var recs []pcap.TRec
	for i := range 4 {
		recs = append(recs, pcap.TRec{TS: 1e18 + int64(i)*int64(gap), Data: pcap.Frame(i, 60)})
	}
	path := writeFile(t, "paced.pcap", pcap.BuildClassic(false, true, 65535, 1, recs))
	if _, err := pcap.New(0, pcap.Options{Path: path, Recorded: true, RatePPS: 5}); err == nil {
		t.Fatal("Recorded with RatePPS accepted")
	}
	p := newPort(t, 0, pcap.Options{Path: path, Recorded: true})
	frames := rxAll(t, r, c, p, false)
	if len(frames) != len(recs) {
		t.Fatalf("%d frames", len(frames))
	}
	// Frame 0 is due, and delivered, at the first burst; frame i is due
	// i·gap later, and may be delivered only that late or later.
	for i := 1; i < len(frames); i++ {
		d := time.Duration(frames[i].meta.Timestamp - frames[0].meta.Timestamp)
		if want := time.Duration(i) * gap; d < want || d > want+MaxPaceSlack {
			t.Errorf("frame %d delivered %v after frame 0, recorded %v", i, d, want)
		}
	}
}

// MaxPaceSlack is how late a paced frame may be delivered in a test: a
// busy machine may deschedule the polling goroutine, and a frame more than
// MaxPaceLag late makes the schedule slip. The bound catches gross errors;
// the lower bound (never early) is exact.
const MaxPaceSlack = 100 * time.Millisecond

func TestPortTxTakesBackWhatFreeRefused(t *testing.T) {
	r, c := newRegion(t, shmtest.SmallOptions()) // drain ring of 256
	out := filepath.Join(t.TempDir(), "out.pcap")
	p := newPort(t, 0, pcap.Options{OutPath: out})
	const n = 300
	s := make([]shm.Slot, n)
	for got, tries := 0, 0; got < n; tries++ {
		got += c.Alloc(s[got:])
		r.Pool().Service()
		if tries > 1000 {
			t.Fatalf("allocated %d of %d", got, n)
		}
	}
	for i, sl := range s {
		f := pcap.Frame(i, 60+i%100)
		copy(r.Buf(sl)[shm.HeadroomBytes:], f)
		r.Meta(sl).Len = uint32(len(f))
	}
	k := p.TxBurst(c, s)
	if k == 0 || k == n {
		t.Fatalf("TxBurst took %d of %d without a pool service: the test needs a full drain ring", k, n)
	}
	r.Pool().Service()
	if k2 := p.TxBurst(c, s[k:]); k2 != n-k {
		t.Fatalf("second TxBurst took %d of %d", k2, n-k)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	recs, err := readAll(t, bytes.NewReader(readFile(t, out)))
	if err != io.EOF || len(recs) != n {
		t.Fatalf("output: %d records, %v", len(recs), err)
	}
	for i, rec := range recs {
		if !bytes.Equal(rec.Data, pcap.Frame(i, 60+i%100)) {
			t.Fatalf("record %d is not frame %d", i, i)
		}
	}
	if st := p.Stats(); st.TxPkts != n || st.TxDrops != uint64(n-k) {
		t.Fatalf("stats %+v", st)
	}
	checkPoolWhole(t, c)
}

func TestPortWritesOtherFramesWithWallClock(t *testing.T) {
	r, c := newRegion(t, shmtest.SmallOptions())
	out := filepath.Join(t.TempDir(), "out.pcap")
	p := newPort(t, 4, pcap.Options{OutPath: out})
	if !p.Done() {
		t.Fatal("a port without Path is not Done")
	}
	var s [3]shm.Slot
	for c.Alloc(s[:]) < len(s) {
		r.Pool().Service()
	}
	for i, sl := range s {
		f := pcap.Frame(i, 100)
		copy(r.Buf(sl)[shm.HeadroomBytes:], f)
		m := r.Meta(sl)
		m.Len, m.Port, m.Timestamp = 100, 4, port.Nanotime() // claims this port, but it never read a frame
	}
	before := time.Now().UnixNano() / 1000 * 1000
	if k := p.TxBurst(c, s[:]); k != len(s) {
		t.Fatalf("TxBurst took %d", k)
	}
	after := time.Now().UnixNano()
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	recs, err := readAll(t, bytes.NewReader(readFile(t, out)))
	if err != io.EOF || len(recs) != len(s) {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	for i, rec := range recs {
		if rec.Timestamp < before || rec.Timestamp > after || rec.OrigLen != 100 || !bytes.Equal(rec.Data, pcap.Frame(i, 100)) {
			t.Fatalf("record %d: ts %d not in [%d, %d], orig %d", i, rec.Timestamp, before, after, rec.OrigLen)
		}
	}
}

func TestPortModifiedFrameKeepsCaptureTime(t *testing.T) {
	r, c := newRegion(t, shmtest.SmallOptions())
	in := pcap.BuildClassic(false, false, 65535, 1, []pcap.TRec{{TS: 42e9, Data: pcap.Frame(1, 100), Orig: 1500}})
	out := filepath.Join(t.TempDir(), "out.pcap")
	p := newPort(t, 0, pcap.Options{Path: writeFile(t, "in.pcap", in), OutPath: out})
	var s [1]shm.Slot
	for p.RxBurst(c, s[:]) == 0 {
		r.Pool().Service()
	}
	r.Meta(s[0]).Len = 80 // an NF cut the frame: its original length no longer applies
	p.TxBurst(c, s[:])
	p.Close()
	recs, _ := readAll(t, bytes.NewReader(readFile(t, out)))
	if len(recs) != 1 || recs[0].Timestamp != 42e9 || recs[0].OrigLen != 80 || len(recs[0].Data) != 80 {
		t.Fatalf("records %+v", recs)
	}
}

func TestPortWithoutOutPathRefusesTx(t *testing.T) {
	r, c := newRegion(t, shmtest.SmallOptions())
	p := newPort(t, 0, pcap.Options{Path: filepath.Join(testdataDir, "bfd.pcap")})
	var s [4]shm.Slot
	for c.Alloc(s[:]) < len(s) {
		r.Pool().Service()
	}
	if k := p.TxBurst(c, s[:]); k != 0 || p.Stats().TxDrops != 4 {
		t.Fatalf("TxBurst took %d, stats %+v", k, p.Stats())
	}
	c.Free(s[:])
}

func TestPortRefusesOutPathSameAsInput(t *testing.T) {
	in := writeFile(t, "in.pcap", readFile(t, filepath.Join(testdataDir, "bfd.pcap")))
	before := readFile(t, in)
	link := filepath.Join(t.TempDir(), "link.pcap")
	if err := os.Symlink(in, link); err != nil {
		t.Fatal(err)
	}
	if _, err := pcap.New(0, pcap.Options{Path: in, OutPath: link}); err == nil || !strings.Contains(err.Error(), "is the input capture") {
		t.Fatalf("New: %v", err)
	}
	if !bytes.Equal(readFile(t, in), before) {
		t.Fatal("the input was overwritten")
	}
}

func TestPortOpenedThroughDriverTable(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out.pcap")
	p, err := port.Open(port.Desc{ID: 3, Driver: port.DriverPcap, Path: filepath.Join(testdataDir, "bfd.pcap"), OutPath: out, Loop: true, RatePPS: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if p.Name() != "pcap3" || p.ID() != 3 {
		t.Fatalf("name %q, id %d", p.Name(), p.ID())
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if b := readFile(t, out); len(b) != 24 {
		t.Fatalf("an idle port's output is %d bytes, want the 24-byte file header", len(b))
	}
	if _, err := port.Open(port.Desc{Driver: port.DriverPcap, Path: filepath.Join(t.TempDir(), "missing")}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open of a missing capture: %v", err)
	}
}

func TestPortClosedReturnsZero(t *testing.T) {
	r, c := newRegion(t, shmtest.SmallOptions())
	out := filepath.Join(t.TempDir(), "out.pcap")
	p := newPort(t, 0, pcap.Options{Path: filepath.Join(testdataDir, "bfd.pcap"), OutPath: out})
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	var s [4]shm.Slot
	if p.RxBurst(c, s[:]) != 0 || !p.Done() {
		t.Fatal("RxBurst after Close delivered")
	}
	for c.Alloc(s[:]) < len(s) {
		r.Pool().Service()
	}
	if p.TxBurst(c, s[:]) != 0 {
		t.Fatal("TxBurst after Close took frames")
	}
	c.Free(s[:])
	if err := p.Flush(); err != nil {
		t.Fatalf("Flush after Close: %v", err)
	}
}

func TestPortRxTxAllocationFree(t *testing.T) {
	r, c := newRegion(t, shmtest.SmallOptions())
	out := filepath.Join(t.TempDir(), "out.pcap")
	p := newPort(t, 0, pcap.Options{Path: filepath.Join(testdataDir, "4in4tunnel.pcap"), OutPath: out, Loop: true})
	var buf [shm.BurstSize]shm.Slot
	total := 0
	burst := func() {
		n := p.RxBurst(c, buf[:])
		if k := p.TxBurst(c, buf[:n]); k != n {
			t.Fatalf("TxBurst took %d of %d", k, n)
		}
		total += n
		r.Pool().Service()
	}
	for range 100 { // warm-up: side table, writer buffer, rewinds
		burst()
	}
	if a := testing.AllocsPerRun(500, burst); a != 0 {
		t.Fatalf("%v allocations per RxBurst+TxBurst", a)
	}
	if total < 500 || p.Err() != nil {
		t.Fatalf("%d frames, err %v", total, p.Err())
	}
}

func TestPortRxAllocationFreeUnlooped(t *testing.T) {
	r, c := newRegion(t, shmtest.SmallOptions())
	p := newPort(t, 0, pcap.Options{Path: filepath.Join(testdataDir, "ip_fragmented_garbage.pcap")}) // 1252 frames
	var buf [8]shm.Slot
	burst := func() {
		n := p.RxBurst(c, buf[:])
		c.Free(buf[:n])
		r.Pool().Service()
	}
	burst()
	if a := testing.AllocsPerRun(100, burst); a != 0 {
		t.Fatalf("%v allocations per RxBurst", a)
	}
}

func BenchmarkRxBurst(b *testing.B) {
	for _, name := range []string{"ip_fragmented_garbage.pcap", "6in4tunnel.pcap"} {
		path := filepath.Join(testdataDir, name)
		if _, err := os.Stat(path); err != nil {
			continue
		}
		b.Run(name, func(b *testing.B) {
			r, c := newRegion(b, bigOptions())
			p := newPort(b, 0, pcap.Options{Path: path, Loop: true})
			var buf [shm.BurstSize]shm.Slot
			b.ReportAllocs()
			pkts := 0
			for b.Loop() {
				n := p.RxBurst(c, buf[:])
				c.Free(buf[:n])
				r.Pool().Service() // inline: the bursts stay full
				pkts += n
			}
			b.ReportMetric(float64(pkts)/b.Elapsed().Seconds(), "pkts/s")
		})
	}
}

func BenchmarkTxBurst(b *testing.B) {
	r, c := newRegion(b, shmtest.SmallOptions())
	p := newPort(b, 0, pcap.Options{OutPath: filepath.Join(b.TempDir(), "out.pcap")})
	var buf [shm.BurstSize]shm.Slot
	b.ReportAllocs()
	pkts := 0
	for b.Loop() {
		n := c.Alloc(buf[:])
		for _, s := range buf[:n] {
			r.Meta(s).Len = 64
		}
		pkts += p.TxBurst(c, buf[:n])
		r.Pool().Service()
	}
	b.ReportMetric(float64(pkts)/b.Elapsed().Seconds(), "pkts/s")
}
