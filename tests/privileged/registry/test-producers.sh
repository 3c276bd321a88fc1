#!/bin/bash
# Images made and pushed by the producers people use, pulled and run by berth (issue #17), through
# berthd's PullImage job (a private berthd: BERTH_STORAGE=embedded) from a real docker-registry on
# 127.0.0.1 (declared insecure):
#  - podman: an image made by `podman import` of the busybox rootfs, pushed by `podman push` as OCI
#    and as Docker schema 2 (--format v2s2); pulled by tag and by digest (the same image id) and run.
#  - buildah: `buildah manifest create` + `manifest add` of an amd64 and an arm64 image (made with
#    `buildah from scratch` + `add` + `config --arch`; each says its architecture in /arch), pushed
#    by `buildah manifest push --all`, plus a provenance attestation laid out as buildx does it
#    (add-attestation.py: buildah 1.28 cannot make one). The host platform's image is pulled and
#    runs (its /arch says amd64); `--platform linux/arm64` gets the other one (its /arch, read from
#    `berth image export`, says arm64); the attestation is never chosen, not even when its
#    platform unknown/unknown is asked for; by index digest and by tag give the same image.
#  - a tag moved from podman's image to buildah's index is picked up by `pull = "newer"` and not
#    by "missing".
# Nothing is ever run by podman or buildah (podman 4.3's crun cannot run containers on hybrid
# cgroups), and both keep their storage under $tmp (vfs: no mounts), never the host's.
# Usage: test-producers.sh BUILD_DIR BERTH_BINARY            (root; meson suite 'privileged')
set -euo pipefail
build=${1:?usage: test-producers.sh BUILD_DIR BERTH_BINARY}
berth=${2:?usage: test-producers.sh BUILD_DIR BERTH_BINARY}
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../../.." && pwd)
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (run as root in CI)"; exit 77; }
for t in docker-registry skopeo podman buildah python3; do
  command -v $t >/dev/null || { echo "FAIL: $t missing (scripts/install-deps.sh)"; exit 1; }
done
. "$here/registry-lib.sh"
setup_registry_test producers
storage=(--root "$tmp/containers" --runroot "$tmp/containers-run" --storage-driver vfs)
podman_() { podman "${storage[@]}" "$@"; }
buildah_() { buildah "${storage[@]}" "$@"; }
fail() { echo "FAIL: $*"; exit 1; }

start_registry
printf '[[registry]]\nprefix = "%s"\nlocation = "%s"\ninsecure = true\n' "$host" "$host" > "$tmp/reg/registries.toml"

# The busybox rootfs with /producer and /arch saying who made it for which architecture.
rootfs_tar() {  # PRODUCER ARCH -> $tmp/PRODUCER-ARCH.tar
  local d="$tmp/rootfs-$1-$2"
  mkdir -p "$d"
  tar -C "$d" -xf "$images/rootfs.tar"
  echo "$1" > "$d/producer"
  echo "$2" > "$d/arch"
  tar -C "$d" -cf "$tmp/$1-$2.tar" .
  rm -rf "$d"
}
# The `id` field of `berth image pull --json ARGS`.
pull_id() {
  local out
  if ! out=$("$berth" image pull --json "$@" 2>"$tmp/pull.err"); then
    echo "$out" >&2; cat "$tmp/pull.err" >&2; return 1
  fi
  python3 -c 'import json,sys; print(json.loads(sys.argv[1])["id"])' "$out" ||
    { echo "$out" >&2; cat "$tmp/pull.err" >&2; return 1; }
}
# The manifest digest of entry ARCH (or the index's own digest: "index") of an index.
index_digest() {  # REF ARCH
  local raw="$tmp/index.json"
  skopeo inspect --raw --tls-verify=false "docker://$1" > "$raw"
  if [ "$2" = index ]; then echo "sha256:$(sha256sum < "$raw" | cut -c1-64)"; return; fi
  python3 -c '
import json,sys
for m in json.load(open(sys.argv[1]))["manifests"]:
    if m.get("platform", {}).get("architecture") == sys.argv[2]: print(m["digest"])' "$raw" "$2"
}
# A file of an image in the store, read from `berth image export` (the layers as berth stored them).
image_file() {  # IMAGE PATH
  "$berth" image export "$1" -o "$tmp/export.tar"
  python3 - "$tmp/export.tar" "$2" <<'PY'
import io, json, sys, tarfile
outer = tarfile.open(sys.argv[1])
blob = lambda d: outer.extractfile("blobs/sha256/" + d.split(":", 1)[1]).read()
index = json.loads(outer.extractfile("index.json").read())
manifest = json.loads(blob(index["manifests"][0]["digest"]))
for layer in reversed(manifest["layers"]):
    with tarfile.open(fileobj=io.BytesIO(blob(layer["digest"]))) as t:
        for name in ("./" + sys.argv[2], sys.argv[2]):
            try:
                sys.stdout.write(t.extractfile(name).read().decode())
                sys.exit(0)
            except KeyError:
                pass
sys.exit("no /%s in the image" % sys.argv[2])
PY
  rm -f "$tmp/export.tar"
}
declare_() {  # NAME IMAGE PULL -> the declaration's path
  cat > "$tmp/decl/$1.toml" <<EOT
[container]
image = "$2"
pull = "$3"
command = ["sh", "-c", "echo \$(cat /producer)-\$(cat /arch)"]
EOT
  echo "$tmp/decl/$1.toml"
}
expect_runs() {  # DECLARATION EXPECTED
  local out
  out=$(timeout 120 "$berth" run "$1" 2>&1) || { echo "$out"; fail "berth run $(basename "$1")"; }
  grep -qx "$2" <<<"$out" || { echo "$out"; fail "$(basename "$1") did not print '$2'"; }
}

