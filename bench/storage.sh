#!/bin/bash
# bench/storage.sh: snapshot creation time for images of 1 MiB, 100 MiB and 1 GiB made of many
# small files, on btrfs and overlay, next to `cp -a` and `cp -a --reflink=always`; and import
# throughput of a large layer against `tar -x` of the same tar (the physical limit here).
# Everything happens on a private loop-mounted btrfs under $W. Run as root. Not part of CI.
#
# Usage: bench/storage.sh [--sizes "1 100 1024"] [--runs N] [--smoke]
#   --smoke  sizes "1 8", 3 runs: a correctness pass of the script itself
# Environment: BERTH_STORE_BENCH (default build/bench/berth-store-bench; when present it measures
#   berth's own SnapshotBackend::prepare_snapshot and layer import through the store library).
# Results: bench/results/storage-*.json and bench/results/storage.md
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
SIZES="1 100 1024" RUNS=10
while [ $# -gt 0 ]; do
  case $1 in
    --sizes) SIZES=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --smoke) SIZES="1 8"; RUNS=3; shift ;;
    *) echo "usage: $0 [--sizes LIST] [--runs N] [--smoke]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "bench/storage.sh: run as root" >&2; exit 1; }
W=${W:-/tmp/berth-bench-storage-$$}
R=$top/bench/results
SB=${BERTH_STORE_BENCH:-$top/build/bench/berth-store-bench}
mkdir -p "$W/mnt" "$R"
total_mib=0; for s in $SIZES; do total_mib=$((total_mib + s)); done
img_mib=$(( total_mib * 6 + 512 ))
loop=""
cleanup() {
  set +e
  for m in $(awk -v w="$W" '$5 ~ "^"w {print $5}' /proc/self/mountinfo | sort -r); do umount -l "$m"; done
  [ -n "$loop" ] && losetup -d "$loop" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
truncate -s "${img_mib}M" "$W/btrfs.img"
loop=$(losetup -f --show "$W/btrfs.img")
mkfs.btrfs -q -f "$loop"
mount "$loop" "$W/mnt"
M=$W/mnt

# A tree of SIZE MiB of small files (sizes 1..32 KiB, 64 files per directory), deterministic.
make_tree() { # dir mib
  python3 - "$1" "$2" <<'PY'
import os, sys, random
d, mib = sys.argv[1], int(sys.argv[2])
random.seed(mib)
left, n = mib << 20, 0
block = os.urandom(32 << 10)
while left > 0:
    sub = os.path.join(d, f'd{n // 64:05d}')
    if n % 64 == 0: os.makedirs(sub, exist_ok=True)
    sz = min(left, random.randint(1, 32) << 10)
    with open(os.path.join(sub, f'f{n:06d}'), 'wb') as f: f.write(block[:sz])
    left -= sz; n += 1
PY
}

H=(hyperfine --style basic --runs "$RUNS" --warmup 1)
for s in $SIZES; do
  base=$M/base$s
  btrfs subvolume create "$base" >/dev/null
  make_tree "$base" "$s"
  tar -C "$base" -cf "$W/layer$s.tar" .
  btrfs property set "$base" ro true
  sync
  files=$(find "$base" -type f | wc -l)
  echo "== $s MiB: $files files"
  mkdir -p "$M/ovl$s"/{upper,work,merged}
  args=(-n "btrfs subvolume snapshot ($s MiB)"
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
  if [ -x "$SB" ]; then
    for backend in btrfs overlay; do
      args+=(-n "berth prepare_snapshot $backend ($s MiB)"
             --prepare "$SB reset --backend $backend --root $M/store-$backend-$s --tar $W/layer$s.tar"
             "$SB prepare --backend $backend --root $M/store-$backend-$s")
    done
  fi
  "${H[@]}" --export-json "$R/storage-snap-$s.json" "${args[@]}"
  umount "$M/ovl$s/merged" 2>/dev/null || true
  btrfs subvolume delete "$M/snap$s" >/dev/null 2>&1 || true
  rm -rf "$M/cp$s"
done

# Import throughput: the largest tar, `tar -x` vs berth's importer (digest verified while streaming).
big=$(echo $SIZES | tr ' ' '\n' | sort -n | tail -1)
args=(-n "tar -x ($big MiB layer)" --prepare "rm -rf $M/x; mkdir $M/x; sync" "tar -C $M/x -xf $W/layer$big.tar"
      -n "sha256sum ($big MiB layer)" "sha256sum $W/layer$big.tar")
if [ -x "$SB" ]; then
  args+=(-n "berth import btrfs ($big MiB layer)" --prepare "rm -rf $M/si; sync" "$SB import --backend btrfs --root $M/si --tar $W/layer$big.tar"
         -n "berth import overlay ($big MiB layer)" --prepare "rm -rf $M/so; sync" "$SB import --backend overlay --root $M/so --tar $W/layer$big.tar")
fi
"${H[@]}" --export-json "$R/storage-import.json" "${args[@]}"

python3 - "$R" $SIZES <<'PY' | tee "$R/storage.md"
import json, sys, os
R, sizes = sys.argv[1], sys.argv[2:]
def med(r): t = sorted(r['times']); return t[len(t)//2]
def fmt(x): return f'{x*1e3:.1f} ms' if x < 1 else f'{x:.2f} s'
print('| operation | ' + ' | '.join(f'{s} MiB' for s in sizes) + ' |')
print('|---|' + '---:|' * len(sizes))
rows = {}
for s in sizes:
    for r in json.load(open(f'{R}/storage-snap-{s}.json'))['results']:
        rows.setdefault(r['command'].rsplit(' (', 1)[0], {})[s] = med(r)
for k, v in rows.items():
    print(f'| {k} | ' + ' | '.join(fmt(v[s]) if s in v else '' for s in sizes) + ' |')
print()
imp = {r['command']: med(r) for r in json.load(open(f'{R}/storage-import.json'))['results']}
tarx = next(v for k, v in imp.items() if k.startswith('tar -x'))
print('| import | median | vs tar -x |')
print('|---|---:|---:|')
for k, v in imp.items():
    print(f'| {k} | {fmt(v)} | {v/tarx:.2f}x |')
PY
