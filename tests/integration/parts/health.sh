# Health checks under a real systemd 252 (issue #18): one boot, four containers.
#   - notify = "healthy": a dependent container's payload starts only after the dependency's first
#     passing probe (journal timestamps), and a start period longer than TimeoutStartSec succeeds
#     (EXTEND_TIMEOUT_USEC);
#   - watchdog = true: a payload whose probe hangs is restarted by systemd's watchdog (NRestarts);
#   - `systemctl reload` runs reload_command inside the container;
#   - the journal holds exactly the transition lines, never one per probe.
# A part of test-features.sh (sourced on its booted systemd; see there).

t_ok "berth image import" it_in berth image import "$image_tar" --name busybox:health
# dep: ready after 6 s, with TimeoutStartSec=3s; probes every 200 ms within a 60 s start period.
it_declare_container dep <<'EOF'
[container]
image = "busybox:health"
ephemeral = true
notify = "healthy"
command = ["sh", "-c", "trap 'exit 0' TERM; sleep 6; touch /tmp/ready; while :; do sleep 0.2; done"]
[health]
command = ["test", "-e", "/tmp/ready"]
interval = "1s"
start_period = "60s"
start_interval = "200ms"
[service]
timeout_start = "3s"
[install]
wanted_by = []
EOF
it_declare_container app <<'EOF'
[container]
image = "busybox:health"
ephemeral = true
command = ["sh", "-c", "trap 'exit 0' TERM; echo app-started; while :; do sleep 0.2; done"]
[service]
requires = ["dep"]
[install]
wanted_by = []
EOF
# wd: its probe passes until the payload makes it hang (after 3 s); WatchdogSec = 1s x 2 + 1s.
it_declare_container wd <<'EOF'
[container]
image = "busybox:health"
ephemeral = true
command = ["sh", "-c", "trap 'exit 0' TERM; (sleep 3; touch /tmp/hang) & while :; do sleep 0.2; done"]
[health]
command = ["sh", "-c", "if [ -e /tmp/hang ]; then sleep 100; fi"]
interval = "1s"
retries = 2
timeout = "1s"
watchdog = true
[service]
restart = "on-watchdog"
[install]
wanted_by = []
EOF
it_declare_container rl <<'EOF'
[container]
image = "busybox:health"
ephemeral = true
command = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.2; done"]
[health]
command = ["true"]
interval = "1s"
reload_command = ["sh", "-c", "echo reloaded-$$ >> /tmp/reloads"]
[install]
wanted_by = []
EOF
t_ok "systemctl daemon-reload" it_in systemctl daemon-reload
t_like "wd: WatchdogSec= derived from interval x retries + timeout" 'WatchdogSec=3s' "$(it_in systemctl cat berth@wd.service)"
t_like "rl: ExecReload= runs the reload command in the container" 'ExecReload=.*berth exec --no-stdin rl -- sh -c' \
  "$(it_in systemctl cat berth@rl.service)"

start=$(date +%s)
t_ok "app (requires dep, notify = healthy) starts" it_in systemctl start berth@app.service
took=$(( $(date +%s) - start ))
t_eq "dep is active although it took longer than its TimeoutStartSec=3s" active "$(it_unit_prop dep ActiveState)"
echo "# systemctl start app took ${took}s (dep's payload is ready after 6 s)"
t_ok "the start waited for dep's first passing probe (>= 6 s)" test "$took" -ge 6
healthy_at=$(it_in journalctl -u berth@dep.service -o short-unix --no-pager | awk '/health: starting -> healthy/ {print $1; exit}')
app_at=$(it_in journalctl -u berth@app.service -o short-unix --no-pager | awk '/app-started/ {print $1; exit}')
echo "# dep healthy at $healthy_at, app's payload started at $app_at"
t_ok "app's payload started after dep's first passing probe" awk -v a="$app_at" -v h="$healthy_at" 'BEGIN { exit !(h != "" && a != "" && a > h) }'
t_like "dep's status text shows its health" 'healthy' "$(it_unit_prop dep StatusText)"
health_in_list() { it_in berth list --json 2>/dev/null | python3 -c 'import json, sys; print([c["health"] for c in json.load(sys.stdin) if c["name"] == sys.argv[1]][0])' "$1"; }
t_eq "berth list --json: dep is healthy" healthy "$(health_in_list dep)"
t_eq "berth list --json: app has no health check" - "$(health_in_list app)"

t_ok "wd starts" it_in systemctl start berth@wd.service
t_ok "wd: the watchdog restarts it once its probe hangs (NRestarts >= 1)" \
  t_wait 40 sh -c "$(declare -f it_in it_unit_prop); IT_PID1=$IT_PID1; [ \"\$(it_unit_prop wd NRestarts)\" -ge 1 ]"
t_like "wd was healthy before its probe hung" 'health: starting -> healthy' "$(it_journal_of wd)"
t_like "wd: the hung probe counted as failing (no WATCHDOG=1 since)" 'health: healthy -> unhealthy: the probe did not finish within its timeout|Watchdog timeout' "$(it_in journalctl -u berth@wd.service --no-pager -o cat)"
echo "# wd: NRestarts=$(it_unit_prop wd NRestarts), result of the last run: $(it_in journalctl -u berth@wd.service --no-pager -o cat | grep -m1 -i watchdog)"

t_ok "rl starts" it_in systemctl start berth@rl.service
t_ok "systemctl reload rl" it_in systemctl reload berth@rl.service
t_like "the reload command ran inside the container" 'reloaded-' "$(it_in berth exec --no-stdin rl -- cat /tmp/reloads 2>&1)"
t_eq "rl is still the same run (reloaded, not restarted)" 0 "$(it_unit_prop rl NRestarts)"

# dep ran ~15 probes by now: its journal has exactly its one transition.
sleep 2
t_eq "dep's journal has exactly one health line (the transition)" 1 "$(it_journal_of dep | grep -c 'health: ')"
t_eq "rl's journal has exactly one health line" 1 "$(it_journal_of rl | grep -c 'health: ')"
for n in app dep wd rl; do it_in systemctl stop berth@$n.service; done
