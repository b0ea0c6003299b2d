package probe

import (
	"testing"

	"github.com/reinforce-nfv/reinforce/pkt"
)

func TestRoundTripAndChecksum(t *testing.T) {
	buf := make([]byte, 256)
	n, err := pkt.BuildUDP4(buf, pkt.MAC{2}, pkt.MAC{4}, [4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 1000, 2000, Bytes+10)
	if err != nil {
		t.Fatal(err)
	}
	frame := buf[:n]
	in := Record{Flow: 7, Seq: 1 << 40, SentNs: 123456789, Mutate: 0, Stamp: [Stamps]uint32{1, 2, 3, 4}}
	in.Put(frame[pkt.OffL4+pkt.UDPHeaderBytes:])
	var h pkt.Headers
	if err := h.Decode(frame); err != nil {
		t.Fatal(err)
	}
	h.SetL4Checksum(frame)
	off, ok := Find(&h, frame)
	if !ok || off != pkt.OffL4+pkt.UDPHeaderBytes {
		t.Fatalf("Find = %d, %v", off, ok)
	}
	var out Record
	if !out.Get(frame[off:]) || out != in {
		t.Fatalf("Get = %+v, want %+v", out, in)
	}
	SetUint32(frame, off+OffMutate, ChecksumOffset(&h), 1)
	SetUint32(frame, off+OffStamp0+8, ChecksumOffset(&h), 0xFFFFFFFF)
	if !h.VerifyL4Checksum(frame) {
		t.Fatal("checksum invalid after SetUint32")
	}
	out.Get(frame[off:])
	if out.Mutate != 1 || out.Stamp[2] != 0xFFFFFFFF {
		t.Fatalf("fields not set: %+v", out)
	}
	// Not a probe: wrong magic, truncated frames.
	frame[off] ^= 0xFF
	if _, ok := Find(&h, frame); ok {
		t.Fatal("bad magic found")
	}
	for i := 0; i < n; i++ {
		Find(&h, frame[:i])
	}
}
