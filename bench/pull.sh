#!/bin/bash
# bench/pull.sh: `berth image pull` against its peers and against the floor (issue #17), from the
# same local docker-registry (plain HTTP on 127.0.0.1), cold store each run, everything on one
# tmpfs so that the disk does not decide:
#   berth     `berth image pull` (embedded: a private berthd; download, verify, extract, publish)
#   podman    `podman pull` into a private --root (overlay driver)
#   skopeo    `skopeo copy docker://... oci:DIR` + `umoci unpack` (when umoci is installed)
#   floor     curl of the layer blobs in parallel, then `tar -xzf` of each, in order
# and the warm pull (everything present): berth's requests to the registry, and its wall time.
# Images: "small" (the busybox test image, 1 layer; a Debian minbase from mmdebstrap with
# MINBASE=1, which needs a reachable mirror) and "big" (5 gzip layers of files copied from the
# host's /usr, SIZE_MB in all). Also gzip -d on the big image's layers against igzip (ISA-L)
# and libdeflate-gunzip, when installed; and berth with ISA-L against berth with libarchive's
# zlib (BERTH_GZIP_DECODER=zlib) on the big image.
# Run as root. Not a test, not part of CI.
#
# Usage: bench/pull.sh [--runs N] [--size-mb N] [--smoke]
#   --smoke   --runs 1 --size-mb 20: a correctness pass of the script itself
# Environment: BERTH, BERTHD (default build/src/berth/berth, build/src/berthd/berthd), W (work dir);
#   BASE_BERTH and BASE_BERTHD (optional): another build of berth (e.g. main's, before a change),
#   run as "berth-base" in the same hyperfine run, so that before/after share the machine's load;
#   SLOW_RATE (optional, bytes/s): also pull big through tests/privileged/registry/throttle-proxy.py,
#   each blob at that rate (a slow link: extraction overlapped with the download shows there)
# Results: bench/results/pull-*.json and bench/results/pull.md
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
RUNS=5 SIZE_MB=500
while [ $# -gt 0 ]; do
  case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --size-mb) SIZE_MB=$2; shift 2 ;;
    --smoke) RUNS=1 SIZE_MB=20; shift ;;
    *) echo "usage: bench/pull.sh [--runs N] [--size-mb N] [--smoke]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "bench/pull.sh: run as root" >&2; exit 1; }
BERTH=${BERTH:-$top/build/src/berth/berth}
BERTHD=${BERTHD:-$top/build/src/berthd/berthd}
for t in docker-registry skopeo hyperfine curl python3 podman; do
  command -v $t >/dev/null || { echo "bench/pull.sh: $t missing" >&2; exit 1; }
done
[ -x "$BERTH" ] && [ -x "$BERTHD" ] || { echo "bench/pull.sh: build berth first (ninja -C build)" >&2; exit 1; }
W=${W:-$(mktemp -d /tmp/berth-bench-pull-XXXXXX)}
mkdir -p "$W/mnt" bench/results
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  podman --root "$W/mnt/podman" --runroot "$W/mnt/podman-run" --storage-driver overlay rmi -a -f \
    >/dev/null 2>&1 || true
  umount -R -l "$W/mnt" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
step() { echo "== $(date -u +%T) $*" >&2; }
mount -t tmpfs -o size=$((SIZE_MB * 8 + 2048))m,mode=0700 tmpfs "$W/mnt"
export NO_PROXY=127.0.0.1 no_proxy=127.0.0.1

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
host=127.0.0.1:$port
printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n' \
  "$W/mnt/registry" "$host" > "$W/registry.yml"
docker-registry serve "$W/registry.yml" >"$W/registry.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do curl -sf "http://$host/v2/" >/dev/null && break; sleep 0.05; done

# The images, pushed with skopeo.
step "test images"
bash tests/lib/make-test-images.sh "$top/build/test-images/store" >&2
small_src="oci:$top/build/test-images/store/oci:busybox" small_name="busybox test image (1 layer)"
if [ "${MINBASE:-0}" = 1 ]; then
  mmdebstrap --variant=minbase --format=tar bookworm "$W/minbase.tar" >&2
  skopeo copy -q "tarball:$W/minbase.tar" "oci:$W/minbase-oci:minbase"  # not reached without a mirror
  small_src="oci:$W/minbase-oci:minbase" small_name="Debian 12 minbase (mmdebstrap)"
