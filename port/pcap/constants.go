package pcap

import "time"

// Constants fixed by the formats: classic pcap (draft-ietf-opsawg-pcap §4,
// §5; libpcap's sf-pcap.c) and pcapng (draft-ietf-opsawg-pcapng §3, §4).
const (
	// LinkTypeEthernet is the only link type the port delivers
	// (LINKTYPE_ETHERNET, draft-ietf-opsawg-pcaplinktype).
	LinkTypeEthernet = 1
	// MaxRecordBytes bounds a classic record's captured length: libpcap's
	// MAXIMUM_SNAPLEN. A larger length is taken for corruption.
	MaxRecordBytes = 262144
	// DefaultSnapLen is the snapshot length the port's writer declares when
	// it does not copy an input's header (tcpdump's historical default).
	DefaultSnapLen = 65535

	// The first four bytes of a classic capture, read little-endian.
	magicMicro        = 0xa1b2c3d4 // little-endian file, µs fractions
	magicNano         = 0xa1b23c4d // little-endian file, ns fractions
	magicMicroSwapped = 0xd4c3b2a1 // big-endian file, µs fractions
	magicNanoSwapped  = 0x4d3cb2a1 // big-endian file, ns fractions

	fileHeaderBytes   = 24 // classic global header
	recordHeaderBytes = 16 // classic record header: sec, frac, caplen, origlen

	// linkTypeMask keeps the link type of a classic header's link-type
	// field; libpcap's LT_LINKTYPE: the bits above carry FCS information.
	linkTypeMask = 0x03ffffff

	// pcapng block types. The section header's type reads the same in
	// either byte order, so it is recognised before the order is known.
	blockSHB = 0x0a0d0d0a // section header
	blockIDB = 1          // interface description
	blockOPB = 2          // packet block (obsolete, still written by old tools)
	blockSPB = 3          // simple packet
	blockEPB = 6          // enhanced packet

	// byteOrderMagic is a section header's byte-order magic in its own order.
	byteOrderMagic = 0x1a2b3c4d

	shbMinBytes     = 28 // type, length, BOM, version, section length, trailer
	blockMinBytes   = 12 // type, length, trailer
	idbBodyMinBytes = 8  // link type, reserved, snaplen
	epbBodyMinBytes = 20 // interface, ts high, ts low, caplen, origlen
	spbBodyMinBytes = 4  // origlen

	// pcapng option codes (§3.5, §4.2).
	optEnd        = 0
	optIfTsresol  = 9  // 1 byte: 10^-v, or 2^-(v&0x7f) when the top bit is set
	optIfTsoffset = 14 // 8 bytes: seconds added to every timestamp
	// defaultTsresol is an interface's resolution without if_tsresol: µs.
	defaultTsresol = 6
)

// Implementation choices.
const (
	// readBufBytes is a Reader's initial buffer (unless its source is a
	// smaller file, which then fits whole): any classic record fits, so only
	// a pcapng block above it ever makes the buffer grow.
	readBufBytes = 512 << 10
	// minReadBufBytes is the smallest buffer NewReader sizes for a source
	// that says it is small.
	minReadBufBytes = 4 << 10
	// maxBlockBytes bounds a pcapng block; a larger length is taken for
	// corruption (libpcap's pcapng reader bounds blocks at the same order).
	maxBlockBytes = 16 << 20
	// writeBufBytes is a Writer's initial buffer capacity.
	writeBufBytes = 256 << 10
	// flushBytes is how much a Writer buffers before it writes to the file.
	flushBytes = 128 << 10
	// FlushInterval is how long the port's TX keeps frames buffered: a
	// TxBurst flushes when this much time has passed since the last flush,
	// so a slow stream still reaches the file. Close flushes the rest.
	FlushInterval = 100 * time.Millisecond
	// MaxPaceLag bounds how far a paced replay catches up after its RX loop
	// was not polled: frames more overdue than this are not burst out to
	// make up the time; the schedule slips instead (no frame is lost, unlike
	// the null port, which emulates a NIC's RX queue and drops).
	MaxPaceLag = 10 * time.Millisecond
	// txChunk is how many slots TxBurst writes per Free call; the record
	// offsets are kept in a stack array of this size.
	txChunk = 64
	// maxEmptyReads is how many (0, nil) reads in a row Reader accepts from
	// its source before it reports io.ErrNoProgress.
	maxEmptyReads = 100
)
