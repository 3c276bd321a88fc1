#!/bin/bash
# bench/fleet-scale.sh: one host with many containers (issue #22), under a real systemd 252 booted
# by the integration harness (tests/integration/harness.sh). Not part of CI. Run as root.
#
#   --n N      (default 1000; 0 skips) N declarations, every fourth on a declared network:
#              berth-generator over them (hyperfine; goal < 100 ms), `systemctl daemon-reload`,
#              `berth plan`, `berth list`, `berth list --json` (best of 3 wall, and the CPU time
#              of the whole instance per call: berth + systemd + dbus-daemon), and the D-Bus
#              messages `berth list` sends (strace: sendmsg calls) at 10 and at N declarations.
#   --start M  (default 0 = skip) M containers started at once by `systemctl start berth.target`,
#              without and with a declared network: seconds until all are active, and CPU time.
#   --idle K   (default 0 = skip) K idle containers running at once under systemd, and (unless
#              --no-podman) K idle Podman containers on the host beside them, IN THE SAME RUN:
#              per container, berth's supervisor (the unit's MainPID, berth-supervise) vs Podman's
#              conmon: VmRSS, RssAnon, RssFile, Pss, Private_Dirty, page tables, threads, fds;
#              kernel memory from cgroup v1 memcg kmem counters where the host has them.
#   --timeout S  per wait for "all active" (default 300).
# Every time number is printed with the load average at that moment (the machine is shared).
# Results on stdout (copied into docs/PERFORMANCE.md by hand).
#
# Usage: bench/fleet-scale.sh [BUILD_DIR] [--n N] [--start M] [--idle K] [--no-podman] [--timeout S]
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=$top/build n=1000 start=0 idle=0 podman=1 wait_timeout=300
usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case $1 in
    --n) n=$2; shift 2;;
    --start) start=$2; shift 2;;
    --idle) idle=$2; shift 2;;
    --no-podman) podman=0; shift;;
    --timeout) wait_timeout=$2; shift 2;;
    -h|--help) usage; exit 0;;
    -*) usage >&2; exit 2;;
    *) build=$(cd "$1" && pwd); shift;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "fleet-scale: run as root" >&2; exit 1; }
[ -x "$build/src/generator/berth-generator" ] || { echo "fleet-scale: no build in $build (meson setup build && ninja -C build)" >&2; exit 1; }
for t in hyperfine strace; do command -v $t >/dev/null || { echo "fleet-scale: $t missing" >&2; exit 1; }; done
[ "$idle" -gt 0 ] && [ "$podman" = 1 ] && ! command -v podman >/dev/null && { echo "fleet-scale: podman missing (--no-podman)" >&2; exit 1; }
export IT_NAME=berth-fleet-scale-$$
. "$top/tests/integration/harness.sh"

# cgroup v1 memory controller (this host's hybrid layout): the booted instance gets its own memcg,
# so its kernel memory (memory.kmem.usage_in_bytes) can be told apart from the rest of the host.
memcg_root=/sys/fs/cgroup/memory memcg= memcg_home=
[ -e $memcg_root/memory.kmem.usage_in_bytes ] && memcg=$memcg_root/$IT_NAME
podman_root=$IT_WORK/$IT_NAME.podman podman_run=/run/$IT_NAME.podman
P=(podman --root "$podman_root" --runroot "$podman_run" --runtime runc --cgroup-manager=cgroupfs --events-backend=none)
cleanup() {
  if [ -d "$podman_root" ]; then
    "${P[@]}" rm -a -f -t 0 >/dev/null 2>&1
    "${P[@]}" system reset -f >/dev/null 2>&1
    # podman's overlay driver bind-mounts its directory onto itself (and reset leaves it)
    awk -v r="$podman_root/" -v u="$podman_run/" 'index($5, r) == 1 || index($5, u) == 1 {print $5}' \
      /proc/self/mountinfo | sort -r | while read -r m; do umount "$m"; done
    rm -rf "$podman_root" "$podman_run"
  fi
  it_teardown
  [ -n "$memcg" ] && rmdir "$memcg" "$memcg-podman" 2>/dev/null
  rm -rf "$state" "$image_tar" "$IT_WORK/$IT_NAME.times" "$IT_WORK/$IT_NAME.podman.err"
}
state=$IT_WORK/$IT_NAME.state image_tar=$IT_WORK/$IT_NAME.image.tar
trap cleanup EXIT
trap 'exit 130' INT TERM
IT_ROOTFS=$IT_WORK/busybox-rootfs
bash "$top/tests/lib/make-busybox-rootfs.sh" "$IT_ROOTFS" || exit 1
tar -C "$IT_ROOTFS" --exclude=.berth-rootfs-complete -cf "$image_tar" . || exit 1
it_install "$build"
if [ -n "$memcg" ]; then   # only the instance's processes are born in it: we go back at once
  memcg_home=$memcg_root$(sed -n 's/^[0-9]*:memory://p' /proc/self/cgroup)
  mkdir "$memcg" && echo $$ > "$memcg/cgroup.procs"
