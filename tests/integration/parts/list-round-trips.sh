# `berth list` asks systemd about every container's unit at once (issue #22): its waits on the bus
# (ppoll calls) do not grow by one round trip per property per container. Before, each container
# cost 14 synchronous property calls (1000 declarations: 14000 round trips to PID 1).
# The values are still right: a running container's main pid, restarts and memory limit as
# `systemctl show` says them.
# A part of test-features.sh (sourced on its booted systemd; see there).

lrt_declare() { # COUNT: lrt-1..lrt-COUNT, never started (an image nobody has: only listed)
  it_in sh -c 'rm -f /etc/berth/containers/lrt-[0-9]*.toml
    for i in $(seq 1 "$1"); do
      printf "[container]\nimage = \"lrt-absent:1\"\ncommand = [\"true\"]\n[install]\nwanted_by = []\n" \
        > /etc/berth/containers/lrt-$i.toml
    done' sh "$1"
  it_in systemctl daemon-reload
}
lrt_polls() { # ppoll/poll calls of one `berth list`
  it_in sh -c 'strace -f -qq -e trace=ppoll,poll -o /tmp/lrt.strace berth list >/dev/null 2>&1; grep -c poll /tmp/lrt.strace'
}

t_ok "berth image import (list-round-trips)" it_in berth image import "$image_tar" --name busybox:lrt
it_declare_container lrt-run <<'EOF2'
[container]
image = "busybox:lrt"
ephemeral = true
command = ["sh", "-c", "trap 'exit 0' TERM; sleep 100000 & wait"]
[resources]
memory_max = "64M"
[install]
wanted_by = []
EOF2
lrt_msgs() { # D-Bus messages one `berth list` sends (sd-bus writes each with one sendmsg)
  it_in sh -c 'strace -f -qq -e trace=sendmsg -o /tmp/lrt.msgs berth list >/dev/null 2>&1; grep -c sendmsg /tmp/lrt.msgs'
}
lrt_declare 2
t_ok "lrt-run starts" it_in systemctl start berth@lrt-run.service
few=$(lrt_polls) few_msgs=$(lrt_msgs)
lrt_declare 80
many=$(lrt_polls) many_msgs=$(lrt_msgs)
echo "# berth list: $few bus waits and $few_msgs messages with 3 containers, $many and $many_msgs with 81"
t_like "berth list waits on the bus less than 4 times per extra container ($few -> $many)" '^ok$' \
  "$([ $((many - few)) -lt $((4 * 78)) ] && echo ok || echo "$((many - few)) more")"
# lrt-1..80 are declared, never started and wanted by nothing: PID 1 has not loaded their units.
# Asking about each would make it load and collect every one (before: 2 messages per container;
# at 1000 declarations minutes of PID 1's CPU, bench/fleet-scale.sh): they are read from the disk.
t_like "berth list asks PID 1 nothing about the 78 extra unloaded units ($few_msgs -> $many_msgs messages)" '^ok$' \
  "$([ $((many_msgs - few_msgs)) -lt 78 ] && echo ok || echo "$((many_msgs - few_msgs)) more")"
json=$(it_in berth list --json)
t_eq "berth list shows all 81" 81 \
  "$(python3 -c 'import json,sys; print(sum(c["name"].startswith("lrt-") for c in json.load(sys.stdin)))' <<<"$json")"
lrt_field() { python3 -c 'import json,sys; print([c for c in json.load(sys.stdin) if c["name"] == sys.argv[1]][0][sys.argv[2]])' "$1" "$2" <<<"$json"; }
t_eq "lrt-run's main pid is systemd's" "$(it_unit_prop lrt-run MainPID)" "$(lrt_field lrt-run main_pid)"
t_eq "lrt-run's memory limit is systemd's" "$(it_unit_prop lrt-run MemoryMax)" "$(lrt_field lrt-run memory_max)"
t_eq "lrt-run is active (running)" "active running" "$(lrt_field lrt-run active_state) $(lrt_field lrt-run sub_state)"
t_eq "lrt-80 is loaded and inactive" "loaded inactive" "$(lrt_field lrt-80 load_state) $(lrt_field lrt-80 active_state)"
it_in sh -c 'printf "[container]\nimage = \"lrt-absent:1\"\ncommand = [\"true\"]\n" > /etc/berth/containers/lrt-new.toml'
t_like "a container declared after the last daemon-reload is not-found (no unit yet)" '^lrt-new +lrt-absent:1 +not-found' \
  "$(it_in berth list | grep '^lrt-new ')"
it_in systemctl stop berth@lrt-run.service
it_in sh -c 'rm -f /etc/berth/containers/lrt-*.toml'
it_in systemctl daemon-reload
