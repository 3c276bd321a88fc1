// IPv4 addresses and prefixes: the vocabulary that the declarations (config/: a network's subnet,
// gateway and range) and the network component (network/: links, routes, nftables) share, so it
// lives below both.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace berth {

// An IPv4 address in host byte order, and an address with its prefix length.
struct Ipv4 {
    uint32_t value = 0;
    friend bool operator==(const Ipv4&, const Ipv4&) = default;
};
struct Ipv4Cidr {
    Ipv4 address;
    int prefix = 32;
    friend bool operator==(const Ipv4Cidr&, const Ipv4Cidr&) = default;
};

std::optional<Ipv4> parse_ipv4(std::string_view text);                               // "10.0.0.2"
std::optional<Ipv4Cidr> parse_ipv4_cidr(std::string_view text, int default_prefix);  // "10.0.0.2/24"
// The prefix length of "ADDRESS/N" (text[slash] is the '/'): N if it is 0..max_prefix;
// default_prefix when slash is npos. Shared with ip6-util.h.
std::optional<int> parse_prefix_length(std::string_view text, size_t slash, int max_prefix,
                                       int default_prefix);
std::string format_ipv4(Ipv4 address);               // "10.0.0.2"
std::string format_ipv4_cidr(const Ipv4Cidr& cidr);  // "10.0.0.2/24"
uint32_t ipv4_mask(int prefix);                      // 24 -> 0xffffff00
Ipv4 network_of(const Ipv4Cidr& cidr);               // 10.0.0.2/24 -> 10.0.0.0
Ipv4 broadcast_of(const Ipv4Cidr& cidr);             // 10.0.0.2/24 -> 10.0.0.255
bool same_subnet(const Ipv4Cidr& a, Ipv4 b);         // b inside a's subnet
bool subnets_overlap(const Ipv4Cidr& a, const Ipv4Cidr& b);
// Not 0.0.0.0, loopback, multicast or broadcast, and (prefix <= 30) not the network or broadcast
// address of its own subnet: an address a host or a container may have.
bool usable_host_address(const Ipv4Cidr& cidr);

}  // namespace berth
