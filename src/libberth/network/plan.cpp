// plan(): the pure half of berth-network. Everything attach() does is decided here, from the
// declaration alone, so that it can be unit-tested and shown by `berth plan`.
//
// Address defaults (veth mode): a container that declares no address gets a /30 from the pool
// 10.88.0.0/16, chosen by a hash of its name, so the same container gets the same address at
// every start (other containers may have it in their /etc/hosts). The host end is the first host
// of the /30, the container the second, and the gateway is the host end. Two names can hash to
// the same /30: attach() then finds the subnet in use on the host and refuses with an "address
// clash" error that says to set `address` explicitly.
#include <net/if.h>

#include <algorithm>
#include <set>

#include "basic/fnv.h"
#include "basic/names.h"
#include "basic/string-util.h"
#include "config/values.h"
#include "network/network.h"

namespace berth::network {

using config::NetworkMode;

bool PublishedPort::reaches_loopback() const {
    return ipv4() && (!host_address || (host_address->value >> 24) == 127);
}

// ---- MAC addresses -----------------------------------------------------------------------

std::string format_mac(const Mac& m) {
    const auto& b = m.bytes;
    return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5]);
}

Mac mac_for(Ipv4 address) {
    uint32_t v = address.value;
    return Mac{{0x02, 0xbe, static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16),
                static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)}};
}

// ---- interface names ----------------------------------------------------------------------

uint32_t name_hash(std::string_view s) { return fnv1a32(s); }

static bool valid_ifname_char(char c) {
    // The kernel refuses '/', ':' and whitespace (dev_valid_name); we keep to a portable subset.
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
}

std::string host_interface_name(const std::string& name, int link) {
    constexpr size_t kMax = IFNAMSIZ - 1;  // 15
    // "ve-" for the first link, "v1-", "v2-", ... for the others: a prefix no other link of any
    // container has, so that "web"'s second link never takes the name of a container "web-1".
    const std::string prefix = link > 0 ? fmt::format("v{}-", link) : "ve-";
    bool clean = !name.empty() && std::all_of(name.begin(), name.end(), valid_ifname_char);
    if (clean && prefix.size() + name.size() <= kMax) return prefix + name;
    std::string head;
    for (char c : name) {
        if (prefix.size() + head.size() == 8) break;
        head += valid_ifname_char(c) ? c : '_';
    }
    return fmt::format("{}{}-{:06x}", prefix, head, name_hash(name) & 0xffffff);
}

// ---- plan ---------------------------------------------------------------------------------

std::string nft_chain_stem(std::string_view container) {
    std::string stem = "c-" + std::string(container);
    std::replace(stem.begin(), stem.end(), '@', '/');
    return stem;
}

