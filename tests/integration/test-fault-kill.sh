#!/bin/bash
# Fault under a real systemd 252 (issue #7): the unit's runtime (MainPID of berth@NAME, the `berth
# run --systemd` supervisor) is killed with SIGKILL while the payload runs (plus a background child
# of the payload). systemd's KillMode=mixed must clean the rest of the unit's cgroup (no process
# left), nothing of the container stays mounted, and the next `systemctl start` works (for a
# persistent and an ephemeral snapshot, whose stale snapshots were never released).
# Usage: test-fault-kill.sh BUILD_DIR       (TAP on stdout; meson suite 'integration')
. "$(dirname "$0")/scenario.sh"   # harness, TAP, systemd booted: $image_tar

# The container's mounts (rootfs, /proc, volumes ...) live in the payload's own mount namespace,
# which must die with its processes; anything the runtime mounted in the systemd instance's
# namespace would stay: count all of that namespace's mounts, and any nsfs bind mount pinning a
# namespace.
all_mounts() { it_in cat /proc/1/mountinfo | grep -c . ; }
nsfs_mounts() { it_in cat /proc/1/mountinfo | grep -c ' - nsfs ' ; }

t_ok "berth image import (berthd bus-activated)" it_in berth image import "$image_tar" --name busybox:fault
# The payload leaves a background child (a second process in the payload cgroup) and ticks.
ticker='trap "echo bye; exit 0" TERM; sleep 1000 & if [ -e /var/mark ]; then echo "mark: present"; else echo "mark: absent"; fi; echo written > /var/mark; i=0; while :; do i=$((i+1)); echo "tick $i"; sleep 0.2; done'
for n in victim victimeph; do
  eph=false; [ $n = victimeph ] && eph=true
  it_declare_container $n <<EOF
[container]
image = "busybox:fault"
ephemeral = $eph
command = ["sh", "-c", '$ticker']
[install]
wanted_by = []
EOF
done
t_ok "systemctl daemon-reload" it_in systemctl daemon-reload
t_like "the unit uses KillMode=mixed" 'KillMode=mixed' "$(it_in systemctl cat berth@victim.service 2>&1)"

for n in victim victimeph; do
  mounts_before=$(all_mounts); nsfs_before=$(nsfs_mounts)
  t_ok "$n: systemctl start" it_in systemctl start berth@$n.service
  t_ok "$n: the payload ticks" t_wait 15 sh -c "$(declare -f it_in it_journal_of); IT_PID1=$IT_PID1; it_journal_of $n | grep -q 'tick 2'"
  mainpid=$(it_unit_prop $n MainPID)
  t_like "$n: has a main pid" '^[1-9][0-9]*$' "$mainpid"
  procs=$(it_unit_procs $n | wc -w)
  echo "# $n: $procs processes in the unit's cgroup before the kill (main pid $mainpid)"
  t_ok "$n: supervisor, payload and its child all run (>= 3 processes)" test "$procs" -ge 3
  payload=$(it_in pgrep -f -n '^sleep 1000')
  payload_mnt=$(it_in readlink /proc/$payload/ns/mnt)
  echo "# $n: the payload's mount namespace $payload_mnt holds $(it_in cat /proc/$payload/mountinfo | grep -c .) mounts; the systemd instance's $(all_mounts) (before start $mounts_before)"
  t_ok "$n: SIGKILL to the runtime (MainPID)" it_in kill -KILL "$mainpid"
  t_ok "$n: the unit leaves the active state" t_wait 30 sh -c "$(declare -f it_in it_unit_prop); IT_PID1=$IT_PID1; s=\$(it_unit_prop $n ActiveState); [ \"\$s\" = failed ] || [ \"\$s\" = inactive ]"
  echo "# $n: state after the kill: $(it_unit_prop $n ActiveState) ($(it_unit_prop $n Result))"
  t_ok "$n: KillMode cleaned the unit's cgroup: no process left" t_wait 10 sh -c "[ -z \"\$($(declare -f it_in it_unit_procs); IT_PID1=$IT_PID1; it_unit_procs $n)\" ]"
  left=$(it_unit_procs $n); [ -n "$left" ] && it_in ps -o pid,args -p "$(echo $left | tr ' ' ,)" | sed 's/^/# left: /'
  t_eq "$n: the systemd instance has the mounts it had before the start" "$mounts_before" "$(all_mounts)"
  t_eq "$n: no namespace pinned by an nsfs mount" "$nsfs_before" "$(nsfs_mounts)"
  t_eq "$n: no process is left in the payload's mount namespace" "" \
    "$(it_in sh -c 'for p in /proc/[0-9]*; do [ "$(readlink $p/ns/mnt)" = "$1" ] && echo ${p#/proc/}; done; true' sh "$payload_mnt")"
  it_in systemctl reset-failed berth@$n.service 2>/dev/null
  t_ok "$n: the next systemctl start works" it_in systemctl start berth@$n.service
  t_eq "$n: active again" active "$(it_unit_prop $n ActiveState)"
  t_ok "$n: the restarted payload ticks" t_wait 15 sh -c "$(declare -f it_in it_journal_of); IT_PID1=$IT_PID1; [ \$(it_journal_of $n | grep -c 'tick 2\$') -ge 2 ]"
  t_ok "$n: berth stop" it_in berth stop $n
  t_like "$n: the payload ended by SIGTERM this time" 'bye' "$(it_journal_of $n)"
  t_eq "$n: no process left after the stop" "" "$(it_unit_procs $n)"
  t_eq "$n: the systemd instance has the mounts it had before, after the stop" "$mounts_before" "$(all_mounts)"
done
marks=$(it_journal_of victim | grep -E '^mark: ' | tr '\n' ' ')
t_eq "the persistent snapshot survived the killed runtime (same tree on the next start)" "mark: absent mark: present " "$marks"
marks=$(it_journal_of victimeph | grep -E '^mark: ' | tr '\n' ' ')
t_eq "the ephemeral container starts fresh after the killed runtime" "mark: absent mark: absent " "$marks"
# fsck opens the store itself: berthd (bus-activated) must let go of it first.
it_in systemctl stop berthd.service
out=$(it_in berth fsck 2>&1); rc=$?
echo "$out" | sed 's/^/# fsck: /'
# The ephemeral snapshot left by the kill was replaced on the next start and removed at stop;
# the persistent one is referenced: the store must be clean (0) — garbage (2) is a leak.
t_eq "berth fsck is clean after the kills" 0 "$rc"

t_done
