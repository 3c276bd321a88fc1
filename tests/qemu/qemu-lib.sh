# qemu-lib.sh - boot Debian's stock kernel under qemu (TCG, no KVM needed) with a throw-away
# busybox initramfs that carries berth's test binaries, and run them against real device-mapper.
# Sourced by tests/qemu/run-dmthin-tests.sh and bench/dmthin-snapshot-bench.sh.
#
# The CI kernel has no device-mapper, so the dm-thin backend is proven on Debian's cloud kernel:
# the package is fetched with `apt-get download` (the current dependency of linux-image-cloud-amd64)
# and unpacked with dpkg-deb - never installed, so no initramfs/grub hooks run on the host. It is
# cached in $QEMU_CACHE. Modules are resolved through the depends= field of each .ko's .modinfo,
# so neither depmod nor kmod is needed inside the guest.
#
# Facts that shaped this (measured on the CI machine): -machine q35 with virtio-blk-pci (microvm's
# virtio-mmio hangs at TSC calibration under TCG); an uncompressed cpio is fastest to unpack under
# TCG; mitigations=off and friends save ~1 s of boot; qemu's exit status says nothing about the
# tests, so the guest prints a marker line on the serial console that the host greps for.
set -euo pipefail

QEMU_LIB_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)   # the source tree
QEMU_CACHE=${QEMU_CACHE:-/var/cache/berth-tests/qemu}
QEMU_MEM=${QEMU_MEM:-1024}
QEMU_SMP=${QEMU_SMP:-2}
QEMU_TIMEOUT=${QEMU_TIMEOUT:-600}
QEMU_FLAVOUR=${QEMU_FLAVOUR:-cloud-amd64}
QEMU_APPEND="console=ttyS0 quiet panic=-1 rdinit=/init mitigations=off cryptomgr.notests nokaslr i8042.noaux i8042.nokbd i8042.nopnp"

qlog() { echo "[qemu-harness] $*" >&2; }

