#!/bin/bash
# `berth NAME` builds only NAME's part of the command tree (src/berth/main.cpp, kCommands; issue
# #14: the whole tree cost every `berth run` ~400 kB of heap and its page faults). Checks:
#  - every command, listed or hidden, parses and answers --help exactly as with the whole tree
#    (BERTH_CLI_ALL_COMMANDS=1): a command mapped to the wrong register function would be unknown;
#  - unknown words, `help` and options still get the whole tree (suggestions, the list);
#  - `berth run` and `berth validate` do not build the whole tree: their heap stays under a bound
#    the whole tree exceeds (brk, traced by strace).
# Usage: cli-commands.sh BERTH_BINARY
set -uo pipefail
berth=$1
tmp=$(mktemp -d /tmp/berth-cli-commands-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failed=0
fail() { echo "FAIL: $*"; failed=1; }

BERTH_CLI_ALL_COMMANDS=1 "$berth" help >"$tmp/help" 2>&1 || fail "berth help (whole tree) failed"
mapfile -t commands < <(sed -n '/^Subcommands:/,$p' "$tmp/help" | awk 'NR > 1 && /^  [a-z]/ {print $1}')
[ "${#commands[@]}" -ge 25 ] || fail "berth help listed ${#commands[@]} commands: $(cat "$tmp/help")"
for c in "${commands[@]}" internal-teardown internal-health-probe; do
  "$berth" "$c" --help >"$tmp/one" 2>&1
  one=$?
  BERTH_CLI_ALL_COMMANDS=1 "$berth" "$c" --help >"$tmp/all" 2>&1
  all=$?
  if [ $one != $all ] || ! cmp -s "$tmp/one" "$tmp/all"; then
    fail "berth $c --help differs from the whole tree's (exit $one vs $all):"
    diff "$tmp/all" "$tmp/one" | head -5
  fi
done
echo "ok: ${#commands[@]} commands and 2 hidden ones answer as with the whole tree"

"$berth" imagez >"$tmp/o" 2>&1 && fail "an unknown command succeeded"
grep -q "did you mean 'berth image'" "$tmp/o" || fail "no suggestion for 'imagez': $(cat "$tmp/o")"
"$berth" help >"$tmp/o" 2>&1 || fail "berth help failed"
cmp -s "$tmp/o" "$tmp/help" || fail "berth help differs from the whole tree's"
"$berth" --version | grep -q '^berth ' || fail "berth --version"
echo "ok: unknown words, help and --version get the whole tree"

# The heap a command line costs: from the first brk(NULL) to the highest break set.
heap_kb() {
  strace -e trace=brk -o "$tmp/brk" "$@" >/dev/null 2>&1
  local base top=0 v
  base=$(sed -n 's/^brk(NULL) *= *\(0x[0-9a-f]*\)$/\1/p' "$tmp/brk" | head -1)
  for v in $(sed -n 's/^brk(0x[0-9a-f]*) *= *\(0x[0-9a-f]*\)$/\1/p' "$tmp/brk"); do
    ((v > top)) && top=$((v))
  done
  echo $((top > base ? (top - base) / 1024 : 0))
}
if ! command -v strace >/dev/null; then
  echo "SKIP: the heap bound needs strace (not installed here)"
else
  whole=$(BERTH_CLI_ALL_COMMANDS=1 heap_kb "$berth" run --help)
fi
if command -v strace >/dev/null && [ "$whole" -eq 0 ]; then
  # ASan's allocator maps its own arenas and never moves the break: the bound is checked in the
  # normal build (the main CI pass), not in the sanitizer build.
  echo "SKIP: this berth's allocator does not use brk (a sanitizer build): no heap bound to check"
elif command -v strace >/dev/null; then
  for c in run validate; do
    kb=$(heap_kb "$berth" "$c" --help)
    # The whole tree takes ~400 kB; one command's part well under half of it.
    if [ "$kb" -lt $((whole / 2)) ]; then
      echo "ok: berth $c --help: $kb kB of heap (the whole tree: $whole kB)"
    else
      fail "berth $c --help used $kb kB of heap (the whole tree: $whole kB)"
    fi
  done
fi
exit $failed
