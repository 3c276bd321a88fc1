#!/bin/bash
# bench/start.sh: cold start to exit of /bin/true from ONE busybox rootfs, in ONE hyperfine run:
#   berth run  vs  crun  vs  runc  vs  systemd-nspawn  vs  unshare+chroot (lower bound)
# plus an image-based `berth run` through a private berthd (embedded) and through berthd on a bus.
# plus the resident memory of berth's supervisor while the payload sleeps.
# Results: bench/results/start.{json,md}, bench/results/rss.txt. Run as root. Not part of CI.
#
# Usage: bench/start.sh [--runs N] [--warmup N] [--smoke]   (--smoke: 3 runs, a correctness pass)
# Environment: BERTH (default build/src/berth/berth), W (work dir, default /tmp/berth-bench-$$),
#   BERTH_BEFORE (optional: another berth binary, e.g. an older main, measured in the same run
#   as "berth run (before)" so a change is compared under the same machine load), BERTHD_BEFORE
#   (optional, with BERTH_BEFORE: its berthd, for an "image (embedded, before)" row)
#
# Fairness notes
#  * Every runtime starts the same read-only busybox tree with /bin/true, no network (each one's
#    "none"/private-network default), no terminal.
#  * crun 1.8 refuses this host's hybrid cgroups: it runs in a private mount namespace with
#    /sys/fs/cgroup/unified unmounted. That wrapper costs time, so the same wrapper around
#    /bin/true is its own row ("wrapper only"): subtract it from crun's row.
#  * berth runs with its full defaults (seccomp, capabilities, masked /proc, no_new_privs, its
#    own cgroup); crun/runc use `crun spec` defaults (no seccomp filter in crun's default spec).
#  * berth's default writable layer is persistent (overlayfs upper directory under
#    /var/lib/berth): mounting it makes overlayfs recreate its work directory and unmounting it
#    syncs the host file system holding it (overlayfs' syncfs of the upper layer), which the
#    peers, running the read-only tree directly, never pay. "berth run (ephemeral)" is the same
#    container with `ephemeral = true` (upper layer on tmpfs, as docker/podman --rm with volatile).
#  * Every row also reports user+system CPU (hyperfine's rusage of the command and its children):
#    on a shared machine it is steadier than wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
RUNS=30 WARM=3
while [ $# -gt 0 ]; do
  case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --warmup) WARM=$2; shift 2 ;;
    --smoke) RUNS=3; WARM=1; shift ;;
    *) echo "usage: $0 [--runs N] [--warmup N] [--smoke]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "bench/start.sh: run as root" >&2; exit 1; }
BERTH=${BERTH:-$top/build/src/berth/berth}
W=${W:-/tmp/berth-bench-$$}
R=$top/bench/results
mkdir -p "$W" "$R"
id=bench$$
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  crun delete -f "$id" >/dev/null 2>&1 || true
  runc delete -f "$id" >/dev/null 2>&1 || true
  rm -rf "$W" /var/lib/berth/rootfs-layers/benchtrue$$ /var/lib/berth/rootfs-layers/benchsleep$$
}
trap cleanup EXIT

bash "$top/tests/lib/make-busybox-rootfs.sh" "$W/rootfs"
# OCI bundles for crun/runc sharing the same rootfs, read-only.
mkdir -p "$W/oci" && (cd "$W/oci" && crun spec)
python3 - "$W" <<'PY'
import json, os, sys
w = sys.argv[1]
base = json.load(open(f'{w}/oci/config.json'))
for name, args in {'true': ['/bin/true'], 'sleep': ['/bin/sleep', '5']}.items():
    c = json.loads(json.dumps(base))
    c['root'] = {'path': f'{w}/rootfs', 'readonly': True}
    c['process']['args'] = args
    c['process']['terminal'] = False
    os.makedirs(f'{w}/oci/{name}', exist_ok=True)
    json.dump(c, open(f'{w}/oci/{name}/config.json', 'w'), indent=2)
PY
# berth declarations: same rootfs, default security, no network.
for what in true sleep; do
  cmd='["/bin/true"]'; [ $what = sleep ] && cmd='["/bin/sleep", "5"]'
  printf '[container]\nrootfs = "%s"\ncommand = %s\n' "$W/rootfs" "$cmd" > "$W/bench$what$$.toml"
