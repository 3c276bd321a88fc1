#!/bin/bash
# Hardening pass of the test suite (run by scripts/run-tests.sh after the meson suites):
#   fuzz   every libFuzzer target in tests/fuzz (fuzz-NAME, seed corpus tests/fuzz/corpus/NAME/,
#          optional dictionary tests/fuzz/NAME.dict), built with clang-14 + ASan/UBSan in its own
#          build dir and run for $BERTH_FUZZ_SECONDS (default 30) each, or less where
#          tests/fuzz/NAME.max-seconds caps it, two at a time ($BERTH_FUZZ_JOBS). A crash, leak, sanitizer
#          report or failed assertion fails the pass; the reproducer is kept under $BUILD/artifacts.
# Usage: scripts/run-hardening.sh [--build-only]    env: BERTH_FUZZ_SECONDS, BERTH_FUZZ_BUILD_DIR
#   --build-only  set up and build the fuzzers, run nothing (run-tests.sh does it at idle priority
#                 while the main tests run)
set -uo pipefail
cd "$(dirname "$0")/.."
top=$PWD
seconds=${BERTH_FUZZ_SECONDS:-30}
build=${BERTH_FUZZ_BUILD_DIR:-$top/build-fuzz}
status=0
build_only=0
if [ "${1:-}" = --build-only ]; then build_only=1; shift; fi

fuzz_one() { # FUZZER: runs it for its time limit; prints its verdict
  local f=$1
  local name=${f#fuzz-}
  local corpus=$build/corpus/$name seeds=tests/fuzz/corpus/$name
  local artifacts=$build/artifacts/$name
  mkdir -p "$corpus" "$artifacts"
  local limit=$seconds
  if [ -f "tests/fuzz/$name.max-seconds" ]; then
    local cap; cap=$(cat "tests/fuzz/$name.max-seconds")
    [ "$cap" -lt "$limit" ] && limit=$cap
  fi
  local args=(-max_total_time="$limit" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
              -artifact_prefix="$artifacts/")
  [ -f "tests/fuzz/$name.dict" ] && args+=(-dict="tests/fuzz/$name.dict")
  echo "hardening: fuzzing $f for ${limit}s"
  # New inputs go to the build dir's corpus; the committed seeds are only read.
  if UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 "$build/tests/fuzz/$f" "${args[@]}" "$corpus" \
       $( [ -d "$seeds" ] && echo "$seeds" ) >"$build/$f.log" 2>&1; then
    echo "hardening: $f: ok ($(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$build/$f.log" | grep -o '[0-9]*$') runs)"
  else
    tail -60 "$build/$f.log"
    echo "hardening: $f FAILED (reproducer in $artifacts)"
  fi
}

fuzz_pass() {
  # Warnings are errors here as in the main CI build (scripts/run-tests.sh): clang-14's too.
  if [ ! -f "$build/build.ninja" ]; then
    CC=clang-14 CXX=clang++-14 meson setup "$build" -Dfuzz=true -Dtests=false -Dwerror=true \
      -Dbuildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false \
      "-Dcpp_args=-fsanitize=fuzzer-no-link -fno-sanitize-recover=all" >/dev/null \
      || { echo "hardening: meson setup of the fuzz build failed" >&2; return 1; }
  else
    meson configure "$build" -Dwerror=true >/dev/null \
      || { echo "hardening: meson configure of the fuzz build failed" >&2; return 1; }
  fi
  local fuzzers=()
  for src in tests/fuzz/fuzz-*.cpp; do
    [ -e "$src" ] || continue
    fuzzers+=("$(basename "$src" .cpp)")
  done
  [ ${#fuzzers[@]} -gt 0 ] || { echo "hardening: no fuzzers in tests/fuzz" >&2; return 1; }
  local targets=()
  for f in "${fuzzers[@]}"; do targets+=("tests/fuzz/$f"); done
  ninja -C "$build" "${targets[@]}" >"$build/fuzz-build.log" 2>&1 \
    || { tail -30 "$build/fuzz-build.log"; echo "hardening: building the fuzzers failed" >&2; return 1; }
  [ "$build_only" = 1 ] && return 0
  # Two fuzzers at a time (CI has 2 cores; each libFuzzer run is single-threaded): the pass takes
  # half the wall time for the same fuzzing time per target. Each writes its verdict to a file,
  # printed in order afterwards.
  local jobs=${BERTH_FUZZ_JOBS:-2} f
  for f in "${fuzzers[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
    fuzz_one "$f" >"$build/$f.verdict" 2>&1 &
  done
  wait
  local rc=0
  for f in "${fuzzers[@]}"; do
    cat "$build/$f.verdict"
    grep -q "^hardening: $f: ok" "$build/$f.verdict" || rc=1
  done
  return $rc
}

fuzz_pass || status=1
exit $status
