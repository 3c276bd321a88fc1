#!/bin/bash
# dmthin-snapshot-bench.sh [BUILD_DIR] : container snapshot creation time on dm-thin as a ratio to
# btrfs, for 1 MiB / 100 MiB / 1 GiB images, both measured on the same virtio disk of the same VM
# (Debian's cloud kernel under qemu TCG, via tests/qemu/qemu-lib.sh). Not part of CI.
# Prints a markdown table for docs/PERFORMANCE.md. Needs root, qemu-system-x86, btrfs-progs.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
bench=$build/tests/qemu/dmthin-bench
[ -x "$bench" ] || { echo "build $bench first: ninja -C $build tests/qemu/dmthin-bench" >&2; exit 1; }
QEMU_MEM=${QEMU_MEM:-1536} QEMU_TIMEOUT=${QEMU_TIMEOUT:-1200}
source "$top/tests/qemu/qemu-lib.sh"
work=$(mktemp -d /tmp/berth-dmthin-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT
qemu_prepare_kernel
QEMU_BINARIES=("$bench")
cat > "$work/run.sh" <<'SCRIPT'
if dmthin-bench /dev/vda /dev/vdb 1 100 1024; then RESULT=PASS; fi
SCRIPT
qemu_build_initramfs "$work" "$work/run.sh" dm-thin-pool btrfs
qemu_boot "$work" 64M 6G > "$work/console.txt" || { cat "$work/console.txt"; exit 1; }
grep '^@@ ' "$work/console.txt" >&2
echo "| image | dm-thin prepare_snapshot (ms) | btrfs snapshot (ms) | dm-thin / btrfs |"
echo "|---|---|---|---|"
sed -n 's/^@@ BENCH size_mib=\([0-9]*\) dmthin_ms=\([0-9.]*\) btrfs_ms=\([0-9.]*\) ratio=\([0-9.]*\).*/| \1 MiB | \2 | \3 | \4 |/p' "$work/console.txt"