fi
step "big image ($SIZE_MB MB)"
python3 - "$W/big-oci" "$SIZE_MB" <<'EOF'
# 5 layers of host files (real compressibility), SIZE_MB of tar in all, as an OCI layout.
import gzip, hashlib, io, json, os, sys, tarfile
sys.path.insert(0, "bench")
from host_files import host_files
out, total = sys.argv[1], int(sys.argv[2]) << 20
os.makedirs(out + "/blobs/sha256", exist_ok=True)
def put(data):
    d = hashlib.sha256(data).hexdigest()
    open(f"{out}/blobs/sha256/{d}", "wb").write(data)
    return "sha256:" + d, len(data)
layers, diff_ids, it = [], [], host_files()
for i in range(5):
    buf, size = io.BytesIO(), 0
    with tarfile.open(fileobj=buf, mode="w") as t:
        for p in it:
            try:
                t.add(p, arcname=f"layer{i}" + p)
            except OSError:
                continue
            size += os.path.getsize(p)
            if size >= total // 5:
                break
    tar = buf.getvalue()
    diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
    layers.append(put(gzip.compress(tar, 6, mtime=0)))
cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                  "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
c = put(cfg)
man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": c[0], "size": c[1]},
                  "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": s}
                             for d, s in layers]}).encode()
m = put(man)
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
           "digest": m[0], "size": m[1], "annotations": {"org.opencontainers.image.ref.name": "big"}}]},
          open(out + "/index.json", "w"))
