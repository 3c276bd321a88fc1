# Operator keys under a real systemd 252 (issue #19):
#   - stop_signal: the unit keeps KillSignal=SIGTERM (systemd stops berth's supervisor), and
#     `systemctl stop` delivers the declared signal (SIGQUIT, SIGINT) to the payload, whose trap
#     prints it to the journal;
#   - the operator keys reach a container started by systemd: sysctl, timezone, dns, add_hosts.
# A part of test-features.sh (sourced on its booted systemd; see there).

t_ok "berth image import" it_in berth image import "$image_tar" --name busybox:opkeys
for sig in QUIT INT; do
  lower=$(echo "$sig" | tr A-Z a-z)
  it_declare_container "opkeys-$lower" <<EOF
[container]
image = "busybox:opkeys"
ephemeral = true
stop_signal = "SIG$sig"
timezone = "UTC"
command = ["sh", "-c", "trap 'echo got-SIG$sig; exit 0' $sig; trap 'echo got-SIGTERM; exit 0' TERM; echo ready; sleep 1000 & wait"]
[container.sysctl]
"net.core.somaxconn" = 777
[network]
dns = ["192.0.2.53"]
add_hosts = ["opkeys-db:10.1.2.3"]
[install]
wanted_by = []
EOF
done
t_ok "systemctl daemon-reload" it_in systemctl daemon-reload
t_unlike "the unit keeps systemd's KillSignal (the supervisor translates)" 'KillSignal=' "$(it_in systemctl cat berth@opkeys-quit.service)"
for sig in QUIT INT; do
  lower=$(echo "$sig" | tr A-Z a-z)
  t_ok "opkeys-$lower starts" it_in systemctl start "berth@opkeys-$lower.service"
  t_ok "opkeys-$lower: the payload is up" t_wait 10 sh -c "$(declare -f it_in it_journal_of); IT_PID1=$IT_PID1; it_journal_of opkeys-$lower | grep -q ready"
done
t_eq "sysctl: net.core.somaxconn inside" 777 "$(it_in berth exec --no-stdin opkeys-quit -- cat /proc/sys/net/core/somaxconn 2>&1)"
t_like "dns: resolv.conf inside" 'nameserver 192.0.2.53' "$(it_in berth exec --no-stdin opkeys-quit -- cat /etc/resolv.conf 2>&1)"
t_like "add_hosts: /etc/hosts inside" '10.1.2.3[[:space:]]+opkeys-db' "$(it_in berth exec --no-stdin opkeys-quit -- cat /etc/hosts 2>&1)"
t_eq "timezone: /etc/localtime is the zone's file" "$(it_in sh -c 'md5sum < /usr/share/zoneinfo/UTC')" \
  "$(it_in sh -c 'berth exec --no-stdin opkeys-quit -- cat /etc/localtime | md5sum')"
for sig in QUIT INT; do
  lower=$(echo "$sig" | tr A-Z a-z)
  t_ok "systemctl stop opkeys-$lower" it_in systemctl stop "berth@opkeys-$lower.service"
  t_like "opkeys-$lower: the payload got SIG$sig from systemctl stop" "got-SIG$sig" "$(it_journal_of "opkeys-$lower")"
  t_unlike "opkeys-$lower: and not SIGTERM" 'got-SIGTERM' "$(it_journal_of "opkeys-$lower")"
done
