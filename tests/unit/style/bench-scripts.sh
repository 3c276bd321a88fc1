#!/bin/bash
# The bench scripts stay runnable by a new user (issue #22): every bench/*.sh parses (bash -n), and
# bench/fleet-scale.sh --help prints its usage and exits 0 without root, a build or a booted
# systemd (it used to take "--help" for a build directory and fail inside the harness).
# Usage: bench-scripts.sh SOURCE_ROOT
set -u
root=$1 rc=0
for f in "$root"/bench/*.sh "$root"/bench/*/*.sh; do
  bash -n "$f" || { echo "not bash: $f"; rc=1; }
done
out=$(bash "$root/bench/fleet-scale.sh" --help 2>&1) || { echo "fleet-scale.sh --help: exit status $?"; rc=1; }
grep -q '^Usage: bench/fleet-scale.sh' <<<"$out" || { echo "fleet-scale.sh --help: no usage line:"; echo "$out"; rc=1; }
grep -q -- '--idle K' <<<"$out" || { echo "fleet-scale.sh --help: --idle not described"; rc=1; }
exit $rc
