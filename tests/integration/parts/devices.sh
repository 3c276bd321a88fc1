# Devices under a real systemd 252 (issue #21): the generated unit closes the device policy
# (DevicePolicy=closed, DeviceAllow= for the standard nodes and the declared devices), and a
# payload given CAP_MKNOD cannot make a node that is neither standard nor declared: systemd's
# program on the unit and berth's own on the payload's cgroup both refuse it.
# A part of test-features.sh (sourced on its booted systemd; see there).

t_ok "berth image import" it_in berth image import "$image_tar" --name busybox:devices
it_declare_container devs <<'EOF2'
[container]
image = "busybox:devices"
command = ["sh", "-c", "mknod /tmp/mem c 1 1 2>&1; echo mknod-mem=$?; mknod /tmp/null c 1 3; echo mknod-null=$?; echo hi > /dev/null; echo devnull=$?; trap \"exit 0\" TERM; sleep 1000 & wait"]
[[mount]]
type = "tmpfs"
target = "/tmp"
[security]
capabilities_add = ["MKNOD"]
devices = ["/dev/zero:r"]
[install]
wanted_by = []
EOF2
t_ok "systemctl daemon-reload" it_in systemctl daemon-reload
unit=$(it_in systemctl cat berth@devs.service 2>&1)
t_like "the unit closes the device policy" 'DevicePolicy=closed' "$unit"
t_like "the unit allows the declared device with its access" 'DeviceAllow=/dev/zero r' "$unit"
t_like "systemd reads it" 'DevicePolicy=closed' "$(it_in systemctl show -p DevicePolicy berth@devs.service)"
t_ok "systemctl start" it_in systemctl start berth@devs.service
t_ok "the payload has tried" t_wait 15 sh -c "$(declare -f it_in it_journal_of); IT_PID1=$IT_PID1; it_journal_of devs | grep -q 'devnull='"
log=$(it_journal_of devs)
t_like "a node neither standard nor declared cannot be made (CAP_MKNOD held)" 'mknod-mem=1' "$log"
t_like "a standard node can" 'mknod-null=0' "$log"
t_like "/dev/null opens" 'devnull=0' "$log"
t_ok "berth stop" it_in berth stop devs
