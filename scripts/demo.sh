#!/bin/bash
# demo.sh — berth's main job, end to end, on a fresh Debian 12 machine (as root):
#   installs what is needed, builds berth, imports a small busybox image into the store, declares
#   the sample container configs/examples/demo.toml, and shows it running under systemd: its
#   output in the journal, its storage snapshot, its supervisor/payload cgroup tree, `berth list`
#   and `berth status`; then stops it, cleans up and tells you what you saw.
# When PID 1 is systemd the host's own systemd is used (berth is installed with `meson install`,
# and uninstalled again at the end: every file and directory the install added, berth's state
# directories if the demo created them; the demo fails if any is left behind);
# otherwise a real systemd is booted as PID 1 in a throw-away container for the demo
# (tests/integration/harness.sh), with berth installed inside it, and torn down afterwards.
# Usage: scripts/demo.sh [--no-deps] [--no-build] [--build-dir DIR] [--keep]   (--keep: leave the container running and
#        berth installed, host mode)
set -uo pipefail
cd "$(dirname "$0")/.."
top=$PWD
deps=1; build=$top/build-demo; keep=0; do_build=1
while [ $# -gt 0 ]; do
  case $1 in
    --no-deps) deps=0; shift;;
    --build-dir) build=$2; shift 2;;
    --keep) keep=1; shift;;
    --no-build) do_build=0; shift;;
    -h|--help) sed -n '2,13p' "$0"; exit 0;;
    *) echo "demo: unknown option $1" >&2; exit 2;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "demo: run me as root (sudo bash scripts/demo.sh)" >&2; exit 1; }

bold=$(tput bold 2>/dev/null || true); off=$(tput sgr0 2>/dev/null || true)
step() { echo; echo "${bold}==> $*${off}"; }
show() { echo "${bold}\$ $*${off}"; }

# ---- 1. dependencies and build ---------------------------------------------------------------
if [ "$deps" = 1 ]; then
  step "Installing build and runtime dependencies (scripts/install-deps.sh)"
  bash scripts/install-deps.sh || exit 1
fi
if [ "$do_build" = 1 ]; then
  step "Building berth in $build"
  t_build=$(date +%s)
  if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" -Dtests=false >/dev/null || { echo "demo: meson setup failed" >&2; exit 1; }
  fi
  ninja -C "$build" >"$build.log" 2>&1 || { tail -30 "$build.log" >&2; echo "demo: build failed (log: $build.log)" >&2; exit 1; }
  echo "built in $(( $(date +%s) - t_build ))s"
fi
t_demo=$(date +%s)

