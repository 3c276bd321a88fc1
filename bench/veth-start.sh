#!/bin/bash
# bench/veth-start.sh: what outbound NAT costs at start. Cold start to exit of /bin/true from the
# busybox rootfs, ephemeral, in ONE hyperfine run:
#   network = "none"  vs  "veth", masquerade = false  vs  "veth" (default: masquerade = true)
# The masquerade row adds one nftables transaction (libnftables, loaded on first use) at start
# and one at teardown. Results: bench/results/veth-start.{json,md}. Run as root. Not part of CI.
#
# Usage: bench/veth-start.sh [--runs N] [--warmup N] [--smoke]
# Environment: BERTH (default build/src/berth/berth), W (work dir, default /tmp/berth-bench-veth-$$)
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
[ "$(id -u)" = 0 ] || { echo "bench/veth-start.sh: run as root" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "bench/veth-start.sh: hyperfine missing" >&2; exit 1; }
BERTH=${BERTH:-$top/build/src/berth/berth}
W=${W:-/tmp/berth-bench-veth-$$}
mkdir -p "$W" bench/results
trap 'rm -rf "$W"' EXIT
rootfs=$W/rootfs
bash tests/lib/make-busybox-rootfs.sh "$rootfs" >/dev/null
export BERTH_RUN_DIR=$W/run BERTH_STATE_DIR=$W/state

write_decl() {  # NAME EXTRA-[network]-LINES
  printf '[container]\nrootfs = "%s"\ncommand = ["/bin/true"]\nephemeral = true\n[network]\n%b' \
    "$rootfs" "$2" > "$W/$1.toml"
}
# Names unique per run of this script; /30s from berth's pool (hash of the name).
write_decl "bn$$" 'mode = "none"\n'
write_decl "bv$$" 'mode = "veth"\nmasquerade = false\n'
write_decl "bm$$" 'mode = "veth"\n'

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
hyperfine --runs "$RUNS" --warmup "$WARM" -N \
  --export-json bench/results/veth-start.json --export-markdown bench/results/veth-start.md \
  -n 'none' "$BERTH run $W/bn$$.toml" \
  -n 'veth, masquerade = false' "$BERTH run $W/bv$$.toml" \
  -n 'veth, masquerade (default)' "$BERTH run $W/bm$$.toml"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
# Nothing of ours may be left.
for n in bn$$ bv$$ bm$$; do
  ip link show "ve-$n" >/dev/null 2>&1 && echo "LEAK: veth ve-$n" >&2
  nft list table ip berth 2>/dev/null | grep -q "c-$n-" && echo "LEAK: nftables chain c-$n-*" >&2
done
exit 0
