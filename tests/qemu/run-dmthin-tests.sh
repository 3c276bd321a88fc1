#!/bin/bash
# run-dmthin-tests.sh TEST-BINARY... : the dm-thin backend's tests on a real kernel.
# On a host with device-mapper the binaries run directly (loopback files); otherwise Debian's
# kernel is booted under qemu (tests/qemu/qemu-lib.sh) with two virtio disks, /dev/vda (pool
# metadata) and /dev/vdb (pool data), and every binary runs there with ext4, and the main one again
# with xfs. A binary named backend-conformance is run with BERTH_TEST_BACKEND=dm-thin.
# With $BERTH_QEMU_BERTHD and $BERTH_QEMU_BERTH set, the guest then runs berthd on the dm-thin
# pool behind a private dbus-daemon and checks PoolUsage and `berth df --json` (berthd-df-guest.sh);
# with $BERTH_QEMU_SUPERVISE too, `berth run` runs real containers with a dm-thin volume there
# (berth-run-volume-guest.sh).
# Exit 0 only if the guest printed its PASS marker. Work dir: $BERTH_QEMU_WORK (default: a temp dir).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# -gt 0 ] || { echo "usage: $0 TEST-BINARY..." >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "needs root"; exit 77; }

if host_check=$(source "$here/qemu-lib.sh"; host_has_devmapper && echo yes) && [ "$host_check" = yes ]; then
    echo "host kernel has device-mapper: running the tests directly"
    status=0
    for b in "$@"; do
        BERTH_TEST_BACKEND=dm-thin "$b" --gtest_color=no || status=1
    done
    exit $status
fi

source "$here/qemu-lib.sh"
command -v qemu-system-x86_64 >/dev/null || { echo "qemu-system-x86_64 missing (scripts/install-deps.sh)"; exit 1; }

work=${BERTH_QEMU_WORK:-}
cleanup=
if [ -z "$work" ]; then
    work=$(mktemp -d /tmp/berth-qemu-XXXXXX)
    cleanup=$work
fi
trap '[ -z "$cleanup" ] || rm -rf "$cleanup"' EXIT
mkdir -p "$work"

qemu_prepare_kernel
QEMU_BINARIES=("$@")
QEMU_EXTRA_FILES=()
# Pool health through the service (berthd-df-guest.sh): berthd, berth, busctl and dbus-daemon
# with berth's bus policy file, when meson passes the first two.
berthd_scenario=
if [ -n "${BERTH_QEMU_BERTHD:-}" ] && [ -n "${BERTH_QEMU_BERTH:-}" ]; then
    for p in busctl dbus-daemon dmsetup; do
        command -v $p >/dev/null || { echo "$p missing (scripts/install-deps.sh)"; exit 1; }
    done
    QEMU_BINARIES+=("$BERTH_QEMU_BERTHD" "$BERTH_QEMU_BERTH" "$(command -v busctl)" "$(command -v dbus-daemon)"
                    "$(command -v dmsetup)")
    QEMU_EXTRA_FILES+=("$here/berthd-df-guest.sh:/usr/local/share/berth/berthd-df-guest.sh"
                       "$here/../../dbus/org.berth.Storage1.conf:/etc/dbus-1/org.berth.Storage1.conf"
                       "$here/../lib/private-bus.conf:/etc/dbus-1/private-bus.conf")
    berthd_scenario=yes
    # A real container with a dm-thin volume (berth-run-volume-guest.sh): the runtime's supervisor.
    if [ -n "${BERTH_QEMU_SUPERVISE:-}" ]; then
        QEMU_BINARIES+=("$BERTH_QEMU_SUPERVISE")
        QEMU_EXTRA_FILES+=("$here/berth-run-volume-guest.sh:/usr/local/share/berth/berth-run-volume-guest.sh")
        berthd_scenario=run
    fi
fi
script=$work/run.sh
{
    echo 'export BERTH_DMTHIN_META=/dev/vda BERTH_DMTHIN_DATA=/dev/vdb BERTH_TEST_BACKEND=dm-thin'
    echo 'RESULT=PASS'
    echo 'run() { name=$1; shift; echo "@@ RUN $name uptime=$(up)s"; if "$@" --gtest_color=no 2>&1; then echo "@@ OK $name uptime=$(up)s"; else echo "@@ FAILED $name"; RESULT=FAIL; fi; }'
    for b in "$@"; do
        n=${b##*/}
        echo "run $n-ext4 env BERTH_DMTHIN_FS=ext4 /usr/local/bin/$n"
    done
    for b in "$@"; do
        n=${b##*/}
        # xfs: the layer/container paths (nouuid mounts, norecovery views) once more.
        [ "$n" = dmthin-test ] &&
            echo "run $n-xfs env BERTH_DMTHIN_FS=xfs /usr/local/bin/$n --gtest_filter='DmThin.StacksLayersAndAppliesWhiteouts:DmThin.ContainerWritesAreInvisibleToTheImageAndOtherContainers:DmThin.CommitsAContainerAsANewLayer:DmThin.AVolumeSurvivesARestartOfTheBackendAndThePool'"
    done
    # Last: berthd keeps its pool on /dev/vd[ab] active when it exits.
    case $berthd_scenario in
        yes) echo "run berthd-df sh /usr/local/share/berth/berthd-df-guest.sh" ;;
        run) echo "run berthd-df env BERTH_GUEST_RUN=/usr/local/share/berth/berth-run-volume-guest.sh sh /usr/local/share/berth/berthd-df-guest.sh" ;;
    esac
} > "$script"
qemu_build_initramfs "$work" "$script" dm-thin-pool xfs loop
qemu_boot "$work" 64M 1G
