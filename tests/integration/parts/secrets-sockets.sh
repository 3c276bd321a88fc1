# Secrets as systemd credentials and socket activation under a real systemd 252 (issue #19), on
# one booted instance:
#   - an encrypted credential (`systemd-creds encrypt`, host key, made inside the instance)
#     reaches the payload as a file with its owner and mode and as a variable when asked, and its
#     value is nowhere else: unit files, `systemctl show`, berth's outputs, the journal, /run/berth,
#     the store (the persistent writable layer a commit would diff), the supervisor's environment;
#   - a missing and an undecryptable credential fail the start with systemd's reason;
#   - a mode = "none" container with a [[socket]] on 127.0.0.1:PORT does not run until the first
#     connection, answers it, and starts again for the next one after a stop; a unix socket too;
#     the payload has fds 0-2 and its listening socket only.
# A part of test-features.sh (sourced on its booted systemd; see there).
probe=$(cd "$build" && pwd)/tests/privileged/runtime/runtime-probe   # the host's / is the lower layer

t_ok "berth image import" it_in berth image import "$image_tar" --name busybox:ss

# ---- secrets ------------------------------------------------------------------------------------
value="it-secret-$$-$RANDOM$RANDOM"
want=$(printf %s "$value" | sha256sum | cut -d' ' -f1)
t_ok "systemd-creds encrypt with the host key" \
  it_in sh -c 'mkdir -p /etc/berth/creds && printf %s "$1" | systemd-creds encrypt --with-key=host --name=db - /etc/berth/creds/db.cred' sh "$value"
it_in sh -c 'echo garbage > /etc/berth/creds/bad.cred'
# The payload prints digests only: the journal must not hold the value.
it_declare_container sec <<'EOF'
[container]
image = "busybox:ss"
user = "app"
command = ["sh", "-c", 'echo "stat $(stat -c "%u %g %a" /run/secrets/db)"; echo "file $(sha256sum < /run/secrets/db | cut -d" " -f1)"; printf %s "$DB_PASSWORD" | sha256sum | cut -d" " -f1 | sed "s/^/env /"; echo "dir $CREDENTIALS_DIRECTORY"; trap "exit 0" TERM; sleep 1000 & wait']
[[secret]]
name = "db"
source = "/etc/berth/creds/db.cred"
encrypted = true
environment = "DB_PASSWORD"
[install]
wanted_by = []
EOF
for bad in missing bad; do
  it_declare_container sec$bad <<EOF
[container]
image = "busybox:ss"
command = ["true"]
[[secret]]
name = "db"
source = "/etc/berth/creds/$bad.cred"
encrypted = true
[install]
wanted_by = []
EOF
done
t_ok "systemctl daemon-reload" it_in systemctl daemon-reload
t_like "the unit loads the encrypted credential" 'LoadCredentialEncrypted=db:/etc/berth/creds/db.cred' \
  "$(it_in systemctl cat berth@sec.service 2>&1)"
# systemd builds /run/credentials/UNIT in the starting process's private mount namespace and
# relies on propagation to show it to the unit; the harness's chroot root is not a shared mount
# (systemd's make-rshared of / fails there), so make /run/credentials a shared mount of its own.
it_in sh -c 'mkdir -p /run/credentials; mountpoint -q /run/credentials || mount --bind /run/credentials /run/credentials; mount --make-rshared /run/credentials'
# Can this systemd deliver credentials at all? It sets up /run/credentials/UNIT in a private
# mount namespace and relies on propagation to show it; under the harness's chroot root (not a
# shared mount) the directory stays empty, for any unit.
it_in sh -c 'echo probe > /etc/berth/creds/probe; mkdir -p /etc/systemd/system; printf "[Service]\nType=oneshot\nLoadCredential=p:/etc/berth/creds/probe\nExecStart=/bin/cat \${CREDENTIALS_DIRECTORY}/p\n" > /etc/systemd/system/berth-it-cred-probe.service'
it_in systemctl daemon-reload
if ! it_in systemctl start berth-it-cred-probe.service; then
  for c in "systemctl start berth@sec" "the payload reported" "the secret is a file of the payload's user, mode 0400" \
           "the file holds the value" "the variable holds the value" "CREDENTIALS_DIRECTORY is /run/secrets"; do
    t_skip "$c" "this systemd delivers no credential to any unit (credentials mount does not propagate under the harness's chroot root)"
  done
  it_in journalctl -u berth-it-cred-probe.service --no-pager -o cat | sed 's/^/# cred probe: /'
