#!/bin/sh
# berthd-df-guest.sh - runs INSIDE the qemu guest (busybox sh), after the backend suites, from the
# script run-dmthin-tests.sh generates. Pool health through the real service on a real dm-thin
# pool: a private dbus-daemon with berth's own policy file, berthd configured ONLY through a
# berthd.toml using the dm-thin keys (data/metadata devices, volume size, thresholds, discard),
# then busctl and `berth df --json` (forced onto the bus with BERTH_STORAGE=bus, so a silent fall
# back to the embedded store cannot pass) must show the pool's usage rise after writing 32 MiB
# into a container and fall again after the container and image are removed and GC ran; at each
# step PoolUsage/PoolSize must equal the kernel's own `dmsetup status` of the pool, whose metadata
# usage is printed (and must grow with the written blocks).
# Exit 0 only if every check held. Leaves berthd's pool active: it must run last in the guest.
MIB=1048576
WRITE_MIB=32
fail() { echo "@@ berthd-df: FAIL: $*"; cat /tmp/berthd.log 2>/dev/null | tail -20; stop; exit 1; }
say() { echo "@@ berthd-df: $*"; }
stop() {
    [ -n "${BERTHD_PID:-}" ] && kill -TERM "$BERTHD_PID" 2>/dev/null && wait "$BERTHD_PID" 2>/dev/null
    [ -n "${DBUS_PID:-}" ] && kill -TERM "$DBUS_PID" 2>/dev/null && wait "$DBUS_PID" 2>/dev/null
    BERTHD_PID= DBUS_PID=
}

mkdir -p /etc/berth /etc/dbus-1 /run/dbus /var/lib /mnt/c1
echo 'root:x:0:0:root:/:/bin/sh' > /etc/passwd
echo 'root:x:0:' > /etc/group
printf 'passwd: files\ngroup: files\n' > /etc/nsswitch.conf
echo 0123456789abcdef0123456789abcdef > /etc/machine-id

cat > /etc/berth/berthd.toml <<'EOF'
[store]
root = "/var/lib/berth"
backend = "dm-thin"
thin_data_device = "/dev/vdb"
thin_metadata_device = "/dev/vda"
thin_fstype = "ext4"
thin_volume_size = "256M"
thin_mkfs_options = ["-L", "berth"]
thin_min_free_data_percent = 5
thin_min_free_metadata_percent = 5
thin_discard = true
EOF

# The private system bus of every berthd test (tests/lib/private-bus.conf, shipped by
# run-dmthin-tests.sh): deny by default, berth's policy file opens what berthd needs.
sed -e 's|@ADDRESS@|unix:path=/run/dbus/system_bus_socket|' \
    -e 's|@INCLUDES@|<include>/etc/dbus-1/org.berth.Storage1.conf</include>|' \
    /etc/dbus-1/private-bus.conf > /etc/dbus-1/berth-bus.conf
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=/run/dbus/system_bus_socket BERTH_STORAGE=bus

