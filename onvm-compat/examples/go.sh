#!/usr/bin/env bash
# OpenNetVM's examples/go.sh: every examples/<NF>/go.sh is a link to it and
# runs ../start_nf.sh with the folder's name as the NF.
NF_DIR=${PWD##*/}

if [ ! -f ../start_nf.sh ]; then
  echo "ERROR: The ./go.sh script can only be used from the NF folder"
  echo "If running from other directory use examples/start_nf.sh"
  exit 1
fi

SCRIPT=$(readlink -f "$0")
# shellcheck source=../lib/bin.sh
. "$(dirname "$SCRIPT")/../lib/bin.sh"
if [ ! -S "$(reinforce_socket)" ]; then
  echo "NF cannot start without a running manager"
  exit 1
fi

exec ../start_nf.sh "$NF_DIR" "$@"
