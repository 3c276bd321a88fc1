# Declarations that name a registry image, under a real systemd 252 (issue #17):
#   - a declaration with a registry reference starts with `systemctl start` (berth run --systemd
#     pulls through berthd on the system bus before the payload starts);
#   - a pull throttled to take longer than the unit's TimeoutStartSec=3s still succeeds: the
#     runtime sends EXTEND_TIMEOUT_USEC while the pull makes progress;
#   - `berth status --json` shows the image id the container runs.
# The registry runs inside the booted instance (its own network namespace: its 127.0.0.1 is not
# the host's): docker-registry on 127.0.0.1:5017 and, in front of it, a proxy that sends blobs at
# 128 KiB/s on 127.0.0.1:5018 (tests/privileged/registry/throttle-proxy.py). Both are transient
# units (systemd-run), stopped at the end.
# A part of test-features.sh (sourced on its booted systemd; see there).

reg_images=$build/test-images/store
bash "$src/tests/lib/make-test-images.sh" "$reg_images" >&2
it_in sh -c 'mkdir -p /var/tmp/registry-part /etc/berth/registries.toml.d && cat > /var/tmp/registry-part/config.yml' <<'EOF'
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: /var/tmp/registry-part/data
http:
  addr: 127.0.0.1:5017
EOF
it_in sh -c 'cat > /etc/berth/registries.toml.d/registry-part.toml' <<'EOF'
[[registry]]
prefix = "127.0.0.1:5017"
location = "127.0.0.1:5017"
insecure = true
[[registry]]
prefix = "127.0.0.1:5018"
location = "127.0.0.1:5018"
insecure = true
EOF
reg_port_open() { it_in python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',int(sys.argv[1])),0.2)" "$1"; }
t_ok "docker-registry runs in the instance" it_in systemd-run --unit=registry-part-registry --quiet \
  docker-registry serve /var/tmp/registry-part/config.yml
t_ok "the throttling proxy runs in the instance" it_in systemd-run --unit=registry-part-proxy --quiet \
  python3 "$src/tests/privileged/registry/throttle-proxy.py" 5018 127.0.0.1:5017 131072 /var/tmp/registry-part/proxy.log
t_ok "both answer on 127.0.0.1" t_wait 20 sh -c "$(declare -f it_in reg_port_open); IT_PID1=$IT_PID1; reg_port_open 5017 && reg_port_open 5018"
t_ok "skopeo pushes the busybox test image" it_in skopeo copy -q --dest-tls-verify=false \
  "oci:$reg_images/oci:busybox" docker://127.0.0.1:5017/it/registry-part:v1

# Through the proxy first, while the store lacks the image's layer (~1 MiB: ~8 s at 128 KiB/s).
it_declare_container regpart-slow <<'EOF'
[container]
image = "127.0.0.1:5018/it/registry-part:v1"
ephemeral = true
command = ["sh", "-c", "trap 'exit 0' TERM; echo regpart-started; while :; do sleep 0.2; done"]
[service]
timeout_start = "3s"
[install]
wanted_by = []
EOF
it_declare_container regpart-direct <<'EOF'
[container]
image = "127.0.0.1:5017/it/registry-part:v1"
pull = "newer"
ephemeral = true
command = ["sh", "-c", "trap 'exit 0' TERM; echo regpart-started; while :; do sleep 0.2; done"]
[install]
wanted_by = []
EOF
t_ok "systemctl daemon-reload" it_in systemctl daemon-reload
t_like "a registry image orders the unit after network-online.target" 'After=.*network-online.target' \
  "$(it_in systemctl cat berth@regpart-slow.service)"

start=$(date +%s)
t_ok "regpart-slow (a throttled first pull) starts with systemctl start" it_in systemctl start berth@regpart-slow.service
took=$(( $(date +%s) - start ))
echo "# systemctl start regpart-slow took ${took}s (TimeoutStartSec=3s)"
t_ok "the pull took longer than TimeoutStartSec=3s" test "$took" -gt 3
t_eq "regpart-slow is active" active "$(it_unit_prop regpart-slow ActiveState)"
t_like "the blob came through the throttling proxy" 'blob started' "$(it_in cat /var/tmp/registry-part/proxy.log)"
t_like "its payload runs" 'regpart-started' "$(it_journal_of regpart-slow)"
reg_id=$(it_in berth image inspect 127.0.0.1:5018/it/registry-part:v1 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
reg_shown=$(it_in berth status --json regpart-slow 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get("image_id"))')
t_like "berth status --json shows the image id it runs" '^sha256:[0-9a-f]{64}$' "$reg_shown"
t_eq "... the pulled image's" "$reg_id" "$reg_shown"

t_ok "regpart-direct (pull = newer) starts with systemctl start" it_in systemctl start berth@regpart-direct.service
t_like "its payload runs" 'regpart-started' "$(it_journal_of regpart-direct)"
t_like "berth list shows both with the image id" "regpart-direct .*${reg_id:0:19}" "$(it_in berth list 2>/dev/null)"

for n in regpart-slow regpart-direct; do it_in systemctl stop berth@$n.service; done
it_in systemctl stop registry-part-proxy.service registry-part-registry.service
it_in rm -f /etc/berth/registries.toml.d/registry-part.toml
