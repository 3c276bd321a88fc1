// libFuzzer target for the image reference grammar (registry/reference.h) and the registry prefix
// parser of registries.toml and the auth file.  Beyond "no crash, no UB": a reference that parses
// prints as text that parses back to the same reference, and qualifying it gives a reference that
// parses again; every rejection says why.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "registry/reference.h"
#include "registry/registries.h"

using namespace berth::registry;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size > 4096) return 0;
    std::string text(reinterpret_cast<const char*>(data), size);
    auto ref = parse_reference(text);
    if (!ref) {
        if (ref.error().what().empty()) std::abort();
    } else {
        if (ref->str() != text) std::abort();  // the grammar keeps no slack: canonical is the input
        auto again = parse_reference(ref->str());
        if (!again || !(*again == *ref)) std::abort();
        if (names_a_registry(text) != !ref->domain.empty()) std::abort();
        RegistriesConfig config;
        if (auto q = qualify(*ref, config)) {
            auto reparsed = parse_reference(q->str());
            if (!reparsed || reparsed->domain.empty()) std::abort();
        }
    }
    if (auto prefix = parse_registry_prefix(text)) {
        if (prefix->domain.empty() || !prefix->tag.empty() || !prefix->digest.empty()) std::abort();
        auto again = parse_registry_prefix(prefix->repository());
        if (!again || again->repository() != prefix->repository()) std::abort();
    }
    return 0;
}