fi
it_boot "$state"
[ -n "$memcg" ] && echo $$ > "$memcg_home/cgroup.procs"
echo "systemd booted in ${IT_BOOT_MS} ms; $(nproc) CPUs"
# The harness keeps /proc/sys read-only; the instance has its own network namespace, so its
# /proc/sys/net is its own: a declared network sets ip_forward there (as tests/integration does).
it_in sh -c 'mount --bind /proc/sys/net /proc/sys/net && mount -o remount,bind,rw /proc/sys/net' ||
  { echo "fleet-scale: cannot make the instance's /proc/sys/net writable" >&2; exit 1; }
it_in berth image import "$image_tar" --name busybox:scale >/dev/null 2>&1 || { echo "image import failed" >&2; exit 1; }

decl_dir=$state/etc-berth/containers   # the instance's /etc/berth/containers (a bind mount)
mkdir -p "$decl_dir" "$state/etc-berth/networks"
printf '[network]\nsubnets = ["10.89.200.0/22"]\n' > "$state/etc-berth/networks/scale.toml"
declare_n() { # COUNT [EVERY]: c1..cCOUNT; every EVERY-th (0: none) on the declared network "scale"
  local count=$1 every=${2:-0} i net
  rm -rf "$decl_dir"/c*.toml
  for ((i = 1; i <= count; i++)); do
    net=; [ "$every" -gt 0 ] && [ $(( i % every )) = 0 ] && net=$'\n[network]\nnetworks = ["scale"]'
    printf '[container]\nimage = "busybox:scale"\nephemeral = true\ncommand = ["sh", "-c", "trap '\''exit 0'\'' TERM; sleep 100000 & wait"]\n%s\n' \
      "$net" > "$decl_dir/c$i.toml"
  done
}
load() { cut -d' ' -f1-3 /proc/loadavg; }
now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $(( t / 1000 )); }
cpu_ms() { echo $(( $(awk '$1 == "usage_usec" {print $2}' "$IT_CGDIR/cpu.stat") / 1000 )); } # the whole instance
snap_times() { # bash `times` into a file: run in this shell, not in $(...): a subshell has its
  # own, empty count of its children's CPU time
  times > "$IT_WORK/$IT_NAME.times"
}
times_ms() { # user+system CPU of this shell's waited-for children at the last snap_times
  awk 'NR == 2 {for (i = 1; i <= 2; i++) {split($i, a, /[ms]/); t += a[1] * 60000 + a[2] * 1000}; printf "%d", t}' "$IT_WORK/$IT_NAME.times"
}
timed() { # LABEL RUNS CMD...: best wall time of RUNS runs, CPU per run of the command itself
  # (nsenter'd from here: it stays in our cgroup) and of the instance (systemd, dbus-daemon, the
  # generators systemd runs)
  local label=$1 runs=$2 best= t c0 k0 k1 i; shift 2
  c0=$(cpu_ms); snap_times; k0=$(times_ms)
  for ((i = 0; i < runs; i++)); do
    t=$(now_ms); "$@" >/dev/null 2>&1 || echo "  ($label: exit status $?)"; t=$(( $(now_ms) - t ))
    if [ -z "$best" ] || [ "$t" -lt "$best" ]; then best=$t; fi
  done
  snap_times; k1=$(times_ms)
  echo "$label: best of $runs ${best} ms wall; CPU per run: command $(( (k1 - k0) / runs )) ms, instance $(( ($(cpu_ms) - c0) / runs )) ms (load $(load))"
}
bus_messages() { # "SENT WAITS" of `berth list`: sendmsg calls (each D-Bus message is one) and
  # poll/ppoll calls (each a wait for the bus: a round trip that was not pipelined)
  it_in strace -f -qq -e trace=sendmsg,poll,ppoll -o /tmp/strace.out berth list >/dev/null 2>&1
  it_in awk '/sendmsg\(/ {s++} /poll\(/ {w++} END {print s + 0, w + 0}' /tmp/strace.out
}
count_active() { it_in systemctl list-units --no-legend --plain --state=active 'berth@c*.service' | wc -l; }
wait_active() { # COUNT T0_MS: until COUNT berth@c* units are active; dumps what is not on timeout
  local want=$1 t0=$2 active
  while :; do
    active=$(count_active)
    [ "$active" -ge "$want" ] && return 0
    if [ $(( $(now_ms) - t0 )) -gt $(( wait_timeout * 1000 )) ]; then
      echo "TIMEOUT after ${wait_timeout} s: $active of $want active; jobs and units not active:"
      it_in systemctl list-jobs --no-legend | head -5
      it_in systemctl list-units --no-legend --plain --all 'berth@c*.service' | grep -v ' active ' | head -5
      local u; u=$(it_in systemctl list-units --no-legend --plain --all 'berth@c*.service' | awk '$3 != "active" {print $1; exit}')
      [ -n "$u" ] && it_in journalctl -u "$u" --no-pager -o cat | tail -15
      return 1
    fi
    sleep 0.2
  done
}
stop_all() {
  it_in systemctl stop berth.target 'berth@c*.service'
  it_in systemctl reset-failed 'berth@c*.service' 2>/dev/null
  true
}

