#!/bin/bash
# Sourced by scripts/run-tests.sh and scripts/run-sanitizers.sh: runs meson's tests in two lanes at
# once on one build directory. Most privileged tests are not parallel-safe among themselves (one
# veth pool, one default network, fixed bridge names), so meson runs them one at a time and a core
# sat idle for most of CI; the tests labelled 'self-contained' (tests/meson.build says which and
# why) share nothing host-global with the others, so they run as a second lane beside them.
#
# run_test_lanes BUILD LOGBASE COMMON_ARGS_ARRAY FIRST_LANE_ARGS_ARRAY SECOND_LANE_ARGS_ARRAY
#   Each *_ARRAY is the NAME of a bash array. The first lane prints as it goes; the second lane's
#   output is kept in BUILD/meson-logs/LOGBASE-self-contained.out and printed once both are done.
#   Logs: BUILD/meson-logs/LOGBASE.{txt,json} and LOGBASE-self-contained.{txt,json}. Fails if
#   either lane fails. The second lane runs one test at a time (in meson's priority order).
run_test_lanes() {
  local build=$1 logbase=$2
  local -n _common=$3 _first=$4 _second=$5
  local out=$build/meson-logs/$logbase-self-contained.out
  mkdir -p "$build/meson-logs"
  meson test -C "$build" --no-rebuild --logbase "$logbase-self-contained" --num-processes 1 \
    "${_common[@]}" "${_second[@]}" >"$out" 2>&1 &
  local second_pid=$!
  meson test -C "$build" --no-rebuild --logbase "$logbase" "${_common[@]}" "${_first[@]}"
  local first_rc=$?
  wait "$second_pid"
  local second_rc=$?
  echo "=== the self-contained lane (ran beside the tests above): $out ==="
  cat "$out"
  [ "$first_rc" = 0 ] && [ "$second_rc" = 0 ]
}