else
t_ok "systemctl start berth@sec" it_in systemctl start berth@sec.service
t_ok "the payload reported" t_wait 15 sh -c "$(declare -f it_in it_journal_of); IT_PID1=$IT_PID1; it_journal_of sec | grep -q '^dir '"
journal=$(it_journal_of sec)
t_like "the secret is a file of the payload's user, mode 0400" 'stat 1000 1000 400' "$journal"
t_like "the file holds the value" "file $want" "$journal"
t_like "the variable holds the value" "env $want" "$journal"
t_like "CREDENTIALS_DIRECTORY is /run/secrets" 'dir /run/secrets' "$journal"
fi
mainpid=$(it_unit_prop sec MainPID)
leaks() { # where the value must not be
  it_in sh -c 'cat /run/systemd/generator/*.service /run/systemd/generator/berth/* 2>/dev/null'
  it_in systemctl cat berth@sec.service
  it_in systemctl show berth@sec.service
  it_in berth cat sec; it_in berth status sec; it_in berth list; it_in berth plan
  it_in journalctl --no-pager -o verbose
  it_in grep -rasF "$value" /run/berth /var/lib/berth /etc/berth
  it_in cat /proc/$mainpid/environ
}
t_eq "the value is in no unit, output, journal, state, store or supervisor environment" "" \
  "$(leaks 2>&1 | grep -F "$value")"
it_in berth stop sec >/dev/null 2>&1
t_eq "nor after the stop (the persistent layer, the journal)" "" "$(leaks 2>&1 | grep -F "$value")"
for bad in missing bad; do
  t_fails "a $bad credential fails the start" it_in systemctl start berth@sec$bad.service
  t_like "systemd says why ($bad)" 'credential|Credential|243/CREDENTIALS' \
    "$(it_in systemctl status --no-pager -n 20 berth@sec$bad.service 2>&1)"
done

# ---- socket activation --------------------------------------------------------------------------
port=$((20000 + $$ % 20000))
for variant in tcp unix; do
  listen=127.0.0.1:$port; [ $variant = unix ] && listen=/run/berth-it-$$.sock
  it_declare_container sock$variant <<EOF
[container]
image = "busybox:ss"
ephemeral = true
command = ["/probe", "serve-listen"]
[network]
mode = "none"
[[mount]]
type = "bind"
source = "$probe"
target = "/probe"
read_only = true
[[socket]]
listen = "$listen"
EOF
done
t_ok "systemctl daemon-reload (sockets)" it_in systemctl daemon-reload
t_like "the socket unit listens" "ListenStream=127.0.0.1:$port" "$(it_in systemctl cat berth@socktcp.socket 2>&1)"
t_ok "the socket is installed in berth.target instead of the service" \
  it_in test -L /run/systemd/generator/berth.target.wants/berth@socktcp.socket
connect() { # VARIANT: one connection, what it answered
  if [ "$1" = tcp ]; then
    it_in python3 -c "import socket,sys; s=socket.create_connection(('127.0.0.1',$port),10); sys.stdout.write(s.recv(64).decode())"
  else
    it_in python3 -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect('/run/berth-it-$$.sock'); sys.stdout.write(s.recv(64).decode())"
  fi
}
for variant in tcp unix; do
  t_ok "$variant: systemctl start berth@sock$variant.socket" it_in systemctl start berth@sock$variant.socket
  t_eq "$variant: the container does not run before the first connection" inactive "$(it_unit_prop sock$variant ActiveState)"
  t_eq "$variant: the first connection starts it and is answered" served "$(connect $variant)"
  t_ok "$variant: systemctl stop berth@sock$variant.service" it_in systemctl stop berth@sock$variant.service
  t_eq "$variant: after a stop the next connection starts it again" served "$(connect $variant)"
  journal=$(it_journal_of sock$variant)
  t_like "$variant: the payload has fds 0-2 and its socket only" 'fds=0,1,2,3' "$journal"
  t_unlike "$variant: ... and no other" 'fds=0,1,2,3,' "$journal"
  t_like "$variant: LISTEN_FDS and LISTEN_PID as the payload sees itself" 'LISTEN_FDS=1.LISTEN_PID=1.' "$(echo $journal | tr ' ' .)"
done

