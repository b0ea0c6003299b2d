package proc

import (
	"os"
	"testing"
)

func TestStartTime(t *testing.T) {
	if StartTime(os.Getpid()) == 0 {
		t.Fatal("no start time for this process")
	}
	if a, b := StartTime(os.Getpid()), StartTime(os.Getpid()); a != b {
		t.Fatalf("start time moves: %d then %d", a, b)
	}
	if st := State(os.Getpid()); st != 'R' && st != 'S' {
		t.Fatalf("this process's state %q", st)
	}
	if StartTime(1<<30) != 0 {
		t.Fatal("start time for a process that cannot exist")
	}
}
