// Precompiled for every source of the `berth` executable (meson cpp_pch): CLI11 and nlohmann/json
// are header-only and re-parsed by each of the ~25 cmd-*.cpp files; precompiled, a file's compile
// takes ~28% less CPU under the sanitizer build and ~11% less at -O2 (CI time, measured with g++ 12).
// Not fmt nor toml++: linked-in-fmt.cpp and linked-in-toml.cpp include their implementations
// (TOML_IMPLEMENTATION), which must come first in those files.
#include <CLI/CLI.hpp>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>
