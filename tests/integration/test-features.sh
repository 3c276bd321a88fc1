#!/bin/bash
# Feature scenarios under a real systemd 252 on ONE booted instance (CI time: a boot, an install
# and a poweroff are paid once, not per feature). Each part in parts/*.sh is sourced in name
# order on the same instance with the helpers of harness.sh and tap.sh and the variables of
# scenario.sh ($build, $src, $here, $state, $rootfs, $image_tar).
# Rules for a part: container, network and unit names of its own (the part's name in them);
# payloads that exit on SIGTERM (sh as a container's PID 1 ignores it: `trap 'exit 0' TERM;
# sleep N & wait`), so no stop waits for a timeout; stop what it started before it ends.
# Usage: test-features.sh BUILD_DIR [PART...]   (PART: a name such as `health` or a path; default:
#        every part)                             (TAP on stdout; meson suite 'integration')
. "$(dirname "$0")/scenario.sh"   # harness, TAP, systemd booted

# The harness keeps /proc/sys read-only; the instance has its own network namespace, so its
# /proc/sys/net is its own and may be writable: declared networks set ip_forward, [container]
# sysctl writes net.* keys in the container's namespace (as test-fleet.sh does for its hosts).
it_in sh -c 'mount --bind /proc/sys/net /proc/sys/net && mount -o remount,bind,rw /proc/sys/net' ||
  it_die "cannot make the instance's /proc/sys/net writable"

parts=()
if [ $# -gt 1 ]; then
  for p in "${@:2}"; do
    [ -f "$p" ] || p=$here/parts/${p%.sh}.sh
    [ -f "$p" ] || it_die "no such part: $p"
    parts+=("$p")
  done
else
  parts=("$here"/parts/*.sh)
fi
for part in "${parts[@]}"; do
  name=$(basename "$part" .sh)
  echo "# ---- part: $name"
  part_start=$(date +%s)
  . "$part"
  echo "# ---- part: $name took $(( $(date +%s) - part_start ))s"
done
t_done
