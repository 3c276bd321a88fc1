// FNV-1a: a fast, stable (across builds and hosts) non-cryptographic hash of bytes, for names
// (interface names, first address probes, cache entry names). Never for anything an attacker
// could exploit by choosing collisions.
#pragma once

#include <cstdint>
#include <string_view>

namespace berth {

template <class T, T kOffset, T kPrime>
constexpr T fnv1a(std::string_view data) {
    T h = kOffset;
    for (unsigned char c : data) {
        h ^= c;
        h *= kPrime;
    }
    return h;
}

constexpr uint32_t fnv1a32(std::string_view data) { return fnv1a<uint32_t, 2166136261u, 16777619u>(data); }
constexpr uint64_t fnv1a64(std::string_view data) {
    return fnv1a<uint64_t, 0xcbf29ce484222325ULL, 0x100000001b3ULL>(data);
}

}  // namespace berth