open(out + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
EOF
step "push"
skopeo copy -q --dest-tls-verify=false "$small_src" "docker://$host/bench/small:v1"
skopeo copy -q --dest-tls-verify=false "oci:$W/big-oci:big" "docker://$host/bench/big:v1"

mkdir -p "$W/reg"
printf '[[registry]]\nprefix = "%s"\nlocation = "%s"\ninsecure = true\n' "$host" "$host" > "$W/reg/registries.toml"
cat > "$W/env.sh" <<EOF
export BERTH_STORAGE=embedded BERTH_STORE_ROOT=$W/mnt/berth BERTH_STATE_DIR=$W/mnt/berth-state
export BERTH_DAEMON_CONFIG=$W/no-berthd.toml BERTH_REGISTRIES_PATH=$W/reg BERTH_BERTHD=$BERTHD BERTH_PROGRESS=none
export NO_PROXY=127.0.0.1 no_proxy=127.0.0.1
EOF
sed "s|BERTH_BERTHD=[^ ]*|BERTH_BERTHD=${BASE_BERTHD:-}|" "$W/env.sh" > "$W/env-base.sh"
P="podman --root $W/mnt/podman --runroot $W/mnt/podman-run --storage-driver overlay"

# The floor: the blobs in parallel with curl, then tar -xzf of each layer in order.
cat > "$W/floor.sh" <<EOF
#!/bin/bash
set -euo pipefail
d=$W/mnt/floor; mkdir -p \$d/blobs \$d/root
m=\$(curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' http://$host/v2/bench/\$1/manifests/v1)
digests=\$(tr -d '\n' <<<"\$m" | sed 's/.*"layers"//' | grep -o 'sha256:[0-9a-f]\{64\}')  # no python: its start is not the floor
for x in \$digests; do curl -sf -o \$d/blobs/\$x http://$host/v2/bench/\$1/blobs/\$x & done
wait
for x in \$digests; do tar -xzf \$d/blobs/\$x -C \$d/root; done
EOF
chmod +x "$W/floor.sh"

clean_all="rm -rf $W/mnt/berth $W/mnt/berth-state $W/mnt/floor $W/mnt/oci $W/mnt/bundle; \
$P rmi -a -f >/dev/null 2>&1 || true"
cmds=()
for img in small big; do
  cmds+=(-n "berth $img" ". $W/env.sh; $BERTH image pull $host/bench/$img:v1 >/dev/null")
  if [ -n "${BASE_BERTH:-}" ]; then
    cmds+=(-n "berth-base $img" ". $W/env-base.sh; $BASE_BERTH image pull $host/bench/$img:v1 >/dev/null")
  fi
  # berth with libarchive's zlib instead of ISA-L for gzip (store/gzip-isal.h): the decoder's
  # share of a pull, end to end.
  [ $img = big ] && cmds+=(-n "berth-zlib $img" ". $W/env.sh; BERTH_GZIP_DECODER=zlib $BERTH image pull $host/bench/$img:v1 >/dev/null")
  cmds+=(-n "podman $img" "$P pull -q --tls-verify=false docker://$host/bench/$img:v1 >/dev/null")
  if command -v umoci >/dev/null; then
    cmds+=(-n "skopeo+umoci $img" "skopeo copy -q --src-tls-verify=false docker://$host/bench/$img:v1 oci:$W/mnt/oci:x && umoci unpack --image $W/mnt/oci:x $W/mnt/bundle >/dev/null")
  fi
  cmds+=(-n "floor $img" "$W/floor.sh $img")
done
step "cold pulls"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs" >&2
hyperfine --runs "$RUNS" --prepare "$clean_all" --export-json bench/results/pull-cold.json "${cmds[@]}" >&2
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# phases_of ENV_FILE BERTH_CLI REF: one cold pull, its progress lines stamped as they arrive: when
# the first layer was extracting, when the last byte came (the job's fraction reaches 0.95) and
# when the pull ended, in seconds from its start.
phases_of() {
  rm -rf "$W/mnt/berth" "$W/mnt/berth-state"
  local t0 t1 last_byte first_extract
  t0=$EPOCHREALTIME
  (. "$1"; BERTH_PROGRESS=lines "$2" image pull "$3" 2>&1 >/dev/null) |
    while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done > "$W/phases.txt"
  t1=$EPOCHREALTIME
  last_byte=$(grep -m1 'fraction=0.95' "$W/phases.txt" | cut -d' ' -f1)
  first_extract=$(grep -m1 'state=extracting' "$W/phases.txt" | cut -d' ' -f1)
  python3 -c "import sys; t0, x, b, t1 = map(float, sys.argv[1:]); print(f'first extracting {x - t0:.2f} s, last byte {b - t0:.2f} s, done {t1 - t0:.2f} s (after the last byte: {t1 - b:.2f} s)')" \
    "$t0" "${first_extract:-$t1}" "${last_byte:-$t1}" "$t1"
}

slow="" slow_phases=""
if [ -n "${SLOW_RATE:-}" ]; then
  step "slow link ($SLOW_RATE bytes/s per blob)"
  pport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  python3 tests/privileged/registry/throttle-proxy.py "$pport" "$host" "$SLOW_RATE" "$W/proxy.log" &
  pids+=($!)
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$pport/v2/" >/dev/null && break; sleep 0.05; done
  printf '[[registry]]\nprefix = "127.0.0.1:%s"\nlocation = "127.0.0.1:%s"\ninsecure = true\n' "$pport" "$pport" \
    >> "$W/reg/registries.toml"
  slow_cmds=(-n "berth big slow" ". $W/env.sh; $BERTH image pull 127.0.0.1:$pport/bench/big:v1 >/dev/null")
  if [ -n "${BASE_BERTH:-}" ]; then
    slow_cmds+=(-n "berth-base big slow" ". $W/env-base.sh; $BASE_BERTH image pull 127.0.0.1:$pport/bench/big:v1 >/dev/null")
  fi
  hyperfine --runs "$RUNS" --prepare "$clean_all" --export-json bench/results/pull-slow.json "${slow_cmds[@]}" >&2
  slow=bench/results/pull-slow.json
  slow_phases="berth: $(phases_of "$W/env.sh" "$BERTH" "127.0.0.1:$pport/bench/big:v1")"
  if [ -n "${BASE_BERTH:-}" ]; then
    slow_phases+="; berth-base: $(phases_of "$W/env-base.sh" "$BASE_BERTH" "127.0.0.1:$pport/bench/big:v1")"
  fi
fi

step "warm pull"
# Warm: everything present; berth's requests to the registry from the access log.
. "$W/env.sh"
"$BERTH" image pull "$host/bench/big:v1" >/dev/null
before=$(grep -c '"GET /v2/bench/big/' "$W/registry.log" || true)
"$BERTH" image pull "$host/bench/big:v1" >/dev/null
after=$(grep -c '"GET /v2/bench/big/' "$W/registry.log" || true)
hyperfine -N --runs "$RUNS" --export-json bench/results/pull-warm.json \
  -n "berth big warm" "$BERTH image pull $host/bench/big:v1" >&2

# Where a cold pull of big spends its time: the last downloaded byte (the job's fraction reaches
# 0.95 then: BERTH_PROGRESS=lines, stamped as it arrives) and the end of the pull. Extraction
# overlaps the download (issue #17, streaming): what is left after the last byte is the tail of
# the import (the last layer's extraction and the publication).
step "phases"
phases=$(phases_of "$W/env.sh" "$BERTH" "$host/bench/big:v1")

# Decompression: GNU gzip (its own inflate, close to zlib's) vs ISA-L's igzip and libdeflate on
# the big image's layers (bench/gzip-decoders.sh compares the libraries in one process).
dec=""
if command -v libdeflate-gunzip >/dev/null && command -v igzip >/dev/null; then
  ls "$W"/big-oci/blobs/sha256/* > "$W/blobs.txt"
  hyperfine -N --runs "$RUNS" --export-json bench/results/pull-gunzip.json \
    -n gzip "sh -c 'for b in \$(cat $W/blobs.txt); do gzip -dc < \$b > /dev/null 2>&1 || true; done'" \
    -n isal "sh -c 'for b in \$(cat $W/blobs.txt); do igzip -dc < \$b > /dev/null 2>&1 || true; done'" \
    -n libdeflate "sh -c 'for b in \$(cat $W/blobs.txt); do libdeflate-gunzip -c < \$b > /dev/null 2>&1 || true; done'" >&2
  dec=bench/results/pull-gunzip.json
fi

python3 - "$SIZE_MB" "$small_name" "$((after - before))" "$load_after" "$dec" "$phases" "$slow" "${SLOW_RATE:-}" \
  "$slow_phases" <<'EOF' | tee bench/results/pull.md
import json, sys
size, small, warm_requests, load, dec, phases, slow, slow_rate, slow_phases = sys.argv[1:10]
r = {x["command"]: x for x in json.load(open("bench/results/pull-cold.json"))["results"]}
w = json.load(open("bench/results/pull-warm.json"))["results"][0]
print(f"Cold pull, median wall time of {len(next(iter(r.values()))['times'])} runs; small = {small}, big = 5 gzip layers, {size} MB of tar")
print("(load average after the cold runs: " + load + ")\n")
print("| image | tool | median s | x floor | x podman |")
print("|---|---|---|---|---|")
for img in ("small", "big"):
    floor, podman = r[f"floor {img}"]["median"], r[f"podman {img}"]["median"]
    for tool in ("berth", "berth-base", "berth-zlib", "podman", "skopeo+umoci", "floor"):
        k = f"{tool} {img}"
        if k in r:
            m = r[k]["median"]
            print(f"| {img} | {tool} | {m:.3f} | {m / floor:.2f} | {m / podman:.2f} |")
for img in ("small", "big"):
    b = r[f"berth {img}"]["median"]
    line = f"berth / podman ({img}): {b / r[f'podman {img}']['median']:.2f}"
    if f"skopeo+umoci {img}" in r:
        line += f", berth / skopeo+umoci: {b / r[f'skopeo+umoci {img}']['median']:.2f}"
    if f"berth-base {img}" in r:
        line += f", berth / berth-base: {b / r[f'berth-base {img}']['median']:.2f}"
    print(("\n" if img == "small" else "") + line + f", berth / floor: {b / r[f'floor {img}']['median']:.2f}")
if "berth-zlib big" in r:
    print(f"berth big with ISA-L / with zlib: {r['berth big']['median'] / r['berth-zlib big']['median']:.2f}")
print(f"\nWarm pull of big (all present): {warm_requests} request(s) to the registry, median {w['median']:.3f} s")
print(f"One cold berth pull of big, its phases: {phases}")
if slow:
    d = {x["command"]: x["median"] for x in json.load(open(slow))["results"]}
    line = f"big through a slow link ({int(slow_rate) / 1e6:.1f} MB/s per blob): berth {d['berth big slow']:.3f} s"
    if "berth-base big slow" in d:
        line += f", berth-base {d['berth-base big slow']:.3f} s ({d['berth big slow'] / d['berth-base big slow']:.2f}x)"
    print(line)
    print(f"One pull of big each through the slow link, its phases: {slow_phases}")
if dec:
    d = {x["command"]: x["median"] for x in json.load(open(dec))["results"]}
    print(f"gunzip of big's layers: gzip {d['gzip']:.3f} s, igzip {d['isal']:.3f} s ({d['gzip'] / d['isal']:.2f}x), "
          f"libdeflate {d['libdeflate']:.3f} s ({d['gzip'] / d['libdeflate']:.2f}x)")
EOF
