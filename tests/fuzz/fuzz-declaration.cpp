// libFuzzer target for the declaration parser and validator.
// Input: a main file, optionally followed by drop-ins, separated by lines "#---". Beyond "no
// crash, no leak, no UB", it checks the round-trip property: a declaration that validates must
// render to canonical TOML that validates again to the same settings and the same text, and
// must render to a unit.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/unit.h"

using namespace berth::config;

namespace {

Declaration settings(Declaration d) {
    d.source_path.clear();
    d.dropin_paths.clear();
    d.regions.clear();
    for (auto& m : d.mounts) m.where = {};
    return d;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size > 64 * 1024) return 0;
    std::string input(reinterpret_cast<const char*>(data), size);
    std::vector<SourceText> parts;
    size_t start = 0;
    for (;;) {
        size_t sep = input.find("\n#---\n", start);
        parts.push_back(SourceText{"in-" + std::to_string(parts.size()) + ".toml",
                                   input.substr(start, sep == std::string::npos ? sep : sep - start)});
        if (sep == std::string::npos || parts.size() == 8) break;
        start = sep + 6;
    }
    SourceText main = parts.front();
    std::vector<SourceText> dropins(parts.begin() + 1, parts.end());

    auto d = parse_declaration("fuzz", main, dropins);
    if (!d) {
        if (d.error().what().empty()) std::abort();  // every rejection must say why
        return 0;
    }
    std::string canonical = to_toml(*d);
    auto again = parse_declaration("fuzz", SourceText{"canonical.toml", canonical});
    if (!again) {  // canonical TOML must validate
        std::fprintf(stderr, "canonical TOML does not validate: %s\n%s\n", again.error().what().c_str(),
                     canonical.c_str());
        std::abort();
    }
    if (!(settings(*again) == settings(*d))) std::abort();                 // ... to the same settings
    if (to_toml(settings(*again)) != to_toml(settings(*d))) std::abort();  // ... and text
    UnitOptions options;
    options.bindir = "/usr/bin";
    options.pinned_dir = "/run/systemd/generator/berth";
    if (render_unit(*d, options).empty()) std::abort();
    return 0;
}
