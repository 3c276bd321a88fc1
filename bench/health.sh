#!/bin/bash
# bench/health.sh: what a health probe costs (issue #18), against podman's, in the same run.
#   1. wall and CPU (user+system of the whole command) per probe, hyperfine:
#        berth health NAME            the supervisor's path: berth -> fork -> `berth exec` path
#        podman healthcheck run NAME  podman 4.3 with runc (crun refuses this host's hybrid cgroups)
#      both running the same command, sh -c 'echo x >> /tmp/n', in the same busybox tree;
#   2. CPU per probe inside the supervisor: a container probing every 100 ms for 10 s; the
#      supervisor's reaped children's CPU (cutime + cstime of /proc/PID/stat) over the number of
#      probes the command counted;
#   3. the supervisor's resident memory (VmRSS, RssAnon) with the health check on and off,
#      sampled between probes (mean of N containers).
# Containers are stopped with SIGTERM (stop_signal = "SIGKILL": the payload dies, the teardown runs).
# Results: bench/results/health.md (+ health-time.json). Run as root. Not part of CI.
#
# Usage: bench/health.sh [SAMPLES]     Environment: BERTH (default build/src/berth/berth), TIME_RUNS
set -euo pipefail
N=${1:-3}
[ "$(id -u)" = 0 ] || { echo "bench/health.sh: run as root" >&2; exit 1; }
top=$(cd "$(dirname "$0")/.." && pwd)
R=$top/bench/results W=/tmp/berth-health-$$
BERTH=${BERTH:-$top/build/src/berth/berth}
mkdir -p "$W/run" "$W/state" "$W/out" "$R"
id=hbench$$
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 1
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  podman --runtime runc rm -f "$id" >/dev/null 2>&1 || true
  podman rmi -f "localhost/$id:bench" >/dev/null 2>&1 || true
  rm -rf "$W"
}
trap cleanup EXIT
export BERTH_RUN_DIR=$W/run BERTH_STATE_DIR=$W/state
bash "$top/tests/lib/make-busybox-rootfs.sh" "$W/rootfs" >/dev/null
probe='["/bin/sh", "-c", "echo x >> /tmp/n"]'
declare_it() { # NAME INTERVAL (empty: no [health])
  {
    printf '[container]\nrootfs = "%s"\ncommand = ["/bin/sleep", "3600"]\nephemeral = true\nstop_signal = "SIGKILL"\n' "$W/rootfs"
    if [ -n "$2" ]; then printf '[health]\ncommand = %s\ninterval = "%s"\nstart_interval = "%s"\n' "$probe" "$2" "$2"; fi
  } > "$W/$1.toml"
}
start_bg() { "$BERTH" run "$W/$1.toml" </dev/null >"$W/$1.log" 2>&1 & pids+=($!); echo $!; }
running() { "$BERTH" exec --no-stdin "$1" -- /bin/true >/dev/null 2>&1; }
wait_running() { for _ in $(seq 100); do running "$1" && return 0; sleep 0.1; done; cat "$W/$1.log" >&2; return 1; }
stop() { kill -TERM "$1" 2>/dev/null || true; for _ in $(seq 100); do [ -e "$W/run/containers/$2.json" ] || return 0; sleep 0.1; done; }

# 1. One probe, now: berth health vs podman healthcheck run.
declare_it "$id" 1h
start_bg "$id" >/dev/null
wait_running "$id"
podman_ok=yes
tar -C "$W/rootfs" -cf "$W/rootfs.tar" .
if ! podman import "$W/rootfs.tar" "localhost/$id:bench" >/dev/null 2>&1 ||
   ! podman --runtime runc run -d --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --name "$id" \
       --health-cmd "/bin/sh -c 'echo x >> /tmp/n'" --health-interval 0 "localhost/$id:bench" sleep 3600 >/dev/null 2>&1; then
  podman_ok=no
  echo "# podman could not run the container here: comparing with berth exec only" >&2
fi
cmds=(-n "berth health" "$BERTH health $id" -n "berth exec (same command)" "$BERTH exec --no-stdin $id -- /bin/sh -c 'echo x >> /tmp/n'")
[ $podman_ok = yes ] && cmds+=(-n "podman healthcheck run" "podman --runtime runc healthcheck run $id")
hyperfine -N --style basic --warmup 3 --runs "${TIME_RUNS:-30}" --export-json "$R/health-time.json" "${cmds[@]}" >&2
stop "${pids[-1]}" "$id"

# 2. CPU per probe in the supervisor: 10 s at 100 ms.
declare_it "${id}c" 100ms
sup=$(start_bg "${id}c")
wait_running "${id}c"
sleep 1
ticks() { awk '{print $16 + $17}' "/proc/$1/stat"; }
count() { "$BERTH" exec --no-stdin "${id}c" -- /bin/sh -c 'wc -l < /tmp/n 2>/dev/null || echo 0'; }
t0=$(ticks "$sup"); n0=$(count); sleep 10; t1=$(ticks "$sup"); n1=$(count)
hz=$(getconf CLK_TCK)
probes=$(( n1 - n0 ))
cpu_per_probe=$(awk -v t=$((t1 - t0)) -v hz="$hz" -v n="$probes" 'BEGIN { printf "%.2f", n ? t * 1000 / hz / n : 0 }')
stop "$sup" "${id}c"

# 3. Supervisor RSS, health on (probing every 200 ms) and off, sampled between probes.
declare -A sum
rss() { # LABEL INTERVAL
  local i p
  for ((i = 0; i < N; i++)); do
    declare_it "${id}m" "$2"
    p=$(start_bg "${id}m"); wait_running "${id}m"; sleep 2
    echo "# $1: pid $p exe $(readlink /proc/$p/exe)" >&2
    sum[$1.rss]=$(( ${sum[$1.rss]:-0} + $(awk '$1 == "VmRSS:" {print $2}' /proc/$p/status) ))
    sum[$1.anon]=$(( ${sum[$1.anon]:-0} + $(awk '$1 == "RssAnon:" {print $2}' /proc/$p/status) ))
    stop "$p" "${id}m"
  done
}
rss off ""
rss on 200ms

mean() { python3 -c "import json,sys; d=json.load(open('$R/health-time.json'))['results']; [print(f\"| {r['command']} | {r['median']*1000:.1f} | {(r['user']+r['system'])*1000:.1f} |\") for r in d]"; }
{
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); podman runs: $podman_ok"
  echo
  echo "| one probe, now | wall median (ms) | CPU user+system mean (ms) |"
  echo "|---|---:|---:|"
  mean
  echo
  echo "supervisor's probes: $probes in 10 s at interval 100 ms, CPU per probe (helper + probe, reaped by the supervisor): $cpu_per_probe ms"
  echo
  echo "| supervisor (berth-supervise), mean of $N | VmRSS kB | RssAnon kB |"
  echo "|---|---:|---:|"
  echo "| health check off | $(( ${sum[off.rss]} / N )) | $(( ${sum[off.anon]} / N )) |"
  echo "| health check on (every 200 ms) | $(( ${sum[on.rss]} / N )) | $(( ${sum[on.anon]} / N )) |"
} | tee "$R/health.md"
