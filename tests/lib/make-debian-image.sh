#!/bin/bash
# make-debian-image.sh DIR: a Debian 12 minbase image as a new user would make one, for the store's
# real-image test: `mmdebstrap --variant=minbase --format=tar bookworm` (a root filesystem tar with
# /dev/console, /dev/null & co. as device nodes), packed as an OCI layout with umoci.
#   DIR/oci/            OCI layout dir (umoci), tag "bookworm": one gzip layer, the mmdebstrap tar
# Idempotent: a complete DIR (DIR/.complete) is kept, so the mirror is asked once per build tree.
# Needs root, mmdebstrap and umoci (scripts/install-deps.sh) and a reachable Debian mirror
# ($BERTH_DEBIAN_MIRROR, default: mmdebstrap's, deb.debian.org).
set -euo pipefail
dir=${1:?usage: make-debian-image.sh DIR}
[ -f "$dir/.complete" ] && exit 0
for t in mmdebstrap umoci; do
  command -v $t >/dev/null || { echo "make-debian-image: $t missing (scripts/install-deps.sh installs it)" >&2; exit 1; }
done
mkdir -p "$(dirname "$dir")"
tmp=$(mktemp -d "${dir%/}.tmp-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mirror=()
[ -n "${BERTH_DEBIAN_MIRROR:-}" ] && mirror=("$BERTH_DEBIAN_MIRROR")
if ! mmdebstrap --quiet --variant=minbase --format=tar bookworm "$tmp/rootfs.tar" "${mirror[@]}" 2>"$tmp/log"; then
  cat "$tmp/log" >&2
  if grep -qiE 'could not resolve|failed to fetch|temporary failure|unable to connect|network is unreachable|connection (refused|timed out)' "$tmp/log"; then
    echo "make-debian-image: mmdebstrap cannot reach the Debian mirror (${BERTH_DEBIAN_MIRROR:-deb.debian.org}); this test needs it (set BERTH_DEBIAN_MIRROR to a reachable one)" >&2
  else
    echo "make-debian-image: mmdebstrap failed (log above)" >&2
  fi
  exit 1
fi
umoci init --layout "$tmp/oci"
umoci new --image "$tmp/oci:bookworm"
umoci raw add-layer --image "$tmp/oci:bookworm" "$tmp/rootfs.tar"
umoci config --image "$tmp/oci:bookworm" --config.cmd /bin/bash --architecture amd64 --os linux
umoci gc --layout "$tmp/oci"
rm -f "$tmp/rootfs.tar" "$tmp/log"
touch "$tmp/.complete"
rm -rf "$dir"; mv "$tmp" "$dir"; trap - EXIT
