package afpacket

import (
	"bytes"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/reinforce-nfv/reinforce/shm"
	"github.com/reinforce-nfv/reinforce/shm/shmtest"
)

// These tests drive RxBurst over a ring in ordinary memory, laid out as the
// kernel lays out a TPACKET_V3 ring, including blocks it would never write.

const (
	testBlockBytes = 4096
	testMacOff     = 82 // where the kernel puts a SOCK_RAW frame: TPACKET_ALIGN(68+16) - 14
)

// synth is one frame to lay into a test block.
type synth struct {
	data []byte
	wire uint32 // tp_len; 0 means len(data)
	tci  uint16 // stripped VLAN tag; 0 for none
	next int    // tp_next_offset override; 0 computes it, < 0 writes 0
	mac  int    // tp_mac override; 0 means testMacOff
}

// ringPort returns a port with no sockets over a ring of blocks test
// blocks, and a cache of a region with slots of room data bytes.
func ringPort(t testing.TB, blocks int, room uint32) (*Port, *shm.Cache) {
	t.Helper()
	return socketless(blocks), testCache(t, room)
}

// socketless returns a port with no sockets over a zeroed ring of blocks
// test blocks (all the kernel's).
func socketless(blocks int) *Port {
	mem := make([]byte, blocks*testBlockBytes)
	return &Port{id: 5, rxFD: -1, txFD: -1, ring: rxRing{mem: mem, blockBytes: testBlockBytes, blocks: uint32(blocks)}}
}

