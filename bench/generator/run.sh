#!/bin/bash
# Benchmark: berth-generator over N declarations (default 100): a mix of the example declarations
# with drop-ins and dependencies between them, as systemd runs it at boot / daemon-reload.
# Usage: bench/generator/run.sh [BUILD_DIR] [N]     (hyperfine; prints mean time, writes JSON)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build}
n=${2:-100}
generator=$build/src/generator/berth-generator
[ -x "$generator" ] || { echo "build $generator first (ninja -C $build src/generator/berth-generator)" >&2; exit 1; }
# Generator output lives on tmpfs (/run) in real life: measure on tmpfs too.
shm=/dev/shm; [ -d "$shm" ] && [ -w "$shm" ] || shm=/tmp
tmp=$(mktemp -d "$shm/berth-bench-generator-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/etc" "$tmp/usr"
examples=("$top"/configs/examples/*.toml)
for i in $(seq 1 "$n"); do
  src=${examples[$(( i % ${#examples[@]} ))]}
  # Strip dependencies on other examples (chains are added below).
  sed -e '/^requires\|^wants\|^after/d' "$src" >"$tmp/usr/c$i.toml"
  if [ $(( i % 3 )) = 0 ]; then
    mkdir -p "$tmp/etc/c$i.toml.d"
    printf '[resources]\ncpu_weight = %d\n' $(( i + 1 )) >"$tmp/etc/c$i.toml.d/50-cpu.toml"
  fi
done
for i in $(seq 2 10 "$n"); do
  mkdir -p "$tmp/etc/c$i.toml.d"
  printf '[service]\nafter = ["c%d"]\n' $(( i - 1 )) >"$tmp/etc/c$i.toml.d/60-order.toml"
done
export BERTH_CONTAINERS_PATH=$tmp/etc:$tmp/usr BERTH_GENERATOR_KMSG=0
mkdir -p "$tmp/out"
"$generator" "$tmp/out" 2>"$tmp/errors" || true
units=$(ls "$tmp/out" | grep -c '^berth@' || true)
invalid=$(grep -c . "$tmp/errors" || true)
echo "generator: $units units from $n declarations ($invalid error lines)"
hyperfine --warmup 3 --runs 30 -N \
  --prepare "rm -rf $tmp/out" \
  --export-json "$tmp/result.json" \
  "$generator $tmp/out $tmp/out $tmp/out" | tee "$tmp/hyperfine.txt"
python3 - "$tmp/result.json" "$n" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
print(f"berth-generator, {sys.argv[2]} declarations: mean {r['mean']*1000:.2f} ms, "
      f"stddev {r['stddev']*1000:.2f} ms, min {r['min']*1000:.2f} ms")
PY
