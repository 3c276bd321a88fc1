# harness.sh — boot a REAL systemd (as PID 1) in a throw-away container on this host, with the
# built berth installed into it, and drive it from the outside. Sourced by the integration tests,
# scripts/demo.sh and boot-systemd.sh (the command-line front end).
#
# How the container is made (unshare, no image needed):
#   - new mount/pid/uts/ipc/cgroup/net namespaces; PID 1 of them is a small bash stage that mounts
#     a private tmpfs, an overlayfs whose lower layer is the host's own / and whose upper layer is
#     that tmpfs, copies `meson install --destdir` of the build into the upper layer, pre-mounts the
#     API filesystems (a fresh cgroup2 inside our cgroup namespace, a private /dev with only safe
#     nodes, /sys and /proc/sys read-only so nothing inside writes the host kernel's knobs), then
#     `mount --move`s the root and chroots + execs systemd.
#   - systemd boots into berth-it.target: sysinit + journald + dbus only, in well under a second.
#   - /var/lib/berth (the store) and /etc/berth are bind mounts of host directories under a state
#     dir, so a second boot on the same state sees the same store: a "reboot". The store must not
#     live on the overlay root anyway: overlayfs refuses an upper layer on overlayfs.
# Teardown (it_teardown, also from the EXIT trap): poweroff via SIGRTMIN+4, SIGKILL after a
# timeout, then loop devices whose backing file lives inside the container, then our cgroup.
# Everything is named after IT_NAME (unique per test run: it includes our pid).
#
# Variables set for the caller: IT_PID1 (host pid of the container's systemd), IT_NAME, IT_STATE.

IT_NAME=${IT_NAME:-berth-it-$$}
IT_WORK=${IT_WORK:-/var/tmp/berth-it}       # host-side scratch (not /tmp: the container gets a fresh /tmp)
IT_BOOT_TIMEOUT=${IT_BOOT_TIMEOUT:-60}
IT_STOP_TIMEOUT=${IT_STOP_TIMEOUT:-20}
IT_VERBOSE=${IT_VERBOSE:-0}
IT_PID1=; IT_LAUNCHER=; IT_STATE=; IT_STAGE=; IT_CGDIR=; IT_BOOTED=0
declare -A IT_LOOPS_BEFORE=() IT_OUR_LOOPS=()

it_log() { [ "$IT_VERBOSE" = 1 ] && echo "harness: $*" >&2; return 0; }
it_die() { echo "harness: $*" >&2; exit 125; }

