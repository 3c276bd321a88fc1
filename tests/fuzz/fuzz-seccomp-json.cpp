// libFuzzer target: seccomp profile JSON (Docker / OCI "seccomp" objects, runtime/seccomp-profile.h)
// through the whole pure pipeline: parse -> resolve for a capability set and kernel -> serialize ->
// compile to BPF with libseccomp (no cache, nothing installed). Oracles: no crash or sanitizer
// report; resolving and serializing the same profile twice gives the same text (the cache key must
// be deterministic); a compiled program is a whole number of sock_filter instructions.
// Seeds: tests/fuzz/corpus/seccomp-json/.
#include <linux/filter.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "runtime/seccomp-compile.h"
#include "runtime/seccomp-profile.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace berth::runtime;
    if (size > (256u << 10)) return -1;
    std::string text(reinterpret_cast<const char*>(data), size);
    auto profile = parse_seccomp_profile(text, "fuzz.json");
    if (!profile) return 0;
    // Derive a capability set and kernel release from the input so includes/excludes vary.
    uint64_t caps = 0;
    for (size_t i = 0; i < size && i < 8; i++) caps = (caps << 8) | data[i];
    caps &= (1ull << 41) - 1;
    const char* kernels[] = {"3.10.0", "4.8.0", "5.10.0-21-amd64", "6.18.44"};
    std::string kernel = kernels[size % 4];
    auto rules = resolve_seccomp_rules(*profile, caps, kernel);
    std::string a = serialize_seccomp(profile->default_action, profile->default_errno, rules);
    std::string b = serialize_seccomp(profile->default_action, profile->default_errno,
                                      resolve_seccomp_rules(*profile, caps, kernel));
    if (a != b) {
        fprintf(stderr, "fuzz-seccomp-json: serialization is not deterministic\n");
        abort();
    }
    if (rules.size() > 512) return 0;  // compiling huge rule sets only measures libseccomp
    auto prog = compile_seccomp(profile->default_action, profile->default_errno, rules, "");
    if (prog && prog->bpf.size() % sizeof(struct sock_filter) != 0) {
        fprintf(stderr, "fuzz-seccomp-json: BPF program of %zu bytes\n", prog->bpf.size());
        abort();
    }
    return 0;
}
