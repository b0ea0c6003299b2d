package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// FuzzParse checks that no input makes Parse panic, that every error it returns is an *Error
// naming the file, and that whatever it accepts also passes Validate (the two share checks).
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*.toml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"", "[", "[[", "]]", "a=\"\"\"", "a='''", `a="\u0000"`, "port=[{id=0},{}]", "[[port]]\n[port.x]\n",
		"nf=[{command=[[]]}]", "[manager]\ncores=\"0-8191\"\n", "\"\\\"\".\"\\\\\"=1", "x={a={b={c=[[[1]]]}}}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, _, err := parse("f.toml", data, testCPUs)
		if err != nil {
			for _, e := range errStrings(err) {
				if e == "" {
					t.Fatalf("empty error message in %v", err)
				}
			}
			j, ok := err.(interface{ Unwrap() []error })
			if !ok {
				t.Fatalf("error %T is not a join", err)
			}
			for _, e := range j.Unwrap() {
				var ce *Error
				if !errors.As(e, &ce) || ce.File != "f.toml" {
					t.Fatalf("error %q is not an *Error naming f.toml", e)
				}
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that Validate rejects: %v", err)
		}
	})
}

// FuzzParseCPUList checks that CPU lists never panic, come back sorted and in range, and
// survive a FormatCPUList round trip.
func FuzzParseCPUList(f *testing.F) {
	for _, s := range []string{"0", "0-3,5", "3-1", "0,,1", "8191", "0-8191", " 1 - 2 ", "F8", "0xF8"} {
		f.Add(s, 4)
	}
	f.Fuzz(func(t *testing.T, s string, ncpu int) {
		check := func(cpus []int) {
			if !slices.IsSorted(cpus) || len(slices.Compact(slices.Clone(cpus))) != len(cpus) {
				t.Fatalf("%q: not sorted and unique: %v", s, cpus)
			}
			for _, c := range cpus {
				if c < 0 || c >= ncpu {
					t.Fatalf("%q: CPU %d outside 0..%d", s, c, ncpu-1)
				}
			}
		}
		if cpus, _, err := ParseCPUList(s, ncpu); err == nil {
			check(cpus)
			if back, _, err := ParseCPUList(FormatCPUList(cpus), ncpu); err != nil || !slices.Equal(back, cpus) {
				t.Fatalf("%q: round trip %v → %v, %v", s, cpus, back, err)
			}
		}
		if cpus, _, err := ParseCoreMask(s, ncpu); err == nil {
			check(cpus)
		}
	})
}
