#!/bin/bash
# berth validate / cat / generate / plan as a user runs them, on temporary search paths.
# Usage: cli.sh BERTH_BINARY
set -uo pipefail
berth=$1
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
printf '[container]\nrootfs = "/srv/db"\n' >"$tmp/usr/db.toml"

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
printf '[container]\nrootfs = "/srv/db2"\n' >"$tmp/etc/db2.toml"
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
exit $failed