namespace {

// The container's three NAT chains for published ports in berth's table of `family` ("ip" or
// "ip6"; the same names in both).
std::string port_chains(std::string_view family, const std::string& container) {
    std::string s;
    for (auto [hook, priority] : {std::pair{"prerouting", -100}, {"output", -100}, {"postrouting", 100}})
        s += fmt::format("create chain {} {} {}-{} {{ type nat hook {} priority {}; policy accept; }}\n",
                         family, kNftTable, nft_chain_stem(container), hook, hook, priority);
    return s;
}

// DNAT of the published ports of one family to the container: from outside (prerouting, the
// client's address preserved) and from the host itself (output). The IPv6 output rules leave ::1
// alone (see the ::1 check in plan()): a connection to [::1]:PORT is refused at once, not hung.
std::string dnat_rules(const NetworkPlan& p, bool v6) {
    const char* family = v6 ? "ip6" : "ip";
    const std::string to = v6 ? "[" + format_ipv6(p.container_address6->address) + "]"
                              : format_ipv4(p.container_address->address);
    std::string s;
    for (const auto& pp : p.ports) {
        if (v6 ? pp.family == PortFamily::Ipv4 : !pp.ipv4()) continue;
        if (v6 && pp.host_address6 && berth::is_loopback(*pp.host_address6)) continue;  // its proxy's
        std::string dst = "fib daddr type local";
        if (v6 && pp.host_address6) dst = "ip6 daddr " + format_ipv6(*pp.host_address6);
        if (!v6 && pp.host_address) dst = "ip daddr " + format_ipv4(*pp.host_address);
        std::string rule = fmt::format("{} {} dport {} dnat to {}:{}", dst, pp.protocol, pp.host_port, to,
                                       pp.container_port);
        s += fmt::format("add rule {} {} {}-prerouting {}\n", family, kNftTable, nft_chain_stem(p.container),
                         rule);
        s += fmt::format("add rule {} {} {}-output {}{}\n", family, kNftTable, nft_chain_stem(p.container),
                         v6 ? "ip6 daddr != ::1 " : "", rule);
    }
    return s;
}

// Published ports on IPv6, in table ip6 berth: the chains and DNAT rules of the IPv4 table, and
// in postrouting only the masquerade of the container reaching its own published port through
// the host (hairpin); outbound NAT is the declared network's.
std::string ipv6_port_rules(const NetworkPlan& p, const std::string& out_if) {
    if (!p.container_address6) return "";
    const std::string c = format_ipv6(p.container_address6->address);
    std::string s =
        fmt::format("add table ip6 {}\n", kNftTable) + port_chains("ip6", p.container) + dnat_rules(p, true);
    s += fmt::format(
        "add rule ip6 {} {}-postrouting oifname \"{}\" ip6 daddr {} ct status dnat ip6 saddr {} "
        "masquerade\n",
        kNftTable, nft_chain_stem(p.container), out_if, c, c);
    return s;
}

// The first host of `c`'s subnet that is not `c` itself, with the same prefix.
std::optional<Ipv4Cidr> other_host(const Ipv4Cidr& c) {
    if (c.prefix >= 32) return std::nullopt;
    uint32_t net = network_of(c).value;
    uint32_t first = c.prefix == 31 ? net : net + 1;
    uint32_t candidate = first == c.address.value ? first + 1 : first;
    Ipv4Cidr out{Ipv4{candidate}, c.prefix};
    if (!same_subnet(c, out.address) || !usable_host_address(out)) return std::nullopt;
    return out;
}

}  // namespace

