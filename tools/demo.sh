#!/usr/bin/env bash
# The main job in one command: build, then run a manager with a two-NF chain
# on a null port (no NIC, no root, /dev/shm), show live throughput, and exit 0
# with a summary after the TTL (10 s, or the first argument in seconds; any
# further arguments go to reinforce-mgr, e.g. --name to run two side by side).
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o bin/ ./cmd/reinforce-mgr ./examples/simple_forward ./examples/basic_monitor
ttl="${1:-10}"
shift || true
exec bin/reinforce-mgr --config examples/demo.toml --region-dir /dev/shm -t "$ttl" "$@"
