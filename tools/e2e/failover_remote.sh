#!/bin/sh
# The long tier of the failover-between-servers fault loops (docs/lab.md, "Failover between
# servers"): as root, REINFORCE_FAILOVER_REMOTE_N failovers (default 200), then the 60 s loaded run
# with no fault. REINFORCE_FAILOVER_REMOTE_STRICT=1 makes a spurious failover in the loops fail;
# REINFORCE_FAILOVER_REMOTE_PROFILE=default runs the loops with BFD 1 ms x 3.
set -eu
cd "$(dirname "$0")/../.."
REINFORCE_FAILOVER_REMOTE_N="${REINFORCE_FAILOVER_REMOTE_N:-200}" \
REINFORCE_FAILOVER_REMOTE_QUIET="${REINFORCE_FAILOVER_REMOTE_QUIET:-60s}" exec go test -count=1 -p 1 -timeout 4h -v \
  -run 'TestFailoverRemote' ./tools/e2e/ "$@"