done
printf '[container]\nrootfs = "%s"\ncommand = ["/bin/true"]\nephemeral = true\n' "$W/rootfs" > "$W/benchtrueeph$$.toml"

# Image-based starts (issue #14): the same busybox image in two overlay stores, reached by `berth
# run` through a private berthd it spawns (embedded: no bus) and through berthd on a bus (a private
# dbus-daemon with berth's policy, as tests/privileged/bus does). Same hyperfine run.
BERTHD=${BERTHD:-$(dirname "$BERTH")/../berthd/berthd}
tar -C "$W/rootfs" -cf "$W/rootfs.tar" .
printf '[container]\nimage = "benchimg:1"\ncommand = ["/bin/true"]\n' > "$W/benchimg$$.toml"
emb_env="env BERTH_STORAGE=embedded BERTH_BERTHD=$BERTHD BERTH_DAEMON_CONFIG=/nonexistent BERTH_STORE_BACKEND=overlay BERTH_STORE_ROOT=$W/store-emb"
$emb_env "$BERTH" image import "$W/rootfs.tar" --format rootfs --name benchimg:1 >/dev/null
. "$top/bench/berthd-bus.sh"
start_berthd img overlay "$W/store-bus"
bus_env="env BERTH_STORAGE=bus DBUS_SYSTEM_BUS_ADDRESS=$A_img"
$bus_env "$BERTH" image import "$W/rootfs.tar" --format rootfs --name benchimg:1 >/dev/null
berth_img_emb_cmd="$emb_env $BERTH run $W/benchimg$$.toml"
berth_img_bus_cmd="$bus_env $BERTH run $W/benchimg$$.toml"

# Sanity: every contender really runs the payload (a benchmark of a failing command is worthless).
nocg2() { echo "unshare -m --propagation private sh -c 'umount /sys/fs/cgroup/unified && exec $*'"; }
berth_cmd="$BERTH run $W/benchtrue$$.toml"
berth_eph_cmd="$BERTH run $W/benchtrueeph$$.toml"
before_cmd=${BERTH_BEFORE:+"$BERTH_BEFORE run $W/benchtrue$$.toml"}
before_emb_cmd=
if [ -n "${BERTH_BEFORE:-}" ] && [ -n "${BERTHD_BEFORE:-}" ]; then
  before_emb_cmd="${emb_env/BERTH_BERTHD=$BERTHD/BERTH_BERTHD=$BERTHD_BEFORE} $BERTH_BEFORE run $W/benchimg$$.toml"
fi
crun_cmd=$(nocg2 crun run -b "$W/oci/true" "$id")
wrap_cmd=$(nocg2 /bin/true)
runc_cmd="runc run -b $W/oci/true $id"
nspawn_cmd="systemd-nspawn -q -D $W/rootfs --register=no --keep-unit /bin/true"
unshare_cmd="unshare --fork --pid --mount --uts --ipc --net chroot $W/rootfs /bin/true"
have_berth=1
for c in "$berth_cmd" "$berth_eph_cmd" "$berth_img_emb_cmd" "$berth_img_bus_cmd" ${before_cmd:+"$before_cmd"} ${before_emb_cmd:+"$before_emb_cmd"} "$crun_cmd" "$runc_cmd" "$nspawn_cmd" "$unshare_cmd"; do
  if ! sh -c "$c" >/dev/null 2>&1; then
    echo "bench/start.sh: '$c' failed:" >&2; sh -c "$c" 2>&1 | tail -3 >&2 || true
    case $c in "$berth_cmd"|"$berth_eph_cmd"|"$berth_img_emb_cmd"|"$berth_img_bus_cmd") have_berth=0 ;; "$before_cmd") before_cmd= ;; "$before_emb_cmd") before_emb_cmd= ;; *) exit 1 ;; esac
  fi
done

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$R/start-load.txt"
args=(--style basic --warmup "$WARM" --runs "$RUNS" --export-json "$R/start.json" --export-markdown "$R/start.md")
[ $have_berth = 1 ] && args+=(-n "berth run" "$berth_cmd" -n "berth run (ephemeral)" "$berth_eph_cmd"
  -n "berth run image (embedded)" "$berth_img_emb_cmd" -n "berth run image (bus)" "$berth_img_bus_cmd")
