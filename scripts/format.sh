#!/bin/bash
# Formats every C++ source and header with .clang-format (clang-format-14, as CI checks it):
# tracked files and new ones git does not ignore (a new file is checked by CI too).
set -euo pipefail
cd "$(dirname "$0")/.."
formatter=$(command -v clang-format-14 || command -v clang-format)
git ls-files -z --cached --others --exclude-standard -- 'src/*.cpp' 'src/*.h' 'tests/*.cpp' 'tests/*.h' 'bench/*.cpp' 'bench/*.h' |
    xargs -0 -r "$formatter" -i
