#!/bin/bash
# boot-systemd.sh [-v] [-b BUILD_DIR] [-s STATE_DIR] [--keep-state] [--] COMMAND...
# Boots a real systemd as PID 1 in a throw-away container with the berth build installed
# (see harness.sh), runs COMMAND on the host with IT_PID1 set ("nsenter -t $IT_PID1 -a ..." or
# the it_in function when sourced) and tears everything down. Exit: COMMAND's status, 125 = harness.
#   -b DIR  build dir to install from (default: ./build)      -s DIR  state dir (default: fresh)
#   --inside  run COMMAND inside the container instead of on the host
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/harness.sh"
build=$PWD/build; state=; keep=0; inside=0
while [ $# -gt 0 ]; do
  case $1 in
    -v) IT_VERBOSE=1; shift;;
    -b) build=$2; shift 2;;
    -s) state=$2; shift 2;;
    --keep-state) keep=1; shift;;
    --inside) inside=1; shift;;
    --) shift; break;;
    -*) it_die "unknown option $1";;
    *) break;;
  esac
done
[ $# -gt 0 ] || it_die "no COMMAND"
own_state=0
[ -z "$state" ] && { state=$IT_WORK/$IT_NAME.state; own_state=1; }
trap 'it_teardown; [ "$own_state" = 1 ] && [ "$keep" = 0 ] && rm -rf "$state"' EXIT
trap 'exit 130' INT TERM
it_install "$build"
it_boot "$state"
export IT_PID1 IT_NAME
if [ "$inside" = 1 ]; then it_in "$@"; else "$@"; fi
