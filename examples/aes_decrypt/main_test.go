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

// TestMain turns a child started by chaintest into aes_decrypt, or into
// chaintest's forwarder.
func TestMain(m *testing.M) {
	if argv, ok := chaintest.ChildArgv(); ok {
		if chaintest.IsNext(argv) {
			os.Exit(chaintest.RunNext(argv[1:]))
		}
		os.Exit(aesnf.Run(aesnf.Decrypt, "aes_decrypt", argv, nfapp.Std()))
	}
	os.Exit(m.Run())
}

// Frames encrypted with crypto/aes (AES-256-CTR, ONVM's key and IV) leave
// aes_decrypt as the plaintext, checksum valid.
func TestDecryptsCryptoAESCiphertext(t *testing.T) {
	lab := chaintest.NewLab(t, mgrconfig.DeadNFReclaim, []int{1})
	lab.Start(t, nil, "--", "-r", "1", "--", "-d", "3")
	lab.Start(t, nil, chaintest.NextWord, "--", "-r", "3")
	lab.WaitRunning(t, 2)
	block, err := aes.NewCipher(aesnf.Key[:])
	if err != nil {
		t.Fatal(err)
	}
	off := pkt.OffL4 + pkt.UDPHeaderBytes
	var in [][]byte
	plain := map[int][]byte{}
	for n := 0; n < 50; n++ {
		f := chaintest.PlainFrame(t, 1, n)
		for k := off; k < len(f); k++ {
			f[k] = byte(k * 3)
		}
		var h pkt.Headers
		if err := h.Decode(f); err != nil {
			t.Fatal(err)
		}
		h.SetL4Checksum(f)
		plain[len(f)] = bytes.Clone(f)
		cipher.NewCTR(block, aesnf.IV[:]).XORKeyStream(f[off:], f[off:])
		h.SetL4Checksum(f)
		in = append(in, f)
	}
	lab.Port.Inject(in...)
	for _, f := range lab.WaitSent(t, len(in)) {
		if !bytes.Equal(f, plain[len(f)]) {
			t.Fatalf("frame out % x\nwant        % x", f, plain[len(f)])
		}
	}
}
