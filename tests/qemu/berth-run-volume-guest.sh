# berth-run-volume-guest.sh - sourced INSIDE the qemu guest by berthd-df-guest.sh while berthd runs
# on the dm-thin pool (uses its fail/say/df/df_size helpers, $M and image img:1, a busybox rootfs).
# A real container run by `berth run` (the runtime, its supervisor, berthd over the bus) whose
# rootfs is a dm-thin snapshot and whose [[mount]] type = "volume" is a dm-thin volume: the
# runtime mounts the volume's block device inside the container's mount namespace. It writes data;
# a second run sees it; a read_only mount refuses writes (and the data is still there); under a
# user namespace the run is refused; `berth df` shows the volume's size; nothing stays mounted on
# the host and no thin device stays open.
VOL_MIB=8
mkdir -p /sys/fs/cgroup /tmp/run1 /tmp/run2 /tmp/run3
mountpoint -q /sys/fs/cgroup || mount -t cgroup2 cgroup2 /sys/fs/cgroup || fail "mount cgroup2"
# pivot_root(2) cannot move away from the initramfs's rootfs (EINVAL: it has no parent mount), so
# `berth run` runs chrooted into a recursive bind mount of /: the same files, devices, bus socket
# and store, but a root that is a real mount, as on any installed system.
mkdir -p /newroot
mountpoint -q /newroot || mount --rbind / /newroot || fail "bind / on /newroot"

declare_vt() {  # $1 = dir, $2 = shell command, $3 = "true" for a read-only volume mount
    cat > "$1/vt.toml" <<TOML
[container]
image = "img:1"
command = ["/bin/busybox", "sh", "-c", '$2']
[[mount]]
type = "volume"
source = "tvol"
target = "/data"
read_only = $3
[install]
wanted_by = []
TOML
}
run_vt() {  # $1 = dir; output in $1/out, status in $run_status
    start=$(cut -d' ' -f1 /proc/uptime)
    chroot /newroot /usr/local/bin/berth run "$1/vt.toml" > "$1/out" 2>&1
    run_status=$?
    say "  berth run ($1): status $run_status in $(awk -v a="$start" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN{printf "%.2f", b-a}')s"
}

declare_vt /tmp/run1 "grep \" /data \" /proc/mounts; ls -A /data | grep -v lost+found | wc -l; dd if=/dev/urandom of=/data/blob bs=1M count=$VOL_MIB 2>/dev/null; echo first-run > /data/mark; sync" false
run_vt /tmp/run1
[ "$run_status" = 0 ] || fail "berth run (write): status $run_status: $(cat /tmp/run1/out)"
grep -q '^/dev/mapper/.* /data ext4 rw' /tmp/run1/out || fail "the volume is not a writable ext4 block device on /data: $(cat /tmp/run1/out)"
[ "$(sed -n 2p /tmp/run1/out)" = 0 ] || fail "a new volume is not empty: $(cat /tmp/run1/out)"
say "run 1: the volume was a fresh ext4 block device on /data: $(head -1 /tmp/run1/out | cut -d' ' -f1-4)"

declare_vt /tmp/run2 "cat /data/mark; wc -c < /data/blob" false
run_vt /tmp/run2
[ "$run_status" = 0 ] || fail "berth run (read): status $run_status: $(cat /tmp/run2/out)"
[ "$(sed -n 1p /tmp/run2/out)" = first-run ] || fail "a second run does not see the volume's data: $(cat /tmp/run2/out)"
[ "$(sed -n 2p /tmp/run2/out | tr -d ' ')" = $((VOL_MIB * MIB)) ] || fail "the volume's blob is not whole: $(cat /tmp/run2/out)"
say "run 2: sees the data the first run wrote"

