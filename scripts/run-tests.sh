#!/bin/bash
# Sets up a fresh Debian 12 machine (as root) and runs every berth test suite:
#   unit        pure logic (parsing, planning, rendering, digests)
#   privileged  root on this host: real namespaces, mounts, btrfs on loop, overlayfs, dbus-daemon
#   integration a real systemd booted as PID 1 in a throw-away container
#   qemu        the dm-thin backend on Debian's stock kernel under qemu
# plus the ASan/UBSan build of the unit + privileged suites and bounded fuzzing (clang).
# Usage: scripts/run-tests.sh [--quick] [meson test args...]   (--quick: no sanitizer/fuzz pass)
set -uo pipefail
cd "$(dirname "$0")/.."
top=$PWD
[ "$(id -u)" = 0 ] || { echo "run-tests: must run as root (privileged tests are the heart of the suite)" >&2; exit 1; }
quick=0
if [ "${1:-}" = --quick ]; then quick=1; shift; fi

bash scripts/install-deps.sh || exit 1

BUILD=${BERTH_BUILD_DIR:-$top/build-tests}
start=$(date +%s)
# Warnings are errors in CI (a developer's own build keeps werror=false; README "Building by hand").
if [ ! -f "$BUILD/build.ninja" ]; then
  meson setup "$BUILD" -Dtests=true -Dwerror=true >/dev/null || { echo "run-tests: meson setup failed" >&2; exit 1; }
else
  meson configure "$BUILD" -Dwerror=true || { echo "run-tests: meson configure failed" >&2; exit 1; }
fi
ninja -C "$BUILD" || { echo "run-tests: build failed" >&2; exit 1; }
echo "run-tests: build took $(( $(date +%s) - start ))s"

# The hardening passes' own builds (clang fuzz build, ASan build: ~1800 s of CPU on 2 cores) start
# now at SCHED_IDLE, so they take only the CPU the main tests leave idle (most of them wait on
# systemd, D-Bus, qemu or the network); each pass runs ninja again afterwards, which then finds
# little or nothing left to do, and reports a build failure itself.
prebuild_pid=
if [ "$quick" = 0 ] && [ $# -eq 0 ]; then
  mkdir -p "$BUILD/meson-logs"
  (
    chrt --idle 0 bash scripts/run-hardening.sh --build-only
    [ "${BERTH_SANITIZERS:-1}" = 1 ] && chrt --idle 0 bash scripts/run-sanitizers.sh --build-only
  ) >"$BUILD/meson-logs/prebuild.log" 2>&1 &
  prebuild_pid=$!
fi

status=0
logs=("$BUILD/meson-logs/testlog.json")
if [ $# -gt 0 ]; then  # tests or options named on the command line: one meson run, as asked
  meson test -C "$BUILD" --print-errorlogs --num-processes 2 "$@" || status=1
else
  . scripts/test-lanes.sh
  common=(--print-errorlogs) first_lane=(--num-processes 2 --no-suite self-contained) second_lane=(--suite self-contained)
  run_test_lanes "$BUILD" testlog common first_lane second_lane || status=1
  logs+=("$BUILD/meson-logs/testlog-self-contained.json")
fi

summarize() { # testlog.json... -> counts
  python3 - "$@" <<'PY'
import json, sys
c = {"OK": 0, "FAIL": 0, "SKIP": 0, "TIMEOUT": 0, "ERROR": 0, "EXPECTEDFAIL": 0, "UNEXPECTEDPASS": 0}
for log in sys.argv[1:]:
  for line in open(log):
    r = json.loads(line).get("result", "ERROR")
    c[r] = c.get(r, 0) + 1
failed = c["FAIL"] + c["TIMEOUT"] + c["ERROR"] + c["UNEXPECTEDPASS"]
print(c["OK"] + c["EXPECTEDFAIL"], failed, c["SKIP"])
PY
}
read -r passed failed skipped < <(summarize "${logs[@]}")
if [ -n "$prebuild_pid" ]; then
  echo "run-tests: main tests done after $(( $(date +%s) - start ))s; waiting for the idle-priority builds"
  wait "$prebuild_pid"
  echo "run-tests: idle-priority builds done after $(( $(date +%s) - start ))s ($BUILD/meson-logs/prebuild.log)"
fi

# Hardening passes, each counted as one test: bounded libFuzzer runs (clang, ASan+UBSan), then an
# ASan+UBSan rebuild running the unit + privileged suites (scripts/run-sanitizers.sh; its own build
# directory; BERTH_SANITIZERS=0 leaves it out when iterating).
passes=(scripts/run-hardening.sh)
[ "${BERTH_SANITIZERS:-1}" = 1 ] && passes+=(scripts/run-sanitizers.sh)
if [ "$quick" = 0 ]; then
  for pass in "${passes[@]}"; do
    [ -f "$pass" ] || continue
    echo "run-tests: $pass"
    if bash "$pass"; then passed=$((passed + 1)); else failed=$((failed + 1)); status=1; fi
  done
fi

echo "run-tests: total $(( $(date +%s) - start ))s"
echo "tests: $passed passed, $failed failed, $skipped skipped"
exit $status
