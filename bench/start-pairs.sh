#!/bin/bash
# bench/start-pairs.sh: an image-based `berth run` of /bin/true in embedded mode (a private berthd)
# with two builds taking turns, and through berthd on a bus, for A/B comparisons on a shared
# machine (issue #14). Rows measured one after the other (hyperfine, bench/start.sh) drift with
# the other work on the machine by more than the few ms a start-path change moves; here each
# round runs every row once, in a random order, and the report gives medians and the paired
# difference of B against A (mean and standard error over the rounds), for wall time and for
# CPU (user+system of `berth` and its children, the private berthd included; for the bus row also
# the resident berthd's CPU during the start, read from /proc in clock ticks).
#
#   BERTH_A=old/berth BERTHD_A=old/berthd bench/start-pairs.sh [--rounds 40] [--warmup 3] [--containers N]
#   (B defaults to this tree's build/; the bus row runs B's berth and berthd; --containers N
#   first runs N other containers of the image in each store, so that each store holds N more
#   container records: what a private berthd reads at its store open grows with them)
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
ROUNDS=40 WARM=3 CONTAINERS=0
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --warmup) WARM=$2; shift 2 ;;
    --containers) CONTAINERS=$2; shift 2 ;;
    *) echo "usage: BERTH_A=... BERTHD_A=... $0 [--rounds N] [--warmup N] [--containers N]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "bench/start-pairs.sh: run as root" >&2; exit 1; }
: "${BERTH_A:?BERTH_A: the berth binary to compare against}" "${BERTHD_A:?BERTHD_A: its berthd}"
BERTH_B=${BERTH_B:-$top/build/src/berth/berth}
BERTHD_B=${BERTHD_B:-$top/build/src/berthd/berthd}
BERTHD=$BERTHD_B
W=${W:-/tmp/berth-pairs-$$}
mkdir -p "$W"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$W"
}
trap cleanup EXIT

bash "$top/tests/lib/make-busybox-rootfs.sh" "$W/rootfs"
tar -C "$W/rootfs" -cf "$W/rootfs.tar" .
printf '[container]\nimage = "benchimg:1"\ncommand = ["/bin/true"]\n' > "$W/pairs$$.toml"
emb="BERTH_STORAGE=embedded BERTH_DAEMON_CONFIG=/nonexistent BERTH_STORE_BACKEND=overlay BERTH_STORE_ROOT=$W/store-emb"
env $emb BERTH_BERTHD="$BERTHD_B" "$BERTH_B" image import "$W/rootfs.tar" --format rootfs --name benchimg:1 >/dev/null
. "$top/bench/berthd-bus.sh"
start_berthd img overlay "$W/store-bus"
env BERTH_STORAGE=bus DBUS_SYSTEM_BUS_ADDRESS="$A_img" "$BERTH_B" image import "$W/rootfs.tar" --format rootfs \
  --name benchimg:1 >/dev/null
bus_berthd=${pids[-1]}
mkdir -p "$W/others"
for i in $(seq 1 "$CONTAINERS"); do
  printf '[container]\nimage = "benchimg:1"\ncommand = ["/bin/true"]\n' > "$W/others/other$i.toml"
  env $emb BERTH_BERTHD="$BERTHD_B" "$BERTH_B" run "$W/others/other$i.toml"
  env BERTH_STORAGE=bus DBUS_SYSTEM_BUS_ADDRESS="$A_img" "$BERTH_B" run "$W/others/other$i.toml"
done

python3 - "$ROUNDS" "$WARM" "$bus_berthd" <<PY
import os, random, statistics, subprocess, sys, time
rounds, warm, berthd_pid = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def env(extra):
    e = dict(os.environ)
    for kv in extra.split():
        k, v = kv.split('=', 1)
        e[k] = v
    return e
rows = {
    'A embedded': (['$BERTH_A', 'run', '$W/pairs$$.toml'], env('$emb BERTH_BERTHD=$BERTHD_A')),
    'B embedded': (['$BERTH_B', 'run', '$W/pairs$$.toml'], env('$emb BERTH_BERTHD=$BERTHD_B')),
    'B bus': (['$BERTH_B', 'run', '$W/pairs$$.toml'], env('BERTH_STORAGE=bus DBUS_SYSTEM_BUS_ADDRESS=$A_img')),
}
tick = os.sysconf('SC_CLK_TCK')
def berthd_cpu():
    f = open(f'/proc/{berthd_pid}/stat').read().rsplit(')', 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick
def once(name):
    argv, e = rows[name]
    before = berthd_cpu() if 'bus' in name else 0.0
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, env=e, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    err = p.stderr.read().decode(errors='replace')
    if status != 0:
        sys.exit(f'{name}: exit status {status}: {err}')
    cpu = ru.ru_utime + ru.ru_stime + ((berthd_cpu() - before) if 'bus' in name else 0.0)
    return wall * 1000, cpu * 1000
for _ in range(warm):
    for n in rows: once(n)
load0 = open('/proc/loadavg').read().split()[:3]
data = {n: [] for n in rows}
for _ in range(rounds):
    order = list(rows)
    random.shuffle(order)
    for n in order: data[n].append(once(n))
load1 = open('/proc/loadavg').read().split()[:3]
print(f'load average before {" ".join(load0)}, after {" ".join(load1)}; {rounds} rounds; '
      f'{$CONTAINERS} other containers in each store')
print(f'{"row":<12} {"wall median ms":>15} {"CPU median ms":>14}')
for n, v in data.items():
    print(f'{n:<12} {statistics.median(x[0] for x in v):>15.1f} {statistics.median(x[1] for x in v):>14.1f}')
def paired(a, b, i):
    d = [y[i] - x[i] for x, y in zip(data[a], data[b])]
    return statistics.mean(d), statistics.stdev(d) / len(d) ** 0.5, statistics.median(d)
for a, b in (('A embedded', 'B embedded'), ('B bus', 'B embedded'), ('B bus', 'A embedded')):
    for i, what in ((0, 'wall'), (1, 'CPU')):
        m, se, med = paired(a, b, i)
        print(f'{b} - {a}, {what}: mean {m:+.1f} ms (standard error {se:.1f}), median {med:+.1f} ms')
PY
