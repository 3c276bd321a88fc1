#!/bin/bash
# A real distribution image end to end (issue #13, item 7): Debian 12 minbase made by mmdebstrap
# and packed by umoci, as a new user would, carries /dev/console & co. as device nodes. It must
# import (the nodes left out and recorded) and run: /etc/debian_version, and `id` as a user from
# the image's own passwd. The image is built once per build tree (tests/lib/make-debian-image.sh).
# Usage: test-real-image.sh BUILD_DIR BERTH_BINARY          (root; meson suite 'privileged')
set -euo pipefail
build=${1:?usage: test-real-image.sh BUILD_DIR BERTH_BINARY}
berth=${2:?usage: test-real-image.sh BUILD_DIR BERTH_BINARY}
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../../.." && pwd)
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (run as root in CI)"; exit 77; }

images="$build/test-images/debian12"
t0=$(date +%s%N)
# Not a skip: without mmdebstrap or the mirror this test cannot say anything, and CI must notice.
bash "$src/tests/lib/make-debian-image.sh" "$images" || { echo "FAIL: could not build the Debian 12 image (above)"; exit 1; }
echo "image ready in $(( ($(date +%s%N) - t0) / 1000000 )) ms (cached under $images)"

tmp=$(mktemp -d /tmp/berth-real-image-$$-XXXXXX)
cleanup() {
  umount -l "$tmp/mnt" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
# A private tmpfs for the store: the overlay backend, nothing shared with other tests.
mkdir -p "$tmp/mnt" "$tmp/decl"
mount -t tmpfs -o size=1g,mode=0700 tmpfs "$tmp/mnt"
export BERTH_STORAGE=embedded BERTH_STORE_ROOT="$tmp/mnt/store" BERTH_STATE_DIR="$tmp/mnt/state"
export BERTH_DAEMON_CONFIG="$tmp/berthd.toml"  # absent: the defaults, import limits included

# First, on the empty store (a stored layer is reused, not read): the embedded store honours
# berthd.toml's import limits as berthd does. A limit the layer passes fails the import naming the
# layer and the key, and publishes nothing; a bad value is refused with file:line:col.
printf '[store]\nmax_layer_entries = 100\n' > "$BERTH_DAEMON_CONFIG"
if out=$("$berth" image import "$images/oci" --name "limited:$$" 2>&1); then
  echo "$out"; echo "FAIL: max_layer_entries = 100 in berthd.toml was not applied by the embedded store"; exit 1
fi
echo "$out"
grep -q "layer 0 ('blobs/sha256/[0-9a-f]*').*max_layer_entries (100)" <<<"$out" || { echo "FAIL: the error does not name the layer and the limit"; exit 1; }
if "$berth" image list 2>&1 | grep -q "limited"; then echo "FAIL: a refused image was published"; exit 1; fi
[ -z "$(ls -A "$BERTH_STORE_ROOT/staging")" ] || { ls -la "$BERTH_STORE_ROOT/staging"; echo "FAIL: staging left behind"; exit 1; }
printf '[store]\nmax_layer_ratio = "lots"\n' > "$BERTH_DAEMON_CONFIG"
out=$("$berth" image import "$images/oci" --name "limited:$$" 2>&1) && { echo "FAIL: a bad max_layer_ratio was accepted"; exit 1; }
echo "$out"
grep -q "berthd.toml:2:19: 'max_layer_ratio' must be a whole number" <<<"$out" || { echo "FAIL: no file:line:col for a bad value"; exit 1; }
rm -f "$BERTH_DAEMON_CONFIG"

t0=$(date +%s%N)
if ! out=$("$berth" image import "$images/oci" --name "debian:12-$$" 2>&1); then
  echo "$out"; echo "FAIL: berth image import of the mmdebstrap image"; exit 1
fi
echo "$out"
echo "import took $(( ($(date +%s%N) - t0) / 1000000 )) ms"

# The skipped nodes are recorded with the layer, in the image's metadata.
record=$(cat "$BERTH_STORE_ROOT"/images/*.json)
for n in console null ptmx tty zero; do
  grep -q "\"dev/$n (char " <<<"$record" || { echo "$record"; echo "FAIL: dev/$n is not recorded as skipped"; exit 1; }
done


cat > "$tmp/decl/deb12-$$.toml" <<EOF
[container]
image = "debian:12-$$"
user = "daemon"
command = ["sh", "-c", "cat /etc/debian_version; id"]
EOF
if ! out=$(timeout 120 "$berth" run "$tmp/decl/deb12-$$.toml" 2>&1); then
  echo "$out"; echo "FAIL: berth run of the Debian 12 image"; exit 1
fi
echo "$out"
grep -qE '^12\.[0-9]+$' <<<"$out" || { echo "FAIL: /etc/debian_version is not 12.x"; exit 1; }
grep -q '^uid=1(daemon) gid=1(daemon)' <<<"$out" || { echo "FAIL: id as 'daemon' from the image's passwd"; exit 1; }
echo "PASS"
