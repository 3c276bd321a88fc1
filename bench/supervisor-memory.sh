#!/bin/bash
# bench/supervisor-memory.sh: resident memory of the process that stays alive while a container's
# payload runs (issue #3: under 2 MiB VmRSS), sampled while `sleep` runs in the busybox rootfs:
#   berth run                  the default: after 100 ms the supervisor is berth-supervise (static)
#   berth run (in-process)     BERTH_SUPERVISOR= : the full berth binary supervises (the "before")
#   crun run / runc run / systemd-nspawn   the peers' foreground process, for scale
# Each row is the mean of N samples (one container each). VmRSS counts every resident page the
# process maps, shared library text included; Pss shares those pages out among their users;
# RssAnon / Private_Dirty are what the process alone costs.
# Then what the hand-over costs in time, one hyperfine run: `berth run` of /bin/true (done before
# the 100 ms hand-over delay: nothing to pay) and of `sleep 0.3` (handed over: two extra execs),
# each with and without berth-supervise.
# Results: bench/results/supervisor-memory.md and supervisor-time.{json,md}. Run as root. Not
# part of CI.
#
# Usage: bench/supervisor-memory.sh [--samples N]     Environment: BERTH (default build/src/berth/berth)
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
N=5
while [ $# -gt 0 ]; do
  case $1 in
    --samples) N=$2; shift 2 ;;
    *) echo "usage: $0 [--samples N]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "bench/supervisor-memory.sh: run as root" >&2; exit 1; }
BERTH=${BERTH:-$top/build/src/berth/berth}
W=/tmp/berth-supmem-$$
R=$top/bench/results
mkdir -p "$W/run" "$W/state" "$R"
id=supmem$$
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  crun delete -f "$id" >/dev/null 2>&1 || true
  runc delete -f "$id" >/dev/null 2>&1 || true
  rm -rf "$W"
}
trap cleanup EXIT
# berth keeps its run/state files in the work dir, not in the host's /run/berth.
export BERTH_RUN_DIR=$W/run BERTH_STATE_DIR=$W/state

bash "$top/tests/lib/make-busybox-rootfs.sh" "$W/rootfs" >/dev/null
printf '[container]\nrootfs = "%s"\ncommand = ["/bin/sleep", "30"]\nephemeral = true\nstop_signal = "SIGKILL"\n' \
  "$W/rootfs" > "$W/$id.toml"
printf '[container]\nrootfs = "%s"\ncommand = ["/bin/true"]\nephemeral = true\n' "$W/rootfs" > "$W/${id}t.toml"
printf '[container]\nrootfs = "%s"\ncommand = ["/bin/sleep", "0.3"]\nephemeral = true\n' "$W/rootfs" > "$W/${id}s.toml"
if command -v crun >/dev/null; then
  mkdir -p "$W/oci" && (cd "$W/oci" && crun spec)
  python3 - "$W" <<'PY'
import json, sys
w = sys.argv[1]
c = json.load(open(f'{w}/oci/config.json'))
c['root'] = {'path': f'{w}/rootfs', 'readonly': True}
c['process']['args'] = ['/bin/sleep', '30']
c['process']['terminal'] = False
json.dump(c, open(f'{w}/oci/config.json', 'w'), indent=2)
PY
fi

# sample NAME COMMAND...: starts the command N times, samples its own process 1 s in, kills it.
declare -A sum cnt
fields=(VmRSS RssAnon RssFile Pss Private_Dirty)
sample() {
  local name=$1; shift
  local i p f v
  for ((i = 0; i < N; i++)); do
    "$@" </dev/null >/dev/null 2>&1 &
    p=$!; pids+=("$p")
    sleep 1
    if [ ! -r /proc/$p/status ]; then echo "# $name: process exited early, skipped" >&2; return 0; fi
    echo "# $name: pid $p exe $(readlink /proc/$p/exe)" >&2
    for f in VmRSS RssAnon RssFile; do
      v=$(awk -v k="$f:" '$1 == k {print $2}' /proc/$p/status); sum[$name.$f]=$(( ${sum[$name.$f]:-0} + v ))
    done
    for f in Pss Private_Dirty; do
      v=$(awk -v k="$f:" '$1 == k {print $2}' /proc/$p/smaps_rollup); sum[$name.$f]=$(( ${sum[$name.$f]:-0} + v ))
    done
    cnt[$name]=$(( ${cnt[$name]:-0} + 1 ))
    kill -TERM "$p" 2>/dev/null || true   # berth: stop_signal SIGKILL; peers: die with their payload
    wait "$p" 2>/dev/null || true
    crun delete -f "$id" >/dev/null 2>&1 || true
    runc delete -f "$id" >/dev/null 2>&1 || true
  done
}

rows=("berth run")
sample "berth run" "$BERTH" run "$W/$id.toml"
rows+=("berth run (in-process)")
sample "berth run (in-process)" env BERTH_SUPERVISOR= "$BERTH" run "$W/$id.toml"
if command -v crun >/dev/null; then
  # crun 1.8 refuses this host's hybrid cgroups unless cgroup2 at /sys/fs/cgroup/unified is out of
  # sight (bench/start.sh); `unshare` without --fork execs, so the sampled pid is crun's.
  rows+=("crun run")
  sample "crun run" unshare -m --propagation private sh -c "umount /sys/fs/cgroup/unified && exec crun run -b $W/oci $id"
fi
if command -v runc >/dev/null; then rows+=("runc run"); sample "runc run" runc run -b "$W/oci" "$id"; fi
if command -v systemd-nspawn >/dev/null; then
  rows+=("systemd-nspawn")
  sample "systemd-nspawn" systemd-nspawn -q -D "$W/rootfs" --register=no --keep-unit /bin/sleep 30
fi

{
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); mean of $N samples per row, kB"
  echo
  echo "| foreground process | VmRSS | RssAnon | RssFile | Pss | Private_Dirty |"
  echo "|---|---:|---:|---:|---:|---:|"
  for r in "${rows[@]}"; do
    [ -n "${cnt[$r]:-}" ] || continue
    line="| $r"
    for f in "${fields[@]}"; do line+=" | $(( ${sum[$r.$f]} / ${cnt[$r]} ))"; done
    echo "$line |"
  done
} | tee "$R/supervisor-memory.md"

echo
hyperfine -N --style basic --warmup 2 --runs "${TIME_RUNS:-20}" \
  --export-json "$R/supervisor-time.json" --export-markdown "$R/supervisor-time.md" \
  -n "true: berth-supervise" "$BERTH run $W/${id}t.toml" \
  -n "true: in-process" "env BERTH_SUPERVISOR= $BERTH run $W/${id}t.toml" \
  -n "sleep 0.3: berth-supervise" "$BERTH run $W/${id}s.toml" \
  -n "sleep 0.3: in-process" "env BERTH_SUPERVISOR= $BERTH run $W/${id}s.toml"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
