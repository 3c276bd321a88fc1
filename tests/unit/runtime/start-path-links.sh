#!/bin/bash
# `berth run` must not load the libraries that are bound on first use (src/lazy-link): a direct
# -larchive, -lcrypto, ... (or one pulled in by another library) costs every container start
# milliseconds of CPU for code it never calls. Checks the whole set the dynamic loader maps at
# start, and that the binary still starts.   Usage: start-path-links.sh BERTH
set -euo pipefail
berth=$1
loaded=$(LD_TRACE_LOADED_OBJECTS=1 "$berth" | awk '{print $1}')
bad=$(grep -E '^lib(archive|crypto|ssl|devmapper|btrfsutil|nftables|xml2|icu)' <<<"$loaded" || true)
if [ -n "$bad" ]; then
  echo "start-path-links: $berth loads at start:" $bad >&2
  exit 1
fi
"$berth" --version >/dev/null
echo "start-path-links: ok ($(wc -l <<<"$loaded") objects at start)"
