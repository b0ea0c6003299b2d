#!/usr/bin/env bash
# The main job in one command: build, then run a manager with a two-NF chain
# on a null port (no NIC, no root, /dev/shm) with live stats; halfway through,
# SIGKILL the first NF and watch the manager reclaim it, restart it with the
# same instance ID and the packets that were waiting for it, and traffic
# resume; exit 0 with a summary after the TTL (10 s, or the first argument in
# seconds; further arguments go to reinforce-mgr, e.g. --name).
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o bin/ ./cmd/reinforce-mgr ./examples/simple_forward ./examples/basic_monitor
ttl="${1:-10}"
shift || true
bin/reinforce-mgr --config examples/demo.toml --region-dir /dev/shm -t "$ttl" "$@" &
mgr=$!
trap 'kill $mgr 2>/dev/null || true' EXIT
sleep "$(( (ttl + 1) / 2 ))"
if victim=$(pgrep -P "$mgr" -f bin/simple_forward); then
  echo
  echo "==> demo: kill -9 simple_forward (pid $victim); the manager reclaims it and restarts it"
  echo
  kill -9 "$victim"
fi
wait "$mgr"
