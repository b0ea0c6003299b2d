#!/usr/bin/env bash
# The main job in one command. As root it runs the lab (docs/lab.md): three
# simulated servers in namespaces, pktgen in "gen" sending 64 flows through
# veth into a manager in "mgr" (two afpacket ports, the chain simple_forward
# -> bridge, live stats), out to the sink in "sink", which gives its verdict
# at the end. Without root it falls back to the in-memory demo: a manager
# with the two-NF chain on a null port (no NIC, /dev/shm). Either way,
# simple_forward runs with a local standby; halfway through, the active is
# SIGKILLed, the standby takes over its rings and state (the interrupted
# burst is rolled back or forward, nothing is lost or applied twice), the
# manager starts a new standby, and traffic goes on; exit 0 with a summary
# after the TTL (10 s, or the first argument in seconds; further arguments
# go to reinforce-mgr).
# As root, part 2 follows (REINFORCE_DEMO_REMOTE=0 skips it): the two-server demo (tools/demo-remote): a chain
# replicated between two servers behind an ingress that is the arbiter;
# the primary server's manager is killed, the standby server takes over
# from its replicated state, the old primary rejoins as the standby, and
# the sink gives its verdict.
# REINFORCE_DEMO=memory forces the in-memory demo.
set -euo pipefail
cd "$(dirname "$0")/.."
ttl="${1:-10}"
shift || true

# active_pid prints the PID of the active simple_forward among manager $1's
# children: the standby's command line says --standby.
active_pid() {
  local p
  for p in $(pgrep -P "$1" -f bin/simple_forward); do
    tr '\0' ' ' <"/proc/$p/cmdline" | grep -q -- '--standby' || { echo "$p"; return 0; }
  done
  return 1
}

# The in-memory demo (null port).
in_memory() {
  go build -o bin/ ./cmd/reinforce-mgr ./examples/simple_forward ./examples/basic_monitor
  bin/reinforce-mgr --config examples/demo.toml --region-dir /dev/shm -t "$ttl" "$@" &
  mgr=$!
  trap 'kill $mgr 2>/dev/null || true' EXIT
  sleep "$(( (ttl + 1) / 2 ))"
  if victim=$(active_pid "$mgr"); then
    echo
    echo "==> demo: kill -9 simple_forward (pid $victim); its standby takes over"
    echo
    kill -9 "$victim"
  fi
  wait "$mgr"
}

if [ "$(id -u)" -ne 0 ]; then
  echo "==> demo: not root, so no lab (it needs namespaces, veth pairs and AF_PACKET):"
  echo "==> demo: running the in-memory demo instead (null port, no NIC)"
  echo
  in_memory "$@"
  exit
fi
if [ "${REINFORCE_DEMO:-}" = memory ]; then
  in_memory "$@"
  exit
fi
if [ "$ttl" -lt 6 ]; then
  echo "demo: the lab needs a TTL of at least 6 s" >&2
  exit 2
fi

go build -o bin/ ./cmd/reinforce-mgr ./examples/simple_forward ./examples/bridge ./tools/pktgen ./tools/sink ./tools/testbed
tmp=$(mktemp -d)
# The lab belongs to this shell: if it dies without cleaning up, the next
# lab run anywhere sweeps it.
run=$(bin/testbed up -owner $$ tools/testbed/demo/topo.toml)
cleanup() {
  kill "${mgrcmd:-}" "${sinkcmd:-}" "${gencmd:-}" 2>/dev/null || true
  bin/testbed down "$run" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
echo "==> demo: lab $run: gen:eth0 -> mgr:p0 [simple_forward -> bridge] mgr:p1 -> sink:eth0"
echo

bin/testbed exec "$run" mgr -- bin/reinforce-mgr --config tools/testbed/demo/manager.toml -t "$ttl" "$@" &
mgrcmd=$!
started=$SECONDS
mgr=""
for _ in $(seq 200); do # the manager's pid (testbed exec's child) and its NFs, up to 10 s
  mgr=$(pgrep -P "$mgrcmd" -f bin/reinforce-mgr || true)
  [ -n "$mgr" ] && pgrep -P "$mgr" -f bin/bridge >/dev/null && break
  sleep 0.05
done
[ -n "$mgr" ] || { echo "demo: the manager did not start" >&2; exit 1; }

bin/testbed exec "$run" sink -- bin/sink -i eth0 -idle 2s -duration "$((ttl + 10))s" -sent "$tmp/pktgen.json" >"$tmp/sink.out" 2>"$tmp/sink.err" &
sinkcmd=$!
for _ in $(seq 200); do grep -q listening "$tmp/sink.err" 2>/dev/null && break; sleep 0.05; done

gen_s=$(( ttl - 3 - (SECONDS - started) ))
bin/testbed exec "$run" gen -- bin/pktgen -i eth0 -flows 64 -rate 50000 -duration "${gen_s}s" -json >"$tmp/pktgen.json.part" &
gencmd=$!

sleep "$(( (ttl + 1) / 2 - (SECONDS - started) ))"
if victim=$(active_pid "$mgr"); then
  echo
  echo "==> demo: kill -9 simple_forward (pid $victim); its standby takes over"
  echo
  kill -9 "$victim"
fi

wait "$gencmd" || { echo "demo: pktgen failed" >&2; exit 1; }
mv "$tmp/pktgen.json.part" "$tmp/pktgen.json" # the sink reads it when it stops
wait "$mgrcmd"
sink_rc=0
wait "$sinkcmd" || sink_rc=$?
sent=$(sed -n 's/.*"sent":\([0-9]*\).*/\1/p' "$tmp/pktgen.json")
echo
echo "==> demo: pktgen sent $sent packets in 64 flows at 50000 pps for ${gen_s} s; the sink says:"
cat "$tmp/sink.out"
case $sink_rc in
  0) echo "==> demo: every packet arrived exactly once and in order, through the failover" ;;
  3) echo "==> demo: the sink saw loss, duplicates or reordering (above): a bug, or drops outside the chain" ;;
  *) echo "demo: the sink failed:" >&2; cat "$tmp/sink.err" >&2; exit 1 ;;
esac

# Part 2 (root; REINFORCE_DEMO_REMOTE=0 skips it): two servers replicating
# the chain, an ingress that is the arbiter, and a server failover
# (tools/demo-remote).
if [ "$(id -u)" = 0 ] && [ "${REINFORCE_DEMO_REMOTE:-1}" = 1 ]; then
  echo
  echo "==> demo: part 2: the chain on two servers; the primary server dies"
  echo
  go build -o bin/ ./tools/demo-remote
  bin/demo-remote -bin bin
fi
