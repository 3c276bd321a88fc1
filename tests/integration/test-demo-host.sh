#!/bin/bash
# scripts/demo.sh in host mode leaves the machine as it found it: a real systemd 252 is booted as
# PID 1 in a throw-away container WITHOUT berth installed (harness.sh), and the demo runs inside
# it, where PID 1 is systemd, so it takes its host path: `meson install` of this build, the image
# import, berth@demo.service under that systemd, and at the end the uninstall. Every file and
# directory under /etc, /usr, /var/lib, /run/berth and the demo's /var/tmp scratch is listed
# before and after: the lists must be equal.
# Usage: test-demo-host.sh BUILD_DIR       (TAP on stdout; meson suite 'integration')
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
. "$here/harness.sh"
. "$here/tap.sh"
build=$(cd "${1:?usage: test-demo-host.sh BUILD_DIR}" && pwd)
[ "$(id -u)" = 0 ] || { echo "1..0 # SKIP needs root"; exit 0; }
state=$IT_WORK/$IT_NAME.state
trap 'it_teardown; rm -rf "$state"' EXIT
trap 'exit 130' INT TERM
it_boot "$state"   # no it_install: the demo is what installs berth here
echo "# systemd booted in ${IT_BOOT_MS}ms (PID 1 = host pid $IT_PID1), berth not installed"
# The container's root is an overlay of this machine's / (its own /tmp): the tree must be on it.
if ! it_in test -f "$src/scripts/demo.sh" -a -f "$build/build.ninja"; then
  t_skip "demo.sh in host mode" "the source or build tree ($src, $build) is not on the root file system (/tmp or another mount), so the container cannot see it"
  t_done; exit
fi
t_fails "berth is not installed before the demo" it_in sh -c 'command -v berth'

snapshot() {
  # Not -xdev: /etc/berth and /var/lib/berth are the harness's (empty) bind mounts. Of /var/tmp
  # (shared with this machine through the overlay) only the demo's own scratch directories.
  it_in sh -c 'find /etc /usr /var/lib /run/berth -path /var/lib/systemd -prune -o -print 2>/dev/null; ls -d /var/tmp/berth-demo.* 2>/dev/null; true' | sort
}
before=$(snapshot)
out=$(it_in bash "$src/scripts/demo.sh" --no-deps --no-build --build-dir "$build" 2>&1); rc=$?   # meson test built it
printf '%s\n' "$out" | tail -60 | sed 's/^/# demo: /'
t_eq "demo.sh in host mode succeeds" 0 "$rc"
t_like "it took the host path (PID 1 is systemd)" 'PID 1 is systemd: using this machine' "$out"
t_like "berth@demo.service ran under that systemd" 'active \(running\)' "$out"
after=$(snapshot)
t_eq "nothing the demo installed or created is left behind" "" \
  "$(diff <(printf '%s\n' "$before") <(printf '%s\n' "$after") | grep '^[<>]')"
t_fails "berth is not installed after the demo" it_in sh -c 'command -v berth'
t_eq "no berth unit is known to systemd afterwards" "" \
  "$(it_in systemctl list-unit-files --no-legend 'berth@*' 'berth.*' 'berthd.*' 2>/dev/null)"
t_done
