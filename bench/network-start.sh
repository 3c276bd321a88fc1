#!/bin/bash
# bench/network-start.sh: start of a container on a declared network with DNS registration
# (issue #20). Cold start to exit of /bin/true from the busybox rootfs, ephemeral, in ONE
# hyperfine run:
#   berth, mode = "none"  vs  berth on a declared network (lease, veth on its bridge, hosts entry
#   for its dnsmasq written at start and removed at stop)  vs  `podman run --network` on a podman
#   bridge network (same rootfs via --rootfs).
# The networks are up before the runs (as their units would be). Podman's CNI bridge
# (cni-podman0 and the network's own) and its nft/iptables rules are removed afterwards: its
# default 10.88.0.0/16 clashes with berth's veth pool. Results: bench/results/network-start.{json,md}.
# Run as root. Not part of CI.
#
# Usage: bench/network-start.sh [--runs N] [--warmup N] [--smoke] [--no-podman]
# Environment: BERTH (default build/src/berth/berth), W (work dir, default /tmp/berth-bench-net-$$)
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
RUNS=30 WARM=3 PODMAN=1
while [ $# -gt 0 ]; do
  case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --warmup) WARM=$2; shift 2 ;;
    --smoke) RUNS=3; WARM=1; shift ;;
    --no-podman) PODMAN=0; shift ;;
    *) echo "usage: $0 [--runs N] [--warmup N] [--smoke] [--no-podman]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "bench/network-start.sh: run as root" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "bench/network-start.sh: hyperfine missing" >&2; exit 1; }
BERTH=${BERTH:-$top/build/src/berth/berth}
W=${W:-/tmp/berth-bench-net-$$}
net=bb$(( $$ % 100000 )) pnet=berthbench$$ k=$(( $$ % 250 ))
mkdir -p "$W/networks" bench/results
chmod 755 "$W"
export BERTH_RUN_DIR=$W/run BERTH_STATE_DIR=$W/state BERTH_NETWORKS_PATH=$W/networks
# Podman 4.3's default crun refuses this host's hybrid cgroups: runc with cgroupfs (as
# bench/fleet-scale.sh), its own storage under $W, no events journal, and ulimits within this
# host's hard limits (podman's defaults exceed them).
P=(podman --root "$W/podman" --runroot "$W/podman-run" --runtime runc --cgroup-manager=cgroupfs --events-backend=none)
cleanup() {
  set +e  # every step runs even if one fails; the bench's own status is what the script returns
  "$BERTH" network down "$net" >/dev/null 2>&1 || true
  if [ "$PODMAN" = 1 ]; then
    "${P[@]}" rm -a -f -t 0 >/dev/null 2>&1 || true
    "${P[@]}" network rm -f "$pnet" >/dev/null 2>&1 || true
    "${P[@]}" system reset -f >/dev/null 2>&1 || true
    awk -v r="$W/podman" 'index($5, r) == 1 {print $5}' /proc/self/mountinfo | sort -r |
      while read -r m; do umount "$m" 2>/dev/null || true; done
    for l in cni-podman0 $(ip -o link show type bridge | awk -F': ' '/cni-podman/ {print $2}'); do
      ip link del "$l" 2>/dev/null || true
    done
    iptables-save 2>/dev/null | grep -q CNI && {
      iptables -t nat -S 2>/dev/null | grep -E 'CNI' | grep '^-A' | sed 's/^-A/-D/' | while read -r r; do iptables -t nat $r 2>/dev/null || true; done
      iptables -S 2>/dev/null | grep -E 'CNI' | grep '^-A' | sed 's/^-A/-D/' | while read -r r; do iptables $r 2>/dev/null || true; done
    }
  fi
  rm -rf "$W" 2>/dev/null || { sleep 1; rm -rf "$W"; }
}
trap cleanup EXIT
rootfs=$W/rootfs
bash tests/lib/make-busybox-rootfs.sh "$rootfs" >/dev/null
printf '[network]\nsubnets = ["10.245.%d.0/24"]\n' "$k" > "$W/networks/$net.toml"
"$BERTH" network up "$net" >/dev/null

write_decl() {  # NAME [network]-LINES
  printf '[container]\nrootfs = "%s"\ncommand = ["/bin/true"]\nephemeral = true\n[network]\n%b' \
    "$rootfs" "$2" > "$W/$1.toml"
}
write_decl "bn$$" 'mode = "none"\n'
write_decl "bd$$" "networks = [\"$net\"]\n"

cmds=(-n 'berth, mode = "none"' "$BERTH run $W/bn$$.toml"
      -n 'berth, declared network + DNS' "$BERTH run $W/bd$$.toml")
if [ "$PODMAN" = 1 ]; then
  "${P[@]}" network create --subnet "10.246.$k.0/24" "$pnet" >/dev/null
  cmds+=(-n 'podman run --network (bridge; runc, cgroupfs)'
         "${P[*]} run --rm --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 --network $pnet --rootfs $rootfs /bin/true")
fi
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
hyperfine --runs "$RUNS" --warmup "$WARM" -N \
  --export-json bench/results/network-start.json --export-markdown bench/results/network-start.md "${cmds[@]}"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
# The container's name went with it; nothing else of ours is left after the cleanup.
[ -e "$W/run/networks/$net/hosts/bd$$" ] && echo "LEAK: hosts entry of bd$$" >&2
exit 0
