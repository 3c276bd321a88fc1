#!/bin/bash
# bench/auto-update.sh: what one `berth auto-update` check costs when there is nothing to do
# (issue #18), wall and CPU (user+system of the whole command, hyperfine):
#   local     one container with auto_update = "local": the store's image for the name vs the
#             container's (a private berthd: BERTH_STORAGE=embedded);
#   registry  one container with auto_update = "registry": a HEAD request to a docker-registry on
#             127.0.0.1 (plain HTTP) through that berthd's ResolveImage job;
#   podman    `podman auto-update --dry-run` with no container to check (podman 4.3: its start,
#             database and unit listing; the lower bound of its check), when podman is installed.
# Everything lives under a temporary directory (store, declarations, registry); nothing touches
# /etc/berth or /var/lib/berth. Run as root. Not part of CI.
#
# Usage: bench/auto-update.sh     Environment: BERTH (default build/src/berth/berth), TIME_RUNS
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "bench/auto-update.sh: run as root" >&2; exit 1; }
top=$(cd "$(dirname "$0")/.." && pwd)
R=$top/bench/results W=/tmp/berth-au-bench-$$
BERTH=${BERTH:-$top/build/src/berth/berth}
mkdir -p "$W/containers" "$W/registries" "$W/data" "$W/run" "$W/state" "$R"
reg_pid=
cleanup() {
  [ -n "$reg_pid" ] && kill "$reg_pid" 2>/dev/null && wait "$reg_pid" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
export BERTH_CONTAINERS_PATH=$W/containers BERTH_REGISTRIES_PATH=$W/registries BERTH_STORE_ROOT=$W/store \
  BERTH_STORAGE=embedded BERTH_RUN_DIR=$W/run BERTH_STATE_DIR=$W/state
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' "$W/data" "$port" >"$W/registry.yml"
docker-registry serve "$W/registry.yml" >"$W/registry.log" 2>&1 &
reg_pid=$!
printf '[[registry]]\nprefix = "127.0.0.1:%s"\ninsecure = true\n' "$port" >"$W/registries/registries.toml"
bash "$top/tests/lib/make-busybox-rootfs.sh" "$W/rootfs" >/dev/null
python3 "$top/tests/privileged/health/oci-with-healthcheck.py" "$W/rootfs" "$W/oci" null '["/bin/true"]'
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
ref=127.0.0.1:$port/bench/au:latest
skopeo copy --quiet --dest-tls-verify=false "oci:$W/oci" "docker://$ref"
"$BERTH" image pull "$ref" >/dev/null
"$BERTH" image tag "$ref" aubench:latest >/dev/null
# Each container ran once (persistent layer made from the image): the check finds it up to date.
for mode in local registry; do
  image=$ref
  [ $mode = local ] && image=aubench:latest
  printf '[container]\nimage = "%s"\nauto_update = "%s"\n' "$image" "$mode" >"$W/containers/au-$mode.toml"
  "$BERTH" run "$W/containers/au-$mode.toml" >/dev/null
done
"$BERTH" auto-update au-local au-registry
cmds=(-n "berth auto-update (local)" "$BERTH auto-update au-local"
      -n "berth auto-update (registry: HEAD)" "$BERTH auto-update au-registry")
if command -v podman >/dev/null; then
  cmds+=(-n "podman auto-update --dry-run (no containers)" "podman auto-update --dry-run")
fi
hyperfine -N --style basic --warmup 3 --runs "${TIME_RUNS:-20}" --export-json "$R/auto-update-time.json" "${cmds[@]}" >&2
python3 - "$R/auto-update-time.json" <<'EOF' | tee "$R/auto-update.md"
import json, sys
print("| one check, nothing to do | wall median | CPU (user+system) mean |")
print("|---|---:|---:|")
for r in json.load(open(sys.argv[1]))["results"]:
    print(f"| `{r['command']}` | {r['median']*1000:.1f} ms | {(r['user']+r['system'])*1000:.1f} ms |")
EOF
