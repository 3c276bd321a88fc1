#include "basic/ip-util.h"

#include <fmt/format.h>

#include <algorithm>

#include "basic/string-util.h"

namespace berth {

std::optional<Ipv4> parse_ipv4(std::string_view text) {
    auto parts = split(text, '.', true);
    if (parts.size() != 4) return std::nullopt;
    uint32_t value = 0;
    for (auto& p : parts) {
        if (p.empty() || p.size() > 3) return std::nullopt;
        if (p.size() > 1 && p[0] == '0') return std::nullopt;  // no octal look-alikes
        auto n = parse_unsigned(p);
        if (!n || *n > 255) return std::nullopt;
        value = (value << 8) | static_cast<uint32_t>(*n);
    }
    return Ipv4{value};
}

std::optional<Ipv4Cidr> parse_ipv4_cidr(std::string_view text, int default_prefix) {
    auto slash = text.find('/');
    auto address = parse_ipv4(text.substr(0, slash));
    auto prefix = parse_prefix_length(text, slash, 32, default_prefix);
    if (!address || !prefix) return std::nullopt;
    return Ipv4Cidr{*address, *prefix};
}

std::optional<int> parse_prefix_length(std::string_view text, size_t slash, int max_prefix,
                                       int default_prefix) {
    if (slash == std::string_view::npos) return default_prefix;
    auto n = parse_unsigned(text.substr(slash + 1));
    if (!n || *n > static_cast<unsigned long long>(max_prefix)) return std::nullopt;
    return static_cast<int>(*n);
}

std::string format_ipv4(Ipv4 a) {
    return fmt::format("{}.{}.{}.{}", a.value >> 24, (a.value >> 16) & 0xff, (a.value >> 8) & 0xff,
                       a.value & 0xff);
}

std::string format_ipv4_cidr(const Ipv4Cidr& c) {
    return fmt::format("{}/{}", format_ipv4(c.address), c.prefix);
}

uint32_t ipv4_mask(int prefix) { return prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix); }

Ipv4 network_of(const Ipv4Cidr& c) { return Ipv4{c.address.value & ipv4_mask(c.prefix)}; }

Ipv4 broadcast_of(const Ipv4Cidr& c) { return Ipv4{network_of(c).value | ~ipv4_mask(c.prefix)}; }

bool same_subnet(const Ipv4Cidr& a, Ipv4 b) { return (b.value & ipv4_mask(a.prefix)) == network_of(a).value; }

bool subnets_overlap(const Ipv4Cidr& a, const Ipv4Cidr& b) {
    int prefix = std::min(a.prefix, b.prefix);
    return (a.address.value & ipv4_mask(prefix)) == (b.address.value & ipv4_mask(prefix));
}

bool usable_host_address(const Ipv4Cidr& c) {
    uint32_t v = c.address.value;
    if (v == 0 || (v >> 24) == 127 || (v >> 28) == 0xe || v == 0xffffffffu) return false;
    if (c.prefix <= 30) {
        uint32_t host_bits = ~ipv4_mask(c.prefix);
        if ((v & host_bits) == 0 || (v & host_bits) == host_bits) return false;  // network / broadcast
    }
    return true;
}

}  // namespace berth
