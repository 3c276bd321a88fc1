#!/bin/bash
# README's quick start, exactly: the lines between <!-- quickstart:begin --> and
# <!-- quickstart:end --> run one by one (issue #15), so the test breaks when the README drifts.
# Global paths are moved into a private directory (the store, /etc/berth/containers, /tmp/bb, the
# run and state directories) and the container gets a unique name; systemd is out of reach (the
# system bus points nowhere), as in a container, so the store is a private berthd.
# Usage: quickstart.sh README BUILD_DIR
set -uo pipefail
readme=${1:?README}
build=${2:?build dir}
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (run as root in CI)"; exit 77; }
[ -x /bin/busybox ] || { echo "SKIP: the quick start needs /bin/busybox (busybox-static), missing here"; exit 77; }
tmp=$(mktemp -d /tmp/berth-quickstart-XXXXXX)
name=hello-$$
cleanup() {
  cg=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/self/mounts)/berth/$name
  [ -d "$cg" ] && { echo 1 >"$cg/cgroup.kill" 2>/dev/null; sleep 0.1; rmdir "$cg" 2>/dev/null; }
  rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$tmp/bin"
ln -s "$(realpath "$build/src/berth/berth")" "$tmp/bin/berth"
export PATH=$tmp/bin:$PATH
export BERTH_CONTAINERS_PATH=$tmp/etc/berth/containers BERTH_STORE_ROOT=$tmp/store BERTH_STORE_BACKEND=overlay
export BERTH_RUN_DIR=$tmp/run BERTH_STATE_DIR=$tmp/state DBUS_SYSTEM_BUS_ADDRESS=unix:path=$tmp/no-bus
export BERTH_BERTHD=$build/src/berthd/berthd

sed -n '/<!-- quickstart:begin/,/<!-- quickstart:end/p' "$readme" | sed -e '1,/^```sh$/d' -e '/^```$/,$d' >"$tmp/readme-lines"
n=$(wc -l <"$tmp/readme-lines")
[ "$n" = 5 ] || { echo "FAIL: the quick start has $n commands, not five:"; cat "$tmp/readme-lines"; exit 1; }
sed -e "s#/etc/berth/containers#$tmp/etc/berth/containers#g" -e "s#/tmp/bb#$tmp/bb#g" \
    -e "s#containers/hello.toml#containers/$name.toml#" -e "s#^\(berth [a-z]*\) hello\$#\1 $name#" \
    "$tmp/readme-lines" >"$tmp/lines"
failed=0
i=0
while IFS= read -r line; do
  i=$((i + 1))
  echo "\$ $line"
  bash -c "$line" >"$tmp/out.$i" 2>&1
  rc=$?
  cat "$tmp/out.$i"
  [ $rc = 0 ] || { echo "FAIL: command $i exited $rc"; failed=1; }
done <"$tmp/lines"
grep -q '^hello from berth$' "$tmp/out.4" || { echo "FAIL: berth run did not print 'hello from berth'"; failed=1; }
grep -q "^$name  *busybox:1 " "$tmp/out.5" || { echo "FAIL: berth list does not show $name with busybox:1"; failed=1; }
grep -q "showing berth's own runtime state" "$tmp/out.5" || { echo "FAIL: berth list does not say which view it shows"; failed=1; }
[ $failed = 0 ] && echo "ok: README quick start"
exit $failed