it_cgroup2() {
  if [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ]; then echo /sys/fs/cgroup
  elif [ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then echo /sys/fs/cgroup/unified
  else return 1; fi
}

# it_install BUILD_DIR: meson install into a staging dir (once per test run).
it_install() {
  local build=$1
  IT_STAGE=$IT_WORK/$IT_NAME.stage
  rm -rf "$IT_STAGE"; mkdir -p "$IT_STAGE"
  DESTDIR= meson install -C "$build" --no-rebuild --quiet --destdir "$IT_STAGE" >"$IT_WORK/$IT_NAME.install.log" 2>&1 \
    || { cat "$IT_WORK/$IT_NAME.install.log" >&2; it_die "meson install failed"; }
  # dbus-daemon reads policy only from /usr/share/dbus-1/system.d and /etc/dbus-1/system.d: with a
  # /usr/local prefix put berth's policy where the system bus finds it (activation files in
  # /usr/local/share/dbus-1/system-services are found as they are).
  local f
  for f in "$IT_STAGE"/usr/local/share/dbus-1/system.d/*.conf; do
    [ -f "$f" ] || continue
    mkdir -p "$IT_STAGE/etc/dbus-1/system.d"; cp "$f" "$IT_STAGE/etc/dbus-1/system.d/"
  done
}

# The stage that becomes PID 1 of the new namespaces: $1 base dir, $2 stage (install) dir,
# $3 state dir, $4 name.
IT_STAGE2='
set -eu
B=$1; STAGE=$2; STATE=$3; NAME=$4; R=$B/root
mount -t tmpfs -o mode=0755,size=40% berth-it "$B"
mkdir "$B/upper" "$B/work" "$R"
mount -t overlay berth-it-root -o "lowerdir=/,upperdir=$B/upper,workdir=$B/work" "$R"
# tar, not cp -a: the host has merged /usr, and /lib etc. must stay the symlinks they are.
[ -n "$STAGE" ] && tar -C "$STAGE" -cf - . | tar -C "$R" -xf - --keep-directory-symlink
mkdir -p "$STATE/var-lib-berth" "$STATE/etc-berth" "$R/var/lib/berth" "$R/etc/berth"
mount --bind "$STATE/var-lib-berth" "$R/var/lib/berth"
mount --bind "$STATE/etc-berth" "$R/etc/berth"
mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
mount --bind "$R/proc/sys" "$R/proc/sys"; mount -o remount,bind,ro,nosuid,nodev,noexec "$R/proc/sys"
[ -e "$R/proc/sysrq-trigger" ] && mount --bind /dev/null "$R/proc/sysrq-trigger"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$R/sys"
mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$R/sys/fs/cgroup"
# /dev must be a mount point before systemd starts, or systemd mounts devtmpfs = the host'"'"'s /dev.
mount -t tmpfs -o mode=0755,size=4m,nosuid berth-it-dev "$R/dev"
for n in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0 loop-control:10:237 \
         btrfs-control:10:234 fuse:10:229 net/tun:10:200; do
  IFS=: read -r node ma mi <<<"$n"; mkdir -p "$(dirname "$R/dev/$node")"
  mknod -m 0666 "$R/dev/$node" c "$ma" "$mi"
done
chmod 0600 "$R/dev/loop-control" "$R/dev/btrfs-control"
for i in $(seq 0 63); do mknod -m 0660 "$R/dev/loop$i" b 7 "$i"; done
mkdir "$R/dev/pts" "$R/dev/shm" "$R/dev/mqueue"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620,gid=5 devpts "$R/dev/pts"; ln -s pts/ptmx "$R/dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev shm "$R/dev/shm"
mount -t mqueue mqueue "$R/dev/mqueue"
ln -s /proc/self/fd "$R/dev/fd"; ln -s /proc/self/fd/0 "$R/dev/stdin"
ln -s /proc/self/fd/1 "$R/dev/stdout"; ln -s /proc/self/fd/2 "$R/dev/stderr"
mount -t tmpfs -o mode=1777,nosuid,nodev tmp "$R/tmp"
# A persistent machine id per state dir: a "reboot" is the same machine.
[ -s "$STATE/machine-id" ] || systemd-id128 new > "$STATE/machine-id"
cp "$STATE/machine-id" "$R/etc/machine-id"
echo "$NAME" > "$R/etc/hostname"; hostname "$NAME"
: > "$R/etc/fstab"
cat > "$R/etc/systemd/system/berth-it.target" <<EOT
[Unit]
Description=berth integration test target (sysinit + journald + dbus)
Requires=sysinit.target dbus.socket systemd-journald.socket
After=sysinit.target dbus.socket systemd-journald.socket
AllowIsolate=yes
EOT
for u in systemd-timesyncd.service systemd-pstore.service systemd-modules-load.service \
         systemd-sysctl.service systemd-binfmt.service proc-sys-fs-binfmt_misc.automount \
         systemd-networkd.service systemd-resolved.service postgresql.service cron.service; do
  ln -sf /dev/null "$R/etc/systemd/system/$u"
done
# MS_MOVE + chroot (as nspawn does) instead of pivot_root: the old root stays in this mount
# namespace, unreachable, so the kernel still allows fresh procfs mounts in nested namespaces.
cd "$R"; mount --move . /
exec chroot . env -i container=berth-it TERM=dumb PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  setpriv --bounding-set -sys_module,-sys_time,-wake_alarm -- \
  /lib/systemd/systemd --unit=berth-it.target --log-target=journal-or-kmsg --show-status=no
'

# it_boot STATE_DIR: boots the container (after it_install). Exits 125 on failure.
it_boot() {
  IT_STATE=$1
  [ "$(id -u)" = 0 ] || it_die "must run as root"
  mkdir -p "$IT_WORK" "$IT_STATE"
  local cg2; cg2=$(it_cgroup2) || it_die "no cgroup2 hierarchy mounted"
  local rel; rel=$(sed -n 's/^0:://p' /proc/self/cgroup); rel=${rel%/}
  IT_CGDIR=$cg2$rel/$IT_NAME
  [ -d "$IT_CGDIR" ] && it_die "cgroup $IT_CGDIR exists: is $IT_NAME already running?"
  mkdir "$IT_CGDIR" || it_die "cannot create cgroup $IT_CGDIR"
  IT_LOOPS_BEFORE=()
  local n
  while read -r n _; do [ -n "$n" ] && IT_LOOPS_BEFORE[$n]=1; done < <(losetup -l -n -O NAME 2>/dev/null)
  mkdir -p "$IT_WORK/$IT_NAME.base"
  local t0; t0=$(date +%s%N)
  (
    echo "$BASHPID" > "$IT_CGDIR/cgroup.procs" || exit 125
    exec unshare --mount --propagation private --pid --fork --kill-child --uts --ipc --cgroup --net \
      bash -c "$IT_STAGE2" it-stage2 "$IT_WORK/$IT_NAME.base" "$IT_STAGE" "$IT_STATE" "$IT_NAME"
  ) </dev/null >"$IT_WORK/$IT_NAME.console" 2>&1 &
  IT_LAUNCHER=$!
  IT_BOOTED=1
  local deadline=$(( $(date +%s) + IT_BOOT_TIMEOUT )) c
  while :; do
    kill -0 "$IT_LAUNCHER" 2>/dev/null || { cat "$IT_WORK/$IT_NAME.console" >&2; it_die "container exited during boot"; }
    IT_PID1=
    for c in $(cat /proc/"$IT_LAUNCHER"/task/*/children 2>/dev/null); do
      [ "$(cat /proc/"$c"/comm 2>/dev/null)" = systemd ] && { IT_PID1=$c; break; }
    done
    [ -n "$IT_PID1" ] && [ -S /proc/"$IT_PID1"/root/run/systemd/private ] && break
    [ "$(date +%s)" -ge "$deadline" ] && { cat "$IT_WORK/$IT_NAME.console" >&2; it_die "timeout waiting for systemd"; }
    sleep 0.02
  done
  local state; state=$(timeout "$IT_BOOT_TIMEOUT" nsenter -t "$IT_PID1" -a systemctl is-system-running --wait 2>&1)
  IT_BOOT_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
  it_log "systemd PID1=$IT_PID1 '$state' after ${IT_BOOT_MS}ms"
  case $state in
    running) ;;
    degraded) echo "harness: boot degraded:" >&2; it_in systemctl --failed --no-legend >&2;;
    *) it_in systemctl list-jobs --no-legend >&2; it_die "boot did not finish (state '$state')";;
  esac
}

