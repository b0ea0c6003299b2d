package pcap

import "encoding/binary"

// Format is a capture file format, told apart by magic number, never by
// file name.
type Format uint8

//go:generate stringer -type=Format -linecomment -output=format_string.go

// Capture formats.
const (
	// FormatPcap is classic libpcap: a 24-byte file header, then records.
	FormatPcap Format = iota + 1 // pcap
	// FormatPcapNG is pcapng: sections of blocks.
	FormatPcapNG // pcapng
)

// FileHeader is a classic pcap file's global header, every field as the
// file holds it, so that a Writer given a Reader's Header reproduces the
// header byte for byte.
type FileHeader struct {
	BigEndian    bool   // the file's byte order; little-endian when false
	Nanosecond   bool   // record fractions count ns (magic 0xa1b23c4d), else µs
	VersionMajor uint16 // 2
	VersionMinor uint16 // 4
	ThisZone     int32  // GMT offset in seconds; 0 in practice
	SigFigs      uint32 // timestamp accuracy; 0 in practice
	SnapLen      uint32 // longest record the file holds, in bytes; 0 = no limit
	LinkType     uint32 // the link type (LinkTypeEthernet), with libpcap's FCS bits above bit 25
}

// DefaultHeader is the header the port writes when it does not copy its
// input's: version 2.4, little-endian, µs timestamps, snapshot length
// DefaultSnapLen, Ethernet.
func DefaultHeader() FileHeader {
	return FileHeader{VersionMajor: 2, VersionMinor: 4, SnapLen: DefaultSnapLen, LinkType: LinkTypeEthernet}
}

// Record is one packet of a capture, as Reader.Next returns it.
type Record struct {
	// Data is the captured bytes. It aliases the Reader's buffer: valid
	// until the next call to Next.
	Data []byte
	// OrigLen is the frame's length on the wire in bytes, larger than
	// len(Data) when the capture cut the frame (its snapshot length).
	OrigLen uint32
	// Timestamp is the capture time in ns since the Unix epoch; a pcapng
	// simple packet block has none and repeats the previous packet's.
	Timestamp int64
	// LinkType is the link type of the interface the frame was captured on.
	LinkType uint32
	// Offset is the file offset of the record or block, in bytes.
	Offset int64
}

// order reads and writes integers in a capture's byte order. A bool
// branch, not a binary.ByteOrder interface: the calls stay direct.
type order bool

const (
	littleEndian order = false
	bigEndian    order = true
)

func (o order) u16(b []byte) uint16 {
	if o {
		return binary.BigEndian.Uint16(b)
	}
	return binary.LittleEndian.Uint16(b)
}

func (o order) u32(b []byte) uint32 {
	if o {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

func (o order) u64(b []byte) uint64 {
	if o {
		return binary.BigEndian.Uint64(b)
	}
	return binary.LittleEndian.Uint64(b)
}

func (o order) put16(b []byte, v uint16) {
	if o {
		binary.BigEndian.PutUint16(b, v)
		return
	}
	binary.LittleEndian.PutUint16(b, v)
}

func (o order) put32(b []byte, v uint32) {
	if o {
		binary.BigEndian.PutUint32(b, v)
		return
	}
	binary.LittleEndian.PutUint32(b, v)
}

// parseFileHeader decodes a classic global header (24 bytes) whose magic
// has been recognised.
func parseFileHeader(b []byte) FileHeader {
	m := binary.LittleEndian.Uint32(b)
	o := order(m == magicMicroSwapped || m == magicNanoSwapped)
	return FileHeader{
		BigEndian:    bool(o),
		Nanosecond:   m == magicNano || m == magicNanoSwapped,
		VersionMajor: o.u16(b[4:]),
		VersionMinor: o.u16(b[6:]),
		ThisZone:     int32(o.u32(b[8:])),
		SigFigs:      o.u32(b[12:]),
		SnapLen:      o.u32(b[16:]),
		LinkType:     o.u32(b[20:]),
	}
}

// appendTo appends h as a classic global header to b.
func (h FileHeader) appendTo(b []byte) []byte {
	o := order(h.BigEndian)
	var f [fileHeaderBytes]byte
	magic := uint32(magicMicro)
	if h.Nanosecond {
		magic = magicNano
	}
	o.put32(f[0:], magic)
	o.put16(f[4:], h.VersionMajor)
	o.put16(f[6:], h.VersionMinor)
	o.put32(f[8:], uint32(h.ThisZone))
	o.put32(f[12:], h.SigFigs)
	o.put32(f[16:], h.SnapLen)
	o.put32(f[20:], h.LinkType)
	return append(b, f[:]...)
}
