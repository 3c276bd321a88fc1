#!/bin/bash
# What the dynamic loader maps when `berth` starts (every `berth run` is a fresh process, so this
# is paid at every container start; issue #3, docs/PERFORMANCE.md):
#  - none of the libraries bound on first use (src/lazy-link): libarchive (+libxml2/ICU),
#    libcrypto, libdevmapper, libbtrfsutil, libnftables, and libsystemd with its compression and
#    crypto dependencies (libgcrypt, libgpg-error, liblzma, libzstd, liblz4);
#  - no C++ runtime or C++ library as a shared object: libstdc++/libgcc_s are linked statically
#    and fmt/toml++ compiled in (src/berth/meson.build), so their ~2000 by-name symbol
#    relocations are gone;
# and that the binary still starts, parses a declaration (toml++) and formats (fmt).
# Usage: start-path-links.sh BERTH
set -euo pipefail
berth=$1
loaded=$(LD_TRACE_LOADED_OBJECTS=1 "$berth" | awk '{print $1}')
bad=$(grep -E '^lib(archive|crypto|ssl|devmapper|btrfsutil|nftables|xml2|icu|systemd|gcrypt|gpg-error|lzma|zstd|lz4|stdc\+\+|gcc_s|fmt|tomlplusplus)' <<<"$loaded" || true)
if [ -n "$bad" ]; then
  echo "start-path-links: $berth loads at start:" $bad >&2
  exit 1
fi
"$berth" --version >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '[container]\ncommand = "not an array\n' > "$tmp/bad.toml"
if out=$("$berth" validate "$tmp/bad.toml" 2>&1); then
  echo "start-path-links: berth validate accepted a broken declaration" >&2
  exit 1
fi
# toml++ (compiled in) reports the position, fmt (compiled in) formats it.
grep -q 'bad.toml:2:' <<<"$out" || { echo "start-path-links: no file:line in: $out" >&2; exit 1; }
echo "start-path-links: ok ($(wc -l <<<"$loaded") objects at start)"