# On a host, multi-user.target wants berth.target (units/berth.target), which wants every declared
# container's unit: all of them stay loaded in systemd even while stopped. The harness boots into
# berth-it.target instead; this unit references berth.target (After=, nothing is started) so that
# the instance keeps the same units loaded as a host does (`pin`), and is stopped to see the other
# case (`unpin`): then systemd loads each unit on the first access and unloads it again (GC).
pin() {
  it_in sh -c 'printf "[Unit]\nAfter=berth.target\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n" \
    > /run/systemd/system/fleet-scale-pin.service && systemctl daemon-reload && systemctl start fleet-scale-pin.service'
}
unpin() { it_in systemctl stop fleet-scale-pin.service; }
loaded_units() { it_in systemctl list-units --all --no-legend --plain 'berth@c*.service' | wc -l; }

if [ "$n" -gt 0 ]; then
  echo "== berth list with the units NOT loaded in systemd (berth.target not wanted by the boot target)"
  for k in 10 100; do
    declare_n "$k" 4
    it_in systemctl daemon-reload
    echo "$k declarations, $(loaded_units) of their units loaded:"
    timed "  berth list" 1 it_in berth list
  done
  declare_n 10 4
  pin
  echo "== $n declarations (units loaded, as on a host where multi-user.target wants berth.target)"
  read -r small small_waits < <(bus_messages)
  declare_n "$n" 4
  gen=$build/src/generator/berth-generator
  gen_out=$(mktemp -d /dev/shm/berth-fleet-scale-XXXXXX)
  echo "generator over $n declarations (load $(load)):"
  BERTH_CONTAINERS_PATH=$decl_dir BERTH_NETWORKS_PATH=$state/etc-berth/networks BERTH_GENERATOR_KMSG=0 \
    hyperfine -N --warmup 2 --runs 20 --prepare "rm -rf $gen_out/out" \
    "$gen $gen_out/out $gen_out/out $gen_out/out" 2>&1 | sed -n 's/^ *\(Time\|Range\)/  \1/p'
  rm -rf "$gen_out"
  timed "systemctl daemon-reload" 3 it_in systemctl daemon-reload
  echo "generated units: $(it_in sh -c 'ls /run/systemd/generator | grep -c "^berth@"'), loaded: $(loaded_units)"
  timed "berth plan" 3 it_in berth plan
  timed "berth list" 3 it_in berth list
  timed "berth list --json" 3 it_in berth list --json
  read -r big big_waits < <(bus_messages)
  echo "berth list D-Bus messages sent: $small with 10 declarations, $big with $n;" \
    "bus waits (poll): $small_waits and $big_waits"
  echo "  per declaration: $(awk -v a="$small" -v b="$big" -v n="$n" 'BEGIN {printf "%.2f", (b - a) / (n - 10)}') messages," \
    "$(awk -v a="$small_waits" -v b="$big_waits" -v n="$n" 'BEGIN {printf "%.2f", (b - a) / (n - 10)}') waits"
  unpin
