# Templates and named sockets under a real systemd 252 (issue #19), on one booted instance:
#   - a template tpl@.toml with default_instances = ["1", "2"]: after daemon-reload both instances
#     are wanted by berth.target, start as berth@tpl@1.service / berth@tpl@2.service, each with its
#     own expanded values (%i in hostname and an environment value) and its own writable layer;
#   - an instance drop-in (tpl@2.toml.d/) changes instance 2 only (MemoryMax, a variable);
#   - stopping one instance leaves the other running; `berth list` / `berth status` show the
#     instances, never the template; `berth validate` checks the template;
#   - a [[socket]] pair named "a" and "b" gives the payload LISTEN_FDNAMES=a:b.
# A part of test-features.sh (sourced on its booted systemd; see there).
probe=$(cd "$build" && pwd)/tests/privileged/runtime/runtime-probe   # the host's / is the lower layer

t_ok "berth image import" it_in berth image import "$image_tar" --name busybox:tpl
# The payload says what it sees, then checks that no other instance wrote into its layer.
it_declare_container 'tpl@' <<'EOF'
[container]
image = "busybox:tpl"
hostname = "tplhost-%i"
environment = { WHO = "instance-%i", EXTRA = "none" }
command = ["sh", "-c", 'echo "who=$WHO host=$(hostname) extra=$EXTRA mark=$(cat /mark 2>/dev/null || echo none)"; echo %i > /mark; trap "exit 0" TERM; sleep 1000 & wait']
[resources]
memory_max = "64M"
[install]
default_instances = ["1", "2"]
EOF
it_in sh -c 'mkdir -p "/etc/berth/containers/tpl@2.toml.d" && printf "[resources]\nmemory_max = \"32M\"\n[container.environment]\nEXTRA = \"only-2\"\n" > "/etc/berth/containers/tpl@2.toml.d/50-mem.toml"'
t_ok "berth validate checks the template" it_in berth validate /etc/berth/containers/tpl@.toml
t_ok "systemctl daemon-reload (templates)" it_in systemctl daemon-reload
for i in 1 2; do
  t_ok "default instance $i is wanted by berth.target" \
    it_in test -L "/run/systemd/generator/berth.target.wants/berth@tpl@$i.service"
done
t_fails "the template is no unit of its own" it_in test -e "/run/systemd/generator/berth@tpl@.service"
t_ok "systemctl start berth@tpl@1 berth@tpl@2" it_in systemctl start berth@tpl@1.service berth@tpl@2.service
for i in 1 2; do
  t_ok "instance $i reported" t_wait 15 sh -c "$(declare -f it_in it_journal_of); IT_PID1=$IT_PID1; it_journal_of tpl@$i | grep -q '^who='"
done
t_like "instance 1 runs with its own values and a fresh layer" 'who=instance-1 host=tplhost-1 extra=none mark=none' \
  "$(it_journal_of tpl@1)"
t_like "instance 2 too, with its drop-in's variable" 'who=instance-2 host=tplhost-2 extra=only-2 mark=none' \
  "$(it_journal_of tpl@2)"
t_eq "instance 1 keeps the template's MemoryMax" 67108864 "$(it_unit_prop tpl@1 MemoryMax)"
t_eq "the instance drop-in changes instance 2 only" 33554432 "$(it_unit_prop tpl@2 MemoryMax)"
t_like "berth status tpl@1" 'running|active' "$(it_in berth status tpl@1 2>&1)"
list=$(it_in berth list 2>&1)
t_like "berth list shows instance 1" '(^|[[:space:]])tpl@1[[:space:]]' "$list"
t_like "berth list shows instance 2" '(^|[[:space:]])tpl@2[[:space:]]' "$list"
t_unlike "berth list does not show the template" '(^|[[:space:]])tpl@([[:space:]]|$)' "$list"
t_ok "systemctl stop berth@tpl@1" it_in systemctl stop berth@tpl@1.service
t_eq "stopping one instance leaves the other running" active "$(it_unit_prop tpl@2 ActiveState)"
t_eq "... and instance 1 is stopped" inactive "$(it_unit_prop tpl@1 ActiveState)"
# A restart of instance 1 finds its own mark in its own persistent layer, never instance 2's.
t_ok "systemctl start berth@tpl@1 again" it_in systemctl start berth@tpl@1.service
t_ok "instance 1 finds its own layer again" t_wait 15 sh -c "$(declare -f it_in it_journal_of); IT_PID1=$IT_PID1; it_journal_of tpl@1 | grep -q 'mark=1\$'"
it_in systemctl stop berth@tpl@1.service berth@tpl@2.service

# ---- named sockets ------------------------------------------------------------------------------
port=$((40000 + $$ % 10000))
# The probe (on the host's /, bound read-only) says its fds and LISTEN_* variables, answers on fd 3.
it_declare_container tplsock <<EOF
[[socket]]
name = "a"
listen = "127.0.0.1:$port"
[[socket]]
name = "b"
listen = "127.0.0.1:$((port + 1))"
[container]
command = ["/probe", "serve-listen"]
image = "busybox:tpl"
ephemeral = true
[[mount]]
target = "/probe"
source = "$probe"
type = "bind"
read_only = true
[network]
mode = "none"
[install]
wanted_by = []
EOF
t_ok "systemctl daemon-reload (named sockets)" it_in systemctl daemon-reload
t_like "one socket unit per name" "FileDescriptorName=b" "$(it_in systemctl cat 'berth@tplsock:2.socket' 2>&1)"
t_ok "systemctl start both socket units" it_in systemctl start berth@tplsock.socket 'berth@tplsock:2.socket'
t_eq "a connection to socket a is answered" served \
  "$(it_in python3 -c "import socket,sys; s=socket.create_connection(('127.0.0.1',$port),10); sys.stdout.write(s.recv(64).decode())")"
journal=$(it_journal_of tplsock)
t_like "the payload has both fds" 'LISTEN_FDS=2' "$journal"
t_like "LISTEN_FDNAMES carries the names in declaration order" 'LISTEN_FDNAMES=a:b' "$journal"
it_in systemctl stop berth@tplsock.service berth@tplsock.socket 'berth@tplsock:2.socket'
it_in sh -c 'rm -rf /etc/berth/containers/tpl@.toml /etc/berth/containers/tpl@2.toml.d /etc/berth/containers/tplsock.toml'
it_in systemctl daemon-reload
