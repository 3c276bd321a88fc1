#!/bin/bash
# Installs every Debian 12 package berth's build, tests, demo and benchmarks need.
# Idempotent and non-interactive; run as root.  Usage: scripts/install-deps.sh [--minimal]
#   --minimal  only what building and the unit tests need.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "install-deps: must run as root" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive

build_pkgs=(
  build-essential g++ meson ninja-build pkg-config git
  libsystemd-dev libmount-dev libblkid-dev libtomlplusplus-dev libcap-dev libseccomp-dev
  libgtest-dev libgmock-dev googletest libbtrfsutil-dev libdevmapper-dev libarchive-dev libssl-dev
  nlohmann-json3-dev libcli11-dev libfmt-dev libexpected-dev libmnl-dev libnftables-dev libyaml-cpp-dev
  clang-14 libclang-rt-14-dev clang-format-14
  libcurl4-openssl-dev
  libisal-dev
)
test_pkgs=(
  systemd systemd-container dbus dbus-daemon util-linux iproute2 nftables procps psmisc
  busybox-static btrfs-progs e2fsprogs xfsprogs zstd gzip cpio tar curl
  umoci skopeo mmdebstrap
  docker-registry apache2-utils buildah openssl podman
  qemu-system-x86 dmsetup thin-provisioning-tools
  hyperfine crun runc man-db isal libdeflate-tools libdeflate-dev
  ansible-core openssh-server openssh-client
  dnsmasq-base
)
pkgs=("${build_pkgs[@]}")
[ "${1:-}" = --minimal ] || pkgs+=("${test_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#pkgs[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
