#include "basic/ip6-util.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>

#include "basic/ip-util.h"

namespace berth {

std::optional<Ipv6> parse_ipv6(std::string_view text) {
    // inet_pton accepts every RFC 4291 spelling (and the dotted-quad tail), nothing else.
    if (text.empty() || text.size() >= INET6_ADDRSTRLEN || text.find('%') != std::string_view::npos)
        return std::nullopt;
    Ipv6 a;
    if (::inet_pton(AF_INET6, std::string(text).c_str(), a.bytes.data()) != 1) return std::nullopt;
    return a;
}

std::optional<Ipv6Cidr> parse_ipv6_cidr(std::string_view text, int default_prefix) {
    auto slash = text.find('/');
    auto address = parse_ipv6(text.substr(0, slash));
    auto prefix = parse_prefix_length(text, slash, 128, default_prefix);
    if (!address || !prefix || *prefix < 0) return std::nullopt;
    return Ipv6Cidr{*address, *prefix};
}

std::string format_ipv6(const Ipv6& a) {
    char text[INET6_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET6, a.bytes.data(), text, sizeof text);
    return text;
}

std::string format_ipv6_cidr(const Ipv6Cidr& c) {
    return fmt::format("{}/{}", format_ipv6(c.address), c.prefix);
}

Ipv6 network_of(const Ipv6Cidr& c) {
    Ipv6 out = c.address;
    for (int i = 0; i < 16; ++i) {
        int bits = std::clamp(c.prefix - 8 * i, 0, 8);
        out.bytes[i] &= static_cast<uint8_t>(0xff00 >> bits);
    }
    return out;
}

bool same_subnet(const Ipv6Cidr& a, const Ipv6& b) {
    return network_of(a) == network_of(Ipv6Cidr{b, a.prefix});
}

Ipv6Cidr with_low32(const Ipv6Cidr& c, uint32_t low) {
    Ipv6Cidr out{network_of(c), c.prefix};
    for (int i = 0; i < 4; ++i) out.address.bytes[12 + i] |= static_cast<uint8_t>(low >> (24 - 8 * i));
    return out;
}

bool is_any(const Ipv6& a) { return a == Ipv6{}; }

bool is_loopback(const Ipv6& a) {
    Ipv6 one;
    one.bytes[15] = 1;
    return a == one;
}

bool usable_ipv6(const Ipv6& a) {
    const auto& b = a.bytes;
    if (is_any(a) || is_loopback(a) || b[0] == 0xff) return false;
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return false;  // fe80::/10
    bool mapped = b[10] == 0xff && b[11] == 0xff;
    for (int i = 0; i < 10 && mapped; ++i) mapped = b[i] == 0;
    return !mapped;
}

}  // namespace berth
