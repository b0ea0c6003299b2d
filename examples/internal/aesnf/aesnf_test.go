package aesnf

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"io"
	"strings"
	"testing"

	"github.com/reinforce-nfv/reinforce/internal/testenv"
	"github.com/reinforce-nfv/reinforce/pkt"
	"github.com/reinforce-nfv/reinforce/shm"
)

// goCTR is the reference: Go's own AES-CTR with ONVM's key and IV.
func goCTR(t testing.TB, data []byte) []byte {
	b, err := aes.NewCipher(Key[:])
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, len(data))
	cipher.NewCTR(b, IV[:]).XORKeyStream(out, data)
	return out
}

func TestCTRMatchesCryptoAES(t *testing.T) {
	rnd := testenv.Rand(t)
	c := NewCTR()
	for n := 0; n < 300; n++ {
		plain := make([]byte, n)
		for i := range plain {
			plain[i] = byte(rnd.Uint32())
		}
		got := bytes.Clone(plain)
		c.XOR(got)
		if want := goCTR(t, plain); !bytes.Equal(got, want) {
			t.Fatalf("%d bytes: ciphertext % x, crypto/aes gives % x", n, got, want)
		}
		c.XOR(got)
		if !bytes.Equal(got, plain) {
			t.Fatalf("%d bytes: decrypting the ciphertext gives % x, want % x", n, got, plain)
		}
	}
}

func udpFrame(t *testing.T, payload []byte) []byte {
	b := make([]byte, 2048)
	n, err := pkt.BuildUDP4(b, pkt.MAC{2, 0, 0, 0, 0, 1}, pkt.MAC{2, 0, 0, 0, 0, 2}, [4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 1000, 2000, len(payload))
	if err != nil {
		t.Fatal(err)
	}
	b = b[:n]
	copy(b[pkt.OffL4+pkt.UDPHeaderBytes:], payload)
	var h pkt.Headers
	if err := h.Decode(b); err != nil {
		t.Fatal(err)
	}
	h.SetL4Checksum(b)
	return b
}

func TestProcessEncryptsUDPPayloadAndKeepsChecksumValid(t *testing.T) {
	plain := []byte("UDP packet sent from ONVM. Some more text to span blocks.")
	frame := udpFrame(t, plain)
	orig := bytes.Clone(frame)
	var out bytes.Buffer
	enc := NewCrypter(Encrypt, Config{Dst: 2, PrintDelay: 1}, &out)
	m := &shm.Meta{Port: 0, Len: uint32(len(frame))}
	enc.Process(m, frame)
	off := pkt.OffL4 + pkt.UDPHeaderBytes
	if !bytes.Equal(frame[:pkt.OffL4+6], orig[:pkt.OffL4+6]) {
		t.Fatal("headers changed")
	}
	if want := goCTR(t, plain); !bytes.Equal(frame[off:], want) {
		t.Fatalf("payload % x, want crypto/aes's % x", frame[off:], want)
	}
	var h pkt.Headers
	if h.Decode(frame) != nil || !h.VerifyL4Checksum(frame) {
		t.Fatal("UDP checksum invalid after encryption")
	}
	for _, want := range []string{"PACKETS\n-----\nPort : 0\n", "Payload : UDP packet sent from ONVM. Some \n",
		"Encrypted 57 bytes at offset 42 (42)\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	NewCrypter(Decrypt, Config{Dst: 3, PrintDelay: 0}, io.Discard).Process(m, frame)
	if !bytes.Equal(frame, orig) {
		t.Fatalf("decrypt(encrypt(p)) = % x, want % x", frame, orig)
	}
}

func TestProcessLeavesOtherPacketsAlone(t *testing.T) {
	c := NewCrypter(Encrypt, Config{Dst: 2}, io.Discard)
	b := make([]byte, 128)
	n, _ := pkt.BuildTCP4(b, pkt.MAC{}, pkt.MAC{}, [4]byte{1, 2, 3, 4}, [4]byte{5, 6, 7, 8}, 1, 2, 20)
	tcp := bytes.Clone(b[:n])
	c.Process(&shm.Meta{}, b[:n])
	short := []byte{1, 2, 3}
	c.Process(&shm.Meta{}, short)
	if !bytes.Equal(b[:n], tcp) || !bytes.Equal(short, []byte{1, 2, 3}) {
		t.Fatal("a non-UDP packet changed")
	}
}

func TestZeroUDPChecksumStaysZero(t *testing.T) {
	frame := udpFrame(t, []byte("hello"))
	frame[pkt.OffUDPChecksum], frame[pkt.OffUDPChecksum+1] = 0, 0
	NewCrypter(Encrypt, Config{Dst: 2}, io.Discard).Process(&shm.Meta{}, frame)
	if frame[pkt.OffUDPChecksum] != 0 || frame[pkt.OffUDPChecksum+1] != 0 {
		t.Fatal("a UDP packet without checksum got one")
	}
}

func TestProcessDoesNotAllocate(t *testing.T) {
	frame := udpFrame(t, make([]byte, 1000))
	c := NewCrypter(Encrypt, Config{Dst: 2, PrintDelay: 1}, io.Discard)
	m := &shm.Meta{Len: uint32(len(frame))}
	c.Process(m, frame)
	if n := testing.AllocsPerRun(1000, func() { c.Process(m, frame) }); n != 0 {
		t.Fatalf("Process allocates %v times per packet", n)
	}
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		args []string
		want Config
		err  string
	}{
		{args: []string{"-d", "2"}, want: Config{Dst: 2, PrintDelay: 1000000}},
		{args: []string{"-d2", "-p", "7"}, want: Config{Dst: 2, PrintDelay: 7}},
		{args: []string{"-p", "7"}, err: "AES Encrypt NF requires destination flag -d."},
		{args: []string{"-d", "0"}, err: "Option -d must name a service ID from 1 to 31"},
		{args: []string{"-d", "1", "-x"}, err: "Unknown option `-x'."},
	}
	for _, tt := range tests {
		got, err := ParseArgs(Encrypt, tt.args)
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if got != tt.want || msg != tt.err {
			t.Errorf("ParseArgs(%q) = %+v, %q; want %+v, %q", tt.args, got, msg, tt.want, tt.err)
		}
	}
}
