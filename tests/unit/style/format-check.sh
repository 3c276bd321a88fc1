#!/bin/bash
# Every C++ source and header is formatted by the project's .clang-format (Debian 12's
# clang-format-14): a change that is not formatted fails here, in CI, rather than adding to a
# backlog that one day costs thousands of lines of noise. Fix with scripts/format.sh.
set -euo pipefail
root=$1
cd "$root"
formatter=$(command -v clang-format-14 || command -v clang-format || true)
[ -n "$formatter" ] || { echo "format-check: clang-format-14 is missing (scripts/install-deps.sh installs it)" >&2; exit 1; }
mapfile -t files < <(git ls-files --cached --others --exclude-standard -- 'src/*.cpp' 'src/*.h' 'tests/*.cpp' 'tests/*.h' 'bench/*.cpp' 'bench/*.h' 2>/dev/null ||
                     find src tests bench -name '*.cpp' -o -name '*.h')
[ ${#files[@]} -gt 0 ] || { echo "format-check: no sources found under $root" >&2; exit 1; }
# One run over all files; its diagnostics ("FILE:LINE:COL: error: code should be clang-formatted")
# name the culprits.
report=$("$formatter" --dry-run --Werror "${files[@]}" 2>&1) && { echo "format-check: ${#files[@]} files formatted"; exit 0; }
mapfile -t bad < <(printf '%s\n' "$report" | sed -n 's/^\([^:]*\):[0-9]*:[0-9]*: error: .*/\1/p' | sort -u)
[ ${#bad[@]} -gt 0 ] || { printf '%s\n' "$report" >&2; exit 1; }
if [ ${#bad[@]} -gt 0 ]; then
    echo "format-check: ${#bad[@]} of ${#files[@]} files are not formatted (run scripts/format.sh):" >&2
    printf '  %s\n' "${bad[@]}" >&2
    exit 1
fi
echo "format-check: ${#files[@]} files formatted"
