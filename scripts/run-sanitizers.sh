#!/bin/bash
# run-sanitizers.sh: builds berth with AddressSanitizer + UndefinedBehaviorSanitizer in its own
# build directory and runs the unit and privileged suites under it. Any ASan/UBSan report aborts
# the test that triggered it (halt_on_error=1), so a sanitizer finding is a failed test.
#
# Usage: scripts/run-sanitizers.sh [--build-only] [--all] [meson test args...]
#   default       unit suite + privileged suite minus the tests listed in SLOW below (CI budget)
#   --all         every unit and privileged test
#   --build-only  set up and build what the selected tests need, run nothing (run-tests.sh does it
#                 at idle priority while the main tests run)
# Environment: BERTH_ASAN_BUILD_DIR (default ./build-asan), BERTH_ASAN_TIMEOUT_MULTIPLIER (3).
#
# Why a separate build dir: sanitized binaries are 2-3x slower and must not be mixed with the
# normal build. b_lundef=false because the sanitizer runtimes resolve symbols at load time.
# The escape probe (a static payload that runs inside containers) is built without sanitizers:
# static linking and ASan do not mix (see tests/privileged/escape/meson.build).
set -uo pipefail
cd "$(dirname "$0")/.."
top=$PWD
BUILD=${BERTH_ASAN_BUILD_DIR:-$top/build-asan}
all=0 build_only=0
if [ "${1:-}" = --build-only ]; then build_only=1; shift; fi
if [ "${1:-}" = --all ]; then all=1; shift; fi

# Privileged tests left out of the default (CI) sanitizer pass: they repeat work other tests already
# cover under ASan and would dominate its run time (soak: 200 sequential containers; load: 50
# clients for a fixed time). Names are meson test names; missing ones are ignored.
# store-real-image: a 2-minute mmdebstrap image imported again; the main pass runs it, and the
# store code it drives is covered under ASan by store, store-hostile and fsck (CI time, issue #14).
# registry-push(-cli), registry-pull-at-run, network-dns: mostly external programs (skopeo, podman,
# docker-registry, dnsmasq, 20 containers); the pull/push/DNS code they reach runs under ASan in
# registry-pull, registry-hostile (hostile input), network-declared and the unit suites (CI time).
# escape: its checks are the kernel's answers (symlinked targets, /proc/self/fd workdirs, mounts
# over host paths), not memory safety; the same start path (mount plan, chase, rootfs assembly)
# runs under ASan in runtime-privileged, escape-mounts, escape-image-hostile and userns-images, and
# the main pass runs the escape suite itself (185 s of the pass under ASan; CI time).
SLOW=(soak load fault fault-berthd-restart e2e store-real-image registry-push registry-push-cli
      registry-pull-at-run network-dns escape)
# With --all, the escape suite runs shorter under ASan: its three /proc/self/fd/N workdir
# sweeps try N = 3-16, 32, 64 instead of 3-64 (184 of the suite's 273 s; swept_fd_numbers() in
# tests/privileged/escape/escape-test.cpp says why that keeps what only ASan checks).

# berthd's suite runs alone (not parallel): under ASan on overlay only, see berthd_test_backends() in
# tests/privileged/bus/berthd-test.cpp (both backends run in the main pass).
export BERTHD_TEST_BACKENDS=${BERTHD_TEST_BACKENDS:-overlay}
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=0:detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1:print_summary=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1:report_error_type=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$top/tests/sanitizers/lsan.supp:print_suppressions=0}

start=$(date +%s)
# Warnings are errors here too, as in the main CI build (scripts/run-tests.sh) and the clang fuzz
# build (scripts/run-hardening.sh): the -O0 ASan+UBSan build of every target is warning-free.
if [ ! -f "$BUILD/build.ninja" ]; then
  meson setup "$BUILD" -Dtests=true -Db_sanitize=address,undefined -Db_lundef=false -Dwerror=true \
    -Dbuildtype=plain -Doptimization=0 -Ddebug=false -Db_ndebug=false -Dc_args=-g1 -Dcpp_args=-g1 >/dev/null || { echo "run-sanitizers: meson setup failed" >&2; exit 1; }
else
  meson configure "$BUILD" -Dwerror=true || { echo "run-sanitizers: meson configure failed" >&2; exit 1; }
