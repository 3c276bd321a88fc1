#!/bin/bash
# bench/storage.sh: berth's storage against the physical limits of the same machine, in hyperfine
# runs where berth and its peers sit side by side.
#  1. Snapshot creation for images of 1 MiB, 100 MiB and 1 GiB of many small files: berth's
#     PrepareContainer (through berthd on a private bus, btrfs and overlay stores) next to
#     `btrfs subvolume snapshot`, an overlay mount, `cp -a --reflink=always` and `cp -a`.
#  2. Import of the largest layer (a rootfs tar): `berth image import` embedded and through berthd,
#     on loop btrfs and on the host filesystem (overlay store), against `tar -x` of the same tar
#     onto the same filesystem (with and without a final sync: berth makes the layer durable).
#  3. `berth df` with a fresh container of the largest image, beside du and btrfs filesystem du.
# btrfs lives on a private loop device under $W; the host filesystem part under $W too. Run as
# root. Not part of CI.
#
# Usage: bench/storage.sh [--sizes "1 100 1024"] [--runs N] [--import-runs N] [--smoke]
#                         [--import-only] [--no-host]
#   --smoke        sizes "1 8", 3 runs: a correctness pass of the script itself
#   --import-only  only part 2, for the largest size (`--import-only --sizes 1024`: the 1 GiB
#                  tar-split import comparison of docs/PERFORMANCE.md)
#   --no-host      skip the host-filesystem rows of part 2 (noisy on a shared machine)
# Environment: BERTH, BERTHD (default build/src/berth/berth, build/src/berthd/berthd), W (work dir)
# Results: bench/results/storage-*.json and bench/results/storage.md
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
SIZES="1 100 1024" RUNS=10 IRUNS=5 IMPORT_ONLY=0 HOST=1
while [ $# -gt 0 ]; do
  case $1 in
    --sizes) SIZES=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --import-runs) IRUNS=$2; shift 2 ;;
    --smoke) SIZES="1 8"; RUNS=3; IRUNS=3; shift ;;
    --import-only) IMPORT_ONLY=1; shift ;;
    --no-host) HOST=0; shift ;;
    *) echo "usage: $0 [--sizes LIST] [--runs N] [--import-runs N] [--smoke] [--import-only] [--no-host]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "bench/storage.sh: run as root" >&2; exit 1; }
BERTH=${BERTH:-$top/build/src/berth/berth}
BERTHD=${BERTHD:-$top/build/src/berthd/berthd}
for x in "$BERTH" "$BERTHD"; do [ -x "$x" ] || { echo "bench/storage.sh: $x not built" >&2; exit 1; }; done
W=${W:-/tmp/berth-bench-storage-$$}
R=$top/bench/results
mkdir -p "$W/mnt" "$W/host" "$R"
big=$(echo $SIZES | tr ' ' '\n' | sort -n | tail -1)
[ $IMPORT_ONLY = 1 ] && SIZES=$big
total_mib=0; for s in $SIZES; do total_mib=$((total_mib + s)); done
echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"