fi

if [ "$start" -gt 0 ]; then
  for mode in plain network; do
    if [ $mode = plain ]; then declare_n "$start"; else declare_n "$start" 1; fi
    it_in systemctl daemon-reload
    l=$(load) c0=$(cpu_ms) t0=$(now_ms)
    it_in systemctl start --no-block berth.target
    if wait_active "$start" "$t0"; then
      echo "start $start at once ($mode): all active after $(( $(now_ms) - t0 )) ms, instance CPU $(( $(cpu_ms) - c0 )) ms (load before $l, after $(load))"
    fi
    c0=$(cpu_ms) t0=$(now_ms)
    stop_all
    echo "  stop all ($mode): $(( $(now_ms) - t0 )) ms, instance CPU $(( $(cpu_ms) - c0 )) ms"
  done
fi

# proc_stats PID...: the sums of VmRSS RssAnon RssFile Pss Private_Dirty VmPTE Threads fds (kB)
proc_stats() {
  local p
  for p in "$@"; do
    awk '$1 ~ /^(VmRSS|RssAnon|RssFile|RssShmem|VmPTE|Threads):$/ {print $1, $2}' /proc/$p/status
    awk '$1 ~ /^(Pss|Private_Dirty):$/ {print $1, $2}' /proc/$p/smaps_rollup
    echo "fds: $(ls /proc/$p/fd | wc -l)"
  done | awk '{s[$1] += $2} END {printf "%d %d %d %d %d %d %d %d\n", s["VmRSS:"], s["RssAnon:"], s["RssFile:"] + s["RssShmem:"], s["Pss:"], s["Private_Dirty:"], s["VmPTE:"], s["Threads:"], s["fds:"]}'
}
kmem_kb() { [ -r "$1/memory.kmem.usage_in_bytes" ] && echo $(( $(cat "$1/memory.kmem.usage_in_bytes") / 1024 )) || echo 0; }
# Host pids of the instance's berth-supervise processes (the MainPIDs once handed over).
supervisors() {
  local p
  for p in $(grep -l "/$IT_NAME/" /proc/[0-9]*/cgroup 2>/dev/null | cut -d/ -f3); do
    [ "$(cat /proc/$p/comm 2>/dev/null)" = berth-supervise ] && echo "$p"
  done
}
conmons() {
  local p
  for p in $(pgrep -x conmon); do grep -qF -- "$podman_root" /proc/$p/cmdline 2>/dev/null && echo "$p"; done
}
row() { # NAME COUNT SUMS...: the per-process means
  local name=$1 cnt=$2; shift 2
  [ "$cnt" -gt 0 ] || { echo "| $name | 0 | | | | | | | | |"; return; }
  awk -v name="$name" -v c="$cnt" -v s="$*" 'BEGIN {split(s, a, " "); printf "| %s | %d", name, c
    for (i = 1; i <= 8; i++) printf(i == 7 ? " | %.1f" : " | %.0f", a[i] / c); print " |"}'
}

