package pcap

// The reader, stage by stage (one goroutine owns a Reader):
//
//	need: make n bytes available from buf[r] (compact, grow, read the source)
//	→ classic: record header → record
//	→ pcapng: block header → section header (byte order, new interface
//	  table) | interface description | enhanced, simple or obsolete packet
//	  block | any other block, skipped
//	→ Record, whose Data aliases buf
//
// Buffer rule: buf[r:w] holds bytes read but not parsed. Records already
// returned stay valid until the buffer moves (compaction, growth), which
// only a refilling call does. The port stages a burst of records with
// refilling calls forbidden (next(false)), so every staged Data stays
// valid until it has been copied into a slot.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/bits"
)

// errShort is next's answer, when it may not refill, to a record that is
// not wholly buffered yet.
var errShort = errors.New("record not buffered")

// Reader decodes the packets of a classic pcap (either byte order, µs or
// ns timestamps) or pcapng capture, detected by its magic number. It reads
// its source in large chunks into a buffer it reuses: after the first
// records, Next does not allocate. A Reader is for one goroutine.
type Reader struct {
	src    io.Reader
	seeker io.Seeker // src as a Seeker, or nil; for rewind
	buf    []byte
	off    int64 // file offset of buf[0]
	r, w   int   // buf[r:w]: read from src, not parsed yet
	eof    bool  // src reported io.EOF
	empty  int   // consecutive (0, nil) reads
	err    error // sticky: io.EOF, a *FormatError or a read error

	format Format
	hdr    FileHeader // FormatPcap only
	o      order      // the file's (pcapng: the section's) byte order
	fracNs int64      // FormatPcap: ns per unit of a record's fraction

	ifaces []iface // FormatPcapNG: the section's interfaces, by ID
	lastTs int64   // timestamp of the last packet, for simple packet blocks
}

// iface is what a pcapng interface description says about its packets.
type iface struct {
	linkType uint32
	snapLen  uint32
	res      tsres
	offNs    int64 // if_tsoffset, in ns
}

// tsres converts pcapng timestamp units (if_tsresol) to ns.
type tsres struct {
	pow2  bool   // 2^-shift s units, else 10^-e s: ns = ticks*mul, or ticks/div
	shift uint8  // pow2: ns = ticks·1e9 >> shift
	mul   uint64 // base 10, e <= 9: 10^(9-e); 0 when e is so large every timestamp is 0 ns
	div   uint64 // base 10, e > 9: 10^(e-9)
}

func newTsres(v byte) tsres {
	if v&0x80 != 0 {
		return tsres{pow2: true, shift: v & 0x7f}
	}
	e := int(v)
	if e <= 9 {
		m := uint64(1)
		for range 9 - e {
			m *= 10
		}
		return tsres{mul: m}
	}
	if e-9 > 19 { // 10^20 > 2^64: every tick count is below one ns
		return tsres{}
	}
	d := uint64(1)
	for range e - 9 {
		d *= 10
	}
	return tsres{div: d}
}

// ns converts a tick count to ns (wrapping, as a garbage timestamp may).
func (t tsres) ns(ticks uint64) int64 {
	switch {
	case t.pow2:
		hi, lo := bits.Mul64(ticks, 1e9)
		if t.shift >= 64 {
			return int64(hi >> (t.shift - 64))
		}
		return int64(lo>>t.shift | hi<<(64-t.shift))
	case t.div != 0:
		return int64(ticks / t.div)
	default:
		return int64(ticks * t.mul)
	}
}

// NewReader reads the capture's file header (classic) or first section
// header (pcapng) from src and returns a Reader for its packets. An error
// is a *FormatError (ErrNotCapture for a file of neither format,
// ErrTruncated, ErrCorrupt, ErrUnsupported) or src's read error. The
// Reader's Format and Header describe the file.
func NewReader(src io.Reader) (*Reader, error) {
	r := &Reader{src: src, buf: make([]byte, bufBytes(src))}
	r.seeker, _ = src.(io.Seeker)
	if err := r.start(); err != nil {
		return nil, err
	}
	return r, nil
}

// bufBytes sizes a Reader's buffer: readBufBytes, or less for a source
// that says it is smaller (a file, a bytes.Reader), so that a small
// capture costs a small buffer and still fits it whole.
func bufBytes(src io.Reader) int {
	n := int64(readBufBytes)
	switch s := src.(type) {
	case interface{ Stat() (fs.FileInfo, error) }:
		if fi, err := s.Stat(); err == nil && fi.Mode().IsRegular() {
			n = fi.Size()
		}
	case interface{ Len() int }:
		n = int64(s.Len())
	}
	return int(max(minReadBufBytes, min(n, readBufBytes)))
}

