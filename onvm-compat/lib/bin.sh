# Sourced by the onvm-compat scripts: finds Reinforce's binaries, building
# them with `go build` on first use and whenever a Go source is newer, so a
# fresh clone with only Go installed runs ONVM's command lines.
#
#   REINFORCE_BIN  directory for the binaries (default: <repo>/bin)
#
# Builds go to a temporary file that is then renamed over the old binary, so
# an NF or manager already running from it is not disturbed, and a lock file
# keeps run_group.py's parallel starts from building the same binary at once.

REINFORCE_REPO=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)

# reinforce_bin NAME prints the path of binary NAME (reinforce-mgr, reinforce,
# or an example NF such as speed_tester), building it if needed. It returns 1,
# printing nothing, when NAME has no source in the repository, and 2 when the
# build fails (go's errors are on stderr).
reinforce_bin() {
  local name=$1 pkg
  case $name in
    reinforce-mgr|reinforce) pkg=./cmd/$name ;;
    *) pkg=./examples/$name ;;
  esac
  [ -n "$name" ] && [ -d "$REINFORCE_REPO/$pkg" ] && [ "${name#*/}" = "$name" ] || return 1
  local dir=${REINFORCE_BIN:-$REINFORCE_REPO/bin}
  local bin=$dir/$name
  mkdir -p "$dir" || return 2
  (
    flock 9
    if [ ! -x "$bin" ] || [ -n "$(cd "$REINFORCE_REPO" && find . -path ./bin -prune -o \
        \( -name '*.go' -o -name go.mod -o -name go.sum \) -newer "$bin" -print -quit)" ]; then
      command -v go >/dev/null 2>&1 || { echo "onvm-compat: go is not installed: cannot build $name" >&2; exit 2; }
      echo "onvm-compat: building $name into $dir" >&2
      tmp=$dir/.$name.$$.tmp
      if ! (cd "$REINFORCE_REPO" && go build -o "$tmp" "$pkg") >&2; then
        rm -f "$tmp"
        exit 2
      fi
      mv -f "$tmp" "$bin"
    fi
  ) 9>"$dir/.onvm-compat-build.lock" || return 2
  echo "$bin"
}

# reinforce_socket prints the control socket NFs use: $REINFORCE_SOCKET, or
# the default of the manager named $REINFORCE_NAME (default "reinforce"), as
# ctlmsg.DefaultSocketPath computes it.
reinforce_socket() {
  if [ -n "${REINFORCE_SOCKET:-}" ]; then
    echo "$REINFORCE_SOCKET"
  elif [ -n "${XDG_RUNTIME_DIR:-}" ]; then
    echo "$XDG_RUNTIME_DIR/reinforce/${REINFORCE_NAME:-reinforce}.sock"
  else
    echo "/tmp/reinforce-$(id -u)/${REINFORCE_NAME:-reinforce}.sock"
  fi
}
