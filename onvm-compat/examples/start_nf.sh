#!/usr/bin/env bash
# OpenNetVM's examples/start_nf.sh for Reinforce: runs example NF NF-NAME
# (built on first use, lib/bin.sh) in one of ONVM's three ways:
#
#   start_nf.sh NF-NAME SERVICE-ID [NF args]                  simple
#   start_nf.sh NF-NAME DPDK_ARGS -- ONVM_ARGS -- NF_ARGS     complex
#   start_nf.sh NF-NAME -F config.json [other args]           config file
#
# The NF connects to the manager's control socket: $REINFORCE_SOCKET, or that
# of the manager named $REINFORCE_NAME (default "reinforce").
#
# Unlike ONVM's script, the complex form splits at whole "--" words, so an
# argument containing "--" (--proc-type=secondary) stays in its section; and
# there is no sudo.

function usage {
        echo "Run the example NF in one of the following ways:"
        echo "$0 NF-NAME SERVICE-ID [remaining NF args]"
        echo "$0 NF-NAME DPDK_ARGS -- ONVM_ARGS -- NF_ARGS"
        echo "$0 NF-NAME -F config.json [other args]"
        echo ""
        echo "$0 speed_tester 1 -d 1  --> Speed tester NF, with Service ID 1, and forwards to service ID 1"
        echo "$0 speed_tester -l 5 -- -m -r 3 -- -d 2  --> Speed tester NF on core 5 (manually assigned), with Service ID 3, and forwards to service ID 2"
        echo "$0 monitor -l 0 -- -r 1 -n 3 --  --> Basic monitor NF on core 4, with Instance ID 3, Service ID 1"
        echo "$0 monitor -F config.json  --> Basic monitor NF with arguments extracted from the config.json file"
        exit 1
}

if [ "$#" -lt 2 ]; then
  echo "ERROR: Missing required arguments"
  usage
fi

SCRIPT=$(readlink -f "$0")
SCRIPTPATH=$(dirname "$SCRIPT")
# shellcheck source=../lib/bin.sh
. "$SCRIPTPATH/../lib/bin.sh"
NF_NAME=$1
DPDK_BASE_ARGS=(-n 3 --proc-type=secondary)
DEFAULT_CORE_ID=0

BINARY=$(reinforce_bin "$NF_NAME")
case $? in
  0) ;;
  1)
    echo "ERROR: NF executable not found, $SCRIPTPATH/$NF_NAME/build/app/$NF_NAME doesn't exist"
    echo "Please verify NF binary name and run script from the NF folder"
    exit 1 ;;
  *)
    echo "ERROR: building $NF_NAME failed (see above)"
    exit 1 ;;
esac
REINFORCE_SOCKET=$(reinforce_socket)
export REINFORCE_SOCKET

shift 1

if [ "$1" = "-F" ]; then
  exec "$BINARY" "$@"
fi

dash_dash_cnt=0
for a in "$@"; do
  [ "$a" = "--" ] && dash_dash_cnt=$((dash_dash_cnt+1))
done

if [ "$dash_dash_cnt" -ge 2 ]; then
  # DPDK args, then ONVM args, then the rest verbatim for the NF.
  exec "$BINARY" "${DPDK_BASE_ARGS[@]}" "$@"
elif [ "$dash_dash_cnt" -eq 0 ]; then
  service=$1
  shift 1
  exec "$BINARY" -l "$DEFAULT_CORE_ID" "${DPDK_BASE_ARGS[@]}" -- -r "$service" -- "$@"
else
  echo "This script expects 0 or at least 2 '--' argument separators"
  usage
fi
