// libFuzzer target for the WWW-Authenticate parser (registry/www-authenticate.h), which reads a
// header a registry (or anything in between) sends.  No crash, no UB, bounded work; every
// rejection says why; a parsed challenge has a lower-case scheme and lower-case parameter names.
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "registry/www-authenticate.h"

using namespace berth::registry;

namespace {

bool is_lower(const std::string& s) {
    for (char c : s)
        if (std::isupper(static_cast<unsigned char>(c))) return false;
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size > 16384) return 0;
    std::string header(reinterpret_cast<const char*>(data), size);
    auto challenges = parse_www_authenticate(header);
    if (!challenges && challenges.error().what().empty()) std::abort();  // every rejection says why
    if (!challenges) return 0;
    for (const Challenge& c : *challenges) {
        if (c.scheme.empty() || !is_lower(c.scheme)) std::abort();
        if (!c.token68.empty() && !c.params.empty()) std::abort();
        for (const auto& [k, v] : c.params)
            if (k.empty() || !is_lower(k)) std::abort();
    }
    return 0;
}
