// Package aesnf is ONVM's aes_encrypt and aes_decrypt example NFs
// (ONVM-COMPAT.md §5.3), which differ only in their tag and words: each
// runs AES-256 in counter mode over the UDP payload of every IPv4 packet,
// with ONVM's fixed key (the FIPS-197 / SP 800-38A AES-256 test key) and
// IV (0x00..0x0f), and sends every packet to the service given with -d.
// Counter mode is its own inverse, so decrypt(encrypt(p)) == p, and the
// keystream is Go's crypto/aes + cipher.NewCTR's (B-Con's aes_encrypt_ctr
// increments the whole 16-byte counter block big-endian, as Go does).
//
//	aes_encrypt [EAL args] -- [ONVM args] -- -d <destination> [-p <print_delay>]
//
// Where we differ from ONVM, on purpose:
//   - The payload is the UDP payload as the IPv4 and UDP lengths give it
//     (IPv4 options and VLAN tags understood); ONVM assumes a 20-byte IPv4
//     header and also encrypts Ethernet padding. Every payload byte gets
//     the same keystream byte as in ONVM.
//   - The UDP checksum is recomputed after the payload changes (left 0 when
//     it was 0, "no checksum"), so the packets stay valid on the wire; ONVM
//     leaves it stale.
//   - The arguments are checked before registering, numbers strictly; -d
//     must be a service ID (1..31).
package aesnf

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"io"
	"strconv"

	"github.com/reinforce-nfv/reinforce/examples/internal/getopt"
	"github.com/reinforce-nfv/reinforce/examples/internal/nfapp"
	"github.com/reinforce-nfv/reinforce/examples/internal/pktprint"
	"github.com/reinforce-nfv/reinforce/nflib"
	"github.com/reinforce-nfv/reinforce/pkt"
	"github.com/reinforce-nfv/reinforce/shm"
)

// Key and IV are ONVM's (aesencrypt.c, aesdecrypt.c: key[0], iv[0]).
var (
	Key = [32]byte{0x60, 0x3d, 0xeb, 0x10, 0x15, 0xca, 0x71, 0xbe, 0x2b, 0x73, 0xae, 0xf0, 0x85, 0x7d, 0x77, 0x81,
		0x1f, 0x35, 0x2c, 0x07, 0x3b, 0x61, 0x08, 0xd7, 0x2d, 0x98, 0x10, 0xa3, 0x09, 0x14, 0xdf, 0xf4}
	IV = [16]byte{0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f}
)

// Mode is which of the two NFs runs.
type Mode struct {
	Tag  string // NF tag
	Verb string // "Encrypted"/"Decrypted" in the print
	Name string // in the missing -d message
}

// The two NFs.
var (
	Encrypt = Mode{Tag: "aes_encrypt", Verb: "Encrypted", Name: "AES Encrypt"}
	Decrypt = Mode{Tag: "aes_decrypt", Verb: "Decrypted", Name: "AES Decrypt"}
)

// defaultPrintDelay is -p's default. ONVM: print_delay.
const defaultPrintDelay = 1000000

// udpHdrOffset is what ONVM prints in parentheses after the offset:
// sizeof(ether_hdr) + sizeof(ipv4_hdr) + sizeof(udp_hdr).
const udpHdrOffset = pkt.EthHeaderBytes + pkt.IPv4HeaderBytes + pkt.UDPHeaderBytes

// Config is the NF's own command line.
type Config struct {
	Dst        uint16 // -d
	PrintDelay uint64 // -p; 0 never prints
}

// Run is the NF's main with its inputs and outputs passed in; it returns
// the exit status.
func Run(mode Mode, prog string, argv []string, w nfapp.IO) int {
	var cfg Config
	if !nfapp.Parse(prog, argv, w, usage, func(app []string) (err error) {
		cfg, err = ParseArgs(mode, app)
		return err
	}) {
		return 1
	}
	nf := nfapp.Register(mode.Tag, argv, w)
	if nf == nil {
		return 1
	}
	c := NewCrypter(mode, cfg, w.Stdout)
	return nfapp.Serve(nf, c.handle, w)
}

func usage(w io.Writer, prog string) {
	io.WriteString(w, "Usage: "+prog+" [EAL args] -- [NF_LIB args] -- -d <destination> -p <print_delay>\n\n")
}

// ParseArgs parses the NF's own arguments with ONVM's getopt string "d:p:".
// Errors are *getopt.Error.
func ParseArgs(mode Mode, args []string) (Config, error) {
	cfg := Config{PrintDelay: defaultPrintDelay}
	opts, _, perr := getopt.Parse(args, "d:p:")
	haveDst := false
	for _, o := range opts {
		switch o.Name {
		case 'd':
			n, err := o.ServiceID()
			if err != nil {
				return Config{}, err
			}
			cfg.Dst, haveDst = uint16(n), true
		case 'p':
			n, err := o.Uint(1<<64 - 1)
			if err != nil {
				return Config{}, err
			}
			cfg.PrintDelay = n
		}
	}
	if perr != nil {
		return Config{}, perr
	}
	if !haveDst {
		return Config{}, getopt.Errorf("%s NF requires destination flag -d.", mode.Name)
	}
	return cfg, nil
}

