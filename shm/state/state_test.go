package state

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reinforce-nfv/reinforce/internal/testenv"
)

type flowKey struct {
	Src, Dst uint32
	Ports    uint32
	Proto    uint32
}

type flowVal struct {
	Packets uint64
	Bytes   uint64
	Last    int64
}

func open(t *testing.T, path string) *File {
	t.Helper()
	f, err := Open(path, Options{DataBytes: 4 << 20, LogBytes: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestMapAgainstModel(t *testing.T) {
	rng := testenv.Rand(t)
	f := open(t, filepath.Join(t.TempDir(), "nf.state"))
	defer f.Close()
	m, err := NewMap[flowKey, flowVal](f, "flows", 1000)
	if err != nil {
		t.Fatal(err)
	}
	model := map[flowKey]flowVal{}
	for i := 0; i < 20000; i++ {
		k := flowKey{Src: uint32(rng.IntN(1500)), Proto: 17}
		switch rng.IntN(3) {
		case 0, 1:
			v := flowVal{Packets: uint64(i), Bytes: rng.Uint64()}
			err := m.Put(k, v)
			if _, had := model[k]; !had && len(model) >= 1000 {
				if !errors.Is(err, ErrNoRoom) {
					t.Fatalf("put into a full map: %v", err)
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			model[k] = v
		case 2:
			ok, err := m.Delete(k)
			if err != nil {
				t.Fatal(err)
			}
			if _, had := model[k]; had != ok {
				t.Fatalf("delete %v = %v, model had %v", k, ok, had)
			}
			delete(model, k)
		}
		if m.Len() != len(model) {
			t.Fatalf("step %d: len %d, model %d", i, m.Len(), len(model))
		}
	}
	for k, v := range model {
		if got, ok := m.Get(k); !ok || got != v {
			t.Fatalf("get %v = %v %v, want %v", k, got, ok, v)
		}
	}
	seen := map[flowKey]bool{}
	m.Range(func(k flowKey, v flowVal) bool {
		if seen[k] || model[k] != v {
			t.Fatalf("range: %v seen twice or wrong value", k)
		}
		seen[k] = true
		return true
	})
	if len(seen) != len(model) {
		t.Fatalf("range saw %d of %d", len(seen), len(model))
	}
	// Deleting during Range: every entry visited once, all gone after.
	n := 0
	m.Range(func(k flowKey, v flowVal) bool {
		n++
		if _, err := m.Delete(k); err != nil {
			t.Fatal(err)
		}
		return true
	})
	if n != len(model) || m.Len() != 0 {
		t.Fatalf("delete-all range visited %d of %d, %d left", n, len(model), m.Len())
	}
}

func TestReopenKeepsContainersAndChecksLayout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nf.state")
	f := open(t, path)
	m, _ := NewMap[uint64, uint64](f, "m", 64)
	a, _ := NewArray[uint32](f, "a", 10)
	v, _ := NewValue[[4]uint64](f, "v")
	m.Put(7, 49)
	a.Set(3, 9)
	v.Store([4]uint64{1, 2, 3, 4})
	if _, err := Open(path, Options{}); !errors.Is(err, ErrBusy) {
		t.Fatalf("second Open while held: %v, want ErrBusy", err)
	}
	f.Close()

	f = open(t, path)
	defer f.Close()
	if f.Fresh() {
		t.Fatal("reopened file says fresh")
	}
	m, _ = NewMap[uint64, uint64](f, "m", 64)
	a, _ = NewArray[uint32](f, "a", 10)
	v, _ = NewValue[[4]uint64](f, "v")
	if x, _ := m.Get(7); x != 49 {
		t.Fatalf("map after reopen: %d", x)
	}
	if x, _ := a.Get(3); x != 9 {
		t.Fatalf("array after reopen: %d", x)
	}
	if v.Load() != [4]uint64{1, 2, 3, 4} {
		t.Fatal("value after reopen")
	}
	if _, err := NewMap[uint64, uint32](f, "m", 64); err == nil || !strings.Contains(err.Error(), "delete the state file") {
		t.Fatalf("layout mismatch: %v", err)
	}
	if _, err := NewMap[*int, int](f, "p", 4); err == nil || !strings.Contains(err.Error(), "pointer-free") {
		t.Fatalf("pointer key: %v", err)
	}
	if _, err := NewMap[struct {
		A uint8
		B uint64
	}, int](f, "pad", 4); err == nil || !strings.Contains(err.Error(), "padding") {
		t.Fatalf("padded key: %v", err)
	}
	if _, err := NewValue[[]byte](f, "s"); err == nil {
		t.Fatal("slice value accepted")
	}
}

func TestRollbackAndRecoverUndoWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nf.state")
	f := open(t, path)
	m, _ := NewMap[uint64, uint64](f, "m", 512)
	for i := uint64(0); i < 100; i++ {
		m.Put(i, i)
	}
	tx := f.Tx()
	// In-process rollback.
	if err := tx.Begin(); err != nil {
		t.Fatal(err)
	}
	for i := uint64(0); i < 100; i++ {
		m.Put(i, 1000+i)
		m.Delete(i + 50)
		m.Put(i+200, i)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	check := func(f *File) {
		t.Helper()
		m, err := NewMap[uint64, uint64](f, "m", 512)
		if err != nil {
			t.Fatal(err)
		}
		if m.Len() != 100 {
			t.Fatalf("len %d after rollback", m.Len())
		}
		for i := uint64(0); i < 100; i++ {
			if v, ok := m.Get(i); !ok || v != i {
				t.Fatalf("key %d = %d %v after rollback", i, v, ok)
			}
		}
	}
	check(f)
	// A "crash": the transaction is left open and the file closed.
	if err := tx.Begin(); err != nil {
		t.Fatal(err)
	}
	for i := uint64(0); i < 100; i++ {
		m.Put(i, 7)
	}
	if _, err := NewArray[uint64](f, "late", 100); err != nil {
		t.Fatal(err)
	}
	f.Close()
	f = open(t, path)
	defer f.Close()
	if err := f.Tx().Begin(); err == nil {
		t.Fatal("Begin with a dead transaction open")
	}
	rep, err := Recover(f, nil, nil)
	if err != nil || !rep.RolledBack || rep.Writes < 100 {
		t.Fatalf("recover: %v %+v", err, rep)
	}
	check(f)
	if rep, _ := Recover(f, nil, nil); rep.Seq != 0 {
		t.Fatalf("second recover did something: %+v", rep)
	}
	// The rolled-back container allocation is gone and can be made again.
	if a, err := NewArray[uint64](f, "late", 100); err != nil {
		t.Fatal(err)
	} else if x, _ := a.Get(5); x != 0 {
		t.Fatal("reallocated array not zero")
	}
	st := f.Stats()
	if st.Rollbacks != 2 || st.Aborts != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestLogWrapsAndRefusesOversizedTransactions(t *testing.T) {
	f := open(t, filepath.Join(t.TempDir(), "nf.state"))
	defer f.Close()
	a, _ := NewArray[[1000]byte](f, "big", 300)
	var v [1000]byte
	// Many small transactions wrap the 256 KiB log many times.
	for i := 0; i < 3000; i++ {
		v[0] = byte(i % 200) // never 0xEE, the rolled-back value below
		if err := a.Set(i%300, v); err != nil {
			t.Fatalf("set %d: %v", i, err)
		}
	}
	// One transaction of 300 KiB of writes cannot fit.
	tx := f.Tx()
	tx.Begin()
	var err error
	for i := 0; i < 300 && err == nil; i++ {
		v[0] = 0xEE
		err = a.Set(i, v)
	}
	if !errors.Is(err, ErrLogFull) {
		t.Fatalf("oversized transaction: %v", err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 300; i++ {
		if x, _ := a.Get(i); x[0] == 0xEE {
			t.Fatalf("element %d kept a rolled-back write", i)
		}
	}
}

func TestMapAllocs(t *testing.T) {
	f := open(t, filepath.Join(t.TempDir(), "nf.state"))
	defer f.Close()
	m, _ := NewMap[flowKey, flowVal](f, "flows", 4096)
	tx := f.Tx()
	k := flowKey{Src: 1}
	n := testing.AllocsPerRun(1000, func() {
		tx.Begin()
		k.Src++
		v, _ := m.Get(k)
		v.Packets++
		m.Put(k, v)
		if k.Src%2 == 0 {
			m.Delete(k)
		}
		tx.Commit(nil, nil, nil)
		tx.Done()
	})
	if n != 0 {
		t.Fatalf("%v allocations per transaction", n)
	}
}

// The log reader returns committed transactions' writes in order, skips
// rolled-back ones, stops at an open one, and holds the log: a writer that
// would overwrite unreleased records waits, then fails with ErrLogFull.
func TestLogReaderAndApply(t *testing.T) {
	dir := t.TempDir()
	f := open(t, filepath.Join(dir, "primary.state"))
	defer f.Close()
	a, _ := NewArray[uint64](f, "a", 1000)
	r := f.NewLogReader()
	defer r.Close()
	tx := f.Tx()
	for i := 0; i < 10; i++ {
		tx.Begin()
		a.Set(i, uint64(100+i))
		a.Set(i+1, uint64(200+i))
		if i == 3 {
			tx.Rollback()
			continue
		}
		tx.Commit(nil, nil, nil)
		tx.Done()
	}
	tx.Begin()
	a.Set(500, 1) // open: the reader must stop before it
	// A standby file with the same layout applies what the reader returns.
	g, err := Open(filepath.Join(dir, "standby.state"), Options{DataBytes: 4 << 20, LogBytes: 256 << 10, Seed: f.Seed()})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if _, err := NewArray[uint64](g, "a", 1000); err != nil {
		t.Fatal(err)
	}
	if f.LayoutDigest() != g.LayoutDigest() {
		t.Fatal("same containers, different digests")
	}
	var ws []Write
	n := 0
	for {
		c, ok, err := r.Next(ws)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if len(c.Writes) != 2 && c.Seq > 1 { // seq 1 is the container's allocation
			t.Fatalf("transaction %d has %d writes", c.Seq, len(c.Writes))
		}
		if err := g.Apply(c.Writes); err != nil {
			t.Fatal(err)
		}
		r.Release(c.End)
		n++
	}
	if n != 1+9 {
		t.Fatalf("reader returned %d transactions, want 10 (one allocation, 9 commits)", n)
	}
	ga, _ := NewArray[uint64](g, "a", 1000)
	for i := 0; i < 11; i++ {
		want, _ := a.Get(i)
		if i == 500 {
			continue
		}
		if got, _ := ga.Get(i); got != want {
			t.Fatalf("standby element %d = %d, primary %d", i, got, want)
		}
	}
	if x, _ := ga.Get(500); x != 0 {
		t.Fatal("an open transaction's write reached the standby")
	}
	tx.Commit(nil, nil, nil)
	tx.Done()
	// Back-pressure: with nothing released, the 256 KiB log fills and a
	// writer fails instead of overwriting.
	for i := 0; i < 100000 && err == nil; i++ {
		err = a.Set(i%1000, uint64(i))
	}
	if !errors.Is(err, ErrLogFull) {
		t.Fatalf("writer past an unreleased reader: %v", err)
	}
}

// TestRetireKeepsAReadFile: a holder that stops for good deletes its file,
// unless a log reader (the manager's replicator) holds it: then the file
// stays, marked stopped, and the next holder continues from it.
func TestRetireKeepsAReadFile(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain.state")
	f := open(t, plain)
	if kept, err := f.Retire(); kept || err != nil {
		t.Fatalf("retire without a reader: kept %v, %v", kept, err)
	}
	if _, err := Prepare(plain); err == nil {
		t.Fatal("an unread file survived Retire")
	}

	path := filepath.Join(dir, "read.state")
	f = open(t, path)
	f.NewLogReader() // as the manager does before the NF opens the file
	f.Close()
	reader, err := Prepare(path)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	f = open(t, path)
	v, _ := NewValue[uint64](f, "v")
	f.Tx().Begin()
	v.Store(41)
	if err := f.Tx().Commit(nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	f.Tx().Done()
	if reader.Stopped() {
		t.Fatal("stopped while held")
	}
	if kept, err := f.Retire(); !kept || err != nil {
		t.Fatalf("retire with a reader: kept %v, %v", kept, err)
	}
	if !reader.Stopped() {
		t.Fatal("not marked stopped")
	}
	f = open(t, path)
	defer f.Close()
	if reader.Stopped() {
		t.Fatal("still marked stopped after a new holder opened it")
	}
	v, _ = NewValue[uint64](f, "v")
	if v.Load() != 41 {
		t.Fatalf("the next holder sees %d, want 41", v.Load())
	}
}