Result<NetworkPlan> plan(const config::Declaration& decl) {
    const auto& net = decl.network;
    auto bad = [&](std::string message) {
        return fail(EINVAL, "container '{}': network: {}", decl.name, message);
    };

    NetworkPlan p;
    p.container = decl.name;
    p.mode = net.mode;

    bool links = net.mode == NetworkMode::Veth || net.mode == NetworkMode::Bridge;
    if (!links) {
        if (!net.ports.empty())
            return bad(fmt::format("ports need mode = \"veth\" or \"bridge\" (mode is \"{}\")",
                                   config::network_mode_name(net.mode)));
        for (auto [key, value] : {std::pair{"address", &net.address},
                                  {"host_address", &net.host_address},
                                  {"gateway", &net.gateway},
                                  {"bridge", &net.bridge}}) {
            if (!value->empty())
                return bad(fmt::format("{} is only used with mode = \"veth\" or \"bridge\" (mode is \"{}\")",
                                       key, config::network_mode_name(net.mode)));
        }
        if (net.masquerade.value_or(false) || net.ip_forward)
            return bad(fmt::format("{} is only used with mode = \"veth\" or \"bridge\" (mode is \"{}\")",
                                   net.ip_forward ? "ip_forward" : "masquerade",
                                   config::network_mode_name(net.mode)));
        return p;
    }

    if (auto valid = check_object_name(NameKind::Container, decl.name); !valid)
        return bad(fmt::format("{} (needed for veth/bridge networking)", valid.error().message));
    // A container on several declared networks has one link on each (declared.h).
    p.host_interface = host_interface_name(decl.name, std::max(net.link, 0));
    p.container_interface = net.link >= 0 ? fmt::format("eth{}", net.link) : kContainerInterface;
    if (net.link > 0 && !net.ports.empty())
        return bad("ports are published on the container's first network only");

    if (net.mode == NetworkMode::Bridge) {
        if (net.bridge.empty()) return bad("mode = \"bridge\" needs bridge = \"NAME\" (an existing bridge)");
        if (net.bridge.size() >= IFNAMSIZ ||
            !std::all_of(net.bridge.begin(), net.bridge.end(), valid_ifname_char))
            return bad(fmt::format("bridge {} is not a valid interface name", quote(net.bridge)));
        if (!net.host_address.empty())
            return bad(
                "host_address is only used with mode = \"veth\" (in bridge mode the bridge has the host's "
                "address)");
        p.bridge = net.bridge;
    } else if (!net.bridge.empty()) {
        return bad("bridge is only used with mode = \"bridge\"");
    }

    // Addresses.
    if (!net.address.empty()) {
        auto a = parse_ipv4_cidr(net.address, 24);
        if (!a)
            return bad(
                fmt::format("address {} is not an IPv4 address (\"10.0.0.2/24\")", quote(net.address)));
        if (!usable_host_address(*a))
            return bad(fmt::format(
                "address {} cannot be a host's address (network, broadcast, loopback, multicast or 0)",
                quote(net.address)));
        p.container_address = *a;
    }
    if (!net.host_address.empty()) {
        auto h = parse_ipv4_cidr(net.host_address, p.container_address ? p.container_address->prefix : 24);
        if (!h)
            return bad(fmt::format("host_address {} is not an IPv4 address (\"10.0.0.1/24\")",
                                   quote(net.host_address)));
        if (!usable_host_address(*h))
            return bad(fmt::format("host_address {} cannot be a host's address", quote(net.host_address)));
        p.host_address = *h;
    }
    if (net.mode == NetworkMode::Veth) {
        if (!p.container_address && !p.host_address) {
            uint32_t index = name_hash(decl.name) % 16384;  // 10.88.0.0/16 in /30 steps
            uint32_t base = (10u << 24) | (88u << 16) | (index * 4);
            p.host_address = Ipv4Cidr{Ipv4{base + 1}, 30};
            p.container_address = Ipv4Cidr{Ipv4{base + 2}, 30};
            p.pool_address = true;
        } else if (!p.host_address) {
            p.host_address = other_host(*p.container_address);
            if (!p.host_address)
                return bad(fmt::format("address {} leaves no room for the host end; set host_address",
                                       quote(net.address)));
        } else if (!p.container_address) {
            p.container_address = other_host(*p.host_address);
            if (!p.container_address)
                return bad(fmt::format("host_address {} leaves no room for the container; set address",
                                       quote(net.host_address)));
        }
        if (p.host_address->address == p.container_address->address)
            return bad(fmt::format("address clash: address and host_address are both {}",
                                   format_ipv4(p.container_address->address)));
        if (!same_subnet(*p.container_address, p.host_address->address) ||
            p.host_address->prefix != p.container_address->prefix)
            return bad(fmt::format("address {} and host_address {} must be in the same subnet",
                                   format_ipv4_cidr(*p.container_address),
                                   format_ipv4_cidr(*p.host_address)));
        p.forwarding = true;
    }
    if (!net.address6.empty() || !net.gateway6.empty()) {
        if (net.mode != NetworkMode::Bridge) return bad("an IPv6 address needs mode = \"bridge\"");
        auto a = parse_ipv6_cidr(net.address6, 64);
        if (!a || !berth::usable_ipv6(a->address))
            return bad(
                fmt::format("IPv6 address {} is not a global or unique local address", quote(net.address6)));
        p.container_address6 = *a;
        if (!net.gateway6.empty()) {
            auto g = parse_ipv6(net.gateway6);
            if (!g || *g == a->address)
                return bad(fmt::format("IPv6 gateway {} is invalid or the container's own address",
                                       quote(net.gateway6)));
            p.gateway6 = *g;
        }
    }
    if (!net.gateway.empty()) {
        auto g = parse_ipv4(net.gateway);
        if (!g) return bad(fmt::format("gateway {} is not an IPv4 address", quote(net.gateway)));
        if (!p.container_address) return bad("gateway needs an address");
        if (*g == p.container_address->address)
            return bad(fmt::format("gateway {} is the container's own address", quote(net.gateway)));
        p.gateway = *g;
    } else if (net.mode == NetworkMode::Veth) {
        p.gateway = p.host_address->address;
    }

    // Published ports.
    std::set<std::pair<std::string, uint16_t>> seen;
    for (const auto& port : net.ports) {
        PublishedPort pp;
        pp.protocol = port.protocol.empty() ? "tcp" : port.protocol;
        std::string label =
            fmt::format("{}{}:{}/{}",
                        port.host_address.empty()                          ? ""
                        : port.host_address.find(':') == std::string::npos ? port.host_address + ":"
                                                                           : "[" + port.host_address + "]:",
                        port.host_port, port.container_port, pp.protocol);
        if (pp.protocol != "tcp" && pp.protocol != "udp")
            return bad(fmt::format("port {}: protocol must be tcp or udp", quote(label)));
        if (port.host_port == 0 || port.container_port == 0)
            return bad(fmt::format("port {}: ports must be 1..65535", quote(label)));
        if (port.host_address.find(':') != std::string::npos) {
            pp.family = PortFamily::Ipv6;
            auto a = parse_ipv6(port.host_address);
            if (!a)
                return bad(fmt::format("port {}: {} is not an IPv6 address", quote(label),
                                       quote(port.host_address)));
            // A connection from ::1 cannot be DNATed to another host: its reply, un-NATed back to
            // ::1, arrives on the bridge and IPv6 routing drops a loopback destination that comes
            // from any interface but lo (there is no route_localnet for IPv6). TCP on ::1 goes
            // through a loopback proxy instead (loopback-proxy.h), which is TCP only.
            if (berth::is_loopback(*a) && pp.protocol != "tcp")
                return bad(
                    fmt::format("port {}: UDP cannot be published on ::1 (IPv6 never routes a loopback "
                                "address off the host, and the loopback proxy berth uses for TCP is TCP "
                                "only); publish on 127.0.0.1",
                                quote(label)));
            if (!berth::is_any(*a)) pp.host_address6 = *a;
            if (!p.container_address6 && !berth::is_loopback(*a))
                return bad(
                    fmt::format("port {}: publishing on IPv6 needs the container's IPv6 address (a "
                                "network with an IPv6 subnet)",
                                quote(label)));
        } else if (!port.host_address.empty()) {
            pp.family = PortFamily::Ipv4;
            if (port.host_address != "0.0.0.0") {
                auto a = parse_ipv4(port.host_address);
                if (!a)
                    return bad(fmt::format("port {}: {} is not an IPv4 address", quote(label),
                                           quote(port.host_address)));
                pp.host_address = *a;
            }
        }
        if (!p.container_address)
            return bad(fmt::format("port {}: publishing a port needs the container's address", quote(label)));
        if (!seen.emplace(pp.protocol, port.host_port).second)
            return bad(fmt::format("port {}: host port {}/{} is published twice", quote(label),
                                   port.host_port, pp.protocol));
        pp.host_port = port.host_port;
        pp.container_port = port.container_port;
        p.ports.push_back(pp);
        // [::1]:PORT, directly or as part of [::] or of both families: the loopback proxy's
        // (loopback-proxy.h), to the container's IPv6 address when it has one.
        if (pp.protocol == "tcp" && pp.family != PortFamily::Ipv4 &&
            (!pp.host_address6 || berth::is_loopback(*pp.host_address6)))
            p.loopback6_ports.push_back(
                {pp.host_port,
                 p.container_address6
                     ? fmt::format("{}:{}", format_ipv6(p.container_address6->address), pp.container_port)
                     : fmt::format("{}:{}", format_ipv4(p.container_address->address), pp.container_port)});
    }

    // Outbound NAT: on by default for veth (as systemd-nspawn with networkd's
    // 80-container-ve.network, and Docker's default bridge), off for a bridge, which is the
    // user's own network (docs/NETWORKING.md, "Outbound traffic").
    p.masquerade = net.masquerade.value_or(net.mode == NetworkMode::Veth);
    p.ip_forward = net.ip_forward;
    if (p.masquerade && !p.container_address)
        return bad("masquerade needs the container's address (set address = \"A.B.C.D/N\")");

    // Where packets to the container leave the host: the veth host end, or the bridge.
    const std::string out_if = net.mode == NetworkMode::Bridge ? p.bridge : p.host_interface;
    const std::string t = kNftTable;
    const std::string post = nft_chain_stem(decl.name) + "-postrouting";
    if (!p.ports.empty()) {
        bool loopback =
            std::any_of(p.ports.begin(), p.ports.end(), [](auto& pp) { return pp.reaches_loopback(); });
        if (loopback) p.localnet_interface = out_if;

        std::string c = format_ipv4(p.container_address->address);
        const std::string pre = nft_chain_stem(decl.name) + "-prerouting",
                          out = nft_chain_stem(decl.name) + "-output";
        p.nft_chain_prefix = nft_chain_stem(decl.name) + "-";
        std::string s;
        s += fmt::format("add table ip {}\n", t);
        s += fmt::format("add set ip {} {} {{ type inet_proto . inet_service; }}\n", t, kNftPortSet);
        for (auto& pp : p.ports)
            s += fmt::format("create element ip {} {} {{ {} . {} comment \"{}\" }}\n", t, kNftPortSet,
                             pp.protocol, pp.host_port, decl.name);
        s += port_chains("ip", decl.name);
        s += dnat_rules(p, false);
        // Connections from the host's loopback (or hairpinned from the container itself) must
        // come back through the host: give them the host's address on the outgoing link.
        s += fmt::format(
            "add rule ip {} {} oifname \"{}\" ip daddr {} ct status dnat ip saddr {{ 127.0.0.0/8, {} }} "
            "masquerade\n",
            t, post, out_if, c, c);
        std::string guard = nft_chain_stem(decl.name) + "-guard";
        if (loopback) {
            // route_localnet=1 would also let the container (or anything on the bridge) send
            // packets to the host's 127.0.0.0/8 (CVE-2020-8558). Replies to our masqueraded
            // connections are addressed to the host's link address until conntrack un-NATs them
            // at priority -100, so a drop before that (-150) catches only forged packets.
            s += fmt::format(
                "create chain ip {} {} {{ type filter hook prerouting priority -150; policy accept; }}\n", t,
                guard);
            s +=
                fmt::format("add rule ip {} {} iifname \"{}\" ip daddr 127.0.0.0/8 drop\n", t, guard, out_if);
        }
        s += ipv6_port_rules(p, out_if);
        p.nft_apply = std::move(s);

        std::string r;
        for (auto* chain : {&pre, &out, &post}) r += fmt::format("delete chain ip {} {}\n", t, *chain);
        if (loopback) r += fmt::format("delete chain ip {} {}\n", t, guard);
        if (p.container_address6)
            for (auto* chain : {&pre, &out, &post}) r += fmt::format("delete chain ip6 {} {}\n", t, *chain);
        for (auto& pp : p.ports)
            r += fmt::format("delete element ip {} {} {{ {} . {} }}\n", t, kNftPortSet, pp.protocol,
                             pp.host_port);
        p.nft_remove = std::move(r);
    }
    if (p.masquerade) {
        // New connections from the container's address to anything not on its own link (the
        // host's own addresses are local delivery and never reach postrouting). NAT rules see
        // only a connection's first packet, so DNATed connections to published ports, which
        // leave through out_if, are untouched.
        if (p.nft_apply.empty()) {
            p.nft_chain_prefix = nft_chain_stem(decl.name) + "-";
            p.nft_apply = fmt::format("add table ip {}\n", t);
            p.nft_apply += fmt::format(
                "create chain ip {} {} {{ type nat hook postrouting priority 100; policy accept; }}\n", t,
                post);
            p.nft_remove = fmt::format("delete chain ip {} {}\n", t, post);
        }
        p.nft_apply += fmt::format("add rule ip {} {} ip saddr {} oifname != \"{}\" masquerade\n", t, post,
                                   format_ipv4(p.container_address->address), out_if);
    }

    // Anti-spoofing, in the same transaction as the rest. Without an address (bridge mode) there
    // is nothing to derive the MAC from: attach() picks a random one and appends the chain.
    p.nft_chain_prefix = nft_chain_stem(decl.name) + "-";
    p.spoof_chain = nft_chain_stem(decl.name) + "-spoof" + (net.link > 0 ? std::to_string(net.link) : "");
    if (p.container_address) p.container_mac = mac_for(p.container_address->address);
    if (p.container_mac) p.nft_apply += antispoof_script(p, *p.container_mac);
    p.nft_remove += fmt::format("delete chain netdev {} {}\n", t, p.spoof_chain);
    return p;
}

