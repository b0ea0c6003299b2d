// Package onvmcompat translates OpenNetVM (ONVM v21.10) inputs into Reinforce's: onvm_mgr's
// native command line (MgrArgs), onvm/go.sh's two syntaxes (GoSh), start_nf.sh lines and
// run_group.py deployment files (Deploy), and whole deployments into a manager TOML file
// (Convert). ONVM-COMPAT.md is the reference; docs/onvm-compat.md says what is mapped, what
// is ignored with a notice and which [quirk]s are not copied.
//
// The directory is also an ONVM_HOME: onvm/go.sh, examples/start_nf.sh, examples/<nf>/go.sh
// and examples/run_group.py run ONVM's documented command lines against Reinforce's binaries,
// which they build with `go build` on first use (lib/bin.sh).
//
// It is imported only by cmd/ and tools/ (STYLE.md §1). Nothing here reads the environment or
// the clock; cmd/ passes what it needs.
package onvmcompat
