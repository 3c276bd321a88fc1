#!/bin/bash
# Sourced by scripts/run-tests.sh and scripts/run-sanitizers.sh: runs meson's tests in two lanes at
# once on one build directory. Most privileged tests are not parallel-safe among themselves (one
# veth pool, one default network, fixed bridge names), so meson runs them one at a time and a core
# sat idle for most of CI; the tests labelled 'storage' (tests/meson.build says why) share nothing
# host-global with the others, so they run as a second lane beside them.
#
# run_test_lanes BUILD LOGBASE COMMON_ARGS_ARRAY MAIN_LANE_ARGS_ARRAY STORAGE_LANE_ARGS_ARRAY
#   Each *_ARRAY is the NAME of a bash array. The main lane prints as it goes; the storage lane's
#   output is kept in BUILD/meson-logs/LOGBASE-storage.out and printed once both lanes are done.
#   Logs: BUILD/meson-logs/LOGBASE.{txt,json} and LOGBASE-storage.{txt,json}. Fails if either fails.
run_test_lanes() {
  local build=$1 logbase=$2
  local -n _common=$3 _main=$4 _storage=$5
  local out=$build/meson-logs/$logbase-storage.out
  mkdir -p "$build/meson-logs"
  meson test -C "$build" --no-rebuild --logbase "$logbase-storage" --num-processes 1 \
    "${_common[@]}" "${_storage[@]}" >"$out" 2>&1 &
  local storage_pid=$!
  meson test -C "$build" --no-rebuild --logbase "$logbase" "${_common[@]}" "${_main[@]}"
  local main_rc=$?
  wait "$storage_pid"
  local storage_rc=$?
  echo "=== the storage lane (ran beside the tests above): $out ==="
  cat "$out"
  [ "$main_rc" = 0 ] && [ "$storage_rc" = 0 ]
}
