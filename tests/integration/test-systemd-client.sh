#!/bin/bash
# Runs systemd-client-test inside a freshly booted systemd container. Usage: BUILD_DIR TEST_BINARY
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/harness.sh"
build=$1; binary=$2
state=$IT_WORK/$IT_NAME.state
trap 'it_teardown; rm -rf "$state"' EXIT
trap 'exit 130' INT TERM
it_install "$build"
# The container sees the host's root through an overlay but gets its own /tmp, so a build tree
# under /tmp is invisible inside: ship the test binary in the install stage.
install -D -m 0755 "$binary" "$IT_STAGE/usr/local/libexec/berth-tests/systemd-client-test"
it_boot "$state"
it_in env BERTH_IT_INSIDE=1 /usr/local/libexec/berth-tests/systemd-client-test --gtest_brief=0
