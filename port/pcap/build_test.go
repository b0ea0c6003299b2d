package pcap

// Capture builders for tests (exported to the external test package), written with encoding/binary directly (not
// with the package's writer) so that they check the reader independently.

import "encoding/binary"

// TRec is one frame of a built capture.
type TRec struct {
	TS   int64  // capture time, ns since the epoch
	Orig uint32 // original length; 0 = len(Data)
	Data []byte
}

// fullOrder both reads and appends.
type fullOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

func byteOrder(be bool) fullOrder {
	if be {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

// BuildClassic returns a classic capture holding recs.
func BuildClassic(be, nano bool, snap, linkType uint32, recs []TRec) []byte {
	bo := byteOrder(be)
	b := make([]byte, 24)
	magic := uint32(0xa1b2c3d4)
	if nano {
		magic = 0xa1b23c4d
	}
	bo.PutUint32(b[0:], magic)
	bo.PutUint16(b[4:], 2)
	bo.PutUint16(b[6:], 4)
	bo.PutUint32(b[16:], snap)
	bo.PutUint32(b[20:], linkType)
	for _, r := range recs {
		var h [16]byte
		frac := r.TS % 1e9
		if !nano {
			frac /= 1000
		}
		orig := r.Orig
		if orig == 0 {
			orig = uint32(len(r.Data))
		}
		bo.PutUint32(h[0:], uint32(r.TS/1e9))
		bo.PutUint32(h[4:], uint32(frac))
		bo.PutUint32(h[8:], uint32(len(r.Data)))
		bo.PutUint32(h[12:], orig)
		b = append(b, h[:]...)
		b = append(b, r.Data...)
	}
	return b
}

// NGBuilder appends pcapng blocks in the byte order of the last section.
type NGBuilder struct {
	bo fullOrder
	B  []byte // the capture so far
}

func pad4(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// Block appends a block of type typ around body (padded to 4 bytes).
func (n *NGBuilder) Block(typ uint32, body []byte) {
	body = pad4(append([]byte(nil), body...))
	l := uint32(12 + len(body))
	n.B = n.bo.AppendUint32(n.B, typ)
	n.B = n.bo.AppendUint32(n.B, l)
	n.B = append(n.B, body...)
	n.B = n.bo.AppendUint32(n.B, l)
}

// SHB starts a section in the given byte order.
func (n *NGBuilder) SHB(be bool, opts ...[]byte) {
	n.bo = byteOrder(be)
	var body []byte
	body = n.bo.AppendUint32(body, 0x1a2b3c4d)
	body = n.bo.AppendUint16(body, 1)
	body = n.bo.AppendUint16(body, 0)
	body = n.bo.AppendUint64(body, ^uint64(0))
	for _, o := range opts {
		body = append(body, o...)
	}
	n.Block(0x0a0d0d0a, body)
}

// Opt encodes a pcapng option in the current byte order.
// Before the first SHB, the order is little-endian.
func (n *NGBuilder) Opt(code uint16, v []byte) []byte {
	if n.bo == nil {
		n.bo = byteOrder(false)
	}
	var b []byte
	b = n.bo.AppendUint16(b, code)
	b = n.bo.AppendUint16(b, uint16(len(v)))
	return pad4(append(b, v...))
}

func (n *NGBuilder) IDB(linkType uint16, snap uint32, opts ...[]byte) {
	var body []byte
	body = n.bo.AppendUint16(body, linkType)
	body = n.bo.AppendUint16(body, 0)
	body = n.bo.AppendUint32(body, snap)
	for _, o := range opts {
		body = append(body, o...)
	}
	if len(opts) > 0 {
		body = append(body, 0, 0, 0, 0) // opt_endofopt
	}
	n.Block(1, body)
}

func (n *NGBuilder) EPB(iface uint32, ticks uint64, orig uint32, data []byte) {
	if orig == 0 {
		orig = uint32(len(data))
	}
	var body []byte
	body = n.bo.AppendUint32(body, iface)
	body = n.bo.AppendUint32(body, uint32(ticks>>32))
	body = n.bo.AppendUint32(body, uint32(ticks))
	body = n.bo.AppendUint32(body, uint32(len(data)))
	body = n.bo.AppendUint32(body, orig)
	n.Block(6, append(body, data...))
}

func (n *NGBuilder) OPB(iface uint16, ticks uint64, data []byte) {
	var body []byte
	body = n.bo.AppendUint16(body, iface)
	body = n.bo.AppendUint16(body, 0)
	body = n.bo.AppendUint32(body, uint32(ticks>>32))
	body = n.bo.AppendUint32(body, uint32(ticks))
	body = n.bo.AppendUint32(body, uint32(len(data)))
	body = n.bo.AppendUint32(body, uint32(len(data)))
	n.Block(2, append(body, data...))
}

func (n *NGBuilder) SPB(orig uint32, data []byte) {
	var body []byte
	body = n.bo.AppendUint32(body, orig)
	n.Block(3, append(body, data...))
}

// Frame returns an n-byte test frame whose bytes derive from seed.
func Frame(seed, n int) []byte {
	f := make([]byte, n)
	for i := range f {
		f[i] = byte(seed*31 + i*7)
	}
	return f
}