// ---- anti-spoofing ------------------------------------------------------------------------
//
// What a container can put on its link with CAP_NET_RAW (a default capability) is whatever frame
// it likes. The chain below sits on the netdev ingress hook of the host end, the first thing every
// frame from the container meets on the host, before the bridge (bridge mode) or the host's IP
// stack (veth mode) sees it, and lets through only what the container may legitimately send:
//
//   - its own MAC as the Ethernet source (else it steals a neighbour's MAC in the bridge's FDB);
//   - ARP for its own MAC and address (0.0.0.0: RFC 5227 probes), else ARP cache poisoning;
//   - IPv4 from its own address only, minus DHCP server replies (udp sport 67) and ICMP
//     redirects: a container is not the network's DHCP server nor its router;
//   - IPv6 from an address whose interface identifier is the EUI-64 of its MAC: its link-local
//     address and, on a bridge whose router advertises a prefix, its SLAAC address (other hosts'
//     identifiers come from other MACs, so none of their addresses can be forged). From :: only
//     what the kernel sends before it has an address: DAD solicitations for its own identifier
//     and MLD reports. Neighbour advertisements only for targets with its identifier (no
//     neighbour cache poisoning). Never router advertisements, redirects or router renumbering
//     (CVE-2020-13401: a container's RA made the host route its IPv6 through the container),
//     nor DHCPv6 server replies (udp sport 547); on a dual-stack declared network also from
//     its IPv6 address there (derived from its IPv4 lease, not from its MAC);
//   - nothing else: the policy is drop (other ethertypes, VLAN tags, STP BPDUs, ...).
//
// The ethertype is matched with `ether type` (the frame's own header), so a VLAN-tagged frame is
// never taken for the protocol it carries.

