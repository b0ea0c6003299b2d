package config

// CPU lists and masks.
//
// Two syntaxes name sets of CPUs: Linux's CPU list ("0-3,5", as in /sys/devices/system/cpu/
// online and taskset -c), used by manager.cores and ONVM's -l; and ONVM's hex core mask
// ("0xF8", ONVM-COMPAT.md §1.1 -n), used by onvm-compat. Both give a sorted set, and both drop
// CPUs the machine does not have with a one-line warning rather than failing, so a config
// written on a bigger machine still runs (ONVM likewise ignores mask bits past
// _SC_NPROCESSORS_ONLN).

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseCPUList parses a Linux CPU list such as "0-3,5" (spaces around elements allowed) and
// returns its CPUs, sorted and without duplicates. CPUs >= ncpu are dropped with a one-line
// warning, such as "CPU 7 not present on this machine (2 CPUs); using 0-1"; if none is left,
// all CPUs 0..ncpu-1 are used, also with a warning. The error covers bad syntax, an empty list,
// CPUs >= MaxCPUs and ncpu < 1. It is safe for concurrent use.
func ParseCPUList(s string, ncpu int) (cpus []int, warning string, err error) {
	if ncpu < 1 || ncpu > MaxCPUs {
		return nil, "", fmt.Errorf("CPU count %d out of range 1..%d", ncpu, MaxCPUs)
	}
	if strings.TrimSpace(s) == "" {
		return nil, "", fmt.Errorf("empty CPU list")
	}
	var set [MaxCPUs]bool
	for elem := range strings.SplitSeq(s, ",") {
		elem = strings.TrimSpace(elem)
		if elem == "" {
			return nil, "", fmt.Errorf("CPU list %q: empty element", s)
		}
		lo, hi := elem, elem
		if i := strings.IndexByte(elem, '-'); i >= 0 {
			lo, hi = strings.TrimSpace(elem[:i]), strings.TrimSpace(elem[i+1:])
		}
		a, err := parseCPU(lo)
		if err != nil {
			return nil, "", fmt.Errorf("CPU list %q: %w", s, err)
		}
		b, err := parseCPU(hi)
		if err != nil {
			return nil, "", fmt.Errorf("CPU list %q: %w", s, err)
		}
		if a > b {
			return nil, "", fmt.Errorf("CPU list %q: range %s is backwards", s, elem)
		}
		for c := a; c <= b; c++ {
			set[c] = true
		}
	}
	return clampCPUs(set[:], ncpu)
}

// parseCPU parses one decimal CPU number below MaxCPUs. strconv.Atoi alone would accept signs.
func parseCPU(s string) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("missing CPU number")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("bad CPU number %q", s)
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n >= MaxCPUs {
		return 0, fmt.Errorf("CPU %s out of range 0..%d", s, MaxCPUs-1)
	}
	return n, nil
}

// ParseCoreMask parses an ONVM hex core mask such as "0xF8" or "F8" (bit i selects CPU i) and
// returns its CPUs, sorted. Unlike ONVM's go.sh it accepts lower-case digits and a missing 0x
// prefix (ONVM-COMPAT.md §1.1 [quirk]). Absent CPUs are dropped with a warning as in
// ParseCPUList. A zero mask returns no CPUs and a warning, as ONVM accepts -n 0 with one. It
// is safe for concurrent use.
func ParseCoreMask(hex string, ncpu int) (cpus []int, warning string, err error) {
	if ncpu < 1 || ncpu > MaxCPUs {
		return nil, "", fmt.Errorf("CPU count %d out of range 1..%d", ncpu, MaxCPUs)
	}
	digits := strings.TrimSpace(hex)
	if len(digits) >= 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X') {
		digits = digits[2:]
	}
	if digits == "" {
		return nil, "", fmt.Errorf("core mask %q: no hex digits", hex)
	}
	var set [MaxCPUs]bool
	some := false
	for i := 0; i < len(digits); i++ {
		v, ok := hexDigit(digits[len(digits)-1-i])
		if !ok {
			return nil, "", fmt.Errorf("core mask %q: bad hex digit %q", hex, digits[len(digits)-1-i])
		}
		for bit := range 4 {
			if v&(1<<bit) == 0 {
				continue
			}
			cpu := 4*i + bit
			if cpu >= MaxCPUs {
				return nil, "", fmt.Errorf("core mask %q: CPU %d out of range 0..%d", hex, cpu, MaxCPUs-1)
			}
			set[cpu] = true
			some = true
		}
	}
	if !some {
		return nil, fmt.Sprintf("core mask %s selects no CPUs", hex), nil
	}
	return clampCPUs(set[:], ncpu)
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// clampCPUs turns a non-empty set into a sorted list of the CPUs below ncpu, with a warning
// naming the ones dropped; if none is left it returns all CPUs below ncpu.
func clampCPUs(set []bool, ncpu int) ([]int, string, error) {
	var have, absent []int
	for c, ok := range set {
		switch {
		case !ok:
		case c < ncpu:
			have = append(have, c)
		default:
			absent = append(absent, c)
		}
	}
	if len(absent) == 0 {
		return have, "", nil
	}
	noun := "CPU"
	if len(absent) > 1 {
		noun = "CPUs"
	}
	machine := fmt.Sprintf("%d CPUs", ncpu)
	if ncpu == 1 {
		machine = "1 CPU"
	}
	using := ""
	if len(have) == 0 {
		have = make([]int, ncpu)
		for i := range have {
			have[i] = i
		}
		using = "all CPUs "
	}
	warning := fmt.Sprintf("%s %s not present on this machine (%s); using %s%s",
		noun, FormatCPUList(absent), machine, using, FormatCPUList(have))
	return have, warning, nil
}

// FormatCPUList formats sorted CPUs as a Linux CPU list, collapsing runs: [0 1 2 5] → "0-2,5".
// It is the inverse of ParseCPUList for sorted input without duplicates.
func FormatCPUList(cpus []int) string {
	var b strings.Builder
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(cpus[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(cpus[j]))
		}
		i = j + 1
	}
	return b.String()
}
