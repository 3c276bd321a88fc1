#!/bin/bash
# make-busybox-rootfs.sh DIR: a minimal container root filesystem from Debian's busybox-static.
# Idempotent: an existing complete tree (DIR/.berth-rootfs-complete) is left alone.
# Contents: /bin/busybox + applet links, /etc/{passwd,group} with root, daemon(1), nobody(65534)
# and an unprivileged "app" user (1000:1000, supplementary group "extra" 1001), os-release.
set -euo pipefail
dir=${1:?usage: make-busybox-rootfs.sh DIR}
[ -f "$dir/.berth-rootfs-complete" ] && exit 0
[ -x /bin/busybox ] || { echo "make-busybox-rootfs: /bin/busybox missing (apt-get install busybox-static)" >&2; exit 1; }
tmp=$(mktemp -d "${dir%/}.tmp-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,root,home/app,var/tmp,run,mnt}
cp /bin/busybox "$tmp/bin/busybox"
for applet in $("$tmp/bin/busybox" --list); do
  [ -e "$tmp/bin/$applet" ] || ln -s busybox "$tmp/bin/$applet"
done
cat > "$tmp/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat > "$tmp/etc/group" <<'G'
root:x:0:
daemon:x:1:
app:x:1000:
extra:x:1001:app
nogroup:x:65534:
G
printf 'ID=busybox\nNAME="BusyBox"\nPRETTY_NAME="BusyBox (berth test rootfs)"\n' > "$tmp/etc/os-release"
: > "$tmp/etc/hostname"; : > "$tmp/etc/hosts"; : > "$tmp/etc/resolv.conf"
chmod 1777 "$tmp/tmp" "$tmp/var/tmp"; chown 1000:1000 "$tmp/home/app"
touch "$tmp/.berth-rootfs-complete"
rm -rf "$dir"; mv "$tmp" "$dir"; trap - EXIT
