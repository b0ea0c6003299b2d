#!/bin/sh
# The long tier of the local-failover fault loops (docs/lab.md, "Fault loops"): as root, the same
# chains as in CI with REINFORCE_FAULT_KILLS kills each (default 200: about 5 minutes in all).
set -eu
cd "$(dirname "$0")/../.."
REINFORCE_FAULT_KILLS="${REINFORCE_FAULT_KILLS:-200}" exec go test -count=1 -p 1 -timeout 4h -v \
  -run TestFaultLoopLocalStandby ./tools/e2e/ "$@"
