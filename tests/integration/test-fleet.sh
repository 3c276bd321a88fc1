#!/bin/bash
# test-fleet.sh BUILD_DIR: the berth.berth Ansible collection driving three hosts (issue #22).
#   - three real systemd instances booted at once (harness.sh, each in a subshell that owns its
#     boot and poweroff), each in its own network namespace, joined by veth pairs to a bridge in
#     a test namespace that also holds a docker-registry and the Ansible controller;
#   - sshd (Debian's openssh-server) started inside every host, a key made by the test;
#   - the collection built and installed with ansible-galaxy; its example playbooks
#     (contrib/ansible/examples) run with Debian's ansible-playbook over ssh:
#     app.yml (a network, db with a secret, web requiring db; images pinned by digest; all
#     healthy), app.yml again (changed=0 everywhere), app.yml --check --diff with web v2 (the
#     plan shown, nothing changed), rolling-update.yml to v2, rolling-update.yml to v3 whose health
#     check fails (stops after the first host, rolled back to v2 there, the others untouched),
#     remove.yml (no unit, declaration, snapshot or network left).
# The one meson test that boots systemd three times (HELPERS-COMMON: the fleet is the exception).
# Usage: test-fleet.sh BUILD_DIR      (root; TAP on stdout; meson suite 'integration')
set -uo pipefail
build=$(cd "${1:?usage: test-fleet.sh BUILD_DIR}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
. "$here/tap.sh"
[ "$(id -u)" = 0 ] || { echo "1..0 # SKIP needs root"; exit 0; }
for t in ansible-playbook ansible-galaxy /usr/sbin/sshd ssh-keygen docker-registry skopeo umoci; do
  command -v "$t" >/dev/null || { echo "Bail out! $t missing (scripts/install-deps.sh)"; exit 1; }
done
export IT_NAME=berth-fleet-$$ IT_BOOT_TIMEOUT=${IT_BOOT_TIMEOUT:-180}
. "$here/harness.sh"
t0=$(date +%s)
ns=berth-fleet-$$
work=$IT_WORK/berth-fleet-$$.work
net=10.123.0                      # inside the test's own namespaces only
registry=$net.1:5000
H=() hostpids=() regpid=
export NO_PROXY=$net.1 no_proxy=$net.1

cleanup() {
  local p
  for p in "${hostpids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${hostpids[@]}"; do wait "$p" 2>/dev/null; done
  [ -n "$regpid" ] && { kill "$regpid" 2>/dev/null; wait "$regpid" 2>/dev/null; }
  ip netns del "$ns" 2>/dev/null
  [ -n "$IT_STAGE" ] && rm -rf "$IT_STAGE"
  rm -rf "$work" "$IT_WORK/$IT_NAME.install.log" "$IT_WORK/$IT_NAME"-h[123].console
}
# A run killed with SIGKILL (meson kills a test that outlives its timeout or its own SIGTERM's grace)
# cannot run cleanup(): reap what such runs left (their netns and empty cgroups, named after a
# pid that no longer runs) before this run adds its own.
reap_killed_runs() {
  local n pid d
  for n in $(ip netns list 2>/dev/null | grep -o '^berth-fleet-[0-9]*'); do
    pid=${n#berth-fleet-}; kill -0 "$pid" 2>/dev/null || ip netns del "$n" 2>/dev/null
  done
  for d in "$(it_cgroup2)"/berth-fleet-*-h[123]; do
    [ -d "$d" ] || continue
    pid=${d##*/berth-fleet-}; pid=${pid%-h*}
    kill -0 "$pid" 2>/dev/null && continue
    find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  return 0
}
reap_killed_runs
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$work"
elapsed() { echo "# $1 at $(( $(date +%s) - t0 ))s"; }

# ---- three hosts, booted at once --------------------------------------------------------------
it_install "$build"
for i in 1 2 3; do
  (
    IT_NAME=berth-fleet-$$-h$i
    trap 'it_poweroff; exit 0' TERM
    it_boot "$work/h$i.state" || exit 125
    echo "$IT_PID1" > "$work/h$i.pid"
    while :; do sleep 0.2; done
  ) >"$work/h$i.log" 2>&1 &
  hostpids+=($!)
done
for i in 1 2 3; do
  if ! t_wait "$IT_BOOT_TIMEOUT" test -s "$work/h$i.pid"; then
    cat "$work/h$i.log" >&2; echo "Bail out! host $i did not boot"; exit 1
  fi
  H[$i]=$(cat "$work/h$i.pid")
done
t_result 0 "three systemd instances booted at once (PID 1s ${H[*]})"
elapsed "booted"
host_in() { # N CMD...: a command on host N (its namespaces and root, a clean environment)
  local pid=${H[$1]}; shift
  nsenter -t "$pid" -a -- env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    SYSTEMD_PAGER= SYSTEMD_COLORS=0 LANG=C.UTF-8 HOME=/root "$@"
}

# ---- the bridge, the registry, sshd ------------------------------------------------------------
ssh-keygen -q -t ed25519 -N '' -C "berth-fleet-$$" -f "$work/id" || exit 1
ip netns add "$ns" && ip -n "$ns" link set lo up &&
  ip -n "$ns" link add br0 type bridge && ip -n "$ns" addr add "$net.1/24" dev br0 && ip -n "$ns" link set br0 up ||
  { echo "Bail out! test bridge"; exit 1; }
for i in 1 2 3; do
  ip -n "$ns" link add "h$i" type veth peer name eth0 netns "${H[$i]}" &&
    ip -n "$ns" link set "h$i" master br0 up &&
    nsenter -t "${H[$i]}" -n sh -c "ip link set lo up && ip addr add $net.1$i/24 dev eth0 && ip link set eth0 up" ||
    { echo "Bail out! veth to host $i"; exit 1; }
  host_in "$i" sh -c 'mkdir -p /run/sshd /root/.ssh && chmod 700 /root/.ssh && cat > /root/.ssh/authorized_keys' \
    < "$work/id.pub"
  host_in "$i" sh -c 'cat > /etc/ssh/sshd-berth-fleet.conf' <<EOF
ListenAddress $net.1$i
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AuthorizedKeysFile /root/.ssh/authorized_keys
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile none
Subsystem sftp /usr/lib/openssh/sftp-server
EOF
  # systemd builds /run/credentials/UNIT in the starting process's mount namespace and relies on
  # propagation; the harness's chroot root is not shared (as parts/secrets-sockets.sh does).
  host_in "$i" sh -c 'mkdir -p /run/credentials; mountpoint -q /run/credentials ||
    mount --bind /run/credentials /run/credentials; mount --make-rshared /run/credentials'
  # Containers on a declared network set per-namespace net sysctls (accept_ra of their veth):
  # the harness keeps /proc/sys read-only, but each host has its own network namespace, so its
  # /proc/sys/net is its own and may be writable.
  host_in "$i" sh -c 'mount --bind /proc/sys/net /proc/sys/net && mount -o remount,bind,rw /proc/sys/net'
  host_in "$i" systemd-run -q --unit=berth-fleet-sshd /usr/sbin/sshd -D -e -f /etc/ssh/sshd-berth-fleet.conf
done
port_open() { ip netns exec "$ns" python3 -c "import socket; socket.create_connection(('$1', $2), 0.3)" 2>/dev/null; }

mkdir -p "$work/registry"
cat > "$work/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: $registry
EOF
ip netns exec "$ns" docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
regpid=$!
ok=0
for i in 1 2 3; do t_wait 30 port_open "$net.1$i" 22 && ok=$((ok + 1)); done
t_eq "sshd listens on all three hosts" 3 "$ok"
t_wait 30 port_open "$net.1" 5000 || { cat "$work/registry.log"; echo "Bail out! registry"; exit 1; }

# ---- images v1, v2, v3 (v3: APP_VERSION=v3, which web's health check fails) ---------------------
images=$build/test-images/store
bash "$src/tests/lib/make-test-images.sh" "$images" >&2 || { echo "Bail out! test images"; exit 1; }
cp -a "$images/oci" "$work/oci"
declare -A digest
for v in v1 v2 v3; do
  umoci config --image "$work/oci:busybox" --tag "$v" --config.env "APP_VERSION=$v" --config.user root \
    --config.workingdir / || { echo "Bail out! umoci config $v"; exit 1; }
  ip netns exec "$ns" skopeo copy -q --dest-tls-verify=false "oci:$work/oci:$v" "docker://$registry/app:$v" ||
    { echo "Bail out! push $v"; exit 1; }
  digest[$v]=$(ip netns exec "$ns" skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$registry/app:$v")
done
t_like "three images in the registry, three digests" "^sha256:.* sha256:.* sha256:" "${digest[v1]} ${digest[v2]} ${digest[v3]}"
elapsed "network, sshd, registry"

# ---- the collection, installed as users install it --------------------------------------------
coll=$work/collections
ansible-galaxy collection build "$src/contrib/ansible" --output-path "$work" --force >/dev/null &&
  ansible-galaxy collection install -p "$coll" "$work"/berth-berth-*.tar.gz >/dev/null 2>&1
t_ok "ansible-galaxy builds and installs berth.berth" test -f "$coll/ansible_collections/berth/berth/plugins/modules/berth_container.py"
{
  echo "[fleet]"
  for i in 1 2 3; do echo "h$i ansible_host=$net.1$i"; done
  echo "[fleet:vars]"
  echo "ansible_user=root"
  echo "ansible_ssh_private_key_file=$work/id"
  echo "ansible_python_interpreter=/usr/bin/python3"
} > "$work/inventory"
cat > "$work/vars.yml" <<EOF
registry: "$registry"
registry_insecure: true
db_password: "fleet-secret-$$"
db_version: v1
db_digest: "${digest[v1]}"
web_version: v1
web_digest: "${digest[v1]}"
EOF
mkdir -p "$work/home" "$work/cp"
play() { # PLAYBOOK ARGS...: ansible-playbook from the test namespace; output in $work/last.out
  ip netns exec "$ns" env HOME="$work/home" ANSIBLE_COLLECTIONS_PATH="$coll" ANSIBLE_HOST_KEY_CHECKING=False \
    ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 ANSIBLE_PIPELINING=True ANSIBLE_FORKS=3 ANSIBLE_RETRY_FILES_ENABLED=False \
    ANSIBLE_LOCAL_TEMP="$work/home/tmp" ANSIBLE_SSH_CONTROL_PATH_DIR="$work/cp" \
    ANSIBLE_SSH_ARGS="-o ControlMaster=auto -o ControlPersist=120s -o UserKnownHostsFile=/dev/null" \
    ansible-playbook -i "$work/inventory" -e "@$work/vars.yml" "$src/contrib/ansible/examples/$1" "${@:2}" \
    >"$work/last.out" 2>&1
  local rc=$?
  sed 's/^/#   /' "$work/last.out" > "$work/last.tap"
  return $rc
}
show_play() { cat "$work/last.tap"; }

# One container of host N as `berth list --json` shows it: "STATE HEALTH PID".
view() {
  host_in "$1" berth list --json 2>/dev/null | python3 -c '
import json, sys
for c in json.load(sys.stdin):
    if c["name"] == sys.argv[1]:
        print(c.get("active_state"), c.get("health"), c.get("main_pid"))
        break
else:
    print("none")' "$2"
}
decl_image() { host_in "$1" sed -n 's/^image = "\(.*\)"$/\1/p' "/etc/berth/containers/$2.toml" 2>/dev/null; }

# ---- first run: the app on every host, healthy --------------------------------------------------
play app.yml || { show_play; }
t_like "first run succeeds on every host" "h1 +: ok=[0-9]+ +changed=[1-9].*failed=0.*h2 +: ok=.*failed=0.*h3 +: ok=.*failed=0" "$(tr '\n' ' ' < "$work/last.out")" || show_play
for i in 1 2 3; do
  t_like "host $i: db active and healthy" "^active healthy [1-9]" "$(view $i db)"
  t_like "host $i: web active and healthy" "^active healthy [1-9]" "$(view $i web)"
done
t_like "web and db have addresses on the network app" '"db": "10\.89\.7\.[0-9]+".*"web": "10\.89\.7\.' \
  "$(host_in 1 berth network inspect --json app | tr -d '\n')"
elapsed "first run"

# ---- second run: nothing changes ---------------------------------------------------------------
play app.yml || show_play
recap=$(grep -E '^h[123] +:' "$work/last.out")
t_eq "second run: changed=0 on every host" 3 "$(grep -cE 'changed=0 .*failed=0' <<<"$recap")" || show_play

# ---- check mode with web v2: the plan shown, nothing changed -----------------------------------
before=$(view 2 web)
play app.yml --check --diff -e web_version=v2 -e "web_digest=${digest[v2]}"
out=$(cat "$work/last.out")
t_like "check mode shows berth plan's image change" "container web: image .*app:v1.* -> .*app:v2" "$out" || show_play
t_like "check mode shows the declaration diff" '\+image = "[^"]*app:v2"' "$out"
t_eq "check mode changed no declaration" "$registry/app:v1" "$(decl_image 2 web)"
t_eq "check mode did not restart web" "$before" "$(view 2 web)"
t_fails "check mode pulled nothing" host_in 2 berth image inspect "$registry/app:v2"
elapsed "check mode"

# ---- rolling update to v2 ----------------------------------------------------------------------
play rolling-update.yml -e web_version=v2 -e "web_digest=${digest[v2]}"
t_eq "rolling update to v2 succeeds" 0 "$?" || show_play
# serial: 1 runs every task once per host, in batches of one: its header appears three times.
t_eq "one host after the other (serial: 1)" 3 "$(grep -c 'TASK \[the new image, pinned\]' "$work/last.out")"
for i in 1 2 3; do
  t_eq "host $i: web declared on v2" "$registry/app:v2" "$(decl_image $i web)"
  t_like "host $i: web on v2 healthy" "^active healthy [1-9]" "$(view $i web)"
done
elapsed "rolling update v2"

# ---- rolling update to v3, whose health check fails --------------------------------------------
before2=$(view 2 web) before3=$(view 3 web)
play rolling-update.yml -e web_version=v3 -e "web_digest=${digest[v3]}"
t_fails "rolling update to v3 fails" test "$?" = 0
out=$(cat "$work/last.out")
t_like "host 1 was rolled back and the rollout stopped" "web v3 did not become healthy on h1; rolled back" "$out" || show_play
t_unlike "hosts 2 and 3 were not touched" "\[h[23]\]" "$out"
t_eq "host 1: web declared on v2 again" "$registry/app:v2" "$(decl_image 1 web)"
t_like "host 1: web on v2 healthy" "^active healthy [1-9]" "$(view 1 web)"
for i in 2 3; do
  t_eq "host $i: web declared on v2" "$registry/app:v2" "$(decl_image $i web)"
  eval "b=\$before$i"
  t_eq "host $i: web never left v2 (same main pid, healthy)" "$b" "$(view $i web)"
  t_fails "host $i: v3 never pulled" host_in "$i" berth image inspect "$registry/app:v3"
done
elapsed "rolling update v3"

# ---- removal -----------------------------------------------------------------------------------
play remove.yml
t_eq "remove.yml succeeds" 0 "$?" || show_play
for i in 1 2 3; do
  left=$(host_in "$i" sh -c '
    ls /etc/berth/containers/ /etc/berth/networks/ 2>/dev/null | grep -E "^(web|db|app)\.toml"
    systemctl list-units --all --no-legend "berth@web.service" "berth@db.service" | grep -v "not-found"
    ls /run/systemd/generator/ | grep -E "berth@(web|db)"
    berth list --json | grep -E "\"name\": \"(web|db)\""
    berth df --json | grep -E "\"name\": \"(web|db)\""
    berth network ls --json | grep "\"name\": \"app\""
    ip -o link | grep -E "bn-app|berth-app"
    true')
  t_eq "host $i: no unit, declaration, snapshot or network left" "" "$left"
done
elapsed "removal"
echo "# the whole test took $(( $(date +%s) - t0 ))s"
t_done