// CTR is AES-256-CTR with ONVM's key and IV, without allocating per call.
// Not safe for concurrent use.
type CTR struct {
	b       cipher.Block
	ctr, ks [aes.BlockSize]byte // scratch, here so that they do not escape per call
}

// NewCTR returns the cipher.
func NewCTR() *CTR {
	b, err := aes.NewCipher(Key[:])
	if err != nil {
		panic(err) // a 32-byte key is always valid
	}
	return &CTR{b: b}
}

// XOR runs the keystream from the IV over data in place (encrypts or
// decrypts).
func (c *CTR) XOR(data []byte) {
	c.ctr = IV
	for off := 0; off < len(data); off += aes.BlockSize {
		c.b.Encrypt(c.ks[:], c.ctr[:])
		end := min(off+aes.BlockSize, len(data))
		subtle.XORBytes(data[off:end], data[off:end], c.ks[:end-off])
		for i := aes.BlockSize - 1; i >= 0; i-- { // big-endian increment of the whole block
			c.ctr[i]++
			if c.ctr[i] != 0 {
				break
			}
		}
	}
}

// Crypter is the NF's state, used by the burst loop goroutine only.
type Crypter struct {
	mode     Mode
	act      nflib.Action
	every    uint64
	counter  uint64
	printed  uint64
	printNow bool // this packet was printed: print the crypt line too
	ctr      *CTR
	h        pkt.Headers
	out      io.Writer
	buf      []byte
}

// NewCrypter returns the NF's packet processing for cfg, printing on out.
func NewCrypter(mode Mode, cfg Config, out io.Writer) *Crypter {
	return &Crypter{mode: mode, act: nflib.ToNF(cfg.Dst), every: cfg.PrintDelay, ctr: NewCTR(), out: out,
		buf: make([]byte, 0, 2048)}
}

func (c *Crypter) handle(p nflib.Packet) nflib.Action {
	if c.prepare(p.Meta(), p.Data()) {
		c.crypt(p.Writable()) // copy on first write: only the packets that change
	}
	return c.act
}

// Process handles one packet whose bytes are data, in place (ONVM:
// packet_handler), and returns its verdict.
func (c *Crypter) Process(m *shm.Meta, data []byte) nflib.Action {
	if c.prepare(m, data) {
		c.crypt(data)
	}
	return c.act
}

// prepare counts the packet, prints every -p packets, decodes it and
// reports whether it has a UDP payload to run the keystream over.
func (c *Crypter) prepare(m *shm.Meta, data []byte) bool {
	c.printNow = false
	if c.counter++; c.counter == c.every {
		c.counter = 0
		c.printed += c.every
		c.printNow = true
		c.display(m, data)
	}
	return c.h.Decode(data) == nil && c.h.IPVersion == 4 && c.h.Proto == pkt.ProtoUDP && c.h.Flags&pkt.FlagL4 != 0
}

// crypt runs the keystream over the payload prepare found in frame and
// fixes the UDP checksum.
func (c *Crypter) crypt(frame []byte) {
	from, to := int(c.h.Payload), int(c.h.L3End)
	c.ctr.XOR(frame[from:to])
	if binary.BigEndian.Uint16(frame[c.h.L4+6:]) != 0 {
		c.h.SetL4Checksum(frame)
	}
	if c.printNow {
		b := append(c.buf[:0], c.mode.Verb...)
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(to-from), 10)
		b = append(b, " bytes at offset "...)
		b = strconv.AppendInt(b, int64(from), 10)
		b = append(b, " ("...)
		b = strconv.AppendInt(b, udpHdrOffset, 10)
		b = append(b, ")\n"...)
		c.out.Write(b)
		c.buf = b
	}
}

// display is ONVM's do_stats_display: the std packet print, then up to 32
// bytes of the UDP payload (printf's "%.32s": up to the first NUL).
func (c *Crypter) display(m *shm.Meta, data []byte) {
	b := pktprint.AppendStd(c.buf[:0], m.Port, m.Len, c.printed, data)
	if c.h.Decode(data) == nil && c.h.IPVersion == 4 && c.h.Proto == pkt.ProtoUDP && c.h.Flags&pkt.FlagL4 != 0 {
		pl := data[c.h.Payload:]
		if len(pl) > 32 {
			pl = pl[:32]
		}
		for i, v := range pl {
			if v == 0 {
				pl = pl[:i]
				break
			}
		}
		b = append(b, "Payload : "...)
		b = append(b, pl...)
		b = append(b, '\n')
	}
	c.out.Write(b)
	c.buf = b
}