// Format is the capture's format.
func (r *Reader) Format() Format { return r.format }

// Header is a classic capture's file header; zero for pcapng.
func (r *Reader) Header() FileHeader { return r.hdr }

// Next returns the next packet. Its Data aliases the Reader's buffer and
// is valid until the next call to Next. At the clean end of the capture
// it returns io.EOF; a capture that ends inside a record or holds an
// impossible field yields a *FormatError, and src's read errors are
// returned wrapped. Errors are sticky: every later call returns the same.
func (r *Reader) Next() (Record, error) { return r.next(true) }

// next is Next; with refill unset it never moves the buffer, returning
// errShort (not sticky) instead when the next record is not all buffered.
func (r *Reader) next(refill bool) (Record, error) {
	if r.err != nil {
		return Record{}, r.err
	}
	var rec Record
	var err error
	if r.format == FormatPcap {
		rec, err = r.nextClassic(refill)
	} else {
		rec, err = r.nextNG(refill)
	}
	if err != nil && err != errShort {
		r.err = err
	}
	return rec, err
}

// start reads the file header or first section header at buf[r].
func (r *Reader) start() error {
	if err := r.need(4, true); err != nil {
		return r.shortErr(err, "file header")
	}
	m := binary.LittleEndian.Uint32(r.buf[r.r:])
	switch m {
	case magicMicro, magicNano, magicMicroSwapped, magicNanoSwapped:
		if err := r.need(fileHeaderBytes, true); err != nil {
			return r.shortErr(err, "file header")
		}
		h := parseFileHeader(r.buf[r.r:])
		if h.VersionMajor != 2 {
			return r.formatErr(fmt.Sprintf("pcap version %d.%d", h.VersionMajor, h.VersionMinor), ErrUnsupported)
		}
		r.format, r.hdr, r.o = FormatPcap, h, order(h.BigEndian)
		r.fracNs = 1000
		if h.Nanosecond {
			r.fracNs = 1
		}
		r.r += fileHeaderBytes
		return nil
	case blockSHB:
		r.format = FormatPcapNG
		return r.section(true)
	}
	return r.formatErr(fmt.Sprintf("magic %#08x", m), ErrNotCapture)
}

// rewind restarts r at the beginning of its source, which must seek.
func (r *Reader) rewind() error {
	if r.seeker == nil {
		return errors.New("rewind: source cannot seek")
	}
	if _, err := r.seeker.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("rewind: %w", err)
	}
	r.off, r.r, r.w, r.eof, r.empty, r.err = 0, 0, 0, false, 0, nil
	r.ifaces, r.lastTs = r.ifaces[:0], 0
	if err := r.start(); err != nil {
		r.err = err
		return err
	}
	return nil
}

// need makes n bytes available at buf[r:], reading from src when refill
// is set (compacting or growing the buffer when it is full). It returns
// errShort (refill unset), io.EOF (src ended and nothing is buffered),
// io.ErrUnexpectedEOF (src ended inside the n bytes) or src's error.
func (r *Reader) need(n int, refill bool) error {
	for r.w-r.r < n {
		if !refill {
			return errShort
		}
		if r.eof {
			if r.w == r.r {
				return io.EOF
			}
			return io.ErrUnexpectedEOF
		}
		if len(r.buf)-r.r < n || r.w == len(r.buf) {
			r.makeRoom()
		}
		m, err := r.src.Read(r.buf[r.w:])
		r.w += m
		switch {
		case err == io.EOF:
			r.eof = true
		case err != nil:
			return fmt.Errorf("read at byte %d: %w", r.off+int64(r.w), err)
		case m == 0:
			if r.empty++; r.empty >= maxEmptyReads {
				return io.ErrNoProgress
			}
			continue
		}
		r.empty = 0
	}
	return nil
}

// makeRoom moves the unparsed bytes to the buffer's start, and doubles the
// buffer when it is still full. need calls it again while the n bytes it
// wants do not fit, so growth follows the data actually read: a corrupt
// length does not allocate what it claims.
func (r *Reader) makeRoom() {
	if r.r > 0 {
		copy(r.buf, r.buf[r.r:r.w])
		r.off += int64(r.r)
		r.w -= r.r
		r.r = 0
	}
	if r.w < len(r.buf) {
		return
	}
	nb := make([]byte, 2*len(r.buf))
	copy(nb, r.buf[:r.w])
	r.buf = nb
}