std::string antispoof_script(const NetworkPlan& p, const Mac& mac) {
    const std::string t = kNftTable, c = p.spoof_chain, m = format_mac(mac);
    const auto& b = mac.bytes;
    // EUI-64 interface identifier: the MAC with ff:fe in the middle and the U/L bit flipped.
    uint64_t iid = (uint64_t{static_cast<uint8_t>(b[0] ^ 0x02)} << 56) | (uint64_t{b[1]} << 48) |
                   (uint64_t{b[2]} << 40) | (uint64_t{0xfffe} << 24) | (uint64_t{b[3]} << 16) |
                   (uint64_t{b[4]} << 8) | uint64_t{b[5]};
    std::string iid6 = fmt::format("::{:x}:{:x}:{:x}:{:x}", iid >> 48, (iid >> 32) & 0xffff,
                                   (iid >> 16) & 0xffff, iid & 0xffff);
    std::string s;
    auto rule = [&](std::string_view text) { s += fmt::format("add rule netdev {} {} {}\n", t, c, text); };
    s += fmt::format("add table netdev {}\n", t);
    s += fmt::format(
        "create chain netdev {} {} {{ type filter hook ingress device \"{}\" priority -500; policy drop; "
        "}}\n",
        t, c, p.host_interface);
    rule(fmt::format("ether saddr != {} counter drop", m));
    if (p.container_address) {
        std::string a = format_ipv4(p.container_address->address);
        rule(
            fmt::format("ether type arp arp htype 1 arp ptype ip arp hlen 6 arp plen 4 arp saddr ether {} "
                        "arp saddr ip {{ {}, 0.0.0.0 }} accept",
                        m, a));
        rule(fmt::format("ether type ip ip saddr {} udp sport 67 counter drop", a));
        rule(fmt::format("ether type ip ip saddr {} icmp type redirect counter drop", a));
        rule(fmt::format("ether type ip ip saddr {} accept", a));
    }
    // The interface identifier of an NS/NA target: the low 64 bits of the address that follows
    // the ICMPv6 header's 8 bytes (type, code, checksum, flags/reserved).
    std::string target_iid = fmt::format("@th,128,64 0x{:016x}", iid);
    rule("ether type ip6 icmpv6 type { nd-router-advert, nd-redirect, router-renumbering } counter drop");
    rule("ether type ip6 udp sport 547 counter drop");
    if (p.container_address6) {
        // Neighbour advertisements for its dual-stack address (the target: 128 bits from bit 64).
        const auto& a = p.container_address6->address.bytes;
        uint64_t high = 0, low = 0;
        for (int i = 0; i < 8; ++i) {
            high = (high << 8) | a[i];
            low = (low << 8) | a[8 + i];
        }
        rule(
            fmt::format("ether type ip6 ip6 saddr {} icmpv6 type nd-neighbor-advert @th,64,64 0x{:016x} "
                        "@th,128,64 0x{:016x} accept",
                        format_ipv6(p.container_address6->address), high, low));
    }
    rule(fmt::format("ether type ip6 icmpv6 type nd-neighbor-advert @th,128,64 != 0x{:016x} counter drop",
                     iid));
    rule(fmt::format("ether type ip6 ip6 saddr :: icmpv6 type nd-neighbor-solicit {} accept", target_iid));
    rule("ether type ip6 ip6 saddr :: icmpv6 type { mld-listener-report, mld2-listener-report } accept");
    rule(fmt::format("ether type ip6 ip6 saddr & ::ffff:ffff:ffff:ffff == {} accept", iid6));
    // Its address on a dual-stack network (not an EUI-64 one: derived from its IPv4 lease).
    if (p.container_address6)
        rule(fmt::format("ether type ip6 ip6 saddr {} accept", format_ipv6(p.container_address6->address)));
    // The policy's drop, counted: `berth network inspect` and the tests see what was refused.
    rule("counter drop comment \"spoofed\"");
    return s;
}

// ---- /etc/hosts ---------------------------------------------------------------------------

std::string hosts_file(const config::Declaration& decl, const std::string& container_address) {
    if (decl.network.mode == NetworkMode::Host) return "";
    std::string hostname = decl.hostname.empty() ? decl.name : decl.hostname;
    std::string s =
        "127.0.0.1\tlocalhost\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n";
    if (!hostname.empty()) {
        // Only the short name: a container has no domain of its own.
        s += fmt::format("{}\t{}\n", container_address.empty() ? "127.0.1.1" : container_address, hostname);
    }
    return s;
}

}  // namespace berth::network