[ -n "${before_cmd:-}" ] && args+=(-n "berth run (before)" "$before_cmd")
[ -n "${before_emb_cmd:-}" ] && args+=(-n "berth run image (embedded, before)" "$before_emb_cmd")
args+=(-n "crun (+ nocg2 wrapper)" "$crun_cmd" -n "nocg2 wrapper only" "$wrap_cmd"
       -n "runc" "$runc_cmd" -n "systemd-nspawn" "$nspawn_cmd" -n "unshare+chroot" "$unshare_cmd")
hyperfine "${args[@]}"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$R/start-load.txt"

# Ratios against crun (wrapper subtracted) and the unshare lower bound; CPU = mean user+system.
python3 - "$R/start.json" <<'PY' | tee "$R/start-ratios.md"
import json, sys
rs = {r['command']: r for r in json.load(open(sys.argv[1]))['results']}
med = {k: sorted(v['times'])[len(v['times'])//2] * 1e3 for k, v in rs.items()}
cpu = {k: (v['user'] + v['system']) * 1e3 for k, v in rs.items()}
wrap = 'nocg2 wrapper only'
crun = med['crun (+ nocg2 wrapper)'] - med[wrap]
crun_cpu = cpu['crun (+ nocg2 wrapper)'] - cpu[wrap]
low = med['unshare+chroot']
print('| runtime | median ms | vs crun | vs unshare+chroot | CPU ms (user+sys) | CPU vs crun |')
print('|---|---:|---:|---:|---:|---:|')
for k in ['berth run', 'berth run (ephemeral)', 'berth run image (embedded)', 'berth run image (bus)', 'berth run (before)', 'berth run image (embedded, before)', 'crun (+ nocg2 wrapper)', 'runc',
          'systemd-nspawn', 'unshare+chroot']:
    if k not in med: continue
    m, c = (crun, crun_cpu) if k.startswith('crun') else (med[k], cpu[k])
    name = 'crun (wrapper subtracted)' if k.startswith('crun') else k
    print(f'| {name} | {m:.1f} | {m/crun:.2f}x | {m/low:.2f}x | {c:.1f} | {c/crun_cpu:.2f}x |')
PY

# Supervisor RSS while the payload sleeps: every berth process outside the container.
if [ $have_berth = 1 ]; then
  "$BERTH" run "$W/benchsleep$$.toml" >/dev/null 2>&1 &
  bpid=$!
  sleep 2
  {
    echo "# berth run supervisor memory, sampled 2 s into 'sleep 5' (kB)"
    for p in $bpid $(pgrep -P $bpid || true); do
      [ -r /proc/$p/status ] || continue
      [ "$(readlink /proc/$p/ns/pid)" = "$(readlink /proc/self/ns/pid)" ] || continue  # inside: payload
      printf 'pid %-7s %-16s VmRSS %6s  VmHWM %6s  RssAnon %6s  RssFile %6s\n' "$p" "$(cat /proc/$p/comm)" \
        "$(awk '/^VmRSS/{print $2}' /proc/$p/status)" "$(awk '/^VmHWM/{print $2}' /proc/$p/status)" \
        "$(awk '/^RssAnon/{print $2}' /proc/$p/status)" "$(awk '/^RssFile/{print $2}' /proc/$p/status)"
      # What the process really costs: shared library text is counted in VmRSS but shared.
      printf '    %-16s Pss %6s  Private_Dirty %6s  Private_Clean %6s  Shared_Clean %6s\n' "" \
        "$(awk '/^Pss:/{print $2}' /proc/$p/smaps_rollup)" "$(awk '/^Private_Dirty:/{print $2}' /proc/$p/smaps_rollup)" \
        "$(awk '/^Private_Clean:/{print $2}' /proc/$p/smaps_rollup)" "$(awk '/^Shared_Clean:/{print $2}' /proc/$p/smaps_rollup)"
    done
  } | tee "$R/rss.txt"
  wait $bpid || true
fi
