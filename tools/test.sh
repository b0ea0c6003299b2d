#!/usr/bin/env bash
# The project's test command (README, .ci/run): formatting, vet, staticcheck,
# build, the whole test suite, the race detector on the data plane, and a
# short fuzz of every fuzz target. Root-only tests skip with a reason unless
# CI=true, where they fail instead.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "gofmt"
bad=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$bad" ]; then echo "gofmt would change:"; echo "$bad"; exit 1; fi

step "go vet"
go vet ./...

step "staticcheck"
if command -v staticcheck >/dev/null 2>&1; then
  staticcheck ./...
elif [ -x "$(go env GOPATH)/bin/staticcheck" ]; then
  "$(go env GOPATH)/bin/staticcheck" ./...
else
  echo "staticcheck not installed (go install honnef.co/go/tools/cmd/staticcheck@v0.8.2): skipped"
  [ "${CI:-}" = true ] && { echo "CI=true: staticcheck is required"; exit 1; }
fi

step "unsafe stays in shm/ and port/ drivers"
leaks=$(grep -rl --include='*.go' '"unsafe"' . | grep -v -E '^\./(shm|port)/' || true)
if [ -n "$leaks" ]; then echo "unsafe imported outside shm/ and port/:"; echo "$leaks"; exit 1; fi

step "go build"
go build ./...

step "go test ./..."
# -p 1: one test binary at a time, so the crash loops' spinning processes do
# not share the 2 CPUs with tests that measure registration or death latency.
go test -p 1 -count=1 -timeout 20m ./...

step "go test -race (data plane, manager, nflib, ports)"
go test -p 1 -count=1 -race -timeout 15m ./shm/... ./nflib/... ./manager/... ./port/... ./pkt/...

# Budgets are execution counts, not durations: with a duration Go's fuzz
# coordinator races its own deadline and can fail a target with a bare
# "context deadline exceeded" on a loaded machine, having found nothing
# (seen in CI on port/pcap's FuzzReader). A count has no deadline to race.
step "fuzz (execution budgets; FUZZ_SCALE=${FUZZ_SCALE:-1})"
# Per-target counts sized to about 5-10 s each on the 2-vCPU CI machine
# (targets run from ~2,000 to ~80,000 execs/s); FUZZ_SCALE multiplies them.
fuzz_budget() {
  local base
  case "$1" in
    */shm/FuzzAttach) base=30000 ;;
    */pkt/FuzzDecode) base=20000 ;;
    *) base=200000 ;;
  esac
  echo "$((base * ${FUZZ_SCALE:-1}))x"
}
for pkg in $(go list ./... ); do
  for f in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
    go test -run '^$' -fuzz "^$f\$" -fuzztime "$(fuzz_budget "$pkg/$f")" -fuzzminimizetime 2000x "$pkg"
  done
done
echo
echo "all checks passed"
