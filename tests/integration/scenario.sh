# scenario.sh — the preamble every scenario test shares (test-journey.sh, test-fault-kill.sh),
# sourced first with the script's own arguments: `. "$(dirname "$0")/scenario.sh"`.
# Loads harness.sh and tap.sh, takes BUILD_DIR from $1, boots systemd on a fresh state dir
# (it_session: skips without root, tears down on exit) and sets
#   here (tests/integration), src (the source tree), build, state (the state dir, for a reboot:
#   it_poweroff; it_boot "$state"), rootfs (a busybox tree), image_tar (it packed as a tarball).
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
. "$here/harness.sh"
. "$here/tap.sh"
build=${1:?usage: $(basename "$0") BUILD_DIR}
build=$(cd "$build" && pwd) || exit 1  # absolute: parts run programs from other directories
it_session "$build"
state=$IT_SESSION_STATE rootfs=$IT_ROOTFS image_tar=$IT_IMAGE_TAR
