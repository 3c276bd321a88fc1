# berth auto-update under a real systemd 252 (issue #18), against a registry running inside the
# booted instance (Debian's docker-registry, plain HTTP on 127.0.0.1), images pushed with skopeo.
#   - v1 runs with the image's own HEALTHCHECK (test -e /etc/au-ok, a file in the image);
#   - --dry-run says v2 would come and changes nothing;
#   - v2 pushed -> updated, healthy, the payload sees v2's files, status shows v1 as previous;
#   - v3 (no /etc/au-ok: its health check fails) -> rolled back to v2, unit active and healthy,
#     the journal says why, exit status 1;
#   - registry stopped -> nothing changes, "unreachable", exit status 0.
# A part of test-features.sh (sourced on its booted systemd; see there).

au_port=5187
au_ref=127.0.0.1:$au_port/au/web:latest
au_dir=/var/tmp/berth-au-$$        # inside the instance (its /var/tmp lives in the overlay)
au_reg=berth-au-registry-$$.service

au_image() { # VERSION OK(yes|no): an OCI layout $au_dir/VERSION of the busybox rootfs + markers
  it_in sh -c 'set -e; d=$1/r$2; rm -rf "$d"; cp -a "$3" "$d"; echo "$2" > "$d/etc/au-version"
    [ "$4" = yes ] && touch "$d/etc/au-ok"; rm -rf "$1/$2"
    python3 "$5" "$d" "$1/$2" "{\"Test\": [\"CMD\", \"test\", \"-e\", \"/etc/au-ok\"], \"Interval\": 200000000, \"StartInterval\": 100000000, \"Retries\": 2, \"Timeout\": 2000000000}"' \
    sh "$au_dir" "$1" "$rootfs" "$2" "$src/tests/privileged/health/oci-with-healthcheck.py"
}
au_push() { it_in skopeo copy --quiet --dest-tls-verify=false "oci:$au_dir/$1" "docker://$au_ref"; }
au_version() { it_in berth exec --no-stdin au-web -- cat /etc/au-version 2>/dev/null; }

it_in mkdir -p "$au_dir/data" /etc/berth/registries.toml.d
it_in sh -c "cat > $au_dir/config.yml" <<EOF2
version: 0.1
storage:
  filesystem:
    rootdirectory: $au_dir/data
http:
  addr: 127.0.0.1:$au_port
EOF2
it_in sh -c 'cat > /etc/berth/registries.toml.d/auto-update-part.toml' <<EOF2
[[registry]]
prefix = "127.0.0.1:$au_port"
insecure = true
EOF2
t_ok "registry started (docker-registry, in the instance)" \
  it_in systemd-run --quiet --unit="$au_reg" /usr/bin/docker-registry serve "$au_dir/config.yml"
au_images() { au_image v1 yes && au_image v2 yes && au_image v3 no; }
t_ok "images v1, v2, v3 made (v3 lacks the file its health check tests)" au_images
for _ in $(seq 100); do it_in bash -c "exec 3<>/dev/tcp/127.0.0.1/$au_port" 2>/dev/null && break; sleep 0.1; done
t_ok "v1 pushed" au_push v1
t_ok "v1 pulled" it_in berth image pull "$au_ref"

it_declare_container au-web <<EOF2
[container]
image = "$au_ref"
auto_update = "registry"
command = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.2; done"]
[install]
wanted_by = []
EOF2
it_in systemctl daemon-reload
t_ok "au-web starts on v1" it_in systemctl start berth@au-web.service
au_health() { # waits (10 s at most) for au-web's health to be $1; prints the last seen
  local h=
  for _ in $(seq 50); do h=$(it_in berth status au-web 2>/dev/null | grep 'Health:'); [[ $h == *" $1"* ]] && break; sleep 0.2; done
  echo "$h"
}
t_like "the image's HEALTHCHECK runs: au-web becomes healthy" ' healthy' "$(au_health healthy)"
t_eq "au-web runs v1" v1 "$(au_version)"

# v2 in the registry: a dry run lists it and changes nothing.
t_ok "v2 pushed" au_push v2
started=$(it_unit_prop au-web ActiveEnterTimestampMonotonic)
out=$(it_in berth auto-update --dry-run 2>&1); rc=$?
t_eq "--dry-run exits 0" 0 "$rc"
t_like "--dry-run says au-web would update" 'au-web: would update: runs sha256:[0-9a-f]{12}, the registry has' "$out"
t_eq "--dry-run restarted nothing" "$started" "$(it_unit_prop au-web ActiveEnterTimestampMonotonic)"
t_eq "--dry-run changed nothing: still v1" v1 "$(au_version)"

out=$(it_in berth auto-update --window 30 2>&1); rc=$?
t_eq "auto-update to v2 exits 0" 0 "$rc"
t_like "auto-update says updated, healthy" 'au-web: updated: updated to sha256:[0-9a-f]+: healthy' "$out"
t_eq "au-web runs v2" v2 "$(au_version)"
t_like "status shows the running digest and v1 as previous" 'Auto-update: registry; runs sha256:[0-9a-f]+; previous sha256:' \
  "$(it_in berth status au-web 2>&1)"

# v3's health check fails (no /etc/au-ok): rolled back to v2.
t_ok "v3 pushed" au_push v3
out=$(it_in berth auto-update --window 20 2>&1); rc=$?
t_eq "auto-update to v3 exits 1" 1 "$rc"
t_like "auto-update says rolled back, and why" 'au-web: rolled back: rolled back from sha256:[0-9a-f]+ to sha256:[0-9a-f]+: the health check reports unhealthy' "$out"
t_eq "au-web is active after the rollback" active "$(it_unit_prop au-web ActiveState)"
t_eq "au-web runs v2 again" v2 "$(au_version)"
t_like "au-web is healthy after the rollback" ' healthy' "$(au_health healthy)"
t_like "the journal says why" 'rolled back from .*the health check reports unhealthy' \
  "$(it_in journalctl -t berth-auto-update --no-pager -o cat)"

# The registry is down: nothing changes, and it says so.
it_in systemctl stop "$au_reg"
started=$(it_unit_prop au-web ActiveEnterTimestampMonotonic)
out=$(it_in berth auto-update 2>&1); rc=$?
t_eq "a registry that is down: exit 0" 0 "$rc"
t_like "a registry that is down: says so" "au-web: unreachable: could not ask the registry for '$au_ref'.*nothing changed" "$out"
t_eq "a registry that is down: nothing restarted" "$started" "$(it_unit_prop au-web ActiveEnterTimestampMonotonic)"

it_in systemctl stop berth@au-web.service
it_in rm -f /etc/berth/containers/au-web.toml /etc/berth/registries.toml.d/auto-update-part.toml
it_in rm -rf "$au_dir"
it_in systemctl daemon-reload
