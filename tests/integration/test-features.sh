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
