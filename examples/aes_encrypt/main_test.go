package main

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"os"
	"testing"

	"github.com/reinforce-nfv/reinforce/examples/internal/aesnf"
	"github.com/reinforce-nfv/reinforce/examples/internal/chaintest"
	"github.com/reinforce-nfv/reinforce/examples/internal/nfapp"
	mgrconfig "github.com/reinforce-nfv/reinforce/manager/config"
	"github.com/reinforce-nfv/reinforce/pkt"
)

// modeEnv makes a child run aes_decrypt instead of aes_encrypt.
const modeEnv = "AESNF_TEST_MODE"

// TestMain turns a child started by chaintest into the NF: aes_encrypt,
// aes_decrypt (modeEnv=decrypt) or chaintest's forwarder.
func TestMain(m *testing.M) {
	if argv, ok := chaintest.ChildArgv(); ok {
		switch {
		case chaintest.IsNext(argv):
			os.Exit(chaintest.RunNext(argv[1:]))
		case os.Getenv(modeEnv) == "decrypt":
			os.Exit(aesnf.Run(aesnf.Decrypt, "aes_decrypt", argv, nfapp.Std()))
		default:
			os.Exit(aesnf.Run(aesnf.Encrypt, "aes_encrypt", argv, nfapp.Std()))
		}
	}
	os.Exit(m.Run())
}

// frames are UDP frames of several flows and payload sizes (0 to 3 AES
// blocks and a bit), each payload distinct, checksums valid.
func frames(t *testing.T) [][]byte {
	var in [][]byte
	for i := 0; i < 64; i++ {
		f := chaintest.PlainFrame(t, uint32(i%8), i)
		pl := f[pkt.OffL4+pkt.UDPHeaderBytes:]
		for k := range pl {
			pl[k] = byte(i*7 + k)
		}
		var h pkt.Headers
		if err := h.Decode(f); err != nil {
			t.Fatal(err)
		}
		h.SetL4Checksum(f)
		in = append(in, f)
	}
	return in
}

// key identifies a frame of frames() by its source port and length, which
// together tell every frame apart whatever the order out.
func key(f []byte) [2]int {
	return [2]int{int(f[pkt.OffSrcPort])<<8 | int(f[pkt.OffSrcPort+1]), len(f)}
}

// aes_encrypt → aes_decrypt → out: every frame leaves exactly as it came.
func TestEncryptThenDecryptIsIdentity(t *testing.T) {
	lab := chaintest.NewLab(t, mgrconfig.DeadNFReclaim, []int{1})
	lab.Start(t, nil, "--", "-r", "1", "--", "-d", "2")
	lab.Start(t, []string{modeEnv + "=decrypt"}, "--", "-r", "2", "--", "-d", "3")
	lab.Start(t, nil, chaintest.NextWord, "--", "-r", "3")
	lab.WaitRunning(t, 3)
	in := frames(t)
	lab.Port.Inject(in...)
	out := lab.WaitSent(t, len(in))
	want := map[[2]int][]byte{}
	for _, f := range in {
		want[key(f)] = f
	}
	for _, f := range out {
		if !bytes.Equal(f, want[key(f)]) {
			t.Fatalf("frame out % x\nwant        % x", f, want[key(f)])
		}
	}
}

// aes_encrypt → out: each payload is crypto/aes's AES-256-CTR of the
// plaintext with ONVM's key and IV, headers unchanged, checksum valid.
func TestCiphertextMatchesCryptoAES(t *testing.T) {
	lab := chaintest.NewLab(t, mgrconfig.DeadNFReclaim, []int{1})
	lab.Start(t, nil, "--", "-r", "1", "--", "-d", "3")
	lab.Start(t, nil, chaintest.NextWord, "--", "-r", "3")
	lab.WaitRunning(t, 2)
	in := frames(t)
	lab.Port.Inject(in...)
	out := lab.WaitSent(t, len(in))
	block, err := aes.NewCipher(aesnf.Key[:])
	if err != nil {
		t.Fatal(err)
	}
	want := map[[2]int][]byte{}
	for _, f := range in {
		w := bytes.Clone(f)
		pl := w[pkt.OffL4+pkt.UDPHeaderBytes:]
		cipher.NewCTR(block, aesnf.IV[:]).XORKeyStream(pl, pl)
		want[key(f)] = w
	}
	off := pkt.OffL4 + pkt.UDPHeaderBytes
	for _, f := range out {
		w := want[key(f)]
		if !bytes.Equal(f[:pkt.OffUDPChecksum], w[:pkt.OffUDPChecksum]) || !bytes.Equal(f[off:], w[off:]) {
			t.Fatalf("frame out % x\nwant        % x (checksum aside)", f, w)
		}
		var h pkt.Headers
		if h.Decode(f) != nil || !h.VerifyL4Checksum(f) {
			t.Fatalf("UDP checksum invalid in % x", f)
		}
	}
}
