#!/bin/bash
# make-test-images.sh DIR: test images for the store, built with umoci and skopeo from the busybox
# rootfs (tests/lib/make-busybox-rootfs.sh). Idempotent: a complete DIR (DIR/.complete) is kept.
#   DIR/oci/                 OCI layout dir (umoci) with tags:
#        busybox             1 layer: busybox rootfs + /data/{a,b} + /etc/motd; config Entrypoint,
#                            Cmd, Env, User, WorkingDir, StopSignal set
#        layered             busybox + a raw layer: etc/.wh.motd (whiteout), data/.wh..wh..opq
#                            (opaque) + data/c, added/file
#        sibling             busybox + a layer adding /sibling (shares the base with "layered")
#   DIR/busybox-oci.tar      oci-archive of busybox (skopeo)
#   DIR/layered-oci.tar      oci-archive of layered (skopeo)
#   DIR/busybox-docker.tar   docker-archive of busybox:latest (skopeo)
#   DIR/layered-docker.tar   docker-archive of layered (skopeo)
#   DIR/oci-zstd/            OCI layout dir of busybox with zstd layers (skopeo)
#   DIR/rootfs.tar.gz        plain rootfs tarball (tar, gzip)   DIR/rootfs.tar (uncompressed)
set -euo pipefail
dir=${1:?usage: make-test-images.sh DIR}
[ -f "$dir/.complete" ] && exit 0
here=$(cd "$(dirname "$0")" && pwd)
for t in umoci skopeo tar gzip; do
  command -v $t >/dev/null || { echo "make-test-images: $t missing (scripts/install-deps.sh)" >&2; exit 1; }
done
mkdir -p "$(dirname "$dir")"
tmp=$(mktemp -d "${dir%/}.tmp-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
bash "$here/make-busybox-rootfs.sh" "$tmp/rootfs"
mkdir -p "$tmp/rootfs/data"
echo a > "$tmp/rootfs/data/a"; echo b > "$tmp/rootfs/data/b"; echo motd > "$tmp/rootfs/etc/motd"
rm -f "$tmp/rootfs/.berth-rootfs-complete"

# busybox: one layer made by umoci repack from the rootfs.
umoci init --layout "$tmp/oci"
umoci new --image "$tmp/oci:busybox"
umoci unpack --image "$tmp/oci:busybox" "$tmp/bundle" >/dev/null
cp -a "$tmp/rootfs/." "$tmp/bundle/rootfs/"
umoci repack --image "$tmp/oci:busybox" "$tmp/bundle" >/dev/null
rm -rf "$tmp/bundle"
umoci config --image "$tmp/oci:busybox" --config.entrypoint /bin/sh --config.cmd -c --config.cmd 'echo hi' \
  --config.env BERTH_TEST=1 --config.user app --config.workingdir /home/app --config.stopsignal SIGINT \
  --architecture amd64 --os linux

# layered: a second layer with a whiteout and an opaque directory (raw, so the markers are exact).
mkdir -p "$tmp/l2/etc" "$tmp/l2/data" "$tmp/l2/added"
: > "$tmp/l2/etc/.wh.motd"; : > "$tmp/l2/data/.wh..wh..opq"
echo c > "$tmp/l2/data/c"; echo added > "$tmp/l2/added/file"
tar --owner=0 --group=0 --numeric-owner -C "$tmp/l2" -cf "$tmp/l2.tar" etc/.wh.motd data/ added/
umoci raw add-layer --image "$tmp/oci:busybox" --tag layered "$tmp/l2.tar"

# sibling: another image on the same base layer.
mkdir -p "$tmp/l3"; echo sibling > "$tmp/l3/sibling"
tar --owner=0 --group=0 --numeric-owner -C "$tmp/l3" -cf "$tmp/l3.tar" sibling
umoci raw add-layer --image "$tmp/oci:busybox" --tag sibling "$tmp/l3.tar"
umoci gc --layout "$tmp/oci"

skopeo copy -q "oci:$tmp/oci:busybox" "oci-archive:$tmp/busybox-oci.tar:busybox"
skopeo copy -q "oci:$tmp/oci:layered" "oci-archive:$tmp/layered-oci.tar:layered"
skopeo copy -q "oci:$tmp/oci:busybox" "docker-archive:$tmp/busybox-docker.tar:busybox:latest"
skopeo copy -q "oci:$tmp/oci:layered" "docker-archive:$tmp/layered-docker.tar:layered:latest"
skopeo copy -q --dest-compress-format zstd "oci:$tmp/oci:busybox" "oci:$tmp/oci-zstd:busybox"

tar --numeric-owner -C "$tmp/rootfs" -cf "$tmp/rootfs.tar" .
gzip -c "$tmp/rootfs.tar" > "$tmp/rootfs.tar.gz"
rm -rf "$tmp/rootfs" "$tmp/l2" "$tmp/l3" "$tmp/l2.tar" "$tmp/l3.tar"
touch "$tmp/.complete"
rm -rf "$dir"; mv "$tmp" "$dir"; trap - EXIT