if [ "$idle" -gt 0 ]; then
  echo "== $idle idle containers at once"
  declare_n "$idle"
  it_in systemctl daemon-reload
  pid1_rss0=$(awk '$1 == "VmRSS:" {print $2}' /proc/$IT_PID1/status)
  [ -n "$memcg" ] && kmem0=$(kmem_kb "$memcg")
  t0=$(now_ms)
  it_in systemctl start --no-block berth.target
  wait_active "$idle" "$t0" || exit 1
  echo "berth: $idle active after $(( $(now_ms) - t0 )) ms (load $(load))"
  # The hand-over to berth-supervise happens 100 ms after each payload started.
  for ((i = 0; i < 100; i++)); do [ "$(supervisors | wc -l)" -ge "$idle" ] && break; sleep 0.2; done
  if [ "$podman" = 1 ]; then
    # Podman 4.3: crun refuses hybrid cgroups, so runc with cgroupfs; the RLIMIT_NOFILE/NPROC
    # defaults podman asks for exceed this host's hard limits, hence the explicit --ulimit.
    # Kernel objects made at fork are charged to the forking memcg: podman runs in a memcg of its
    # own, and conmon and the payloads move to libpod_parent/ (cgroupfs); both deltas count.
    pod_parent=$memcg_root/libpod_parent memcg_pod=
    if [ -n "$memcg" ]; then memcg_pod=$memcg-podman; mkdir -p "$memcg_pod" "$pod_parent"; fi
    podk0=$(kmem_kb "$pod_parent/conmon") podall0=$(kmem_kb "$pod_parent") podown0=$(kmem_kb "$memcg_pod")
    t0=$(now_ms)
    seq 1 "$idle" | ( [ -n "$memcg_pod" ] && echo $BASHPID > "$memcg_pod/cgroup.procs"; exec xargs -P 4 -I{} "${P[@]}" run -d --name "scale{}" --network none \
      --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 --rootfs "$IT_ROOTFS" \
      sh -c "trap 'exit 0' TERM; sleep 100000 & wait" >/dev/null 2>"$IT_WORK/$IT_NAME.podman.err" )
    up=$("${P[@]}" ps -q --filter status=running | wc -l)
    echo "podman: $up of $idle running after $(( $(now_ms) - t0 )) ms (load $(load))"
    [ "$up" -lt "$idle" ] && tail -3 "$IT_WORK/$IT_NAME.podman.err"
  fi
  sleep 2   # both sets idle: sample
  mapfile -t sp < <(supervisors)
  echo
  echo "Per process, mean over the processes (kB; threads and fds: count):"
  echo
  echo "| process | count | VmRSS | RssAnon | RssFile+RssShmem | Pss | Private_Dirty | VmPTE | threads | fds |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  row "berth-supervise" "${#sp[@]}" "$([ "${#sp[@]}" -gt 0 ] && proc_stats "${sp[@]}")"
  if [ "$podman" = 1 ]; then
    mapfile -t cp < <(conmons)
    row "conmon (podman 4.3, runc)" "${#cp[@]}" "$([ "${#cp[@]}" -gt 0 ] && proc_stats "${cp[@]}")"
  fi
  echo
  echo "systemd (PID 1 of the instance) VmRSS: +$(( ($(awk '$1 == "VmRSS:" {print $2}' /proc/$IT_PID1/status) - pid1_rss0) / idle )) kB per container"
  if [ -n "$memcg" ]; then
    echo "kernel memory (memcg kmem) per container:"
    echo "  berth, whole instance (supervisor, payload, its namespaces and mounts, the unit in systemd): $(( ($(kmem_kb "$memcg") - kmem0) / idle )) kB"
    if [ "$podman" = 1 ]; then
      echo "  podman, conmon's memcg (libpod_parent/conmon): $(( ($(kmem_kb "$pod_parent/conmon") - podk0) / idle )) kB"
      echo "  podman, all (the memcg podman ran in, + libpod_parent: conmon, payload, its namespaces and mounts): $(( ($(kmem_kb "$pod_parent") - podall0 + $(kmem_kb "$memcg_pod") - podown0) / idle )) kB"
    fi
  fi
  echo "load average: $(load)"
  t0=$(now_ms)
  stop_all
  echo "berth: stop all $idle: $(( $(now_ms) - t0 )) ms"
  if [ "$podman" = 1 ]; then
    t0=$(now_ms)
    "${P[@]}" rm -a -f -t 0 >/dev/null 2>&1
    echo "podman: rm -f all $idle: $(( $(now_ms) - t0 )) ms"
  fi
fi
