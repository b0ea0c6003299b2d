package main

import (
	"io"
	"os"
	"strings"
	"testing"
)

// runStdout runs run() with stdout captured.
func runStdout(t *testing.T, args []string) (string, int) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() { b, _ := io.ReadAll(r); done <- string(b) }()
	code := run(args)
	os.Stdout = old
	w.Close()
	return <-done, code
}

func TestONVMArgumentsRefusedWithONVMsUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-l", "0", "--", "-p", "xyz"}, "ERROR: invalid port mask -p \"xyz\""},
		{[]string{"--", "-p", "1", "-s", "file"}, "\t-s STATS_OUTPUT: where to output manager stats (stdout/stderr/web). defaults to NONE (optional)\n"},
		{[]string{"--onvm-go.sh=./go.sh", "--", "0,1", "1", "0xF8"}, "Error: Invalid Manager Cores. Proper syntax: ./go.sh <cores> <port mask> <NF cores> [OPTIONS]\n"},
		{[]string{"--onvm-go.sh=./go.sh", "--"}, "Error: Invalid input.\n"},
	} {
		out, code := runStdout(t, tc.args)
		if code != 1 || !strings.Contains(out, tc.want) {
			t.Errorf("%q: exit %d, output lacks %q:\n%s", tc.args, code, tc.want, out)
		}
	}
	if _, code := runStdout(t, []string{"--web-port", "x", "--", "-p", "0"}); code != 2 {
		t.Errorf("bad --web-port: exit %d, want 2", code)
	}
}