fi
# Select the tests: every unit and privileged test, minus SLOW unless --all.
ninja -C "$BUILD" build.ninja >/dev/null  # regenerate only: picks up tests added since the last setup
mapfile -t tests < <(meson test -C "$BUILD" --list --no-rebuild --suite unit --suite privileged 2>/dev/null |
  sed -E 's/^berth:[^ ]+ \/ //; s/^[^ ]+ \/ //' | sort -u)
selected=()
for t in "${tests[@]}"; do
  skip=0
  if [ "$all" = 0 ]; then
    for s in "${SLOW[@]}"; do [ "$t" = "$s" ] && skip=1; done
  fi
  [ "$skip" = 0 ] && selected+=("$t")
done
if [ ${#selected[@]} -eq 0 ]; then
  echo "run-sanitizers: no tests selected" >&2
  exit 1
fi

# Build only what the selected tests run: their executables and the targets they depend on
# (berth, berthd, probes); not the fuzzers, benchmarks, integration/qemu-only programs.
mapfile -t targets < <(meson introspect "$BUILD" --tests --targets 2>/dev/null | python3 -c '
import json, os, sys
info = json.load(sys.stdin)
want = set(sys.argv[1:])
by_id = {t["id"]: t for t in info["targets"]}
by_file = {f: t for t in info["targets"] for f in t["filename"]}
out = set()
for t in info["tests"]:
    if t["name"] not in want or not (set(t["suite"]) & {"berth:unit", "berth:privileged"}):
        continue
    for d in t.get("depends", []):
        if d in by_id:
            out.update(by_id[d]["filename"])
    for c in t["cmd"][:2]:
        if c in by_file:
            out.add(c)
for f in sorted(out):
    print(f)
' "${selected[@]}")
rel=()
for f in "${targets[@]}"; do rel+=("${f#"$(realpath "$BUILD")"/}"); done
[ ${#rel[@]} -gt 0 ] || rel=(all)
ninja -C "$BUILD" -j "${BERTH_ASAN_JOBS:-2}" "${rel[@]}" || { echo "run-sanitizers: build failed" >&2; exit 1; }
echo "run-sanitizers: build of ${#rel[@]} targets took $(( $(date +%s) - start ))s"
[ "$build_only" = 1 ] && exit 0
echo "run-sanitizers: running ${#selected[@]} tests under ASan+UBSan${all:+ }$([ "$all" = 0 ] && echo "(skipping: ${SLOW[*]})")"

status=0
common=(--print-errorlogs --timeout-multiplier "${BERTH_ASAN_TIMEOUT_MULTIPLIER:-3}" "$@")
# Two lanes (scripts/test-lanes.sh): the 'self-contained' suites and the unit suite beside the rest.
mapfile -t beside < <(meson test -C "$BUILD" --list --no-rebuild --suite self-contained --suite unit 2>/dev/null |
  sed -E 's/^[^ ]+ \/ //' | sort -u)
first_lane=() second_lane=()
for t in "${selected[@]}"; do
  lane=first_lane
  for b in "${beside[@]}"; do [ "$t" = "$b" ] && lane=second_lane; done
  declare -n into=$lane
  into+=("$t")
  unset -n into
done
. scripts/test-lanes.sh
logs=()
if [ ${#first_lane[@]} -gt 0 ] && [ ${#second_lane[@]} -gt 0 ]; then
  first_lane=(--num-processes 2 "${first_lane[@]}")
  run_test_lanes "$BUILD" testlog common first_lane second_lane || status=1
  logs=("$BUILD/meson-logs/testlog.txt" "$BUILD/meson-logs/testlog-self-contained.txt")
else
  meson test -C "$BUILD" --no-rebuild --num-processes 2 "${common[@]}" "${selected[@]}" || status=1
  logs=("$BUILD/meson-logs/testlog.txt")
fi

# A sanitizer report in a child process (e.g. the supervisor forked by a test) may not fail the
# gtest that started it: scan the logs for reports as well.
if grep -lE '^(==[0-9]+==ERROR: (AddressSanitizer|LeakSanitizer)|.*runtime error: )' \
     "${logs[@]}" >/dev/null 2>&1; then
  echo "run-sanitizers: sanitizer reports found in ${logs[*]}:" >&2
  grep -nE '^(==[0-9]+==ERROR: (AddressSanitizer|LeakSanitizer)|.*runtime error: )' \
    "${logs[@]}" | head -20 >&2
  status=1
fi
echo "run-sanitizers: total $(( $(date +%s) - start ))s, $([ $status = 0 ] && echo clean || echo FAILED)"
exit $status
