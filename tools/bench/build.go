package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
)

// workspace is where a subcommand builds the NF binaries it runs.
type workspace struct {
	goBin, modRoot string
	dir            string // temporary; Remove deletes it
	bin            string // the built binaries
}

// buildNFs makes a temporary directory named after prefix and builds pkgs
// (module-relative, "./examples/stamp") into its bin/.
func buildNFs(ctx context.Context, prefix string, stderr io.Writer, pkgs ...string) (*workspace, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("find go: %w", err)
	}
	modRoot, err := moduleRoot(ctx, goBin)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "reinforce-bench-"+prefix+"-")
	if err != nil {
		return nil, err
	}
	ws := &workspace{goBin: goBin, modRoot: modRoot, dir: dir, bin: filepath.Join(dir, "bin")}
	if out, err := runLogged(ctx, modRoot, goBin, append([]string{"build", "-o", ws.bin + "/"}, pkgs...), false, stderr); err != nil {
		ws.Remove()
		return nil, fmt.Errorf("go build: %w\n%s", err, out)
	}
	return ws, nil
}

// Remove deletes the workspace.
func (ws *workspace) Remove() { os.RemoveAll(ws.dir) }
