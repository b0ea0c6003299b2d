package shm_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/reinforce-nfv/reinforce/internal/testenv"
	"github.com/reinforce-nfv/reinforce/shm"
	"github.com/reinforce-nfv/reinforce/shm/shmtest"
)

func TestRegionCreateAttachShareMemory(t *testing.T) {
	r := shmtest.TempRegion(t, shmtest.SmallOptions())
	fi, err := os.Stat(r.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("region mode %v, want 0600", fi.Mode().Perm())
	}
	a, err := shm.Attach(r.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.Creator() || a.Pool() != nil {
		t.Fatal("attached region claims to be the creator")
	}
	if a.NumSlots() != r.NumSlots() || a.Epoch() != r.Epoch() {
		t.Fatal("attached layout differs")
	}
	r.Meta(5).Port = 7
	if a.Meta(5).Port != 7 {
		t.Fatal("attached mapping does not see the creator's write")
	}
	r.BumpEpoch()
	if a.Epoch() != r.Epoch() {
		t.Fatal("epoch not shared")
	}
}

func TestRegionLiveCreatorRefusesSecondCreate(t *testing.T) {
	o := shmtest.SmallOptions()
	o.Dir = t.TempDir()
	o.Name = "r"
	r, err := shm.Create(o)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := shm.Create(o); !errors.Is(err, shm.ErrRegionInUse) {
		t.Fatalf("second create: %v, want ErrRegionInUse", err)
	}
}

func TestRegionStaleReplacedNeverReused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "r")
	// A stale file: nobody holds its lock. Attach refuses it; Create replaces it.
	if err := os.WriteFile(path, make([]byte, 8192), 0o600); err != nil {
		t.Fatal(err)
	}
	old, err := os.Open(path) // keep the stale inode to see what became of it
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	o := shmtest.SmallOptions()
	o.Dir, o.Name = dir, "r"
	r, err := shm.Create(o)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(old.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if st.Nlink != 0 {
		t.Fatal("stale region file was reused instead of replaced")
	}
	path2 := r.Path()
	r.Close()
	// Closed by its creator: the file is gone.
	if _, err := os.Stat(path2); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("region file survives Close: %v", err)
	}
}

func TestRegionAttachRefusesStale(t *testing.T) {
	r := shmtest.TempRegion(t, shmtest.SmallOptions())
	// Copy the live region: same contents, but no creator holds the copy's lock.
	cp := filepath.Join(t.TempDir(), "copy")
	if err := os.WriteFile(cp, r.Mem(), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := shm.Attach(cp); !errors.Is(err, shm.ErrStaleRegion) {
		t.Fatalf("attach stale copy: %v, want ErrStaleRegion", err)
	}
}

func TestRegionAttachRefusesBadFiles(t *testing.T) {
	r := shmtest.TempRegion(t, shmtest.SmallOptions())
	for _, tc := range corruptions(r.Mem()) {
		t.Run(tc.name, func(t *testing.T) {
			path := writeLocked(t, tc.data)
			_, err := shm.Attach(path)
			if !errors.Is(err, shm.ErrBadLayout) {
				t.Fatalf("attach: %v, want ErrBadLayout", err)
			}
			t.Log(err)
		})
	}
	t.Run("missing file", func(t *testing.T) {
		if _, err := shm.Attach(filepath.Join(t.TempDir(), "nope")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("attach missing: %v", err)
		}
	})
	t.Run("no permission", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root may open any file; the mode check is meaningless here")
		}
		path := writeLocked(t, r.Mem())
		os.Chmod(path, 0)
		if _, err := shm.Attach(path); !errors.Is(err, os.ErrPermission) {
			t.Fatalf("attach unreadable: %v", err)
		}
	})
}

type corruption struct {
	name string
	data []byte
}

// corruptions derives one bad region image per kind of damage from a good one.
func corruptions(good []byte) []corruption {
	le := binary.LittleEndian
	mod := func(f func(b []byte) []byte) []byte {
		b := append([]byte(nil), good...)
		return f(b)
	}
	sec := func(i, field int) int { return shm.HdrSections + i*shm.SectionBytes + field }
	return []corruption{
		{"wrong magic", mod(func(b []byte) []byte { b[0] = 'X'; return b })},
		{"zeroed header", mod(func(b []byte) []byte { clear(b[:4096]); return b })},
		{"other layout version", mod(func(b []byte) []byte { le.PutUint32(b[shm.HdrVersion:], 99); return b })},
		{"truncated file", mod(func(b []byte) []byte { return b[:len(b)/2] })},
		{"shorter than header", mod(func(b []byte) []byte { return b[:100] })},
		{"size field lies", mod(func(b []byte) []byte { le.PutUint64(b[shm.HdrTotalBytes:], 1<<40); return b })},
		{"section count", mod(func(b []byte) []byte { le.PutUint32(b[shm.HdrNumSections:], 9); return b })},
		{"section past end", mod(func(b []byte) []byte { le.PutUint64(b[sec(3, 8):], uint64(len(b))); return b })},
		{"section count overflow", mod(func(b []byte) []byte { le.PutUint64(b[sec(3, 24):], 1<<62); return b })},
		{"section misaligned", mod(func(b []byte) []byte { le.PutUint64(b[sec(1, 8):], le.Uint64(b[sec(1, 8):])+4); return b })},
		{"sections overlap", mod(func(b []byte) []byte { le.PutUint64(b[sec(1, 8):], le.Uint64(b[sec(0, 8):])); return b })},
		{"repeated section kind", mod(func(b []byte) []byte { le.PutUint32(b[sec(1, 0):], le.Uint32(b[sec(0, 0):])); return b })},
		{"ring capacity not power of two", mod(func(b []byte) []byte { le.PutUint32(b[shm.HdrRingCap:], 1000); return b })},
		{"slot size mismatch", mod(func(b []byte) []byte { le.PutUint32(b[shm.HdrSlotData:], 512); return b })},
	}
}

var lockedSeq int

// writeLocked writes data to a file and holds its lock as a live creator would.
func writeLocked(t testing.TB, data []byte) string {
	t.Helper()
	lockedSeq++
	path := filepath.Join(t.TempDir(), fmt.Sprintf("img%d", lockedSeq))
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	release, err := shm.HoldLock(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
	return path
}

func TestRegionOnHugetlbfs(t *testing.T) {
	testenv.RequireRoot(t, "a hugetlbfs mount")
	m := testenv.RequireHugepages(t)
	o := shmtest.SmallOptions()
	o.Dir = m
	r := shmtest.TempRegion(t, o)
	if !r.Huge() || r.Size()%shm.HugePageBytes != 0 {
		t.Fatalf("region on %s: huge=%v size=%d", m, r.Huge(), r.Size())
	}
	a, err := shm.Attach(r.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	r.Meta(1).Len = 99
	if a.Meta(1).Len != 99 {
		t.Fatal("hugetlbfs mapping not shared")
	}
}

func TestRegionBadNameAndSizesRefused(t *testing.T) {
	for _, o := range []shm.Options{
		{Name: ""},
		{Name: "a/b"},
		{Name: "x", Dir: t.TempDir(), RingCap: 1000},
		{Name: "x", Dir: t.TempDir(), DataBytes: 1},
		{Name: "x", Dir: t.TempDir(), Owners: 1},
	} {
		if r, err := shm.Create(o); err == nil {
			r.Close()
			t.Errorf("create %+v succeeded", o)
		}
	}
}
