#!/bin/bash
# The dependency diagram of docs/ARCHITECTURE.md, checked on the built executables:
#  - `berth` (the CLI and the unit's ExecStart) does not link the image store's libraries:
#    libarchive, libcrypto, libdevmapper, libbtrfsutil; nor libnftables (dlopen()ed for published
#    ports only, network/nft.cpp). Neither in DT_NEEDED nor loaded at run time (LD_DEBUG=libs of a
#    real `berth validate`, which also catches a library pulled in by another one), nor reachable
#    (no store code or dlopen() stub for them in the binary).
#  - berthd is the side that uses the store's libraries, but dlopen()s them where they are used
#    (basic/dlopen-util.h): a private berthd that serves one `berth run` (embedded mode) maps none
#    of them, nor libnftables, libmount, libblkid (with libselinux, libpcre2), nor (outside sanitizer builds) libstdc++/fmt/toml++ as shared objects.
#  - outside sanitizer builds: no C++ runtime or C++ library as a shared object in berth:
#    libstdc++/libgcc_s are linked statically and fmt/toml++ compiled in (src/berth/meson.build),
#    so their ~2000 by-name symbol relocations are not paid at every container start (issue #3).
# and that the binary still starts, parses a declaration (toml++) and formats (fmt).
# Usage: start-path-links.sh BERTH BERTHD STATIC_CXX(yes|no)
set -euo pipefail
berth=$1 berthd=$2 static_cxx=${3:-yes}
store_libs='archive|crypto|ssl|devmapper|btrfsutil|curl'
needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
fail() { echo "start-path-links: $*" >&2; exit 1; }

bad=$(needed "$berth" | grep -E "^lib($store_libs|nftables)\." || true)
[ -z "$bad" ] || fail "$berth links (DT_NEEDED):" $bad
# Nor any way to reach them: no store code compiled in, no stub that would dlopen() them later
# (the old src/lazy-link trampolines hid these libraries from DT_NEEDED).
bad=$(strings -a "$berth" | grep -E "^lib($store_libs)\.so|soname.*lib($store_libs)\.so|^(archive_read_new|dm_task_create|btrfs_util_create_snapshot|EVP_DigestInit_ex)$" | sort -u || true)
[ -z "$bad" ] || fail "$berth carries the store's libraries or code:" $bad
if [ "$static_cxx" = yes ]; then
  bad=$(needed "$berth" | grep -E '^lib(stdc\+\+|gcc_s|fmt|tomlplusplus)\.' || true)
  [ -z "$bad" ] || fail "$berth links the C++ runtime or libraries as shared objects:" $bad
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '[container]\nrootfs = "/"\ncommand = ["/bin/true"]\n' > "$tmp/good.toml"
LD_DEBUG=libs LD_DEBUG_OUTPUT="$tmp/ld" "$berth" validate "$tmp/good.toml" >/dev/null 2>&1 ||
  fail "berth validate rejected a good declaration"
loaded=$(grep -ho 'calling init: [^ ]*' "$tmp"/ld.* | awk '{print $3}' | sort -u)
[ -n "$loaded" ] || fail "LD_DEBUG=libs recorded nothing (is the loader's debug output disabled?)"
bad=$(grep -E "/lib($store_libs|nftables)\." <<<"$loaded" || true)
[ -z "$bad" ] || fail "berth validate loaded:" $bad

# The other side of the diagram: berthd reaches the store's libraries by dlopen() only.
bad=$(needed "$berthd" | grep -E "^lib($store_libs|nftables|mount|blkid)\." || true)
[ -z "$bad" ] || fail "$berthd links (DT_NEEDED), where it should dlopen() them:" $bad
if [ "$static_cxx" = yes ]; then
  bad=$(needed "$berthd" | grep -E '^lib(stdc\+\+|gcc_s|fmt|tomlplusplus)\.' || true)
  [ -z "$bad" ] || fail "$berthd links the C++ runtime or libraries as shared objects:" $bad
fi
berthd_strings=$(strings -a "$berthd")
for soname in libarchive.so.13 libcrypto.so.3 libbtrfsutil.so.1 libdevmapper.so.1.02.1 libcurl.so.4 libmount.so.1 libblkid.so.1; do
  grep -q "$soname\$" <<<"$berthd_strings" || fail "$berthd does not name $soname for dlopen()"
done
LD_DEBUG=libs LD_DEBUG_OUTPUT="$tmp/ldd" "$berthd" --version >/dev/null 2>&1 || fail "berthd --version failed"
# Nor libmount/libblkid (and libselinux, libpcre2 behind them): read a mount table, probe a file
# system by dlopen() (basic/libmount-dl.h); a private berthd for one `berth run` does neither.
bad=$(grep -ho 'calling init: [^ ]*' "$tmp"/ldd.* | awk '{print $3}' | grep -E "/lib($store_libs|nftables|mount|blkid|selinux|pcre2-8)\." || true)
[ -z "$bad" ] || fail "berthd --version loaded:" $bad

"$berth" --version >/dev/null
printf '[container]\ncommand = "not an array\n' > "$tmp/bad.toml"
if out=$("$berth" validate "$tmp/bad.toml" 2>&1); then
  fail "berth validate accepted a broken declaration"
fi
# toml++ (compiled in) reports the position, fmt (compiled in) formats it.
grep -q 'bad.toml:2:' <<<"$out" || fail "no file:line in: $out"
echo "start-path-links: ok (berth: $(needed "$berth" | wc -l) DT_NEEDED, $(wc -l <<<"$loaded") objects loaded; berthd: $(needed "$berthd" | wc -l) DT_NEEDED)"
