package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ProfileResult records the CPU profile taken after a missed target, so the
// report can say where the time goes (TARGETS.md: "a miss comes with a
// profile").
type ProfileResult struct {
	Command []string `json:"command"`
	Dir     string   `json:"dir"`       // holds cpu.pprof and the test binary pprof needs
	Top     string   `json:"pprof_top"` // go tool pprof -top -nodecount=10 output
}

// profileCommand returns the go test argv that profiles one benchmark.
// profileDir "" gives the form printed as a hint: relative file names, to
// be run from the module root.
func profileCommand(pkg, bench, benchtime, profileDir string) []string {
	prof, bin := "cpu.pprof", ""
	if profileDir != "" {
		prof = filepath.Join(profileDir, "cpu.pprof")
		bin = filepath.Join(profileDir, testBinaryName(pkg))
	}
	args := []string{"go", "test", "-run", "^$", "-bench", benchRegexp(bench), "-benchtime", benchtime, "-cpuprofile", prof}
	if bin != "" {
		// -o keeps the binary beside the profile instead of in the
		// module root, where go test would otherwise leave it.
		args = append(args, "-o", bin)
	}
	return append(args, pkg)
}

// testBinaryName names pkg's test binary as go test would ("shm.test");
// "pkg.test" when pkg's path has no usable last element (".").
func testBinaryName(pkg string) string {
	base := filepath.Base(filepath.Clean(pkg))
	if base == "." || base == ".." || base == string(filepath.Separator) {
		base = "pkg"
	}
	return base + ".test"
}

// shellQuote renders argv for copying into a shell: arguments with
// characters the shell would interpret are single-quoted.
func shellQuote(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
		}) < 0 {
			q[i] = a
			continue
		}
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// runProfile profiles bench into dir and returns pprof's top 10. For the
// cross-process benchmark only the process go test runs (the parent) is
// profiled; a consumer re-executed as a child is not.
func runProfile(ctx context.Context, goBin, modRoot, pkg, bench, benchtime, dir string) (*ProfileResult, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("profile dir: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("profile dir: %w", err)
	}
	argv := profileCommand(pkg, bench, benchtime, dir)
	res := &ProfileResult{Command: argv, Dir: dir}
	cmd := exec.CommandContext(ctx, goBin, argv[1:]...)
	cmd.Dir = modRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		return res, fmt.Errorf("profile %s: %w\n%s", bench, err, out)
	}
	top := exec.CommandContext(ctx, goBin, "tool", "pprof", "-top", "-nodecount=10",
		filepath.Join(dir, testBinaryName(pkg)), filepath.Join(dir, "cpu.pprof"))
	var out bytes.Buffer
	top.Stdout, top.Stderr = &out, &out
	if err := top.Run(); err != nil {
		return res, fmt.Errorf("pprof top: %w\n%s", err, out.String())
	}
	res.Top = out.String()
	return res, nil
}
