package state

import (
	"path/filepath"
	"testing"
)

// The container benchmarks run the way the burst loop uses the containers:
// one op is one transaction of benchBurst updates (begin, the writes,
// commit, done), logged ("tx=on") or as plain stores ("tx=off", what
// REINFORCE_TX=off gives), so ns/pkt is the cost per packet of a burst and
// allocs/op must be 0.

const benchBurst = 32

func benchFile(b *testing.B, unlogged bool) *File {
	b.Helper()
	f, err := Open(filepath.Join(b.TempDir(), "bench.state"), Options{DataBytes: 16 << 20, LogBytes: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	f.SetUnlogged(unlogged)
	return f
}

// burst runs fn(i) for benchBurst consecutive i inside one transaction
// (none with transactions off, as nflib does).
func burst(b *testing.B, f *File, i *int, fn func(i int)) {
	tx := f.Tx()
	if !f.unlogged {
		if err := tx.Begin(); err != nil {
			b.Fatal(err)
		}
	}
	for range benchBurst {
		fn(*i)
		*i++
	}
	if !f.unlogged {
		if err := tx.Commit(nil, nil, nil); err != nil {
			b.Fatal(err)
		}
		tx.Done()
	}
}

func perPacket(b *testing.B) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBurst), "ns/pkt")
}

func forTx(b *testing.B, fn func(b *testing.B, f *File)) {
	for _, tc := range []struct {
		name     string
		unlogged bool
	}{{"tx=on", false}, {"tx=off", true}} {
		b.Run(tc.name, func(b *testing.B) { fn(b, benchFile(b, tc.unlogged)) })
	}
}

// BenchmarkMapGetPut is the stamp NF's update: read a flow's counter, write
// it back plus one, over 4096 flows in a 65536-flow map.
func BenchmarkMapGetPut(b *testing.B) {
	forTx(b, func(b *testing.B, f *File) {
		m, err := NewMap[flowKey, uint64](f, "flows", 65536)
		if err != nil {
			b.Fatal(err)
		}
		var keys [4096]flowKey
		for i := range keys {
			keys[i] = flowKey{Src: uint32(i * 7919), Dst: 1, Ports: uint32(i), Proto: 17}
			if err := m.Put(keys[i], 0); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			burst(b, f, &i, func(i int) {
				k := keys[i&(len(keys)-1)]
				v, _ := m.Get(k)
				if err := m.Put(k, v+1); err != nil {
					b.Fatal(err)
				}
			})
		}
		perPacket(b)
	})
}

// BenchmarkMapGet is a lookup of a present key: plain loads, the same with
// transactions on or off.
func BenchmarkMapGet(b *testing.B) {
	f := benchFile(b, false)
	m, err := NewMap[flowKey, flowVal](f, "flows", 65536)
	if err != nil {
		b.Fatal(err)
	}
	var keys [4096]flowKey
	for i := range keys {
		keys[i] = flowKey{Src: uint32(i * 7919), Dst: 1, Ports: uint32(i), Proto: 17}
		if err := m.Put(keys[i], flowVal{Packets: uint64(i)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	var sum uint64
	i := 0
	for b.Loop() {
		v, _ := m.Get(keys[i&(len(keys)-1)])
		sum += v.Packets
		i++
	}
	if sum == 0 {
		b.Fatal("no key found")
	}
}

// BenchmarkMapPutDelete inserts a new flow and deletes an old one: the
// churn of a flow table at capacity (backward-shift deletion logs every
// entry it moves).
func BenchmarkMapPutDelete(b *testing.B) {
	forTx(b, func(b *testing.B, f *File) {
		m, err := NewMap[flowKey, flowVal](f, "flows", 8192)
		if err != nil {
			b.Fatal(err)
		}
		const live = 4096
		key := func(i int) flowKey { return flowKey{Src: uint32(i), Dst: uint32(i * 31), Proto: 6} }
		for i := 0; i < live; i++ {
			if err := m.Put(key(i), flowVal{}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		i := live
		for b.Loop() {
			burst(b, f, &i, func(i int) {
				if err := m.Put(key(i), flowVal{Packets: 1}); err != nil {
					b.Fatal(err)
				}
				if ok, err := m.Delete(key(i - live)); !ok || err != nil {
					b.Fatalf("delete %d: %v %v", i-live, ok, err)
				}
			})
		}
		perPacket(b)
	})
}

// BenchmarkArraySet is a per-port counter: an array element read and
// rewritten.
func BenchmarkArraySet(b *testing.B) {
	forTx(b, func(b *testing.B, f *File) {
		a, err := NewArray[flowVal](f, "ports", 64)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			burst(b, f, &i, func(i int) {
				v, _ := a.Get(i & 63)
				v.Packets++
				v.Bytes += 64
				if err := a.Set(i&63, v); err != nil {
					b.Fatal(err)
				}
			})
		}
		perPacket(b)
	})
}

// BenchmarkValueStore is a single total counter.
func BenchmarkValueStore(b *testing.B) {
	forTx(b, func(b *testing.B, f *File) {
		v, err := NewValue[uint64](f, "total")
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			burst(b, f, &i, func(int) {
				if err := v.Store(v.Load() + 1); err != nil {
					b.Fatal(err)
				}
			})
		}
		perPacket(b)
	})
}

// BenchmarkTxEmpty is a transaction with no writes: begin and commit
// records only (an idle callback's, or a burst of packets only forwarded).
func BenchmarkTxEmpty(b *testing.B) {
	f := benchFile(b, false)
	tx := f.Tx()
	b.ReportAllocs()
	for b.Loop() {
		if err := tx.Begin(); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(nil, nil, nil); err != nil {
			b.Fatal(err)
		}
		tx.Done()
	}
}
