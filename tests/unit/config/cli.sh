#!/bin/bash
# berth validate / cat / generate / plan as a user runs them, on temporary search paths.
# Usage: cli.sh BERTH_BINARY [BERTHD_BINARY]
set -uo pipefail
berth=$1
berthd=${2:-}
case $berth in /*) ;; *) berth=$PWD/$berth ;; esac  # the tests below cd elsewhere
tmp=$(mktemp -d /tmp/berth-cli-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export BERTH_CONTAINERS_PATH=$tmp/etc:$tmp/usr
mkdir -p "$tmp/etc" "$tmp/usr/web.toml.d"
failed=0
check() { # check DESCRIPTION EXPECTED_RC ACTUAL_RC
  if [ "$2" = "$3" ]; then echo "ok: $1"; else echo "FAIL: $1 (exit $3, expected $2)"; failed=1; fi
}
contains() { # contains DESCRIPTION FILE TEXT
  if grep -qF -- "$3" "$2"; then echo "ok: $1"; else echo "FAIL: $1: no '$3' in:"; cat "$2"; failed=1; fi
}

printf '[container]\nimage = "nginx"\n[service]\nrequires = ["db"]\n' >"$tmp/etc/web.toml"
printf '[resources]\nmemory_max = "1G"\n' >"$tmp/usr/web.toml.d/10-mem.toml"
printf '[container]\nrootfs = "/srv/db"\ncommand = ["/bin/db"]\n' >"$tmp/usr/db.toml"

"$berth" validate >"$tmp/o" 2>&1; check "validate accepts valid declarations" 0 $?
contains "validate names each valid declaration" "$tmp/o" "web: ok ($tmp/etc/web.toml)"

"$berth" cat web >"$tmp/o" 2>&1; check "cat prints the merged declaration" 0 $?
contains "cat shows the drop-in's value" "$tmp/o" 'memory_max = "1G"'
"$berth" validate "$tmp/o" >/dev/null 2>&1 || true
cp "$tmp/o" "$tmp/web-copy.toml"
"$berth" validate "$tmp/web-copy.toml" >/dev/null 2>&1; check "cat's output validates again" 0 $?
"$berth" cat nosuch >"$tmp/o" 2>&1; check "cat of an undeclared container fails" 1 $?

"$berth" generate --output "$tmp/gen" --bindir /usr/bin >"$tmp/o" 2>&1; check "generate writes units" 0 $?
[ -f "$tmp/gen/berth@web.service" ] && [ -L "$tmp/gen/berth.target.wants/berth@db.service" ]; check "generate writes the unit and its link" 0 $?

"$berth" plan --output "$tmp/gen" --bindir /usr/bin >"$tmp/o" 2>&1; check "plan: nothing changes right after generate" 0 $?

printf '[resources]\nmemory_max = "2G"\n' >"$tmp/usr/web.toml.d/10-mem.toml"
printf '[container]\nimage = "redis"\n[install]\nwanted_by = ["multi-user.target"]\n' >"$tmp/etc/cache.toml"
rm "$tmp/usr/db.toml"
printf '[container]\nrootfs = "/srv/db2"\ncommand = ["/bin/db"]\n' >"$tmp/etc/db2.toml"
sed -i 's/"db"/"db2"/' "$tmp/etc/web.toml"
"$berth" plan --output "$tmp/gen" --bindir /usr/bin >"$tmp/o" 2>&1; check "plan: changes exit 2" 2 $?
contains "plan lists a new unit" "$tmp/o" "new: berth@cache.service"
contains "plan lists a new install link" "$tmp/o" "new: multi-user.target.wants/berth@cache.service"
contains "plan lists a changed unit" "$tmp/o" "changed: berth@web.service"
contains "plan shows a unified diff" "$tmp/o" "+MemoryMax=2G"
contains "plan shows the old line" "$tmp/o" "-MemoryMax=1G"
contains "plan lists a removed unit" "$tmp/o" "removed: berth@db.service"

printf '[container]\nimage = "x"\nbogus = 1\n' >"$tmp/etc/bad.toml"
"$berth" validate >"$tmp/o" 2>&1; check "validate fails on an invalid declaration" 1 $?
contains "validate prints file:line:col" "$tmp/o" "$tmp/etc/bad.toml:3:1: unknown key 'bogus' in [container]"
"$berth" validate --json >"$tmp/o" 2>/dev/null; check "validate --json fails too" 1 $?
python3 - "$tmp/o" "$tmp/etc/bad.toml" <<'PY' || failed=1
import json, sys
entries = {e["name"]: e for e in json.load(open(sys.argv[1]))}
bad = entries["bad"]
assert not bad["valid"], bad
err = bad["errors"][0]
assert err["file"] == sys.argv[2] and err["line"] == 3 and err["column"] == 1, err
assert entries["web"]["valid"] and entries["web"]["errors"] == [], entries["web"]
print("ok: validate --json gives file, line, column per error")
PY
"$berth" validate "$tmp/etc/web.toml" >"$tmp/o" 2>&1; check "validate FILE checks only that file" 0 $?
"$berth" generate --output "$tmp/gen2" >"$tmp/o" 2>&1; check "generate exits 1 when a declaration is invalid" 1 $?
[ -f "$tmp/gen2/berth@bad.service" ] && [ -f "$tmp/gen2/berth@web.service" ]; check "the others are still generated" 0 $?

# Issue #13 (8): a FIFO or a symlink to /dev/zero in the search path (or given by name) is an
# error of that declaration, and validate finishes (it used to hang: the FIFO's open, /dev/zero's
# endless read).
mkfifo "$tmp/etc/fifo.toml"; ln -s /dev/zero "$tmp/etc/zero.toml"
timeout -k 1 5 "$berth" validate >"$tmp/o" 2>&1; check "validate finishes with a FIFO and /dev/zero declared" 1 $?
contains "validate names the FIFO" "$tmp/o" "$tmp/etc/fifo.toml:1:1: the file is a FIFO, expected a regular file"
contains "validate names /dev/zero" "$tmp/o" "$tmp/etc/zero.toml:1:1: the file is a character device, expected a regular file"
timeout -k 1 5 "$berth" validate "$tmp/etc/fifo.toml" >"$tmp/o" 2>&1; check "validate FIFO.toml finishes and fails" 1 $?
timeout -k 1 5 "$berth" validate "$tmp/etc/zero.toml" >"$tmp/o" 2>&1; check "validate ZERO.toml finishes and fails" 1 $?
rm -f "$tmp/etc/fifo.toml" "$tmp/etc/zero.toml"

# Subcommands: an unknown one is named, with the closest real one; `help` is help; usage errors
# exit 1 as berth(1) says (not CLI11's 106/109).
"$berth" foo >"$tmp/o" 2>&1; check "an unknown command exits 1" 1 $?
contains "an unknown command is named" "$tmp/o" "unknown command 'foo'"
"$berth" ps >"$tmp/o" 2>&1; check "berth ps exits 1" 1 $?
contains "berth ps suggests list" "$tmp/o" "did you mean 'berth list'?"
"$berth" valdate >"$tmp/o" 2>&1; check "a typo exits 1" 1 $?
contains "a typo suggests the closest command" "$tmp/o" "did you mean 'berth validate'?"
"$berth" >"$tmp/o" 2>&1; check "no command exits 1" 1 $?
contains "no command shows the commands" "$tmp/o" "validate"
"$berth" help >"$tmp/o" 2>&1; check "berth help exits 0" 0 $?
contains "berth help lists the commands" "$tmp/o" "Subcommands:"
if grep -q "A subcommand is required" "$tmp/o"; then echo "FAIL: berth help says a subcommand is required"; failed=1; fi
"$berth" help image >"$tmp/o" 2>&1; check "berth help image exits 0" 0 $?
contains "berth help image shows image's subcommands" "$tmp/o" "export"
"$berth" list --bogus-option >"$tmp/o" 2>&1; check "an unknown option exits 1" 1 $?
"$berth" cat >"$tmp/o" 2>&1; check "a missing argument exits 1" 1 $?

# Every command that takes a container NAME also takes a path to NAME.toml, as `berth run` does.
mkdir -p "$tmp/cwd" && cp "$tmp/etc/web.toml" "$tmp/cwd/x.toml"
(cd "$tmp/cwd" && "$berth" cat ./x.toml) >"$tmp/o" 2>&1; check "cat ./x.toml" 0 $?
contains "cat ./x.toml prints it" "$tmp/o" 'image = "nginx"'
(cd "$tmp/cwd" && "$berth" cat x.toml) >"$tmp/o" 2>&1; check "cat x.toml" 0 $?
"$berth" cat "$tmp/etc/web.toml" >"$tmp/o" 2>&1; check "cat /abs/web.toml" 0 $?
contains "cat of a path merges its drop-ins from beside it only" "$tmp/o" 'image = "nginx"'
"$berth" validate web >"$tmp/o" 2>&1; check "validate NAME" 0 $?
contains "validate NAME finds it in the search path" "$tmp/o" "web: ok ($tmp/etc/web.toml)"
(cd "$tmp/cwd" && "$berth" validate ./x.toml) >"$tmp/o" 2>&1; check "validate ./x.toml" 0 $?
"$berth" validate nosuch >"$tmp/o" 2>&1; check "validate of an undeclared NAME fails" 1 $?
"$berth" logs -D "$tmp/nojournal" "$tmp/etc/web.toml" >"$tmp/o" 2>&1
if grep -q "invalid container name" "$tmp/o"; then echo "FAIL: logs PATH: $(cat "$tmp/o")"; failed=1; else echo "ok: logs takes a path"; fi

# issue #15: validate's warnings (exit 0), list without systemd, tables sized to content, non-root.
nobus=unix:path=$tmp/no-bus
printf '[container]\nimage = "x"\n[service]\nrequires = ["nosuchdb"]\n[resources]\nlimits = { nofile = 99999999999 }\n' >"$tmp/cwd/warn.toml"
DBUS_SYSTEM_BUS_ADDRESS=$nobus "$berth" validate "$tmp/cwd/warn.toml" >"$tmp/o" 2>&1; check "validate passes a declaration with warnings" 0 $?
contains "validate warns about an undeclared requires target" "$tmp/o" "warn: warning: service.requires: container 'nosuchdb' is not declared in the search path"
contains "validate names the nofile limit" "$tmp/o" "warn: warning: [resources] limits.nofile = 99999999999 is above the kernel's limit on open files, fs.nr_open = $(cat /proc/sys/fs/nr_open)"
long=$(printf 'n%.0s' $(seq 64))
tag=registry.example.com/team/some-service-with-a-long-name:2024.12.05-build.1234
printf '[container]\nimage = "%s"\n' "$tag" >"$tmp/etc/$long.toml"
DBUS_SYSTEM_BUS_ADDRESS=$nobus BERTH_RUN_DIR=$tmp/run "$berth" list >"$tmp/o" 2>"$tmp/e"; check "list works without systemd" 0 $?
contains "list says which view it shows" "$tmp/e" "systemd not reachable"
contains "list says it shows berth's own state" "$tmp/e" "showing berth's own runtime state"
contains "list shows a declared container that runs nowhere" "$tmp/o" "not running"
python3 - "$tmp/o" "$long" "$tag" <<'PY' || failed=1
import sys
lines = open(sys.argv[1]).read().splitlines()
header = lines[0]
col = {h: header.index(h) for h in ("NAME", "IMAGE", "STATE", "SINCE", "MAIN PID", "ADDRESS")}
row = next(l for l in lines if l.startswith(sys.argv[2] + " "))
assert row[col["IMAGE"]:].startswith(sys.argv[3] + " "), (header, row)
assert row[col["STATE"]:].startswith("not running"), (header, row)
for l in lines[1:]:
    assert l[col["IMAGE"] - 2:col["IMAGE"]] == "  " and l[col["IMAGE"]] != " ", (header, l)
print("ok: list columns fit a 64-character name and a long image tag")
PY
rm "$tmp/etc/$long.toml"
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
  as_nobody() { setpriv --reuid 65534 --regid 65534 --clear-groups "$@"; }
else
  as_nobody() { "$@"; }  # not root: already another user
fi
if [ "$(id -u)" != 0 ] || command -v setpriv >/dev/null; then
  chmod 755 "$tmp"; chmod -R a+rX "$tmp/etc" "$tmp/usr"
  as_nobody "$berth" run "$tmp/etc/db2.toml" >"$tmp/o" 2>&1; check "run as uid 65534 exits 125" 125 $?
  contains "run as another user says it needs root" "$tmp/o" "berth run needs root: a container is made of namespaces, cgroups and mounts"
  if grep -q "Permission denied" "$tmp/o"; then echo "FAIL: run as uid 65534 still says Permission denied"; failed=1; fi
  as_nobody "$berth" exec db2 -- true >"$tmp/o" 2>&1; check "exec as uid 65534 exits 126" 126 $?
  contains "exec as another user says it needs root" "$tmp/o" "berth exec needs root"
fi

# berth(1) documents every subcommand that `berth help` lists.
man1=$(dirname "$0")/../../../man/berth.1
if [ -f "$man1" ]; then
  "$berth" help >"$tmp/help" 2>&1
  sed -e 's/\\f[BIRP]//g' -e 's/\\-/-/g' -e 's/"//g' "$man1" >"$tmp/man1"
  n=0
  for sub in $(sed -n '/^Subcommands:/,$p' "$tmp/help" | awk 'NR > 1 && /^  [a-z]/ {print $1}'); do
    n=$((n + 1))
    if grep -qE "(berth |\|)$sub( |\||$)" "$tmp/man1"; then echo "ok: berth(1) documents $sub"; else echo "FAIL: berth(1) does not document 'berth $sub'"; failed=1; fi
  done
  [ "$n" -ge 15 ] || { echo "FAIL: only $n subcommands found in berth help"; cat "$tmp/help"; failed=1; }
else
  echo "FAIL: no $man1"; failed=1
fi

# berthd --help lists every option berthd(8) documents under OPTIONS.
man8=$(dirname "$0")/../../../man/berthd.8
if [ -n "$berthd" ]; then
  "$berthd" --help >"$tmp/help8" 2>&1
  n=0
  for opt in $(sed -n '/^\.SH OPTIONS/,/^\.SH /p' "$man8" | sed -e 's/\\-/-/g' | grep -oE '^\.B[IR]? --[a-z-]+' | awk '{print $2}'); do
    n=$((n + 1))
    if grep -qE -- "^ +$opt( |$)" "$tmp/help8"; then echo "ok: berthd --help lists $opt"; else echo "FAIL: berthd --help omits $opt (berthd(8) documents it)"; failed=1; fi
  done
  [ "$n" -ge 5 ] || { echo "FAIL: only $n options found in berthd(8)'s OPTIONS"; failed=1; }
fi
exit $failed
