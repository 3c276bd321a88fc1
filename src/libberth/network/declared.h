// A declared network's host side (config::NetworkDeclaration): its bridge, the gateway address on
// it and its nftables table, planned (pure, unit-tested) and then applied or removed for real.
//
// nftables: one table per network, "inet berth-net-NAME", so that `berth network down` removes
// exactly it (deleting a table deletes its chains, rules and counters in one go):
//   - chain forward (filter, hook forward): isolation. Every berth network bridge is in the
//     interface group kBridgeGroup, so "from my bridge to another berth bridge" is one rule
//     (`oifgroup`), whatever the other network is called; both directions are dropped, so that
//     isolation holds even while only one of the two networks is up. An internal network drops
//     everything forwarded into or out of its bridge: no route beyond the network. Drop rules
//     carry counters (`berth network inspect`, the tests).
//   - chain input (filter, hook input): DNS to the gateway (the network's dnsmasq, dns.h) is
//     accepted from the bridge, internal network or not, and dropped from anywhere else: a
//     container on another network must not learn this one's names through the host.
//   - chain postrouting (nat, hook postrouting): masquerade of the subnet leaving by any other
//     interface, when asked (the default unless internal).
// Anti-spoofing stays per container (the netdev ingress chain of its veth host end, attach()).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "basic/ip-util.h"
#include "basic/ip6-util.h"
#include "basic/result.h"
#include "config/declaration.h"
#include "network/ipam.h"

namespace berth::network {

// The interface group of every berth network bridge (IFLA_GROUP; "be27").
inline constexpr uint32_t kBridgeGroup = 0xbe27;

struct DeclaredNetworkPlan {
    std::string network;
    std::string bridge;  // "bn-app" (or the declared name)
    Ipv4Cidr gateway;    // the bridge's address, with the subnet's prefix
    Ipv4Cidr subnet;     // network address / prefix
    // Dual-stack (an IPv6 subnet declared): the bridge's IPv6 address and the prefix, masqueraded
    // and forwarded as the IPv4 subnet is (ipam.h says how the addresses are derived).
    std::optional<Ipv6Cidr> gateway6;
    std::optional<Ipv6Cidr> subnet6;
    std::optional<uint32_t> mtu;
    bool internal = false;
    bool masquerade = false;
    // Set net.ipv4.ip_forward=1, and on a dual-stack network net.ipv6.conf.all.forwarding=1
    // (routed egress needs them; never reset). See berth.network(5) about IPv6 forwarding on a
    // host that takes its own address from router advertisements.
    bool ip_forward = false;
    std::vector<std::string> dns;  // declared upstream servers; empty: the host's (dns.h)
    std::string nft_table;         // "berth-net-app" (family inet)
    std::string nft_apply;         // creates the table from scratch
    std::string nft_remove;        // deletes it
};

// "bn-NAME" when it fits in 15 characters, else "bn-" + 5 characters + "-" + 6 hex digits of a
// hash of the name (as host_interface_name()).
std::string network_bridge_name(const std::string& network);

Result<DeclaredNetworkPlan> plan_network(const config::NetworkDeclaration& decl);

// Idempotent: creates what is missing (bridge, group, MTU, address, link up, forwarding),
// replaces the nftables table with the planned one and starts the network's dnsmasq (dns.h)
// unless it runs. Serialized per network (a flock), so containers starting at once can all call it. A bridge
// of that name that berth did not make (not in kBridgeGroup) is refused, not taken over. On failure, what
// this call created is removed again.
Result<> network_up(const DeclaredNetworkPlan& plan);

// Stops the dnsmasq, removes the table and the bridge (with its address and routes). Safe when
// nothing is there.
Result<> network_down(const DeclaredNetworkPlan& plan);

// A container's place on one of its declared networks: the network (loaded from `paths`, planned
// and, with bring_up, brought up if needed, as `berth run` does in embedded mode), its address
// (acquired: the lease it has, or a new one) and its link there.
//
// Several networks (issue #20): one link per network, "eth0", "eth1", ... in declaration order,
// each a plain bridge member with its own address, its own anti-spoofing chain and its name
// registered on that network only. The first network is the container's way out: its default
// routes (IPv4 and IPv6) and its published ports; the others carry only their own subnets. The
// container is no router between them: forwarding is off in its namespace, and its chains on each
// link let out only what carries its own address there, so nothing from one network leaves it
// onto another; the host's isolation rules (plan_network) stay as they are.
struct Joined {
    DeclaredNetworkPlan network;
    Ipv4Cidr address;
    std::optional<Ipv6Cidr> address6;  // dual-stack networks
    int link = 0;                      // eth<link> in the container
    std::vector<std::string> aliases;  // the membership's extra names on this network
};
Result<std::vector<Joined>> join_networks(const config::Declaration& decl,
                                          const std::vector<std::string>& paths, bool bring_up);

// Pure: the static address of membership `index` (decl.network.networks) is a host address of
// `pool`'s subnet and not its gateway. The error starts with the file:line:col where it was
// written ("web.toml:7:36: network.networks[1].address = ...").
Result<> check_static_address(const config::Declaration& decl, size_t index, const AddressPool& pool);

// The declaration attach() takes for one joined link: mode "bridge" on the network's bridge with
// the acquired address and, on the first network only, the gateway and the published ports (NAT
// is the network's, not the container's).
config::Declaration as_bridge_member(const config::Declaration& decl, const Joined& joined);

// Forgets every lease `container` holds on any network (berth rm): the networks it held one on.
Result<std::vector<std::string>> release_all_addresses(const std::string& container);

}  // namespace berth::network