dbus-daemon --nofork --nopidfile --nosyslog --config-file=/etc/dbus-1/berth-bus.conf > /tmp/dbus.log 2>&1 &
DBUS_PID=$!
i=0; while [ ! -S /run/dbus/system_bus_socket ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
[ -S /run/dbus/system_bus_socket ] || { cat /tmp/dbus.log; fail "dbus-daemon did not start"; }

berthd > /tmp/berthd.log 2>&1 &
BERTHD_PID=$!
i=0
# (busctl itself takes ~0.5 s to start under TCG.)
until busctl get-property org.berth.Storage1 /org/berth/Storage1 org.berth.Storage1.Manager Backend > /tmp/busctl.err 2>&1; do
    kill -0 "$BERTHD_PID" 2>/dev/null || { BERTHD_PID=; fail "berthd exited: $(cat /tmp/berthd.log)"; }
    i=$((i+1)); [ $i -lt 60 ] || fail "berthd did not answer on the bus: $(cat /tmp/busctl.err) $(cat /tmp/dbus.log)"
    sleep 0.2
done
say "berthd up uptime=$(cut -d' ' -f1 /proc/uptime)s: $(head -1 /tmp/berthd.log)"

M="org.berth.Storage1 /org/berth/Storage1 org.berth.Storage1.Manager"
prop() { busctl get-property $M "$1" | sed 's/^[a-z]* //; s/"//g'; }
# `berth df --json` through berthd: a field of its "pool" object (images and containers have a
# "size" too, so only the pool object's lines are searched).
df_field() {
    sed -n '/"pool": {/,/}/p' /tmp/df.json | sed -n "s/^ *\"$1\": \"*\([^\",]*\)\"*,*\$/\1/p" | head -1
}
df() { berth df --json > /tmp/df.json 2> /tmp/df.err || fail "berth df --json: $(cat /tmp/df.err)"; }
# The "size" of the container or volume named $1 (keys are sorted: "size" follows "name"; images
# have "names", so a "name" line is a container's or a volume's). Volumes are looked up as $1 too.
df_size() {
    awk -v key="\"name\": \"$1\"" 'index($0, key) { f = 1; next }
        f && /"size":/ { sub(/.*"size": */, ""); sub(/,.*/, ""); print; exit }' /tmp/df.json
}
df_size_note() { sed -n 's/^ *"size_note": "\(.*\)",*$/\1/p' /tmp/df.json; }

# The kernel's own view, to check berthd against: `dmsetup status` of the pool (test-only tool;
# the backend itself talks to libdevmapper). Fields: start length thin-pool transaction_id
# metadata_used/metadata_total data_used/data_total (4 KiB metadata blocks, 64 KiB data blocks).
pool=$(dmsetup ls --target thin-pool 2>/dev/null | cut -f1 | cut -d' ' -f1 | head -1)
[ -n "$pool" ] || fail "no thin pool active after berthd started"
kernel() {
    set -- $(dmsetup status "$pool" 2>/dev/null)
    k_meta_used=$((${5%/*} * 4096)) k_meta_total=$((${5#*/} * 4096))
    k_data_used=$((${6%/*} * 65536)) k_data_total=$((${6#*/} * 65536))
}
check_kernel() {  # $1 = PoolUsage just read
    kernel
    [ "$k_data_used" = "$1" ] || fail "PoolUsage $1 != kernel's data used $k_data_used ($pool)"
    # Metadata use through berthd's properties and berth df --json, against the kernel's.
    local mu ms
    mu=$(prop MetadataUsage) ms=$(prop MetadataSize)
    [ "$mu" = "$k_meta_used" ] || fail "MetadataUsage $mu != kernel's metadata used $k_meta_used ($pool)"
    [ "$ms" = "$k_meta_total" ] || fail "MetadataSize $ms != kernel's metadata total $k_meta_total ($pool)"
    df
    [ "$(df_field metadata_used)" = "$mu" ] || fail "berth df metadata_used $(df_field metadata_used) != MetadataUsage $mu"
    say "  kernel: data $((k_data_used / 1024)) KiB of $((k_data_total / MIB)) MiB," \
        "metadata $((k_meta_used / 1024)) KiB of $((k_meta_total / 1024)) KiB ($pool)"
}

backend=$(prop Backend)
[ "$backend" = dm-thin ] || fail "Backend property is '$backend', not dm-thin"
size=$(prop PoolSize)
# /dev/vdb is 1 GiB: the pool's data size is that, rounded down to whole 64 KiB blocks.
[ "$size" -gt $((1000 * MIB)) ] && [ "$size" -le $((1024 * MIB)) ] || fail "PoolSize $size is not /dev/vdb's 1 GiB"

mkdir -p /tmp/rootfs/bin /tmp/rootfs/etc
cp /bin/busybox /tmp/rootfs/bin/busybox
echo berth-qemu > /tmp/rootfs/etc/hello
tar -cf /tmp/rootfs.tar -C /tmp/rootfs . || fail "make rootfs tar"
berth image import /tmp/rootfs.tar --format rootfs --name img:1 > /tmp/import.log 2>&1 ||
    fail "berth image import: $(cat /tmp/import.log)"
# The uncompressed layer is kept as a tar-split on dm-thin too: the export rebuilds it from the
# layer's files, byte for byte the imported tar.
berth image export img:1 -o /tmp/export.tar > /tmp/export.log 2>&1 || fail "berth image export: $(cat /tmp/export.log)"
hex=$(sha256sum /tmp/rootfs.tar | cut -d' ' -f1)
tar -xOf /tmp/export.tar "blobs/sha256/$hex" > /tmp/layer.tar || fail "the export has no layer blob $hex"
cmp /tmp/rootfs.tar /tmp/layer.tar || fail "the exported layer blob differs from the imported tar"
rm -f /tmp/export.tar /tmp/layer.tar
say "export rebuilt the layer blob byte for byte (tar-split on dm-thin)"

used0=$(prop PoolUsage)
df
[ "$(df_field backend)" = dm-thin ] || fail "berth df --json backend is '$(df_field backend)'"
[ "$(df_field used)" = "$used0" ] || fail "berth df used $(df_field used) != PoolUsage $used0"
[ "$(df_field size)" = "$size" ] || fail "berth df size $(df_field size) != PoolSize $size"
say "after import: PoolUsage=$used0 PoolSize=$size (berth df --json agrees)"
check_kernel "$used0"
[ "$k_data_total" = "$size" ] || fail "PoolSize $size != kernel's data size $k_data_total"
meta0=$k_meta_used

# A container: its writable thin device, written through the device berthd hands the runtime.
out=$(busctl call $M PrepareContainer ssbs c1 img:1 false recreate) || fail "PrepareContainer: $out"
dev=$(echo "$out" | grep -o '/dev/mapper/[^"]*' | head -1)
[ -b "$dev" ] || fail "PrepareContainer gave no block device: $out"
mount -t ext4 "$dev" /mnt/c1 || fail "mount $dev"
[ "$(cat /mnt/c1/etc/hello)" = berth-qemu ] || { umount /mnt/c1; fail "the container does not see the image"; }
dd if=/dev/urandom of=/mnt/c1/blob bs=1M count=$WRITE_MIB 2>/dev/null && sync
umount /mnt/c1 || fail "umount $dev"

used1=$(prop PoolUsage)
df
[ "$(df_field used)" = "$used1" ] || fail "berth df used $(df_field used) != PoolUsage $used1"
say "after writing $WRITE_MIB MiB into c1: PoolUsage=$used1 (+$(((used1 - used0) / MIB)) MiB)"
check_kernel "$used1"
# 32 MiB more mapped blocks need more btree entries.
[ "$k_meta_used" -gt "$meta0" ] || fail "metadata use did not grow ($meta0 -> $k_meta_used)"
[ $((used1 - used0)) -ge $(((WRITE_MIB - 2) * MIB)) ] || fail "PoolUsage rose by $((used1 - used0)), not ~$WRITE_MIB MiB"

# Per-container sizes (thin_ls on the live pool, through berthd): c1 holds what it wrote, the
# blocks it shares with img:1 are not its own. Block-level: the filesystem's own writes count too.
[ "$(df_size_note)" = "" ] || fail "berth df --json size_note: $(df_size_note)"
c1_size=$(df_size c1)
[ -n "$c1_size" ] && [ "$c1_size" != null ] || fail "berth df --json has no size for c1: $(cat /tmp/df.json)"
[ "$c1_size" -ge $((WRITE_MIB * MIB)) ] && [ "$c1_size" -lt $(((WRITE_MIB + 2) * MIB)) ] ||
    fail "c1's size $c1_size is not its $WRITE_MIB MiB (+ < 2 MiB of filesystem metadata)"
say "c1 holds $((c1_size / 1024)) KiB of its own (wrote $WRITE_MIB MiB)"

# The metadata snapshot thin_ls reads is released after every DiskUsage, even when thin_ls fails
# (a pool holds one at most; a held one pins metadata). `dmsetup status` field 7: held root or "-".
held() { dmsetup status "$pool" | cut -d' ' -f7; }
[ "$(held)" = - ] || fail "a metadata snapshot is still held after berth df: $(dmsetup status "$pool")"
mv /usr/sbin/thin_ls /usr/sbin/thin_ls.real
printf '#!/bin/sh\necho "thin_ls: broken on purpose" >&2\nexit 3\n' > /usr/sbin/thin_ls
chmod 755 /usr/sbin/thin_ls
df
[ "$(df_size c1)" = null ] || fail "a failing thin_ls still gave c1 a size: $(cat /tmp/df.json)"
df_size_note | grep -q 'broken on purpose' || fail "size_note does not carry thin_ls's error: $(df_size_note)"
[ "$(held)" = - ] || fail "a failing thin_ls left the metadata snapshot held: $(dmsetup status "$pool")"
rm /usr/sbin/thin_ls
t0=$(cut -d' ' -f1 /proc/uptime); df; t_without=$(awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN{printf "%.2f", b-a}')
# Without thin-provisioning-tools: sizes are unknown ("-"), and berth df says why.
berth df > /tmp/df.txt 2>&1 || fail "berth df without thin_ls: $(cat /tmp/df.txt)"
grep -Eq '^container +c-c1 +c1 +-$' /tmp/df.txt || fail "berth df without thin_ls does not show c1's size as '-': $(cat /tmp/df.txt)"
grep -q 'Sizes shown as - are unknown: .*thin_ls not found' /tmp/df.txt || fail "berth df does not say why sizes are unknown: $(cat /tmp/df.txt)"
grep -Eq '^Pool \(dm-thin\): .* used of 1\.0 GiB$' /tmp/df.txt || fail "berth df does not show the thin pool's numbers as the pool's: $(cat /tmp/df.txt)"
mv /usr/sbin/thin_ls.real /usr/sbin/thin_ls
t0=$(cut -d' ' -f1 /proc/uptime); df; t_with=$(awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN{printf "%.2f", b-a}')
say "berth df --json under TCG: ${t_with}s with thin_ls, ${t_without}s without (sizes unknown)"
[ "$(df_size c1)" = "$c1_size" ] || fail "c1's size changed from $c1_size to $(df_size c1) with nothing written"
say "thin_ls failing or missing: sizes unknown with the reason, the metadata snapshot released"

[ -z "${BERTH_GUEST_RUN:-}" ] || . "$BERTH_GUEST_RUN"

busctl call $M ReleaseContainer s c1 > /dev/null || fail "ReleaseContainer"
busctl call $M RemoveContainer s c1 > /dev/null || fail "RemoveContainer"
berth image rm img:1 > /tmp/rm.log 2>&1 || fail "berth image rm: $(cat /tmp/rm.log)"
berth gc > /tmp/gc.log 2>&1 || fail "berth gc: $(cat /tmp/gc.log)"

used2=$(prop PoolUsage)
df
[ "$(df_field used)" = "$used2" ] || fail "berth df used $(df_field used) != PoolUsage $used2"
say "after rm + gc: PoolUsage=$used2 (-$(((used1 - used2) / MIB)) MiB)"
check_kernel "$used2"
[ $((used1 - used2)) -ge $(((WRITE_MIB - 2) * MIB)) ] || fail "PoolUsage fell by only $((used1 - used2))"
[ "$used2" -le "$used0" ] || fail "PoolUsage $used2 after gc is above $used0 before the container"

stop
say "PASS"
