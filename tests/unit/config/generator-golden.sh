#!/bin/bash
# Runs the real berth-generator on each tests/data/config/generator/CASE/{etc,run,usr} (through
# BERTH_CONTAINERS_PATH, as systemd would run it: NORMAL EARLY LATE) and diffs its output tree,
# symlinks included, and its stderr against CASE.expected/ and CASE.stderr, after replacing the
# temporary paths with @IN@/@OUT@ and the configured bindir with @BINDIR@ (like systemd's
# test-generator.py for fstab-generator). CASE.setup, when present, runs in the copied input first
# (FIFOs and big files cannot live in git); the generator runs under `timeout 5`.
# BERTH_UPDATE_GOLDEN=1 rewrites the expectations.
# Usage: generator-golden.sh GENERATOR DATA_DIR BINDIR
set -euo pipefail
generator=$1 data=$(cd "$2" && pwd) bindir=$3
case $generator in /*) ;; *) generator=$PWD/$generator ;; esac  # the tests below cd elsewhere
tmp=$(mktemp -d /tmp/berth-generator-golden-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failed=0
for case_dir in "$data"/*/; do
  case_dir=${case_dir%/}
  name=$(basename "$case_dir")
  [[ $name == *.expected ]] && continue
  work=$tmp/$name
  mkdir -p "$work/out" "$work/early" "$work/late"
  cp -a "$case_dir" "$work/in"
  # What git cannot hold (FIFOs, big files) is made by CASE.setup, run in the copy.
  if [ -f "$data/$name.setup" ] && ! (cd "$work/in" && bash -e "$data/$name.setup"); then
    echo "FAIL $name: $name.setup failed"; failed=1; continue
  fi
  # systemd waits for its generators at boot: whatever the input, the generator must finish.
  start=$(date +%s%N) rc=0
  BERTH_GENERATOR_KMSG=0 BERTH_CONTAINERS_PATH="$work/in/etc:$work/in/run:$work/in/usr" \
    timeout -k 1 5 "$generator" "$work/out" "$work/early" "$work/late" 2>"$work/stderr" || rc=$?
  ms=$((($(date +%s%N) - start) / 1000000))
  if [ $rc = 124 ] || [ $rc = 137 ]; then echo "FAIL $name: the generator hung (killed after 5 s)"; failed=1; continue; fi
  [ $rc = 0 ] || { echo "FAIL $name: generator exited $rc"; failed=1; }
  echo "ok $name: the generator finished in $ms ms"
  if [ -n "$(find "$work/early" "$work/late" -mindepth 1)" ]; then
    echo "FAIL $name: the generator wrote into the early or late directory"; failed=1
  fi
  # Normalise paths (longest first: $work/in and $work/out contain $work).
  find "$work/out" -type f -print0 | xargs -0 -r sed -i -e "s|$work/in|@IN@|g" -e "s|$work/out|@OUT@|g" -e "s|$bindir|@BINDIR@|g"
  sed -i -e "s|$work/in|@IN@|g" "$work/stderr"
  if [ "${BERTH_UPDATE_GOLDEN:-}" = 1 ]; then
    rm -rf "$data/$name.expected"
    cp -a "$work/out" "$data/$name.expected"
    cp "$work/stderr" "$data/$name.stderr"
    echo "updated $name"
    continue
  fi
  if diff -r --no-dereference -u "$data/$name.expected" "$work/out"; then
    echo "ok $name: output tree"
  else
    echo "FAIL $name: output tree differs"; failed=1
  fi
  if diff -u "$data/$name.stderr" "$work/stderr"; then echo "ok $name: stderr"; else echo "FAIL $name: stderr differs"; failed=1; fi
done

# systemd.generator(7): one or three absolute directories. Anything else ("--help", two
# arguments, a relative path) is a usage error that writes nothing, not a tree under "./--help".
mkdir -p "$tmp/args"
for args in "--help" "-h" "$tmp/args/a $tmp/args/b" "relative" "$tmp/args/a $tmp/args/b $tmp/args/c $tmp/args/d"; do
  # shellcheck disable=SC2086
  (cd "$tmp/args" && BERTH_GENERATOR_KMSG=0 BERTH_CONTAINERS_PATH="$tmp/args/none" "$generator" $args) >"$tmp/args.out" 2>&1 && rc=0 || rc=$?
  if [ $rc = 0 ]; then echo "FAIL generator $args: exit 0"; failed=1; else echo "ok generator $args: exit $rc"; fi
  grep -q "^usage: berth-generator" "$tmp/args.out" || { echo "FAIL generator $args: no usage line"; cat "$tmp/args.out"; failed=1; }
  if [ -n "$(ls -A "$tmp/args")" ]; then echo "FAIL generator $args: wrote $(ls -A "$tmp/args")"; failed=1; rm -rf "${tmp:?}/args/"*; fi
done
exit $failed
