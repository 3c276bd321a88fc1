#!/bin/bash
# bench/fleet-scale.sh: one host with many declarations (issue #22), under a real systemd 252
# booted by the integration harness (tests/integration/harness.sh). Not part of CI.
#   1. N declarations (default 1000; a quarter of them on a declared network):
#      - berth-generator over them (hyperfine; goal < 100 ms),
#      - `systemctl daemon-reload` with them,
#      - `berth plan`, `berth list`, `berth list --json`,
#      - the D-Bus messages `berth list` sends (strace: sendmsg calls), at 10 and at N declarations:
#        a count that grows with N means one round trip per container.
#   2. --start M (default 0 = skip): M of them started at once by `systemctl start berth.target`:
#      seconds until all are active, with and without declared networks.
# Results on stdout (copied into docs/PERFORMANCE.md by hand).
# Usage: bench/fleet-scale.sh [BUILD_DIR] [--n N] [--start M]     (root)
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=$top/build n=1000 start=0
while [ $# -gt 0 ]; do
  case $1 in
    --n) n=$2; shift 2;;
    --start) start=$2; shift 2;;
    *) build=$(cd "$1" && pwd); shift;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "fleet-scale: run as root" >&2; exit 1; }
for t in hyperfine strace; do command -v $t >/dev/null || { echo "fleet-scale: $t missing" >&2; exit 1; }; done
export IT_NAME=berth-fleet-scale-$$
. "$top/tests/integration/harness.sh"
trap 'it_teardown; rm -rf "$state" "$image_tar"' EXIT
trap 'exit 130' INT TERM
state=$IT_WORK/$IT_NAME.state image_tar=$IT_WORK/$IT_NAME.image.tar
IT_ROOTFS=$IT_WORK/busybox-rootfs
bash "$top/tests/lib/make-busybox-rootfs.sh" "$IT_ROOTFS" || exit 1
tar -C "$IT_ROOTFS" --exclude=.berth-rootfs-complete -cf "$image_tar" . || exit 1
it_install "$build"
it_boot "$state"
echo "systemd booted in ${IT_BOOT_MS} ms"
it_in berth image import "$image_tar" --name busybox:scale >/dev/null || exit 1
cp "$image_tar" "/proc/$IT_PID1/root/tmp/image.tar" 2>/dev/null

decl_dir=$state/etc-berth/containers   # the instance's /etc/berth/containers (a bind mount)
mkdir -p "$decl_dir" "$state/etc-berth/networks"
printf '[network]\nsubnets = ["10.89.200.0/22"]\n' > "$state/etc-berth/networks/scale.toml"
declare_n() { # COUNT: c1..cCOUNT, every 4th on the network "scale"
  rm -rf "$decl_dir"/c*.toml
  local i net
  for i in $(seq 1 "$1"); do
    net=; [ $(( i % 4 )) = 0 ] && net=$'\n[network]\nnetworks = ["scale"]'
    cat > "$decl_dir/c$i.toml" <<EOF
[container]
image = "busybox:scale"
ephemeral = true
command = ["sh", "-c", "trap 'exit 0' TERM; sleep 100000 & wait"]
$net
EOF
  done
}
ms() { local t0; t0=$(date +%s%N); "$@" >/dev/null 2>&1; echo $(( ($(date +%s%N) - t0) / 1000000 )); }
best_of() { # RUNS CMD...: the best wall time in ms
  local runs=$1 best= t; shift
  for _ in $(seq "$runs"); do t=$(ms "$@"); [ -z "$best" ] || [ "$t" -lt "$best" ] && best=$t; done
  echo "$best"
}
bus_messages() { # sendmsg calls of `berth list`: each D-Bus method call is one
  it_in strace -f -qq -e trace=sendmsg -o /tmp/strace.out berth list >/dev/null 2>&1
  it_in grep -c sendmsg /tmp/strace.out
}

echo "== $n declarations"
declare_n 10
it_in systemctl daemon-reload
small=$(bus_messages)
declare_n "$n"
gen=$build/src/generator/berth-generator
gen_out=$(mktemp -d /dev/shm/berth-fleet-scale-XXXXXX)
BERTH_CONTAINERS_PATH=$decl_dir BERTH_NETWORKS_PATH=$state/etc-berth/networks BERTH_GENERATOR_KMSG=0 \
  hyperfine -N --warmup 2 --runs 10 --prepare "rm -rf $gen_out/out" \
  "$gen $gen_out/out $gen_out/out $gen_out/out" 2>&1 | sed -n 's/^ *Time (mean ± σ): */generator (hyperfine mean): /p'
rm -rf "$gen_out"
echo "systemctl daemon-reload: best of 3 $(best_of 3 it_in systemctl daemon-reload) ms"
units=$(it_in sh -c 'ls /run/systemd/generator | grep -c "^berth@"')
echo "generated units: $units"
echo "berth plan: best of 3 $(best_of 3 it_in berth plan) ms"
echo "berth list: best of 3 $(best_of 3 it_in berth list) ms"
echo "berth list --json: best of 3 $(best_of 3 it_in berth list --json) ms"
big=$(bus_messages)
echo "berth list D-Bus messages sent: $small with 10 declarations, $big with $n"

if [ "$start" -gt 0 ]; then
  for mode in plain network; do
    declare_n "$start"
    if [ $mode = plain ]; then sed -i '/^\[network\]/,$d' "$decl_dir"/c*.toml; fi
    it_in systemctl daemon-reload
    t0=$(date +%s%N)
    it_in systemctl start --no-block berth.target
    while :; do
      active=$(it_in systemctl list-units --no-legend --state=active 'berth@c*.service' | wc -l)
      [ "$active" -ge "$start" ] && break
      [ $(( ($(date +%s%N) - t0) / 1000000000 )) -gt 300 ] && { echo "timeout: $active active"; break; }
      sleep 0.1
    done
    echo "start $start at once ($mode): all active after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
    it_in systemctl stop berth.target 'berth@c*.service'
  done
fi