// testCache returns the cache of owner 1 in a new region with slots of room
// data bytes; the caller services the pool.
func testCache(t testing.TB, room uint32) *shm.Cache {
	t.Helper()
	o := shmtest.SmallOptions()
	o.DataBytes = room
	r := shmtest.TempRegion(t, o)
	if err := r.Pool().AddOwner(1, 0); err != nil {
		t.Fatal(err)
	}
	c, err := r.OpenCache(1)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// putBlock writes frames into block b and hands it to user space, as
// prb_close_block does. firstOff 0 means the kernel's (blockDescBytes).
func putBlock(g *rxRing, b int, firstOff uint32, frames ...synth) {
	base := b * testBlockBytes
	clear(g.mem[base : base+testBlockBytes])
	off := blockDescBytes
	for i, f := range frames {
		h := (*unix.Tpacket3Hdr)(unsafe.Pointer(&g.mem[base+off]))
		mac := f.mac
		if mac == 0 {
			mac = testMacOff
		}
		h.Mac, h.Snaplen, h.Len, h.Status = uint16(mac), uint32(len(f.data)), f.wire, unix.TP_STATUS_USER
		if f.wire == 0 {
			h.Len = uint32(len(f.data))
		}
		if f.tci != 0 {
			h.Status |= unix.TP_STATUS_VLAN_VALID | unix.TP_STATUS_VLAN_TPID_VALID
			h.Hv1.Vlan_tci, h.Hv1.Vlan_tpid = uint32(f.tci), 0x88A8
		}
		if off+mac < testBlockBytes {
			copy(g.mem[base+off+mac:base+testBlockBytes], f.data)
		}
		next := (mac + len(f.data) + 7) &^ 7
		if f.next != 0 {
			next = max(f.next, 0)
		}
		if i < len(frames)-1 {
			h.Next_offset = uint32(next)
		}
		if next == 0 || off+next > testBlockBytes-frameHdrBytes {
			break // the frames after it cannot be placed
		}
		off += next
	}
	d := g.desc(uint32(b))
	d.numPkts, d.firstOff = uint32(len(frames)), firstOff
	if firstOff == 0 {
		d.firstOff = blockDescBytes
	}
	d.status.Store(unix.TP_STATUS_USER)
}

func frameOf(n int, seed byte) []byte {
	f := make([]byte, n)
	for i := range f {
		f[i] = seed + byte(i)
	}
	return f
}

// rxAll runs RxBurst with bursts of burst slots until it returns 0 and
// returns copies of what it delivered, freeing the slots.
func rxAll(t testing.TB, p *Port, c *shm.Cache, burst int) [][]byte {
	t.Helper()
	r := c.Region()
	out := make([]shm.Slot, burst)
	var got [][]byte
	for {
		k := p.RxBurst(c, out)
		if k == 0 {
			return got
		}
		for _, s := range out[:k] {
			if m := r.Meta(s); m.Port != 5 || m.DataOff != shm.HeadroomBytes {
				t.Fatalf("meta port %d, data offset %d", m.Port, m.DataOff)
			}
			got = append(got, append([]byte(nil), r.Packet(s)...))
		}
		if c.Free(out[:k]) != k {
			r.Pool().Service()
		}
		r.Pool().Service()
	}
}

func TestRingDeliversInOrderAndReleasesBlocks(t *testing.T) {
	for _, burst := range []int{1, 2, 32} {
		p, c := ringPort(t, 3, 256)
		g := &p.ring
		a, b, d, e := frameOf(60, 1), frameOf(200, 2), frameOf(100, 3), frameOf(256, 4)
		putBlock(g, 0, 0, synth{data: a}, synth{data: b})
		putBlock(g, 1, 0, synth{data: d, tci: 0x2005}, synth{data: e})
		// Block 2 stays the kernel's: the walk stops there.
		got := rxAll(t, p, c, burst)
		tagged := append(append(append([]byte(nil), d[:12]...), 0x88, 0xA8, 0x20, 0x05), d[12:]...)
		want := [][]byte{a, b, tagged, e}
		if len(got) != len(want) {
			t.Fatalf("burst %d: %d frames, want %d", burst, len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("burst %d: frame %d differs", burst, i)
			}
		}
		for b := range uint32(3) {
			if st := g.desc(b).status.Load(); st != unix.TP_STATUS_KERNEL {
				t.Fatalf("burst %d: block %d status %#x after the walk", burst, b, st)
			}
		}
		if p.rxBlk != 2 || p.rxLeft != 0 {
			t.Fatalf("burst %d: cursor at block %d with %d left", burst, p.rxBlk, p.rxLeft)
		}
		// The ring wraps: block 2, then block 0 again.
		putBlock(g, 2, 0, synth{data: a})
		putBlock(g, 0, 0, synth{data: b})
		if got := rxAll(t, p, c, burst); len(got) != 2 || !bytes.Equal(got[0], a) || !bytes.Equal(got[1], b) {
			t.Fatalf("burst %d: after wrapping got %d frames", burst, len(got))
		}
		if st := p.Stats(); st.RxPkts != 6 || st.RxDrops != 0 {
			t.Fatalf("burst %d: %+v", burst, st)
		}
	}
}

func TestRingDropsWhatCannotBeDelivered(t *testing.T) {
	tests := []struct {
		name   string
		blocks func(g *rxRing)
		want   int // frames delivered (each is frameOf(60, 9))
		detail Detail
	}{
		{"too big for the slot", func(g *rxRing) {
			putBlock(g, 0, 0, synth{data: frameOf(257, 9)}, synth{data: frameOf(60, 9)})
		}, 1, Detail{RxTooBig: 1}},
		{"tag makes it too big", func(g *rxRing) {
			putBlock(g, 0, 0, synth{data: frameOf(253, 9), tci: 1}, synth{data: frameOf(60, 9)})
		}, 1, Detail{RxTooBig: 1}},
		{"truncated by the kernel", func(g *rxRing) {
			putBlock(g, 0, 0, synth{data: frameOf(60, 9)}, synth{data: frameOf(100, 9), wire: 9000}, synth{data: frameOf(60, 9)})
		}, 2, Detail{RxTruncated: 1}},
		{"tag without MAC addresses", func(g *rxRing) {
			putBlock(g, 0, 0, synth{data: frameOf(10, 9), tci: 1}, synth{data: frameOf(60, 9)})
		}, 1, Detail{RxMalformed: 1}},
		{"empty block", func(g *rxRing) {
			putBlock(g, 0, 0)
			putBlock(g, 1, 0, synth{data: frameOf(60, 9)})
		}, 1, Detail{RxMalformed: 1}},
		{"first frame outside the block", func(g *rxRing) {
			putBlock(g, 0, testBlockBytes-8, synth{data: frameOf(60, 9)})
			putBlock(g, 1, 0, synth{data: frameOf(60, 9)})
		}, 1, Detail{RxMalformed: 1}},
		{"first frame inside the descriptor", func(g *rxRing) {
			putBlock(g, 0, 8, synth{data: frameOf(60, 9)})
			putBlock(g, 1, 0, synth{data: frameOf(60, 9)})
		}, 1, Detail{RxMalformed: 1}},
		{"next offset past the block", func(g *rxRing) {
			putBlock(g, 0, 0, synth{data: frameOf(60, 9), next: testBlockBytes}, synth{data: frameOf(60, 9)}, synth{data: frameOf(60, 9)})
			putBlock(g, 1, 0, synth{data: frameOf(60, 9)})
		}, 1, Detail{RxMalformed: 3}},
		{"next offset zero", func(g *rxRing) {
			putBlock(g, 0, 0, synth{data: frameOf(60, 9), next: -1}, synth{data: frameOf(60, 9)})
		}, 0, Detail{RxMalformed: 2}},
		{"next offset huge", func(g *rxRing) {
			putBlock(g, 0, 0, synth{data: frameOf(60, 9), next: 0x7FFFFFFF}, synth{data: frameOf(60, 9)})
		}, 0, Detail{RxMalformed: 2}},
		{"data past the block", func(g *rxRing) {
			putBlock(g, 0, 0, synth{data: frameOf(60, 9), mac: testBlockBytes}, synth{data: frameOf(60, 9)})
			putBlock(g, 1, 0, synth{data: frameOf(60, 9)})
		}, 1, Detail{RxMalformed: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, c := ringPort(t, 2, 256)
			tt.blocks(&p.ring)
			got := rxAll(t, p, c, 32)
			if len(got) != tt.want {
				t.Fatalf("%d frames delivered, want %d", len(got), tt.want)
			}
			for _, f := range got {
				if !bytes.Equal(f, frameOf(60, 9)) {
					t.Fatalf("delivered a wrong frame of %d bytes", len(f))
				}
			}
			if d := p.Detail(); d != tt.detail {
				t.Fatalf("detail %+v, want %+v", d, tt.detail)
			}
			drops := tt.detail.RxTooBig + tt.detail.RxTruncated + tt.detail.RxMalformed
			if st := p.Stats(); st.RxDrops != drops || st.RxPkts != uint64(tt.want) {
				t.Fatalf("stats %+v, want %d delivered, %d dropped", st, tt.want, drops)
			}
			for b := range p.ring.blocks {
				if st := p.ring.desc(b).status.Load(); st != unix.TP_STATUS_KERNEL {
					t.Fatalf("block %d status %#x: not given back", b, st)
				}
			}
		})
	}
}

func TestRingWaitsForTheCache(t *testing.T) {
	p, c := ringPort(t, 2, 256)
	putBlock(&p.ring, 0, 0, synth{data: frameOf(60, 1)})
	r := c.Region()
	var held [4096]shm.Slot
	n := 0
	for k := c.Alloc(held[n:]); k > 0; k = c.Alloc(held[n:]) { // drain the cache (nobody services the pool)
		n += k
	}
	var out [8]shm.Slot
	if k := p.RxBurst(c, out[:]); k != 0 {
		t.Fatalf("delivered %d frames with an empty cache", k)
	}
	if p.ring.desc(0).status.Load() != unix.TP_STATUS_USER || p.Stats().RxDrops != 0 {
		t.Fatal("frame lost while the cache was empty")
	}
	c.Free(held[:n])
	r.Pool().Service()
	if k := p.RxBurst(c, out[:]); k != 1 {
		t.Fatalf("delivered %d frames once the cache refilled, want 1", k)
	}
	c.Free(out[:1])
}

// FuzzRingWalk fills two ready blocks with arbitrary bytes (descriptor and
// frame headers included) and runs RxBurst until it stops: it must never
// panic or read outside the ring, must give back every block it walked, and
// every delivered frame must fit its slot.
func FuzzRingWalk(f *testing.F) {
	seed := socketless(2)
	putBlock(&seed.ring, 0, 0, synth{data: frameOf(60, 1)}, synth{data: frameOf(100, 2), tci: 7})
	putBlock(&seed.ring, 1, 0, synth{data: frameOf(300, 3)}, synth{data: frameOf(60, 4), wire: 70})
	f.Add(seed.ring.mem[:512], seed.ring.mem[testBlockBytes:testBlockBytes+512])
	f.Add([]byte{}, []byte{})
	c := testCache(f, 256) // one region for every input: creating one is slow
	r := c.Region()
	f.Fuzz(func(t *testing.T, b0, b1 []byte) {
		p := socketless(2)
		copy(p.ring.mem[:testBlockBytes], b0)
		copy(p.ring.mem[testBlockBytes:], b1)
		for b := range uint32(2) {
			p.ring.desc(b).status.Store(unix.TP_STATUS_USER)
		}
		var out [32]shm.Slot
		for range 8 {
			k := p.RxBurst(c, out[:])
			for _, s := range out[:k] {
				if m := r.Meta(s); m.Len > r.DataBytes() {
					t.Fatalf("delivered %d bytes into a %d-byte slot", m.Len, r.DataBytes())
				}
			}
			c.Free(out[:k])
			r.Pool().Service()
		}
		for b := range uint32(2) {
			if st := p.ring.desc(b).status.Load(); st != unix.TP_STATUS_KERNEL {
				t.Fatalf("block %d not given back (status %#x)", b, st)
			}
		}
	})
}
