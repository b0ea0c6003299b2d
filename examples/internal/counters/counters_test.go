package counters

import (
	"path/filepath"
	"testing"

	"github.com/reinforce-nfv/reinforce/shm/state"
)

func TestAddGetAndReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.state")
	f, err := state.Open(path, state.Options{DataBytes: 1 << 16, LogBytes: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	c, err := OpenFile(f, "stats", 3)
	if err != nil {
		t.Fatal(err)
	}
	c.Add(0, 1)
	c.Add(0, 1)
	c.Add(2, 40)
	if c.Get(0) != 2 || c.Get(1) != 0 || c.Get(2) != 40 || c.Len() != 3 {
		t.Fatalf("counters %d %d %d (len %d), want 2 0 40 (3)", c.Get(0), c.Get(1), c.Get(2), c.Len())
	}
	if n := testing.AllocsPerRun(100, func() { c.Add(1, 1) }); n != 0 {
		t.Fatalf("Add allocates %v", n)
	}
	f.Close()
	f, err = state.Open(path, state.Options{DataBytes: 1 << 16, LogBytes: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err = OpenFile(f, "stats", 3)
	if err != nil {
		t.Fatal(err)
	}
	if c.Get(0) != 2 || c.Get(2) != 40 {
		t.Fatalf("after reopening: %d, %d; want 2, 40", c.Get(0), c.Get(2))
	}
}