# Sets KVER, VMLINUZ, MODDIR. Downloads and unpacks the kernel once.
qemu_prepare_kernel() {
    local kpkg=${QEMU_KPKG:-}
    if [ -z "$kpkg" ]; then
        kpkg=$(apt-cache depends "linux-image-$QEMU_FLAVOUR" 2>/dev/null |
               awk '/Depends: linux-image-[0-9]/{print $2; exit}')
    fi
    if [ -z "$kpkg" ] && ! ls -d "$QEMU_CACHE"/kernel-*/.done >/dev/null 2>&1; then
        # Fresh machine whose apt lists were never fetched.
        apt-get -q -o DPkg::Lock::Timeout=300 update >&2 || true
        kpkg=$(apt-cache depends "linux-image-$QEMU_FLAVOUR" 2>/dev/null |
               awk '/Depends: linux-image-[0-9]/{print $2; exit}')
    fi
    if [ -z "$kpkg" ]; then
        # Offline: fall back to whatever kernel is already cached.
        kpkg=$(ls -d "$QEMU_CACHE"/kernel-*/.done 2>/dev/null | head -1 | sed 's|.*/kernel-\(.*\)/.done|linux-image-\1|')
    fi
    [ -n "$kpkg" ] || { qlog "cannot resolve linux-image-$QEMU_FLAVOUR"; return 2; }
    KVER=${kpkg#linux-image-}
    local kroot=$QEMU_CACHE/kernel-$KVER
    if [ ! -e "$kroot/.done" ]; then
        mkdir -p "$QEMU_CACHE/debs"
        if ! ls "$QEMU_CACHE/debs/${kpkg}"_*.deb >/dev/null 2>&1; then
            ( cd "$QEMU_CACHE/debs" && apt-get -q -o APT::Sandbox::User=root download "$kpkg" >&2 )
        fi
        rm -rf "$kroot.tmp"
        mkdir -p "$kroot.tmp"
        dpkg-deb -x "$(ls "$QEMU_CACHE/debs/${kpkg}"_*.deb | head -1)" "$kroot.tmp"
        touch "$kroot.tmp/.done"
        rm -rf "$kroot"
        mv "$kroot.tmp" "$kroot"
    fi
    VMLINUZ=$kroot/boot/vmlinuz-$KVER
    MODDIR=$kroot/lib/modules/$KVER
}

# Copies a host binary and its shared-library closure into $QROOT (same absolute paths).
qemu_copy_with_libs() {
    local src=$1 dst=${2:-$1} lib
    install -D -m 0755 "$(readlink -f "$src")" "$QROOT$dst"
    # Debug info only costs initramfs size (and unpack time under TCG).
    case $dst in /usr/local/bin/*) strip --strip-debug "$QROOT$dst" 2>/dev/null || true ;; esac
    for lib in $(ldd "$src" | awk '/=> \//{print $3} /^\t\/[^ ]*ld-linux/{print $1}'); do
        [ -e "$QROOT$lib" ] || install -D -m 0755 "$(readlink -f "$lib")" "$QROOT$lib"
    done
    # Libraries a binary dlopen()s are not in DT_NEEDED, so ldd misses them; a binary may declare
    # them in dlopen notes (.note.dlopen). Copy each with its own closure.
    local so path
    for so in $(python3 "$QEMU_LIB_TOP/scripts/elf-dlopen-libs.py" "$src"); do
        path=$(ldconfig -p | awk -v so="$so" '$1 == so && /x86-64/ && !p { print $NF; p = 1 }')
        [ -n "$path" ] || { qlog "$src needs $so, which ldconfig does not know"; return 1; }
        [ -e "$QROOT$path" ] || qemu_copy_with_libs "$path"
    done
}

declare -A QKO=() QBUILTIN=() QSEEN=()
qemu_add_module() {
    local n=${1//-/_} f deps d
    [ -z "${QSEEN[$n]:-}" ] && [ -z "${QBUILTIN[$n]:-}" ] || return 0
    f=${QKO[$n]:-}
    [ -n "$f" ] || { qlog "module $1 not found in $MODDIR"; return 2; }
    QSEEN[$n]=1
    case $f in
        *.xz)  xz -dc "$f" ;;
        *.zst) zstd -qdc "$f" ;;
        *)     cat "$f" ;;
    esac > "$QROOT/lib/modules/$n.ko"
    deps=$(tr '\0' '\n' < "$QROOT/lib/modules/$n.ko" | sed -n 's/^depends=//p' | head -1)
    for d in ${deps//,/ }; do qemu_add_module "$d"; done
    echo "$n" >> "$QROOT/lib/modules/load.order"
}

# qemu_build_initramfs WORKDIR SCRIPT MODULE...   (binaries to carry, with their libraries:
# QEMU_BINARIES array, into /usr/local/bin; other files: QEMU_EXTRA_FILES array of HOST:GUEST)
# SCRIPT is a shell fragment run by /init after the modules are loaded and /dev/vd[ab] exist; it
# must set RESULT=PASS|FAIL. Writes $WORKDIR/initrd.img.
qemu_build_initramfs() {
    local work=$1 script=$2 m b p; shift 2
    QROOT=$work/initramfs
    rm -rf "$QROOT"
    mkdir -p "$QROOT"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,etc,dev,proc,sys,tmp,run,mnt,var/tmp,lib/modules}
    cp /bin/busybox "$QROOT/bin/busybox"        # busybox-static
    for p in /sbin/mke2fs /sbin/mkfs.xfs /bin/mkfs.btrfs /sbin/mkfs.btrfs /bin/btrfs; do
        [ -x "$p" ] && qemu_copy_with_libs "$p" "/usr/sbin/${p##*/}"
    done
    ln -sf mke2fs "$QROOT/usr/sbin/mkfs.ext4"
    # thin-provisioning-tools: thin_ls gives the dm-thin backend its per-device sizes (berth df),
    # thin_check lets a test check the pool's metadata. One multi-call binary, like busybox.
    if [ -x /usr/sbin/pdata_tools ]; then
        qemu_copy_with_libs /usr/sbin/pdata_tools /usr/sbin/pdata_tools
        for p in thin_ls thin_check; do ln -sf pdata_tools "$QROOT/usr/sbin/$p"; done
    fi
    cp /etc/mke2fs.conf "$QROOT/etc/" 2>/dev/null || true
    for b in "${QEMU_BINARIES[@]}"; do qemu_copy_with_libs "$b" "/usr/local/bin/${b##*/}"; done
    # Plain files, "HOST-PATH:GUEST-PATH" (policy files, guest scripts).
    for p in ${QEMU_EXTRA_FILES[@]+"${QEMU_EXTRA_FILES[@]}"}; do install -D -m 0755 "${p%%:*}" "$QROOT${p#*:}"; done

    QKO=() QBUILTIN=() QSEEN=()
    while read -r p; do b=${p##*/}; b=${b%%.ko*}; QKO[${b//-/_}]=$p; done \
        < <(find "$MODDIR/kernel" -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst')
    while read -r p; do b=${p##*/}; b=${b%%.ko*}; QBUILTIN[${b//-/_}]=1; done < "$MODDIR/modules.builtin"
    : > "$QROOT/lib/modules/load.order"
    # crc32c_generic: libcrc32c only has a *soft* dependency on "crc32c".
    for m in virtio_pci virtio_blk crc32c_generic "$@"; do qemu_add_module "$m"; done

    {
        cat <<'INIT'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s /bin
export PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/ TMPDIR=/tmp
mount -t devtmpfs devtmpfs /dev
mount -t sysfs sysfs /sys
mount -t tmpfs -o size=256m tmpfs /tmp
up() { cut -d' ' -f1 /proc/uptime; }
echo "@@ INIT uptime=$(up)s kernel=$(uname -r)"
for m in $(cat /lib/modules/load.order); do
    insmod /lib/modules/$m.ko || echo "@@ insmod $m failed"
done
i=0; while [ ! -b /dev/vdb ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
echo "@@ MODULES uptime=$(up)s"
RESULT=FAIL
INIT
        cat "$script"
        cat <<'INIT'
echo "@@ DONE uptime=$(up)s"
echo "@@ BERTH-QEMU: $RESULT"
sync
poweroff -f
INIT
    } > "$QROOT/init"
    chmod 0755 "$QROOT/init"
    (cd "$QROOT" && find . -print0 | cpio --null -o -H newc --quiet) > "$work/initrd.img"
    qlog "initramfs $(du -h "$work/initrd.img" | cut -f1), modules: $(tr '\n' ' ' < "$QROOT/lib/modules/load.order")"
}

# qemu_boot WORKDIR META_SIZE DATA_SIZE -> 0 iff the guest printed "@@ BERTH-QEMU: PASS".
# The serial console is streamed to stdout and kept in $WORKDIR/serial.log.
qemu_boot() {
    local work=$1 meta_size=$2 data_size=$3 start rc
    rm -f "$work/meta.img" "$work/data.img"
    truncate -s "$meta_size" "$work/meta.img"   # sparse: cost nothing until written
    truncate -s "$data_size" "$work/data.img"
    start=$(date +%s.%N)
    set +e
    timeout -k 5 "$QEMU_TIMEOUT" qemu-system-x86_64 \
        -nodefaults -no-user-config -display none -no-reboot \
        -machine q35 -accel tcg,thread=multi -cpu max -smp "$QEMU_SMP" -m "$QEMU_MEM" \
        -kernel "$VMLINUZ" -initrd "$work/initrd.img" -append "$QEMU_APPEND" \
        -drive "file=$work/meta.img,if=none,id=meta,format=raw,cache=unsafe,discard=unmap" \
        -device virtio-blk-pci,drive=meta \
        -drive "file=$work/data.img,if=none,id=data,format=raw,cache=unsafe,discard=unmap" \
        -device virtio-blk-pci,drive=data \
        -serial stdio -monitor none < /dev/null | tee "$work/serial.log"
    rc=${PIPESTATUS[0]}
    set -e
    qlog "qemu exited with $rc after $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')s"
    rm -f "$work/meta.img" "$work/data.img"
    grep -q '^@@ BERTH-QEMU: PASS' "$work/serial.log"
}

# Is device-mapper usable right here (then tests run directly, no qemu)?
host_has_devmapper() {
    [ -e /sys/module/dm_thin_pool ] || [ -e /sys/module/dm_mod ] || return 1
    [ -c /dev/mapper/control ] || return 1
    command -v dmsetup >/dev/null && dmsetup version >/dev/null 2>&1
}