# ---- 2. a systemd to run under -----------------------------------------------------------------
work=$(mktemp -d /var/tmp/berth-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT   # until cleanup below takes over
host_mode=0
if [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ] && [ -d /run/systemd/system ]; then host_mode=1; fi
image_tar=$work/busybox.tar
bash tests/lib/make-busybox-rootfs.sh "$work/rootfs" || exit 1
tar -C "$work/rootfs" --exclude=.berth-rootfs-complete -cf "$image_tar" . || exit 1

if [ "$host_mode" = 1 ]; then
  step "PID 1 is systemd: using this machine's own systemd"
  # What the demo puts on this machine is taken away again at the end, on success and on failure
  # (unless --keep): every file `meson install` adds that was not there before, the directories
  # it creates for them, and berth's state directories when the demo made them (or their
  # contents, when they were there but empty). Files that were
  # there already (an earlier install of berth) are overwritten, as `meson install` does, and kept.
  meson introspect "$build" --installed | python3 -c 'import json, sys; print("\n".join(json.load(sys.stdin).values()))' \
    > "$work/install-plan" || { echo "demo: meson introspect --installed failed" >&2; exit 1; }
  : > "$work/new-files"; : > "$work/new-dirs"
  while read -r f; do
    [ -e "$f" ] || [ -L "$f" ] && continue
    echo "$f" >> "$work/new-files"
    d=$(dirname "$f")
    while [ ! -e "$d" ]; do echo "$d" >> "$work/new-dirs"; d=$(dirname "$d"); done
  done < "$work/install-plan"
  sort -u -r -o "$work/new-dirs" "$work/new-dirs"   # deepest first for rmdir
  new_state=() empty_state=()   # berth's state directories: absent, or there but empty (a mount point)
  for d in /etc/berth /var/lib/berth /run/berth; do
    if [ ! -e "$d" ]; then new_state+=("$d")
    elif [ -d "$d" ] && [ -z "$(ls -A "$d")" ]; then empty_state+=("$d"); fi
  done
  uninstall() {
    local f left=0
    systemctl stop berthd.service 2>/dev/null
    while read -r f; do rm -f "$f"; done < "$work/new-files"
    while read -r f; do rmdir "$f" 2>/dev/null; done < "$work/new-dirs"
    for f in "${new_state[@]}"; do rm -rf --one-file-system "$f"; done
    for f in "${empty_state[@]}"; do find "$f" -mindepth 1 -maxdepth 1 -exec rm -rf --one-file-system {} +; done
    systemctl daemon-reload
    busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus ReloadConfig >/dev/null 2>&1
    while read -r f; do
      [ -e "$f" ] || [ -L "$f" ] && { echo "demo: left behind: $f" >&2; left=1; }
    done < <(cat "$work/new-files" "$work/new-dirs"; printf '%s\n' "${new_state[@]}")
    for f in "${empty_state[@]}"; do
      [ -z "$(ls -A "$f")" ] || { echo "demo: left behind in $f: $(ls -A "$f" | tr '\n' ' ')" >&2; left=1; }
    done
    return $left
  }
  meson install -C "$build" --no-rebuild --quiet || { echo "demo: meson install failed" >&2; uninstall; exit 1; }
  # The system bus reads policy only from /usr/share/dbus-1/system.d and /etc/dbus-1/system.d: with
  # another prefix (/usr/local) berth's policy goes to /etc too (recorded, so it is removed again),
  # or berthd may not own its name and every call to it is rejected.
  while read -r f; do
    case $f in /usr/share/*|/etc/*) continue;; esac
    dst=/etc/dbus-1/system.d/$(basename "$f")
    [ -e "$dst" ] && continue
    [ -d /etc/dbus-1/system.d ] || { mkdir -p /etc/dbus-1/system.d && echo /etc/dbus-1/system.d >> "$work/new-dirs"; }
    echo "$dst" >> "$work/new-files"; cp "$f" "$dst"
  done < <(grep '/dbus-1/system\.d/[^/]*\.conf$' "$work/install-plan")
  busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus ReloadConfig >/dev/null 2>&1
  sysrun() { env SYSTEMD_PAGER= "$@"; }
  cleanup() {
    local rc=$?
    if [ "$keep" = 0 ]; then
      systemctl stop berth@demo.service 2>/dev/null
      rm -f /etc/berth/containers/demo.toml; systemctl daemon-reload
      berth image rm busybox:demo >/dev/null 2>&1
      uninstall || rc=1
    else
      echo "demo: berth stays installed (--keep); installed files: $build/meson-logs/install-log.txt"
    fi
    rm -rf "$work"
    exit $rc
  }
else
  step "PID 1 is $(cat /proc/1/comm) here, not systemd: booting a real systemd as PID 1 in a throw-away container"
  IT_WORK=$work; IT_NAME=berth-demo-$$
  . tests/integration/harness.sh
  it_install "$build"
  it_boot "$work/state"
  echo "systemd $(it_in systemctl --version | sed -n '1s/systemd \([0-9]*\).*/\1/p') is PID 1 of container '$IT_NAME' (booted in ${IT_BOOT_MS}ms), with its own system bus; berth is installed in it"
  sysrun() { it_in "$@"; }
  cleanup() { it_teardown >/dev/null; rm -rf "$work"; }
fi
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- 3. image, declaration, daemon-reload, start ---------------------------------------------
decl=$(cat configs/examples/demo.toml)
step "Importing a small busybox image into berth's content-addressed store"
show "berth image import busybox.tar --name busybox:demo"
sysrun berth image import "$image_tar" --name busybox:demo || exit 1
show "berth image list"; sysrun berth image list

step "Declaring the container: /etc/berth/containers/demo.toml (from configs/examples/demo.toml)"
sysrun sh -c 'mkdir -p /etc/berth/containers && cat > /etc/berth/containers/demo.toml' <<<"$decl"
grep -v '^#' <<<"$decl" | sed 's/^/    /'
show "berth validate /etc/berth/containers/demo.toml"; sysrun berth validate /etc/berth/containers/demo.toml || exit 1
show "systemctl daemon-reload   # berth-generator turns the declaration into berth@demo.service"
sysrun systemctl daemon-reload || exit 1
show "systemctl cat berth@demo.service"; sysrun systemctl cat --no-pager berth@demo.service | sed -n '1,40p'

step "Starting it under systemd"
show "systemctl start berth@demo.service"
if ! sysrun systemctl start berth@demo.service; then
  echo "demo: the container did not start; here is why:" >&2
  sysrun systemctl status --no-pager -l -n 30 berth@demo.service >&2
  exit 1
fi
sleep 3
show "systemctl status berth@demo.service   # active, with its supervisor/payload cgroup tree"
sysrun systemctl status --no-pager -l -n 0 berth@demo.service
show "journalctl -u berth@demo.service      # the payload's output"
sysrun journalctl -u berth@demo.service --no-pager -o short -n 8

step "The same through berth (systemd's D-Bus API + the journal + the store)"
show "berth list"; sysrun berth list
show "berth status demo"; sysrun berth status demo -n 5
show "berth df"; sysrun berth df

step "Restarting it: the container's writable layer persists (start #2 below)"
show "berth restart demo"; sysrun berth restart demo
sleep 1
sysrun journalctl -u berth@demo.service --no-pager -o cat | grep -E 'hello|SIGTERM' | tail -3

if [ "$keep" = 1 ] && [ "$host_mode" = 1 ]; then
  step "Leaving berth@demo.service running (--keep)"
else
  step "Stopping it and cleaning up"
  show "berth stop demo"; sysrun berth stop demo
  sysrun berth list
fi
echo "demo took $(( $(date +%s) - t_demo ))s after the build"

cat <<EOF

${bold}What you just saw${off}
  - A container declared in TOML (/etc/berth/containers/demo.toml) became a systemd unit,
    berth@demo.service, written by berth-generator at daemon-reload.
  - systemd started it, owns its cgroup (Delegate=yes: a supervisor and a payload subgroup),
    applies its limits (MemoryMax=, TasksMax=), restarts it on failure and stops it; its output
    went to the journal.
  - Its root filesystem is a copy-on-write snapshot of an image in berth's content-addressed
    store, handed out by berthd (org.berth.Storage1, bus-activated on the system bus).
  - berth list/status/start/stop/restart/logs join the declaration, systemd's view
    (org.freedesktop.systemd1) and the store's.
$( [ "$host_mode" = 1 ] || echo "  - All of it ran under a real systemd booted as PID 1 in a throw-away container, now gone." )

${bold}Where to go next${off}
  - man berth, man berth.toml (every key), man berth-generator, man berthd
  - configs/examples/*.toml: web server with veth networking and ports, database, batch job
  - docs/ARCHITECTURE.md: the components and the path from TOML to a running payload
  - bash scripts/run-tests.sh: every test suite, including the journey under a real systemd
EOF
