// Package reptest runs script tests for the replication and failure-detection
// state machines (STYLE.md §9), in the style of etcd raft's
// interaction_test.go: a file in testdata/ holds commands, each followed by
// "----" and the output it must produce. With -rewrite the expected outputs
// are regenerated; commit a regenerated file only when every change in its
// diff is understood.
//
//	# a comment
//	propose latch=1 size=100
//	----
//	ok
//
// Blocks are separated by a blank line; output ends at the first blank line.
package reptest

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of script tests")

// Cmd is one command of a script.
type Cmd struct {
	Pos  string // file:line
	Name string
	Args []Arg
}

// Arg is key=value or a bare key (Vals empty). Values are comma-separated.
type Arg struct {
	Key  string
	Vals []string
}

// Has reports whether the command has argument key.
func (c *Cmd) Has(key string) bool {
	for _, a := range c.Args {
		if a.Key == key {
			return true
		}
	}
	return false
}

// Str returns key's first value, or def.
func (c *Cmd) Str(key, def string) string {
	for _, a := range c.Args {
		if a.Key == key && len(a.Vals) > 0 {
			return a.Vals[0]
		}
	}
	return def
}

// Int returns key's first value as an integer, or def; a malformed value
// fails t.
func (c *Cmd) Int(t testing.TB, key string, def int) int {
	v := c.Str(key, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s: %s=%q: %v", c.Pos, key, v, err)
	}
	return n
}

// Ints returns key's values as integers (nil when absent).
func (c *Cmd) Ints(t testing.TB, key string) []int {
	var out []int
	for _, a := range c.Args {
		if a.Key != key {
			continue
		}
		for _, v := range a.Vals {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("%s: %s=%q: %v", c.Pos, key, v, err)
			}
			out = append(out, n)
		}
	}
	return out
}

type block struct {
	line    int
	cmd     string
	want    string
	comment []string
}

func parse(t testing.TB, path string) []block {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	var blocks []block
	var comment []string
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case strings.TrimSpace(l) == "":
			continue
		case strings.HasPrefix(l, "#"):
			comment = append(comment, l)
			continue
		}
		b := block{line: i + 1, cmd: l, comment: comment}
		comment = nil
		i++
		if i >= len(lines) || lines[i] != "----" {
			t.Fatalf("%s:%d: command without ---- after it", path, b.line)
		}
		var out []string
		for i++; i < len(lines) && lines[i] != ""; i++ {
			out = append(out, lines[i])
		}
		b.want = strings.Join(out, "\n")
		blocks = append(blocks, b)
	}
	return blocks
}

func parseCmd(pos, line string) Cmd {
	f := strings.Fields(line)
	c := Cmd{Pos: pos, Name: f[0]}
	for _, w := range f[1:] {
		k, v, ok := strings.Cut(w, "=")
		a := Arg{Key: k}
		if ok {
			a.Vals = strings.Split(v, ",")
		}
		c.Args = append(c.Args, a)
	}
	return c
}

// RunFile runs the script at path, calling do for each command; do returns
// the command's output (no blank lines). Mismatches fail t, or with -rewrite
// the file is written again with the actual outputs.
func RunFile(t *testing.T, path string, do func(*Cmd) string) {
	t.Helper()
	blocks := parse(t, path)
	var sb strings.Builder
	for _, b := range blocks {
		c := parseCmd(fmt.Sprintf("%s:%d", path, b.line), b.cmd)
		got := strings.TrimRight(do(&c), "\n")
		got = strings.ReplaceAll(got, "\n\n", "\n")
		if got == "" {
			got = "ok"
		}
		if !*rewrite && got != b.want {
			t.Errorf("%s: %s\ngot:\n%s\nwant:\n%s", c.Pos, b.cmd, got, b.want)
		}
		for _, l := range b.comment {
			sb.WriteString(l + "\n")
		}
		fmt.Fprintf(&sb, "%s\n----\n%s\n\n", b.cmd, got)
	}
	if *rewrite {
		if err := os.WriteFile(path, []byte(strings.TrimRight(sb.String(), "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
