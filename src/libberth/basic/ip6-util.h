// IPv6 addresses and prefixes: the IPv6 half of basic/ip-util.h, shared by the declarations
// (config/: a network's IPv6 subnet, published ports on "[::]") and the network component
// (network/: bridge and container addresses, routes, nftables).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace berth {

// An IPv6 address in network byte order, and an address with its prefix length.
struct Ipv6 {
    std::array<uint8_t, 16> bytes{};
    friend bool operator==(const Ipv6&, const Ipv6&) = default;
};
struct Ipv6Cidr {
    Ipv6 address;
    int prefix = 128;
    friend bool operator==(const Ipv6Cidr&, const Ipv6Cidr&) = default;
};

std::optional<Ipv6> parse_ipv6(std::string_view text);  // "fd00:89:1::5" (no zone, no brackets)
// "fd00::5/64"; without "/N" the prefix is default_prefix (-1: "/N" required).
std::optional<Ipv6Cidr> parse_ipv6_cidr(std::string_view text, int default_prefix);
std::string format_ipv6(const Ipv6& address);        // RFC 5952: "fd00:89:1::a59:105"
std::string format_ipv6_cidr(const Ipv6Cidr& cidr);  // "fd00:89:1::a59:105/64"
Ipv6 network_of(const Ipv6Cidr& cidr);               // fd00::5/64 -> fd00::
bool same_subnet(const Ipv6Cidr& a, const Ipv6& b);  // b inside a's prefix
// `cidr`'s prefix with `low` as the last 32 bits (the rest of the host part zero): how a declared
// network derives a container's IPv6 address from its IPv4 lease (network/ipam.h).
Ipv6Cidr with_low32(const Ipv6Cidr& cidr, uint32_t low);
// Not ::, ::1, multicast (ff00::/8), link-local (fe80::/10) or IPv4-mapped (::ffff:0:0/96): an
// address (or a subnet) berth may put on a bridge or a container.
bool usable_ipv6(const Ipv6& address);
bool is_loopback(const Ipv6& address);  // ::1
bool is_any(const Ipv6& address);       // ::

}  // namespace berth
