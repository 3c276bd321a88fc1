#!/bin/bash
# The generator under a REAL systemd 252 booted as PID 1 (tests/integration/harness.sh), with this
# build installed: declarations in /etc/berth/containers become loaded berth@NAME.service units;
# an invalid declaration's unit fails at start with the exact validation error in `systemctl
# status` and the journal; what runs is pinned until `systemctl daemon-reload` (berth plan shows
# the pending change). Usage: generator-under-systemd.sh SOURCE_ROOT BUILD_DIR
set -uo pipefail
src=$1 build=$2
. "$src/tests/integration/harness.sh"
state=$IT_WORK/$IT_NAME.state
trap 'it_teardown; rm -rf "$state"' EXIT
trap 'exit 130' INT TERM
failed=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; failed=1; }

it_install "$build"
mkdir -p "$state/etc-berth/containers"
printf '[container]\nimage = "busybox"\n\n[resources]\nmemory_max = "512M"\n' >"$state/etc-berth/containers/good.toml"
printf '[container]\nimage = "busybox"\n\n[resources]\nmemory_max = "lots"\n' >"$state/etc-berth/containers/bad.toml"
error="/etc/berth/containers/bad.toml:5:14: resources.memory_max = 'lots' is not a valid size"
it_boot "$state"

show=$(it_in systemctl show -p LoadState -p Type -p Delegate -p KillMode -p MemoryMax -p Slice berth@good.service)
for want in LoadState=loaded Type=notify Delegate=yes KillMode=mixed MemoryMax=536870912 Slice=berth.slice; do
  grep -qx "$want" <<<"$show" && ok "berth@good.service has $want" || bad "berth@good.service lacks $want: $show"
done
it_in systemctl show -p Wants berth.target | grep -q 'berth@good.service' \
  && ok "berth.target wants berth@good.service" || bad "berth.target does not want berth@good.service"

if it_in systemctl start berth@bad.service >/dev/null 2>&1; then bad "starting the invalid declaration's unit succeeded"
else ok "starting the invalid declaration's unit fails"; fi
status=$(it_in systemctl status --no-pager -l -n 20 berth@bad.service 2>&1)
grep -qF "$error" <<<"$status" && ok "systemctl status shows the validation error" || { bad "systemctl status lacks the error"; echo "$status"; }
journal=$(it_in journalctl --no-pager -u berth@bad.service 2>&1)
grep -qF "$error" <<<"$journal" && ok "the journal has the validation error" || { bad "the journal lacks the error"; echo "$journal"; }

# Pinning: an edit changes nothing until daemon-reload; berth plan reports the pending change.
it_in berth plan >/dev/null 2>&1; rc=$?
[ "$rc" = 0 ] && ok "berth plan: nothing pending after boot" || bad "berth plan exited $rc after boot"
sed -i 's/512M/1G/' "$state/etc-berth/containers/good.toml"
it_in systemctl show -p MemoryMax berth@good.service | grep -qx MemoryMax=536870912 \
  && ok "an edit without daemon-reload changes nothing" || bad "the edit took effect without daemon-reload"
plan=$(it_in berth plan 2>&1); rc=$?
[ "$rc" = 2 ] && grep -q '^+MemoryMax=1G' <<<"$plan" && ok "berth plan shows the pending change (exit 2)" \
  || { bad "berth plan exited $rc"; echo "$plan"; }
it_in systemctl daemon-reload
it_in systemctl show -p MemoryMax berth@good.service | grep -qx MemoryMax=1073741824 \
  && ok "daemon-reload applies the edit" || bad "daemon-reload did not apply the edit"
it_in grep -q 'memory_max = "1G"' /run/systemd/generator/berth/good.toml \
  && ok "the pinned declaration was regenerated" || bad "the pinned declaration is stale"
exit $failed