img_mib=$(( total_mib * 4 + big * 6 + 1024 ))
loop="" pids=()
cleanup() {
  set +e
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  for m in $(awk -v w="$W" '$5 ~ "^"w {print $5}' /proc/self/mountinfo | sort -r); do umount -l "$m"; done
  [ -n "$loop" ] && losetup -d "$loop" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
truncate -s "${img_mib}M" "$W/btrfs.img"
loop=$(losetup -f --show "$W/btrfs.img")
mkfs.btrfs -q -f "$loop"
mount "$loop" "$W/mnt"
M=$W/mnt H=$W/host
echo "btrfs on $loop at $M; host filesystem: $(stat -f -c %T "$H") at $H"

# berthd on its own private system-style bus per backend: start_berthd (bench/berthd-bus.sh).
. "$top/bench/berthd-bus.sh"
start_berthd btrfs btrfs "$M/store-bus"
start_berthd overlay overlay "$H/store-bus"
# berth's CLI, embedded (a private berthd it spawns) or through a berthd on the bus.
emb() { echo "env BERTH_STORAGE=embedded BERTH_DAEMON_CONFIG=$W/no-berthd.toml BERTH_STORE_ROOT=$1 $BERTH"; }
viabus() { echo "env BERTH_STORAGE=bus DBUS_SYSTEM_BUS_ADDRESS=$1 $BERTH"; }
mgr() { echo "busctl --address=$1 call org.berth.Storage1 /org/berth/Storage1 org.berth.Storage1.Manager"; }

# A tree of SIZE MiB of small files (1-42 KiB, ~21 KiB on average: 1 GiB is ~49k files, 64 per
# directory), deterministic.
make_tree() { # dir mib
  python3 - "$1" "$2" <<'PY'
import os, sys, random
d, mib = sys.argv[1], int(sys.argv[2])
random.seed(mib)
left, n = mib << 20, 0
block = os.urandom(42 << 10)
while left > 0:
    sub = os.path.join(d, f'd{n // 64:05d}')
    if n % 64 == 0: os.makedirs(sub, exist_ok=True)
    sz = min(left, random.randint(1, 42) << 10)
    with open(os.path.join(sub, f'f{n:06d}'), 'wb') as f: f.write(block[:sz])
    left -= sz; n += 1
PY
}

H_=(hyperfine --style basic --runs "$RUNS" --warmup 1)
for s in $SIZES; do
  base=$M/base$s
  btrfs subvolume create "$base" >/dev/null
  make_tree "$base" "$s"
  tar -C "$base" -cf "$W/layer$s.tar" .
  btrfs property set "$base" ro true
  if [ $IMPORT_ONLY = 1 ]; then btrfs subvolume delete "$base" >/dev/null; continue; fi
  for b in btrfs overlay; do
    a=A_$b
    $(viabus "${!a}") image import "$W/layer$s.tar" --name "img$s" >/dev/null
  done
  sync
  files=$(find "$base" -type f | wc -l)
  echo "== $s MiB: $files files"
  mkdir -p "$M/ovl$s"/{upper,work,merged}
  args=()
  for b in btrfs overlay; do
    a=A_$b
    args+=(-n "berth PrepareContainer $b ($s MiB)"
           --prepare "$(mgr "${!a}") ReleaseContainer s bench >/dev/null 2>&1; $(mgr "${!a}") RemoveContainer s bench >/dev/null 2>&1; true"
           "$(mgr "${!a}") PrepareContainer ssb bench img$s false >/dev/null")
  done
  args+=(-n "busctl round trip, no work ($s MiB)" --prepare true
           "busctl --address=$A_btrfs get-property org.berth.Storage1 /org/berth/Storage1 org.berth.Storage1.Manager Backend >/dev/null"
         -n "btrfs subvolume snapshot ($s MiB)"
           --prepare "btrfs subvolume delete $M/snap$s >/dev/null 2>&1; true"
           "btrfs subvolume snapshot $base $M/snap$s"
         -n "overlay mount ($s MiB)"
           --prepare "umount $M/ovl$s/merged 2>/dev/null; true"
           "mount -t overlay overlay -o lowerdir=$base,upperdir=$M/ovl$s/upper,workdir=$M/ovl$s/work $M/ovl$s/merged"
         -n "cp -a --reflink=always ($s MiB)"
           --prepare "rm -rf $M/cp$s"
           "cp -a --reflink=always $base $M/cp$s"
         -n "cp -a --reflink=never ($s MiB)"
           --prepare "rm -rf $M/cp$s; sync"
           "cp -a --reflink=never $base $M/cp$s")
  "${H_[@]}" --export-json "$R/storage-snap-$s.json" "${args[@]}"
  umount "$M/ovl$s/merged" 2>/dev/null || true
  btrfs subvolume delete "$M/snap$s" >/dev/null 2>&1 || true
  rm -rf "$M/cp$s"
  for b in btrfs overlay; do
    a=A_$b
    $(mgr "${!a}") ReleaseContainer s bench >/dev/null 2>&1 || true
    $(mgr "${!a}") RemoveContainer s bench >/dev/null 2>&1 || true
    # The import runs below import the same tar (same image id): start them without it.
    $(viabus "${!a}") image rm "img$s" >/dev/null
    $(viabus "${!a}") gc >/dev/null
  done
  btrfs subvolume sync "$M" >/dev/null
done

# Import throughput of the largest layer. (hyperfine wants a --prepare for every command or none.) Between runs berth's image is removed and collected
# (rm + gc) and btrfs's cleaner is waited for, so every run imports into a store without it.
T=$W/layer$big.tar
bsync="btrfs subvolume sync $M >/dev/null"
args=(-n "tar -x, btrfs" --prepare "rm -rf $M/x; mkdir $M/x; sync" "tar -C $M/x -xf $T"
      -n "tar -x + sync, btrfs" --prepare "rm -rf $M/x; mkdir $M/x; sync" "tar -C $M/x -xf $T && sync -f $M/x")
for mode in embedded berthd; do
  if [ $mode = embedded ]; then c=$(emb "$M/store-emb"); else c=$(viabus "$A_btrfs"); fi
  args+=(-n "berth import $mode, btrfs" --prepare "$c image rm imp >/dev/null 2>&1; $c gc >/dev/null; $bsync; sync"
         "$c image import $T --name imp >/dev/null")
done
[ $HOST = 1 ] && args+=(-n "tar -x, host fs" --prepare "rm -rf $H/x; mkdir $H/x; sync" "tar -C $H/x -xf $T"
       -n "tar -x + sync, host fs" --prepare "rm -rf $H/x; mkdir $H/x; sync" "tar -C $H/x -xf $T && sync -f $H/x")
for mode in embedded berthd; do
  [ $HOST = 1 ] || break
  if [ $mode = embedded ]; then c=$(emb "$H/store-emb"); else c=$(viabus "$A_overlay"); fi
  args+=(-n "berth import $mode, overlay on host fs" --prepare "$c image rm imp >/dev/null 2>&1; $c gc >/dev/null; sync"
         "$c image import $T --name imp >/dev/null")
done
args+=(-n "sha256 of the tar (openssl)" --prepare true "openssl dgst -sha256 $T >/dev/null")
echo "load average before the import runs: $(cut -d' ' -f1-3 /proc/loadavg)"
hyperfine --style basic --runs "$IRUNS" --warmup 1 --export-json "$R/storage-import.json" "${args[@]}"
# What the store keeps for the layer: a tar-split instead of a copy of the tar (docs/STORAGE.md).
echo "tar: $(stat -c %s "$T") bytes; store blobs + splits after an embedded import:" \
  "$(du -sb "$M/store-emb/blobs" "$M/store-emb/splits" 2>/dev/null | awk '{s+=$1} END {print s}') bytes"
echo "load average after the import runs: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ $IMPORT_ONLY = 1 ]; then
  python3 - "$R" <<'PY' | tee "$R/storage-import.md"
import json, sys
R = sys.argv[1]
def med(r): t = sorted(r['times']); return t[len(t)//2]
imp = {r['command']: r for r in json.load(open(f'{R}/storage-import.json'))['results']}
print('| import | median | mean ± sd | vs tar -x | vs tar -x + sync |')
print('|---|---:|---:|---:|---:|')
for k, r in imp.items():
    fs = 'btrfs' if 'btrfs' in k else 'host fs'
    t, ts = imp.get(f'tar -x, {fs}'), imp.get(f'tar -x + sync, {fs}')
    v = med(r)
    rel = lambda x: f'{v/med(x):.2f}x' if x else ''
    print(f"| {k} | {v:.2f} s | {r['mean']:.2f} s ± {r['stddev'] or 0:.2f} | {rel(t)} | {rel(ts)} |")
PY
  exit 0
fi

# What `berth df` costs with a fresh container of the largest image on each backend (btrfs walks
# the container next to its image, FIEMAP only for changed files), next to `du -s` and
# `btrfs filesystem du -s` (FIEMAP of every file) of the same container tree.
for b in btrfs overlay; do
  a=A_$b
  $(viabus "${!a}") image import "$T" --name dfimg >/dev/null
  $(mgr "${!a}") PrepareContainer ssb dfc dfimg false >/dev/null
done
snap=$(ls -d "$M"/store-bus/btrfs/snapshots/* | head -1)
hyperfine --style basic --runs "$IRUNS" --warmup 1 --export-json "$R/storage-df.json" \
  -n "berth df, btrfs" "$(viabus "$A_btrfs") df --json >/dev/null" \
  -n "berth df, overlay" "$(viabus "$A_overlay") df --json >/dev/null" \
  -n "du -s of the container (btrfs)" "du -s $snap >/dev/null" \
  -n "btrfs filesystem du -s of the container" "btrfs filesystem du -s $snap >/dev/null"

python3 - "$R" $SIZES <<'PY' | tee "$R/storage.md"
import json, sys
R, sizes = sys.argv[1], sys.argv[2:]
def med(r): t = sorted(r['times']); return t[len(t)//2]
def fmt(x): return f'{x*1e3:.1f} ms' if x < 1 else f'{x:.2f} s'
print('| snapshot creation (median) | ' + ' | '.join(f'{s} MiB' for s in sizes) + ' |')
print('|---|' + '---:|' * len(sizes))
rows = {}
for s in sizes:
    for r in json.load(open(f'{R}/storage-snap-{s}.json'))['results']:
        rows.setdefault(r['command'].rsplit(' (', 1)[0], {})[s] = med(r)
for k, v in rows.items():
    print(f'| {k} | ' + ' | '.join(fmt(v[s]) if s in v else '' for s in sizes) + ' |')
print()
imp = {r['command']: med(r) for r in json.load(open(f'{R}/storage-import.json'))['results']}
print('| import (median) | time | vs tar -x | vs tar -x + sync |')
print('|---|---:|---:|---:|')
for k, v in imp.items():
    fs = 'btrfs' if 'btrfs' in k else 'host fs'
    t, ts = imp.get(f'tar -x, {fs}'), imp.get(f'tar -x + sync, {fs}')
    print(f'| {k} | {fmt(v)} | {v/t:.2f}x | {v/ts:.2f}x |')
print()
print(f'| df with a fresh container of the {sizes[-1]} MiB image (median) | time |')
print('|---|---:|')
for r in json.load(open(f'{R}/storage-df.json'))['results']:
    print(f"| {r['command']} | {fmt(med(r))} |")
PY
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