# it_in CMD...: run inside the container (all namespaces, its root, a clean environment).
it_in() {
  nsenter -t "$IT_PID1" -a -- env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    TERM=dumb SYSTEMD_PAGER= SYSTEMD_COLORS=0 LANG=C.UTF-8 HOME=/root "$@"
}

it_record_loops() { # loop devices whose backing file lives inside our container
  [ -n "$IT_PID1" ] && [ -d /proc/"$IT_PID1"/root ] || return 0
  local name ino majmin file
  while read -r name ino majmin file; do
    [ -n "$name" ] && [ -z "${IT_LOOPS_BEFORE[$name]:-}" ] || continue
    [ "$(stat -L -c '%Hd:%Ld %i' "/proc/$IT_PID1/root$file" 2>/dev/null)" = "$majmin $ino" ] && IT_OUR_LOOPS[$name]=1
  done < <(losetup -l -n -O NAME,BACK-INO,BACK-MAJ:MIN,BACK-FILE 2>/dev/null)
}

# it_poweroff: stops the container's systemd cleanly (the state dir stays for a reboot).
it_poweroff() {
  [ "$IT_BOOTED" = 1 ] || return 0
  local rc=0 t
  it_record_loops
  if [ -n "$IT_PID1" ] && kill -0 "$IT_PID1" 2>/dev/null; then
    kill -RTMIN+4 "$IT_PID1" 2>/dev/null      # systemd: start poweroff.target
    for ((t = 0; t < IT_STOP_TIMEOUT * 10; t++)); do kill -0 "$IT_LAUNCHER" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$IT_LAUNCHER" 2>/dev/null; then
      echo "harness: container did not stop within ${IT_STOP_TIMEOUT}s, killing it" >&2
      kill -KILL "$IT_PID1" 2>/dev/null         # SIGKILL to a pid namespace's init kills all of it
      sleep 0.3; kill -KILL "$IT_LAUNCHER" 2>/dev/null; rc=1
    fi
  elif [ -n "$IT_LAUNCHER" ]; then kill -KILL "$IT_LAUNCHER" 2>/dev/null
  fi
  [ -n "$IT_LAUNCHER" ] && wait "$IT_LAUNCHER" 2>/dev/null
  local name
  for name in "${!IT_OUR_LOOPS[@]}"; do
    losetup "$name" >/dev/null 2>&1 && { echo "harness: detaching leaked loop device $name" >&2; losetup -d "$name" || rc=1; }
  done
  IT_OUR_LOOPS=()
  # Leftover processes in our cgroup (there should be none once the pid namespace is gone).
  local i left p
  for i in 1 2 3 4 5 6 7 8 9 10; do
    left=$(find "$IT_CGDIR" -name cgroup.procs -exec cat {} + 2>/dev/null)
    [ -z "$left" ] && break
    for p in $left; do kill -KILL "$p" 2>/dev/null; done; sleep 0.1
  done
  find "$IT_CGDIR" -depth -type d -exec rmdir {} \; 2>/dev/null
  [ -d "$IT_CGDIR" ] && { echo "harness: could not remove cgroup $IT_CGDIR" >&2; rc=1; }
  rmdir "$IT_WORK/$IT_NAME.base" 2>/dev/null
  grep -qF " $IT_WORK/$IT_NAME.base" /proc/self/mountinfo && { echo "harness: mounts left under $IT_WORK/$IT_NAME.base" >&2; rc=1; }
  IT_BOOTED=0; IT_PID1=; IT_LAUNCHER=
  return $rc
}

