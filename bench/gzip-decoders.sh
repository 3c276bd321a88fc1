#!/bin/bash
# bench/gzip-decoders.sh: zlib against ISA-L and libdeflate for berth's gzip layers (issue #17,
# "Decompression: compare zlib with libdeflate or ISA-L ... and use the faster").
#   1. bench/gzip-decoders.cpp (built here with g++): each decoder in one process from memory,
#      round-robin, median wall and CPU time: libarchive (berth's zlib path), bare zlib, ISA-L
#      isal_inflate (streaming), libdeflate (whole buffer: no streaming API). On a shared
#      machine read the CPU columns: the wall time is mostly waiting for a CPU.
#   2. hyperfine over the command-line tools on the same files: gzip -dc (GNU gzip: its own
#      inflate, not zlib), igzip -dc (ISA-L), libdeflate-gunzip -c.
# Input: layers like bench/pull.sh's "big" image: tars of host files from /usr (real
# compressibility), LAYERS of SIZE_MB/LAYERS MB each, compressed with gzip -6 (the level of
# Go's compress/gzip default, which skopeo, podman and docker push with) on a tmpfs.
# Needs (Debian): g++ zlib1g-dev libarchive-dev libisal-dev isal libdeflate-dev libdeflate-tools
# hyperfine. Not a test, not part of CI.
# Usage: bench/gzip-decoders.sh [--runs N] [--size-mb N] [--layers N]
# Results: bench/results/gzip-decoders.md and bench/results/gzip-decoders-cli.json
# (bench/results/ is not kept in the tree: the numbers go to docs/PERFORMANCE.md)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=7 SIZE_MB=200 LAYERS=2
while [ $# -gt 0 ]; do
  case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --size-mb) SIZE_MB=$2; shift 2 ;;
    --layers) LAYERS=$2; shift 2 ;;
    *) echo "usage: bench/gzip-decoders.sh [--runs N] [--size-mb N] [--layers N]" >&2; exit 2 ;;
  esac
done
for t in g++ gzip igzip libdeflate-gunzip hyperfine python3; do
  command -v $t >/dev/null || { echo "bench/gzip-decoders.sh: $t missing (see the header)" >&2; exit 1; }
done
W=$(mktemp -d /tmp/berth-bench-gzip-XXXXXX)
trap 'rm -rf "$W"' EXIT
mkdir -p bench/results
step() { echo "== $(date -u +%T) $*" >&2; }

step "build bench/gzip-decoders.cpp"
g++ -O2 -std=c++20 -o "$W/gzip-decoders" bench/gzip-decoders.cpp -lz -ldeflate -lisal -larchive

step "$LAYERS layers, $SIZE_MB MB of tar"
python3 - "$W" "$SIZE_MB" "$LAYERS" <<'EOF'
import os, sys, tarfile
sys.path.insert(0, "bench")
from host_files import host_files
out, total, layers = sys.argv[1], int(sys.argv[2]) << 20, int(sys.argv[3])
it = host_files()
for i in range(layers):
    size = 0
    with tarfile.open(f"{out}/layer{i}.tar", mode="w") as t:
        for p in it:
            try:
                t.add(p, arcname=f"layer{i}" + p)
            except OSError:
                continue
            size += os.path.getsize(p)
            if size >= total // layers:
                break
EOF
for t in "$W"/layer*.tar; do gzip -6 -n "$t"; done
files=("$W"/layer*.tar.gz)

step "in-process decoders ($RUNS runs)"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
lib=$("$W/gzip-decoders" "$RUNS" "${files[@]}")
step "command-line tools ($RUNS runs)"
list="${files[*]}"
hyperfine -N --runs "$RUNS" --export-json bench/results/gzip-decoders-cli.json \
  -n "gzip -dc" "sh -c 'for f in $list; do gzip -dc \$f > /dev/null; done'" \
  -n "igzip -dc" "sh -c 'for f in $list; do igzip -dc \$f > /dev/null; done'" \
  -n "libdeflate-gunzip -c" "sh -c 'for f in $list; do libdeflate-gunzip -c \$f > /dev/null; done'" >&2
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$lib" "$load_before" "$load_after" "$(nproc)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)" <<'EOF' | tee bench/results/gzip-decoders.md
import json, statistics, sys
lib, before, after, cpus, model = sys.argv[1:6]
print(f"CPU:{model} ({cpus} CPUs); load average {before} before, {after} after\n")
print("In process, from memory (bench/gzip-decoders.cpp):\n")
print(lib + "\n")
res = json.load(open("bench/results/gzip-decoders-cli.json"))["results"]
r = {x["command"]: statistics.median(x["times"]) for x in res}
c = {x["command"]: x["user"] + x["system"] for x in res}
print("Command-line tools (hyperfine: median wall s, mean user+system CPU s; output to /dev/null):\n")
print("| tool | median wall s | x gzip (wall) | CPU s | x gzip (CPU) |\n|---|---:|---:|---:|---:|")
for k, v in r.items():
    print(f"| {k} | {v:.3f} | {r['gzip -dc'] / v:.2f} | {c[k]:.3f} | {c['gzip -dc'] / c[k]:.2f} |")
EOF
