#!/bin/bash
# Builds what tests/device/run-gpu-checks.sh carries to the GPU machine (Ubuntu 24.04, no
# build tools there): a release build of berth, stripped, with the libraries the runtime path maps
# that the target may lack. Run here, in the repository root; then pass
# carry=["build-carry"] to the device `run`.
set -euo pipefail
out=${1:-build-carry}
meson setup build-release --buildtype=release -Dtests=false >/dev/null 2>&1 || meson setup --reconfigure build-release --buildtype=release -Dtests=false >/dev/null
ninja -C build-release -j2 src/berth/berth src/berth/berth-supervise src/libberth/cdi/berth-cdi-yaml.so
rm -rf "$out" && mkdir -p "$out/bin" "$out/lib"
cp build-release/src/berth/berth build-release/src/berth/berth-supervise "$out/bin/"
cp build-release/src/libberth/cdi/berth-cdi-yaml.so "$out/lib/"
strip "$out/bin/"* "$out/lib/"*.so
# libc is the target's own (newer there); the rest of what `berth` needs, in case it is missing.
for lib in $(ldd "$out/bin/berth" | awk '/=>/ {print $3}'); do
  case $(basename "$lib") in libc.so*|libm.so*|ld-linux*|libpthread*|libdl*|librt*) ;; *) cp -L "$lib" "$out/lib/" ;; esac
done
du -sh "$out"
