package procfs

import (
	"os"
	"testing"
)

func TestStartTime(t *testing.T) {
	if StartTime(os.Getpid()) == 0 {
		t.Fatal("no start time for this process")
	}
	if StartTime(os.Getpid()) != StartTime(os.Getpid()) {
		t.Fatal("start time moves")
	}
	if StartTime(1<<30) != 0 {
		t.Fatal("start time for a process that cannot exist")
	}
}
