package flowdir

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"

	"github.com/reinforce-nfv/reinforce/pkt"
)

// key is a FiveTuple split into the words the tables store and the rules compare: addresses
// as big-endian 64-bit halves (so a prefix is a mask of leading bits), ports and protocol in
// the meta word's layout. It lives on the caller's stack.
type key struct {
	sHi, sLo, dHi, dLo uint64 // source and destination address, v4-mapped for IPv4
	meta               uint64 // ports and protocol at their meta-word offsets; chain and used 0
	sp, dp             uint16 // source and destination port
	proto              uint8
	v4                 bool // both addresses are v4-mapped: an IPv4 flow
}

// v4MappedHi32 is bits 63..32 of the low half of a v4-mapped address (::ffff:a.b.c.d): 0xffff.
const v4MappedHi32 = 0xFFFF

// set splits ft into k. A flow is IPv4 when both addresses are v4-mapped, as pkt.FiveTuple
// stores IPv4 packets (an IPv6 packet cannot carry v4-mapped addresses on the wire, RFC 4291
// §2.5.5.2). It fills k field by field, in place: building a key as a composite literal and
// returning it by value cost a copy through the stack and a failed store-to-load forward:
// more than half of a small-table Lookup (26 ns, against 12 without).
func (k *key) set(ft *pkt.FiveTuple) {
	k.sHi = binary.BigEndian.Uint64(ft.SrcIP[0:8])
	k.sLo = binary.BigEndian.Uint64(ft.SrcIP[8:16])
	k.dHi = binary.BigEndian.Uint64(ft.DstIP[0:8])
	k.dLo = binary.BigEndian.Uint64(ft.DstIP[8:16])
	k.sp, k.dp, k.proto = ft.SrcPort, ft.DstPort, ft.Proto
	k.meta = uint64(k.sp)<<metaSrcPortShift | uint64(k.dp)<<metaDstPortShift | uint64(k.proto)<<metaProtoShift
	k.v4 = k.sHi|k.dHi == 0 && k.sLo>>32 == v4MappedHi32 && k.dLo>>32 == v4MappedHi32
}

// keyOf returns ft's key; for the writer and tests (Lookup uses set).
func keyOf(ft *pkt.FiveTuple) key {
	var k key
	k.set(ft)
	return k
}

// addrs4 packs an IPv4 key's two addresses into one word: source in the high half.
func (k *key) addrs4() uint64 {
	return k.sLo<<32 | k.dLo&0xFFFF_FFFF
}

// seeds key the exact tables' hash. They are drawn at random per Table so that a sender who
// picks 5-tuples cannot aim them all at one probe run (hash flooding), as Go's own maps seed
// theirs; nothing depends on their value, so no run needs to replay them.
type seeds [4]uint64

func newSeeds() seeds {
	return seeds{rand.Uint64(), rand.Uint64(), rand.Uint64(), rand.Uint64()}
}

// The hash is directional: hash(ft) and hash(ft.Reverse()) differ, unlike pkt.SymmetricHash.
// An exact entry names one direction of a flow (ONVM's onvm_ft_fill_key, not
// onvm_ft_fill_key_symmetric); a caller that wants both directions inserts both.
//
// Mixing is wyhash's 128-bit multiply-fold (mum), with every input word XORed with a secret
// seed first, so no chosen input zeroes a multiplicand. Two rounds, so every input bit reaches
// the low bits the table index uses: IPv4 folds its two words, then multiplies the result by
// a constant; IPv6 folds the high and the low halves, the low halves' result with the ports,
// then that with the high halves' result.
// TestStructuredFlowsSpreadEvenly checks flows that differ in a few bits spread like random
// ones.

// hash4 returns the hash of an IPv4 key: its packed addresses and meta key bits.
func (s *seeds) hash4(addrs, meta uint64) uint64 {
	return mum(mum(addrs^s[0], meta^s[1])^s[2], wyp0)
}

// hash6 returns the hash of an IPv6 (or mixed-family) key.
func (s *seeds) hash6(k *key) uint64 {
	a := mum(k.sHi^s[0], k.dHi^s[1])
	b := mum(k.sLo^s[2], k.dLo^s[3])
	// The ports and protocol go through a multiply with b of their own:
	// XORed into a, which flows that share their high halves share, they
	// left some seeds' final fold clustering structured flows (probe runs
	// of 100+ in TestStructuredFlowsSpreadEvenly, about 1 run in 15).
	c := mum(k.meta^s[0]^wyp1, b^wyp0)
	return mum(a^wyp0, c^wyp1)
}

// wyhash's secrets (public domain, Wang Yi): odd 64-bit values with balanced bits, as in
// pkt.SymmetricHash.
const (
	wyp0 = 0xa0761d6478bd642f
	wyp1 = 0xe7037ed1a0b428db
)

// mum multiplies to 128 bits and folds the halves together (wyhash's mixing step).
func mum(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}