// shortErr turns need's error for what into the Reader's: io.EOF for a
// clean end, a *FormatError with ErrTruncated for an end inside what.
func (r *Reader) shortErr(err error, what string) error {
	if err == io.ErrUnexpectedEOF || (err == io.EOF && what == "file header") {
		return r.formatErr(what, ErrTruncated)
	}
	return err
}

// formatErr is a *FormatError at buf[r].
func (r *Reader) formatErr(what string, err error) error {
	return &FormatError{Offset: r.off + int64(r.r), What: what, Err: err}
}

// nextClassic decodes the classic record at buf[r].
func (r *Reader) nextClassic(refill bool) (Record, error) {
	if err := r.need(recordHeaderBytes, refill); err != nil {
		return Record{}, r.shortErr(err, "record header")
	}
	caplen := r.o.u32(r.buf[r.r+8:])
	if caplen > MaxRecordBytes {
		return Record{}, r.formatErr(fmt.Sprintf("record length %d above %d", caplen, MaxRecordBytes), ErrCorrupt)
	}
	n := recordHeaderBytes + int(caplen)
	if err := r.need(n, refill); err != nil {
		return Record{}, r.shortErr(err, fmt.Sprintf("record of %d bytes", caplen))
	}
	h := r.buf[r.r : r.r+n : r.r+n]
	rec := Record{
		Data:      h[recordHeaderBytes:],
		OrigLen:   r.o.u32(h[12:]),
		Timestamp: int64(r.o.u32(h[0:]))*1e9 + int64(r.o.u32(h[4:]))*r.fracNs,
		LinkType:  r.hdr.LinkType & linkTypeMask,
		Offset:    r.off + int64(r.r),
	}
	r.r += n
	r.lastTs = rec.Timestamp
	return rec, nil
}

// nextNG decodes pcapng blocks from buf[r] up to and including the next
// packet block.
func (r *Reader) nextNG(refill bool) (Record, error) {
	for {
		if err := r.need(8, refill); err != nil {
			return Record{}, r.shortErr(err, "block header")
		}
		typ := r.o.u32(r.buf[r.r:])
		if typ == blockSHB {
			if err := r.section(refill); err != nil {
				return Record{}, err
			}
			continue
		}
		blen := r.o.u32(r.buf[r.r+4:])
		if blen < blockMinBytes || blen%4 != 0 || blen > maxBlockBytes {
			return Record{}, r.formatErr(fmt.Sprintf("block type %#x: length %d", typ, blen), ErrCorrupt)
		}
		n := int(blen)
		if err := r.need(n, refill); err != nil {
			return Record{}, r.shortErr(err, fmt.Sprintf("block type %#x of %d bytes", typ, blen))
		}
		b := r.buf[r.r : r.r+n : r.r+n]
		if t := r.o.u32(b[n-4:]); t != blen {
			return Record{}, r.formatErr(fmt.Sprintf("block type %#x: length %d, trailing length %d", typ, blen, t), ErrCorrupt)
		}
		body := b[8 : n-4]
		switch typ {
		case blockIDB:
			if err := r.addIface(body); err != nil {
				return Record{}, err
			}
		case blockEPB, blockOPB, blockSPB:
			rec, err := r.packet(typ, body)
			if err != nil {
				return Record{}, err
			}
			r.r += n
			return rec, nil
		}
		r.r += n
	}
}