declare_vt /tmp/run3 "grep \" /data \" /proc/mounts; if echo x > /data/new 2>/dev/null; then echo WROTE; else echo REFUSED; fi; if rm /data/mark 2>/dev/null; then echo REMOVED; fi; cat /data/mark" true
run_vt /tmp/run3
[ "$run_status" = 0 ] || fail "berth run (read-only): status $run_status: $(cat /tmp/run3/out)"
grep -q '^/dev/mapper/.* /data ext4 ro' /tmp/run3/out || fail "read_only = true did not mount /data read-only: $(cat /tmp/run3/out)"
grep -qx REFUSED /tmp/run3/out || fail "a read-only volume accepted a write: $(cat /tmp/run3/out)"
! grep -qx REMOVED /tmp/run3/out || fail "a read-only volume let a file be removed: $(cat /tmp/run3/out)"
[ "$(tail -1 /tmp/run3/out)" = first-run ] || fail "the read-only run does not see the data: $(cat /tmp/run3/out)"
say "run 3: read_only = true mounts it read-only, writes are refused, the data is there"

# Only real root may mount a block device's filesystem: under a user namespace the run is refused
# with the reason, before anything starts. (On dm-thin the rootfs is a block device too, and it is
# checked first; the volume's own refusal is unit-tested in the mount plan.)
mkdir -p /tmp/run4
declare_vt /tmp/run4 "echo RAN" false
printf '[security]\nuser_namespace = "pick"\n' >> /tmp/run4/vt.toml
run_vt /tmp/run4
[ "$run_status" != 0 ] || fail "a dm-thin volume was accepted under a user namespace: $(cat /tmp/run4/out)"
! grep -qx RAN /tmp/run4/out || fail "the container ran under a user namespace with a dm-thin volume"
grep -q "block-device .* cannot be mounted inside a user namespace" /tmp/run4/out ||
    fail "the refusal under a user namespace does not say why: $(cat /tmp/run4/out)"
say "run 4: refused under a user namespace: $(tail -1 /tmp/run4/out)"

# Nothing of the runs is left mounted on the host; the volume outlived the container's runs.
! grep -q ' /data ' /proc/mounts || fail "a container's /data is mounted on the host"
df
vol_size=$(df_size tvol)
[ -n "$vol_size" ] && [ "$vol_size" != null ] || fail "berth df --json has no size for volume tvol: $(cat /tmp/df.json)"
# What the volume's device maps: the 8 MiB blob, the mark, and what mkfs and the journal wrote.
[ "$vol_size" -ge $((VOL_MIB * MIB)) ] && [ "$vol_size" -lt $(((VOL_MIB + 3) * MIB)) ] ||
    fail "volume tvol's size $vol_size is not its $VOL_MIB MiB (+ < 3 MiB of filesystem)"
vt_size=$(df_size vt)
[ -n "$vt_size" ] && [ "$vt_size" != null ] || fail "berth df --json has no size for container vt"
[ "$vt_size" -lt $((2 * MIB)) ] || fail "container vt, which wrote only to its volume, holds $vt_size bytes"
berth df > /tmp/df.txt 2>&1 || fail "berth df: $(cat /tmp/df.txt)"
grep -Eq '^volume +- +tvol +[0-9.]+ ?MiB' /tmp/df.txt || fail "berth df does not show tvol's size: $(cat /tmp/df.txt)"
say "berth df: volume tvol $((vol_size / 1024)) KiB (wrote $VOL_MIB MiB), container vt $((vt_size / 1024)) KiB"
cat /tmp/df.txt

# The runs are over: no thin device of the pool is still open (the runtime's mounts of the rootfs
# and the volume went with the containers' mount namespaces).
open_devs=$(dmsetup info -c --noheadings -o name,open --separator ' ' 2>/dev/null | awk -v p="$pool-thin-" 'index($1, p) == 1 && $2 > 0')
[ -z "$open_devs" ] || fail "thin devices still open after the runs: $open_devs"
busctl call $M RemoveContainer s vt > /dev/null || fail "RemoveContainer vt"
busctl call $M RemoveVolume s tvol > /dev/null || fail "RemoveVolume tvol"
