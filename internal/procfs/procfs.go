// Package procfs reads the few /proc facts the manager and NFs share.
package procfs

import (
	"os"
	"strconv"
	"strings"
)

// StartTime is a process's start time in clock ticks since boot (field 22
// of /proc/PID/stat), 0 if it cannot be read. With the PID it names a
// process for good: a reused PID has another start time.
func StartTime(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command may hold spaces and parentheses
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0
	}
	v, _ := strconv.ParseUint(f[19], 10, 64)
	return v
}
