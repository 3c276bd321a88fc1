#!/bin/bash
# `berth commit` -> `berth image push` -> read back (issue #17): a container run from an imported
# busybox writes a file, is committed, and pushed through berthd's PushImage job (a private
# berthd: BERTH_STORAGE=embedded) to a real docker-registry on 127.0.0.1 (declared insecure).
# skopeo inspect shows the image id as the manifest digest; podman pulls it with the same diff_ids
# as the config berth pushed; berth pulls it back (after removing it) as the same image id, and
# runs it: the committed file is there.
# Usage: test-push-cli.sh BUILD_DIR BERTH_BINARY            (root; meson suite 'privileged')
set -euo pipefail
build=${1:?usage: test-push-cli.sh BUILD_DIR BERTH_BINARY}
berth=${2:?usage: test-push-cli.sh BUILD_DIR BERTH_BINARY}
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../../.." && pwd)
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (run as root in CI)"; exit 77; }
for t in docker-registry skopeo podman python3; do
  command -v $t >/dev/null || { echo "FAIL: $t missing (scripts/install-deps.sh)"; exit 1; }
done
# podman with its own storage under $tmp (vfs: no mounts, so removing $tmp removes it all; never
# `podman system reset`, which would touch the host's podman networks).
podman_() { podman --root "$tmp/podman" --runroot "$tmp/podman-run" --storage-driver vfs "$@"; }
. "$here/registry-lib.sh"
setup_registry_test push-cli

start_registry
printf '[[registry]]\nprefix = "%s"\nlocation = "%s"\ninsecure = true\n' "$host" "$host" > "$tmp/reg/registries.toml"

"$berth" image import -n "base-$$:1" "$images/busybox-oci.tar" >/dev/null
name=pushed-$$
cat > "$tmp/decl/$name.toml" <<EOT
[container]
image = "base-$$:1"
user = "root"
command = ["sh", "-c", "echo committed-before-push > /pushed-file"]
EOT
timeout 120 "$berth" run "$tmp/decl/$name.toml" >/dev/null
"$berth" commit "$tmp/decl/$name.toml" "committed-$$:1" >/dev/null
id=$("$berth" image inspect "committed-$$:1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')

if ! out=$("$berth" image push "committed-$$:1" "$host/team/app:v1" 2>&1); then
  echo "$out"; echo "FAIL: berth image push"; exit 1
fi
echo "$out"
grep -q "^push progress: fraction=1.000" <<<"$out" || { echo "FAIL: no progress lines"; exit 1; }
grep -q "^Pushed committed-$$:1 to $host/team/app@$id$" <<<"$out" || { echo "FAIL: no 'Pushed ... @$id' line"; exit 1; }

"$berth" image list | grep -q "$host/team/app@$id" || { "$berth" image list; echo "FAIL: list lacks the repo digest"; exit 1; }
"$berth" image inspect "committed-$$:1" | grep -q "\"$host/team/app@$id\"" || { echo "FAIL: inspect lacks the repo digest"; exit 1; }
digest=$(skopeo inspect --tls-verify=false "docker://$host/team/app:v1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Digest"])')
[ "$digest" = "$id" ] || { echo "FAIL: skopeo sees $digest, berth pushed $id"; exit 1; }
diff_ids=$(skopeo inspect --config --tls-verify=false "docker://$host/team/app:v1" |
  python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)["rootfs"]["diff_ids"]))')
[ "$(wc -w <<<"$diff_ids")" = 2 ] || { echo "FAIL: expected 2 diff_ids, got '$diff_ids'"; exit 1; }
podman_ pull -q --tls-verify=false "docker://$host/team/app:v1" >/dev/null
podman_layers=$(podman_ image inspect --format '{{range .RootFS.Layers}}{{.}} {{end}}' "$host/team/app:v1")
[ "${podman_layers% }" = "$diff_ids" ] || { echo "FAIL: podman has '$podman_layers', pushed '$diff_ids'"; exit 1; }

# Back into berth: the same image id, and it runs with the committed file.
"$berth" rm "$tmp/decl/$name.toml" >/dev/null
"$berth" image rm "committed-$$:1" >/dev/null
pulled=$("$berth" image pull --json "$host/team/app:v1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
[ "$pulled" = "$id" ] || { echo "FAIL: pulled back $pulled, pushed $id"; exit 1; }
"$berth" image tag "$host/team/app:v1" "back-$$:1"
cat > "$tmp/decl/back-$$.toml" <<EOT
[container]
image = "back-$$:1"
command = ["cat", "/pushed-file"]
EOT
out=$(timeout 120 "$berth" run "$tmp/decl/back-$$.toml" 2>&1) || { echo "$out"; echo "FAIL: run of the pulled image"; exit 1; }
grep -q '^committed-before-push$' <<<"$out" || { echo "$out"; echo "FAIL: the committed file is missing"; exit 1; }

# Errors name what failed: an unknown image, a registry that is not there.
out=$("$berth" image push "nope-$$:1" "$host/team/app:v1" 2>&1) && { echo "FAIL: pushed an unknown image"; exit 1; }
grep -q "nope-$$:1" <<<"$out" || { echo "$out"; echo "FAIL: unclear error for an unknown image"; exit 1; }
echo "PASS"
