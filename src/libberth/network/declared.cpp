#include "network/declared.h"

#include <net/if.h>

#include "basic/fs-util.h"
#include "basic/string-util.h"
#include "config/config.h"
#include "network/dns.h"
#include "network/ipam.h"
#include "network/netlink.h"
#include "network/network.h"
#include "network/nft.h"

namespace berth::network {

std::string network_bridge_name(const std::string& network) {
    if (3 + network.size() <= IFNAMSIZ - 1 && network.find('.') == std::string::npos) return "bn-" + network;
    return fmt::format("bn-{}-{:06x}", network.substr(0, 5), name_hash(network) & 0xffffff);
}

Result<DeclaredNetworkPlan> plan_network(const config::NetworkDeclaration& decl) {
    auto pool = pool_of(decl);
    if (!pool) return fail(pool.error());
    DeclaredNetworkPlan p;
    p.network = decl.name;
    p.bridge = decl.bridge.empty() ? network_bridge_name(decl.name) : decl.bridge;
    p.subnet = pool->subnet;
    p.gateway = Ipv4Cidr{pool->gateway, pool->subnet.prefix};
    p.subnet6 = pool->subnet6;
    p.gateway6 = ipv6_of(*pool, pool->gateway);
    p.mtu = decl.mtu;
    p.internal = decl.internal;
    p.masquerade = decl.masquerade.value_or(!decl.internal);
    p.ip_forward = !decl.internal;
    p.dns = decl.dns;
    p.nft_table = "berth-net-" + decl.name;

    const std::string t = "inet " + p.nft_table, br = p.bridge;
    std::string s;
    // "add table" + "delete table" + the table again: one transaction that replaces whatever an
    // earlier `up` (maybe of an older declaration) left, and works when there was none.
    s += fmt::format("add table {}\ndelete table {}\nadd table {}\n", t, t, t);
    s += fmt::format("add chain {} forward {{ type filter hook forward priority filter; policy accept; }}\n",
                     t);
    auto rule = [&](std::string_view chain, std::string_view text) {
        s += fmt::format("add rule {} {} {}\n", t, chain, text);
    };
    if (p.internal) {
        rule("forward",
             fmt::format("iifname \"{}\" oifname != \"{}\" counter drop comment \"internal\"", br, br));
        rule("forward",
             fmt::format("oifname \"{}\" iifname != \"{}\" counter drop comment \"internal\"", br, br));
    } else {
        rule("forward",
             fmt::format("iifname \"{}\" oifgroup {} oifname != \"{}\" counter drop comment \"isolation\"",
                         br, kBridgeGroup, br));
        rule("forward",
             fmt::format("oifname \"{}\" iifgroup {} iifname != \"{}\" counter drop comment \"isolation\"",
                         br, kBridgeGroup, br));
    }
    const std::string gw = format_ipv4(p.gateway.address);
    s += fmt::format("add chain {} input {{ type filter hook input priority filter; policy accept; }}\n", t);
    rule(
        "input",
        fmt::format("iifname {{ \"lo\", \"{}\" }} ip daddr {} meta l4proto {{ tcp, udp }} th dport 53 accept",
                    br, gw));
    rule("input",
         fmt::format("ip daddr {} meta l4proto {{ tcp, udp }} th dport 53 counter drop comment \"dns\"", gw));
    if (p.masquerade) {
        s += fmt::format(
            "add chain {} postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}\n", t);
        rule("postrouting",
             fmt::format("ip saddr {} oifname != \"{}\" masquerade", format_ipv4_cidr(p.subnet), br));
        if (p.subnet6)
            rule("postrouting",
                 fmt::format("ip6 saddr {} oifname != \"{}\" masquerade", format_ipv6_cidr(*p.subnet6), br));
    }
    p.nft_apply = std::move(s);
    p.nft_remove = fmt::format("delete table {}\n", t);
    return p;
}

namespace {

// Undoes a partial `up` unless dismissed.
struct UpRollback {
    const DeclaredNetworkPlan& plan;
    bool created_bridge = false;
    bool done = false;
    ~UpRollback() {
        if (done || !created_bridge) return;
        if (auto nl = Netlink::open()) (void)nl->delete_link(plan.bridge);
    }
};

// The network's dnsmasq, forwarding to its declared or the host's upstream servers.
DnsPlan dns_plan_of(const DeclaredNetworkPlan& p) {
    auto upstreams = upstream_servers(p.dns, read_file("/etc/resolv.conf").value_or(""),
                                      read_file("/run/systemd/resolve/resolv.conf").value_or(""));
    return plan_dns(p, upstreams, network_run_dir(p.network));
}

}  // namespace

Result<> network_up(const DeclaredNetworkPlan& p) {
    auto context = fmt::format("bring up network {}", quote(p.network));
    auto lock = lock_network_dir(network_run_dir(p.network), "up.lock");
    if (!lock) return fail(lock.error().wrap(context));
    auto nl = Netlink::open();
    if (!nl) return fail(nl.error().wrap(context));
    UpRollback rollback{p};
    auto link = nl->find_link(p.bridge);
    if (!link) return fail(link.error().wrap(context));
    if (*link && (*link)->kind != "bridge")
        return fail(EEXIST, "{}: interface '{}' exists and is not a bridge", context, p.bridge);
    if (!*link) {
        BERTH_TRY_VOID_CTX(nl->create_bridge(p.bridge), context);
        rollback.created_bridge = true;
        link = nl->find_link(p.bridge);
        if (!link || !*link) return fail(ENODEV, "{}: bridge '{}' vanished", context, p.bridge);
        BERTH_TRY_VOID_CTX(nl->set_link_attributes((*link)->index, p.mtu, kBridgeGroup), context);
    } else {
        auto group = read_file(fmt::format("/sys/class/net/{}/netdev_group", p.bridge));
        if (!group || trim(*group) != std::to_string(kBridgeGroup))
            return fail(EEXIST, "{}: bridge '{}' exists and is not a berth network bridge (group {})",
                        context, p.bridge, kBridgeGroup);
        if (p.mtu) BERTH_TRY_VOID_CTX(nl->set_link_attributes((*link)->index, p.mtu, std::nullopt), context);
    }
    int index = (*link)->index;
    auto addresses = nl->ipv4_addresses();
    if (!addresses) return fail(addresses.error().wrap(context));
    bool have = false;
    for (const auto& a : *addresses) {
        if (a.index == index && a.address == p.gateway)
            have = true;
        else if (a.index != index && subnets_overlap(a.address, p.subnet))
            return fail(EADDRINUSE, "{}: subnet {} overlaps {} on another interface (index {})", context,
                        format_ipv4_cidr(p.subnet), format_ipv4_cidr(a.address), a.index);
    }
    if (!have) BERTH_TRY_VOID_CTX(nl->add_address(index, p.gateway), context);
    if (p.gateway6) {
        // EEXIST: an earlier `up` put it there (network_up is idempotent).
        auto added = nl->add_address6(index, *p.gateway6);
        if (!added && added.error().code != EEXIST) return fail(added.error().wrap(context));
    }
    BERTH_TRY_VOID_CTX(nl->set_link(index, true), context);
    if (p.ip_forward) BERTH_TRY_VOID_CTX(write_file("/proc/sys/net/ipv4/ip_forward", "1\n"), context);
    if (p.ip_forward && p.gateway6)
        BERTH_TRY_VOID_CTX(write_file("/proc/sys/net/ipv6/conf/all/forwarding", "1\n"), context);
    auto nft = Nft::open();
    if (!nft) return fail(nft.error().wrap(context));
    auto applied = nft->run(p.nft_apply);
    if (!applied) return fail(applied.error().wrap(context));
    BERTH_TRY_VOID_CTX(dns_up(dns_plan_of(p)), context);
    rollback.done = true;
    return {};
}

Result<> network_down(const DeclaredNetworkPlan& p) {
    auto context = fmt::format("bring down network {}", quote(p.network));
    auto lock = lock_network_dir(network_run_dir(p.network), "up.lock");
    if (!lock) return fail(lock.error().wrap(context));
    BERTH_TRY_VOID_CTX(dns_down(dns_plan_of(p)), context);
    auto nft = Nft::open();
    if (!nft) return fail(nft.error().wrap(context));
    // "add" first: deleting a table that is not there is an error, and down must be idempotent.
    auto removed = nft->run(fmt::format("add table inet {}\n", p.nft_table) + p.nft_remove);
    if (!removed) return fail(removed.error().wrap(context));
    auto nl = Netlink::open();
    if (!nl) return fail(nl.error().wrap(context));
    auto link = nl->find_link(p.bridge);
    if (!link) return fail(link.error().wrap(context));
    if (*link && (*link)->kind == "bridge") BERTH_TRY_VOID_CTX(nl->delete_link(p.bridge), context);
    return {};
}

Result<> check_static_address(const config::Declaration& decl, size_t index, const AddressPool& pool) {
    const auto& members = decl.network.networks;
    if (index >= members.size() || members[index].address.empty()) return {};
    const std::string& requested = members[index].address;
    auto a = parse_ipv4(requested);
    std::string why;
    if (!a || !same_subnet(pool.subnet, *a) || !usable_host_address(Ipv4Cidr{*a, pool.subnet.prefix}))
        why = fmt::format("is not a host address in subnet {} of network {}", format_ipv4_cidr(pool.subnet),
                          quote(pool.network));
    else if (*a == pool.gateway)
        why = fmt::format("is the gateway of network {}", quote(pool.network));
    if (why.empty()) return {};
    auto at = decl.regions.find(fmt::format("network.networks.{}.address", index));
    std::string where = at != decl.regions.end()
                            ? fmt::format("{}:{}:{}: ", at->second.file, at->second.line, at->second.column)
                        : decl.source_path.empty() ? std::string()
                                                   : decl.source_path + ":1:1: ";
    return fail(EINVAL, "{}network.networks[{}].address = {} {}", where, index, quote(requested), why);
}

Result<std::vector<Joined>> join_networks(const config::Declaration& decl,
                                          const std::vector<std::string>& paths, bool bring_up) {
    std::vector<config::NetworkMembership> members = decl.network.networks;
    if (members.empty()) members.push_back({config::kDefaultNetwork, "", {}});
    std::vector<Joined> out;
    // Everything is loaded and checked before any network is brought up or any lease taken.
    std::vector<std::pair<DeclaredNetworkPlan, AddressPool>> planned;
    for (size_t i = 0; i < members.size(); ++i) {
        auto declared = config::load_network(members[i].network, config::SearchPaths{paths});
        if (!declared) return fail(declared.error());
        auto plan = plan_network(*declared);
        if (!plan) return fail(plan.error());
        auto pool = pool_of(*declared);
        if (!pool) return fail(pool.error());
        BERTH_TRY_VOID(check_static_address(decl, i, *pool));
        planned.emplace_back(std::move(*plan), std::move(*pool));
    }
    for (size_t i = 0; i < members.size(); ++i) {
        auto& [plan, pool] = planned[i];
        if (bring_up) BERTH_TRY_VOID(network_up(plan));
        auto address =
            acquire_address(pool, network_run_dir(members[i].network), decl.name, members[i].address);
        if (!address) return fail(address.error());
        Joined joined;
        joined.network = std::move(plan);
        joined.address = *address;
        joined.address6 = ipv6_of(pool, address->address);
        joined.link = static_cast<int>(i);
        joined.aliases = members[i].aliases;
        out.push_back(std::move(joined));
    }
    return out;
}

config::Declaration as_bridge_member(const config::Declaration& decl, const Joined& joined) {
    config::Declaration d = decl;
    d.network.mode = config::NetworkMode::Bridge;
    d.network.networks.clear();
    d.network.link = joined.link;
    d.network.bridge = joined.network.bridge;
    d.network.address = format_ipv4_cidr(joined.address);
    d.network.masquerade = false;
    // The first network is the way out (default routes) and where ports are published.
    if (joined.link == 0)
        d.network.gateway = format_ipv4(joined.network.gateway.address);
    else
        d.network.ports.clear();
    if (joined.address6 && joined.network.gateway6) {
        d.network.address6 = format_ipv6_cidr(*joined.address6);
        if (joined.link == 0) d.network.gateway6 = format_ipv6(joined.network.gateway6->address);
    }
    return d;
}

Result<std::vector<std::string>> release_all_addresses(const std::string& container) {
    std::vector<std::string> released;
    for (const auto& n : networks_with_run_dirs())
        if (BERTH_TRY(release_address(network_run_dir(n), container))) released.push_back(n);
    return released;
}

}  // namespace berth::network