# it_teardown: poweroff plus removal of the staging dir (and of the state dir if we own it).
it_teardown() {
  local rc=0
  it_poweroff || rc=1
  [ -n "$IT_STAGE" ] && rm -rf "$IT_STAGE"
  rm -f "$IT_WORK/$IT_NAME.install.log"
  [ "$rc" = 0 ] && rm -f "$IT_WORK/$IT_NAME.console"
  return $rc
}

# it_session BUILD_DIR: the common start of a scenario test (TAP on stdout). Skips without root;
# sets the EXIT/INT/TERM traps that tear everything down; builds the busybox rootfs (IT_ROOTFS)
# and packs it as a rootfs tarball (IT_IMAGE_TAR) for `berth image import`; installs the build and
# boots systemd on a fresh state dir.
it_session() {
  local build=$1 src
  [ "$(id -u)" = 0 ] || { echo "1..0 # SKIP needs root"; exit 0; }
  src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  IT_SESSION_STATE=$IT_WORK/$IT_NAME.state
  IT_IMAGE_TAR=$IT_WORK/$IT_NAME.image.tar
  trap 'it_teardown; rm -rf "$IT_SESSION_STATE" "$IT_IMAGE_TAR"' EXIT
  trap 'exit 130' INT TERM
  mkdir -p "$IT_WORK"
  IT_ROOTFS=$IT_WORK/busybox-rootfs
  bash "$src/tests/lib/make-busybox-rootfs.sh" "$IT_ROOTFS" || it_die "cannot build the busybox rootfs"
  tar -C "$IT_ROOTFS" --exclude=.berth-rootfs-complete -cf "$IT_IMAGE_TAR" . || it_die "cannot pack the image"
  it_install "$build"
  it_boot "$IT_SESSION_STATE"
  echo "# systemd booted in ${IT_BOOT_MS}ms (PID 1 = host pid $IT_PID1)"
}

# Helpers for scenario tests on the booted instance.
it_declare_container() { # NAME < TOML
  it_in sh -c 'mkdir -p /etc/berth/containers && cat > "/etc/berth/containers/$1.toml"' sh "$1"
}
it_unit_prop() { it_in systemctl show -P "$2" "berth@$1.service"; } # NAME PROPERTY
it_journal_of() { it_in journalctl -u "berth@$1.service" --no-pager -o cat; } # NAME
# NAME: the pids anywhere in berth@NAME's cgroup subtree, by path (berth.slice, the units'
# default), not by the ControlGroup property: systemd clears that once the unit is inactive, and
# "nothing left after the stop" must still look.
it_unit_procs() {
  it_in sh -c 'd=/sys/fs/cgroup/berth.slice/berth@$1.service; [ -d "$d" ] && find "$d" -name cgroup.procs -exec cat {} + ; true' sh "$1"
}
