#!/usr/bin/env bash
# OpenNetVM's onvm/go.sh for Reinforce: the same two command lines
#
#   onvm/go.sh -k PORTMASK -n NF_COREMASK [-m CORES] [-r N] [-d ID] [-s stdout|stderr|web]
#              [-p WEB_PORT] [-z S] [-t S] [-l M] [-c] [-j] [-v|-vv] [-a ADDR]
#   onvm/go.sh CORES PORTMASK NF_COREMASK [OPTIONS]                      (legacy)
#
# with go.sh's messages, run by reinforce-mgr (built on first use). The parsing
# is in Go (onvm-compat/gosh.go) so `reinforce onvm convert` reads go.sh lines
# the same way. See docs/onvm-compat.md for what each flag does here.
#
# Reinforce-only knobs, all optional:
#   REINFORCE_CONFIG     a manager TOML file the ONVM flags are applied on top of
#   REINFORCE_NAME       manager name (region and socket); default "reinforce"
#   REINFORCE_SOCKET     control socket path
#   REINFORCE_REGION_DIR region directory
#   REINFORCE_WEB_PORT   port of the -s web JSON files (default 8000, ONVM's)
#   REINFORCE_PORT_RATE  frames/s each port of the mask receives (null ports; default 10000)
#   REINFORCE_BIN        where binaries are built (default <repo>/bin)
SCRIPT=$(readlink -f "$0")
SCRIPTPATH=$(dirname "$SCRIPT")
# shellcheck source=../lib/bin.sh
. "$SCRIPTPATH/../lib/bin.sh"
mgr=$(reinforce_bin reinforce-mgr) || exit 1
home=${ONVM_HOME:-$(dirname "$SCRIPTPATH")}
webdir=$home/onvm_web
[ -d "$webdir" ] || webdir=$SCRIPTPATH/../onvm_web
exec "$mgr" --onvm-go.sh="$0" --web-dir="$webdir" \
  ${REINFORCE_CONFIG:+--config="$REINFORCE_CONFIG"} \
  ${REINFORCE_NAME:+--name="$REINFORCE_NAME"} \
  ${REINFORCE_SOCKET:+--socket="$REINFORCE_SOCKET"} \
  ${REINFORCE_REGION_DIR:+--region-dir="$REINFORCE_REGION_DIR"} \
  ${REINFORCE_WEB_PORT:+--web-port="$REINFORCE_WEB_PORT"} \
  ${REINFORCE_PORT_RATE:+--onvm-port-rate="$REINFORCE_PORT_RATE"} \
  -- "$@"