// section decodes the section header block at buf[r]: its byte-order magic
// sets the order for the section, and the interface table starts empty.
func (r *Reader) section(refill bool) error {
	if err := r.need(12, refill); err != nil {
		return r.shortErr(err, "section header")
	}
	var o order
	switch bom := binary.LittleEndian.Uint32(r.buf[r.r+8:]); bom {
	case byteOrderMagic:
		o = littleEndian
	case bits.ReverseBytes32(byteOrderMagic):
		o = bigEndian
	default:
		return r.formatErr(fmt.Sprintf("section header: byte-order magic %#08x", bom), ErrCorrupt)
	}
	blen := o.u32(r.buf[r.r+4:])
	if blen < shbMinBytes || blen%4 != 0 || blen > maxBlockBytes {
		return r.formatErr(fmt.Sprintf("section header: length %d", blen), ErrCorrupt)
	}
	n := int(blen)
	if err := r.need(n, refill); err != nil {
		return r.shortErr(err, fmt.Sprintf("section header of %d bytes", blen))
	}
	b := r.buf[r.r : r.r+n]
	if t := o.u32(b[n-4:]); t != blen {
		return r.formatErr(fmt.Sprintf("section header: length %d, trailing length %d", blen, t), ErrCorrupt)
	}
	if major, minor := o.u16(b[12:]), o.u16(b[14:]); major != 1 {
		return r.formatErr(fmt.Sprintf("pcapng version %d.%d", major, minor), ErrUnsupported)
	}
	r.o = o
	r.ifaces = r.ifaces[:0]
	r.r += n
	return nil
}

// addIface decodes an interface description block's body.
func (r *Reader) addIface(body []byte) error {
	if len(body) < idbBodyMinBytes {
		return r.formatErr(fmt.Sprintf("interface description: body of %d bytes", len(body)), ErrCorrupt)
	}
	ifc := iface{
		linkType: uint32(r.o.u16(body[0:])),
		snapLen:  r.o.u32(body[4:]),
		res:      newTsres(defaultTsresol),
	}
	opts := body[idbBodyMinBytes:]
	for len(opts) >= 4 {
		code, olen := r.o.u16(opts[0:]), int(r.o.u16(opts[2:]))
		if code == optEnd {
			break
		}
		padded := (olen + 3) &^ 3
		if 4+padded > len(opts) {
			return r.formatErr(fmt.Sprintf("interface description: option %d of %d bytes overruns the block", code, olen), ErrCorrupt)
		}
		v := opts[4 : 4+olen]
		switch {
		case code == optIfTsresol && olen == 1:
			ifc.res = newTsres(v[0])
		case code == optIfTsoffset && olen == 8:
			ifc.offNs = int64(r.o.u64(v)) * 1e9
		}
		opts = opts[4+padded:]
	}
	r.ifaces = append(r.ifaces, ifc)
	return nil
}

// packet decodes the body of an enhanced, obsolete or simple packet block.
func (r *Reader) packet(typ uint32, body []byte) (Record, error) {
	off := r.off + int64(r.r)
	if typ == blockSPB {
		if len(body) < spbBodyMinBytes {
			return Record{}, r.formatErr(fmt.Sprintf("simple packet: body of %d bytes", len(body)), ErrCorrupt)
		}
		if len(r.ifaces) == 0 {
			return Record{}, r.formatErr("simple packet before any interface description", ErrCorrupt)
		}
		ifc := &r.ifaces[0]
		orig := r.o.u32(body)
		n := min(uint64(orig), uint64(len(body)-spbBodyMinBytes))
		if ifc.snapLen > 0 {
			n = min(n, uint64(ifc.snapLen))
		}
		end := spbBodyMinBytes + int(n)
		return Record{Data: body[spbBodyMinBytes:end:end], OrigLen: orig,
			Timestamp: r.lastTs, LinkType: ifc.linkType, Offset: off}, nil
	}
	if len(body) < epbBodyMinBytes {
		return Record{}, r.formatErr(fmt.Sprintf("packet block: body of %d bytes", len(body)), ErrCorrupt)
	}
	id := r.o.u32(body)
	if typ == blockOPB {
		id = uint32(r.o.u16(body))
	}
	if uint64(id) >= uint64(len(r.ifaces)) {
		return Record{}, r.formatErr(fmt.Sprintf("packet on interface %d of %d described", id, len(r.ifaces)), ErrCorrupt)
	}
	ifc := &r.ifaces[id]
	caplen := r.o.u32(body[12:])
	if uint64(caplen) > uint64(len(body)-epbBodyMinBytes) {
		return Record{}, r.formatErr(fmt.Sprintf("packet block: captured length %d overruns the block", caplen), ErrCorrupt)
	}
	ticks := uint64(r.o.u32(body[4:]))<<32 | uint64(r.o.u32(body[8:]))
	ts := ifc.res.ns(ticks) + ifc.offNs
	r.lastTs = ts
	end := epbBodyMinBytes + int(caplen)
	return Record{Data: body[epbBodyMinBytes:end:end], OrigLen: r.o.u32(body[16:]),
		Timestamp: ts, LinkType: ifc.linkType, Offset: off}, nil
}