# --- podman push ---------------------------------------------------------------------------------
rootfs_tar podman amd64
podman_ import -q --change 'CMD ["sh"]' "$tmp/podman-amd64.tar" localhost/podman-made:v1 >/dev/null
podman_ push -q --tls-verify=false localhost/podman-made:v1 "docker://$host/team/podman:v1"
podman_ push -q --tls-verify=false --format v2s2 localhost/podman-made:v1 "docker://$host/team/podman-docker:v1"
for repo in podman podman-docker; do
  ref="$host/team/$repo:v1"
  digest=$(skopeo inspect --tls-verify=false "docker://$ref" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Digest"])')
  by_tag=$(pull_id "$ref") || fail "pull of $ref"
  [ "$by_tag" = "$digest" ] || fail "$ref pulled as $by_tag, the registry's manifest is $digest"
  by_digest=$(pull_id "$host/team/$repo@$digest") || fail "pull of $host/team/$repo@$digest"
  [ "$by_digest" = "$by_tag" ] || fail "$repo by digest is $by_digest, by tag $by_tag"
  expect_runs "$(declare_ "$repo-$$" "$ref" never)" podman-amd64
done
mt=$(skopeo inspect --raw --tls-verify=false "docker://$host/team/podman-docker:v1" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["mediaType"])')
[ "$mt" = application/vnd.docker.distribution.manifest.v2+json ] || fail "podman --format v2s2 pushed $mt"
echo "podman push: OCI and Docker schema 2 pulled by tag and digest and run"

# --- buildah manifest ------------------------------------------------------------------------------
for arch in amd64 arm64; do
  rootfs_tar buildah $arch
  c=$(buildah_ from -q scratch)
  buildah_ add -q "$c" "$tmp/buildah-$arch.tar" / >/dev/null
  buildah_ config --os linux --arch $arch --cmd '["sh"]' "$c"
  buildah_ commit -q "$c" "localhost/buildah-$arch:v1" >/dev/null
  buildah_ rm "$c" >/dev/null
done
buildah_ manifest create localhost/multi:v1 >/dev/null
for arch in amd64 arm64; do
  buildah_ manifest add localhost/multi:v1 "containers-storage:localhost/buildah-$arch:v1" >/dev/null
done
buildah_ manifest push -q --all --tls-verify=false localhost/multi:v1 "docker://$host/team/multi:v1"
python3 "$here/add-attestation.py" "$host" team/multi v1 >/dev/null
ref="$host/team/multi:v1"
amd64=$(index_digest "$ref" amd64); arm64=$(index_digest "$ref" arm64); index=$(index_digest "$ref" index)
[ -n "$amd64" ] && [ -n "$arm64" ] || fail "the index lacks amd64 or arm64: $(cat "$tmp/index.json")"
grep -q attestation-manifest "$tmp/index.json" || fail "no attestation in the index"

[ "$(uname -m)" = x86_64 ] || { echo "SKIP: the buildah part expects an amd64 host"; exit 77; }
id=$(pull_id "$ref") || fail "pull of $ref"
[ "$id" = "$amd64" ] || fail "$ref gave $id, the index's amd64 image is $amd64"
[ "$(image_file "$id" arch)" = amd64 ] || fail "the host platform's image is not the amd64 one"
expect_runs "$(declare_ "multi-$$" "$ref" never)" buildah-amd64
by_index=$(pull_id "$host/team/multi@$index") || fail "pull of $host/team/multi@$index"
[ "$by_index" = "$id" ] || fail "by index digest $by_index, by tag $id"

arm=$(pull_id --platform linux/arm64 "$ref") || fail "pull --platform linux/arm64 of $ref"
[ "$arm" = "$arm64" ] || fail "--platform linux/arm64 gave $arm, the index's arm64 image is $arm64"
[ "$(image_file "$arm" arch)" = arm64 ] || fail "--platform linux/arm64 did not store the arm64 image"

# The attestation's platform is unknown/unknown: asking for it still finds no image.
out=$("$berth" image pull --platform unknown/unknown "$ref" 2>&1) && { echo "$out"; fail "pulled the attestation"; }
grep -q "no image for platform unknown/unknown (the index offers: linux/amd64, linux/arm64)" <<<"$out" ||
  { echo "$out"; fail "unclear error for a platform only the attestation has"; }
echo "buildah manifest: amd64 for this host, arm64 with --platform, the attestation skipped"

# --- a moved tag: podman's image, then buildah's index ----------------------------------------------
podman_ push -q --tls-verify=false localhost/podman-made:v1 "docker://$host/team/app:v1"
missing=$(declare_ "moved-missing-$$" "$host/team/app:v1" missing)
newer=$(declare_ "moved-newer-$$" "$host/team/app:v1" newer)
expect_runs "$missing" podman-amd64
expect_runs "$newer" podman-amd64
buildah_ manifest push -q --all --tls-verify=false localhost/multi:v1 "docker://$host/team/app:v1"
expect_runs "$missing" podman-amd64
expect_runs "$newer" buildah-amd64
expect_runs "$missing" buildah-amd64
echo "moved tag: picked up by newer, not by missing"
echo "PASS"
