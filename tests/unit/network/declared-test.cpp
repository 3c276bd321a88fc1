// plan_network(): the bridge, gateway and nftables table of a declared network, from its declaration.
#include "network/declared.h"

#include <gtest/gtest.h>

#include "config/config.h"
#include "network/ipam.h"
#include "network/network.h"

using namespace berth;
using namespace berth::network;

namespace {

config::NetworkDeclaration app() {
    config::NetworkDeclaration d;
    d.name = "app";
    d.subnets = {"10.89.1.0/24"};
    return d;
}

}  // namespace

TEST(DeclaredNetwork, PlansABridgeWithTheGatewayIsolationAndMasquerade) {
    auto p = plan_network(app());
    ASSERT_TRUE(p) << p.error().what();
    EXPECT_EQ(p->bridge, "bn-app");
    EXPECT_EQ(format_ipv4_cidr(p->gateway), "10.89.1.1/24");
    EXPECT_TRUE(p->masquerade);
    EXPECT_TRUE(p->ip_forward);
    EXPECT_EQ(p->nft_table, "berth-net-app");
    EXPECT_EQ(
        p->nft_apply,
        "add table inet berth-net-app\n"
        "delete table inet berth-net-app\n"
        "add table inet berth-net-app\n"
        "add chain inet berth-net-app forward { type filter hook forward priority filter; policy accept; }\n"
        "add rule inet berth-net-app forward iifname \"bn-app\" oifgroup 48679 oifname != \"bn-app\" counter "
        "drop comment \"isolation\"\n"
        "add rule inet berth-net-app forward oifname \"bn-app\" iifgroup 48679 iifname != \"bn-app\" counter "
        "drop comment \"isolation\"\n"
        "add chain inet berth-net-app input { type filter hook input priority filter; policy accept; }\n"
        "add rule inet berth-net-app input iifname { \"lo\", \"bn-app\" } ip daddr 10.89.1.1 meta l4proto { "
        "tcp, "
        "udp } th dport 53 accept\n"
        "add rule inet berth-net-app input ip daddr 10.89.1.1 meta l4proto { tcp, udp } th dport 53 counter "
        "drop "
        "comment \"dns\"\n"
        "add chain inet berth-net-app postrouting { type nat hook postrouting priority srcnat; policy "
        "accept; }\n"
        "add rule inet berth-net-app postrouting ip saddr 10.89.1.0/24 oifname != \"bn-app\" masquerade\n");
    EXPECT_EQ(p->nft_remove, "delete table inet berth-net-app\n");
}

TEST(DeclaredNetwork, AnInternalNetworkDropsEverythingBeyondItsBridgeAndHasNoNat) {
    auto d = app();
    d.internal = true;
    d.gateway = "10.89.1.254";
    d.bridge = "mybr0";
    d.mtu = 1400;
    auto p = plan_network(d);
    ASSERT_TRUE(p) << p.error().what();
    EXPECT_EQ(p->bridge, "mybr0");
    EXPECT_EQ(format_ipv4_cidr(p->gateway), "10.89.1.254/24");
    EXPECT_EQ(p->mtu, 1400u);
    EXPECT_FALSE(p->masquerade);
    EXPECT_FALSE(p->ip_forward);
    EXPECT_NE(p->nft_apply.find("iifname \"mybr0\" oifname != \"mybr0\" counter drop comment \"internal\""),
              std::string::npos);
    EXPECT_NE(p->nft_apply.find("oifname \"mybr0\" iifname != \"mybr0\" counter drop comment \"internal\""),
              std::string::npos);
    EXPECT_EQ(p->nft_apply.find("masquerade"), std::string::npos);
    // DNS to the gateway stays open from the bridge: the network's own name server.
    EXPECT_NE(
        p->nft_apply.find("iifname { \"lo\", \"mybr0\" } ip daddr 10.89.1.254 meta l4proto { tcp, udp } th "
                          "dport 53 accept"),
        std::string::npos);
}

TEST(DeclaredNetwork, LongNamesGetDistinctBridgeNamesThatFit) {
    EXPECT_EQ(network_bridge_name("twelve-chars"), "bn-twelve-chars");
    auto a = network_bridge_name("backend-network-one"), b = network_bridge_name("backend-network-two");
    EXPECT_LE(a.size(), 15u);
    EXPECT_NE(a, b);
    EXPECT_EQ(a.substr(0, 9), "bn-backe-");
}

// issue #20: a dual-stack network's IPv6 addresses come from the IPv4 ones (network/ipam.h).
TEST(DeclaredNetwork, DerivesIpv6AddressesFromTheIpv4OnesAndMasqueradesBothFamilies) {
    auto d = app();
    d.subnets.push_back("fd00:89:1::/64");
    auto p = plan_network(d);
    ASSERT_TRUE(p) << p.error().what();
    ASSERT_TRUE(p->gateway6);
    EXPECT_EQ(format_ipv6_cidr(*p->gateway6), "fd00:89:1::a59:101/64");
    EXPECT_NE(p->nft_apply.find("add rule inet berth-net-app postrouting ip6 saddr fd00:89:1::/64 oifname != "
                                "\"bn-app\" masquerade\n"),
              std::string::npos)
        << p->nft_apply;
    auto pool = pool_of(d);
    ASSERT_TRUE(pool);
    auto six = ipv6_of(*pool, *parse_ipv4("10.89.1.5"));
    ASSERT_TRUE(six);
    EXPECT_EQ(format_ipv6_cidr(*six), "fd00:89:1::a59:105/64");
    EXPECT_FALSE(ipv6_of(*pool_of(app()), *parse_ipv4("10.89.1.5")));  // IPv4-only network
    EXPECT_FALSE(plan_network(app())->gateway6);
}

// ---- a container on several networks (issue #20) ----------------------------------------------

namespace {

config::NetworkDeclaration dual(const std::string& name, const std::string& v4, const std::string& v6) {
    config::NetworkDeclaration d;
    d.name = name;
    d.subnets = {v4, v6};
    return d;
}

Joined joined_on(const config::NetworkDeclaration& n, const std::string& address, int link,
                 std::vector<std::string> aliases = {}) {
    Joined j;
    j.network = *plan_network(n);
    auto pool = pool_of(n);
    j.address = Ipv4Cidr{*parse_ipv4(address), pool->subnet.prefix};
    j.address6 = ipv6_of(*pool, j.address.address);
    j.link = link;
    j.aliases = std::move(aliases);
    return j;
}

}  // namespace

// The plan of each link: eth0 on the first network with both default routes and the published
// ports, eth1 on the second with its own addresses only, each with a host end and an anti-spoofing
// chain of its own.
TEST(DeclaredNetwork, EachNetworkOfAContainerIsALinkAndOnlyTheFirstRoutesAndPublishes) {
    config::Declaration d;
    d.name = "web";
    d.network.mode = config::NetworkMode::Network;
    d.network.networks = {{"app", "", {}}, {"cache", "", {"front"}}};
    config::PortMapping port;
    port.host_port = 8080;
    port.container_port = 80;
    d.network.ports.push_back(port);
    auto app6 = dual("app", "10.89.1.0/24", "fd00:89:1::/64"),
         cache6 = dual("cache", "10.89.2.0/24", "fd00:89:2::/64");

    auto first = plan(as_bridge_member(d, joined_on(app6, "10.89.1.5", 0)));
    ASSERT_TRUE(first) << first.error().what();
    EXPECT_EQ(first->container_interface, "eth0");
    EXPECT_EQ(first->host_interface, "ve-web");
    EXPECT_EQ(first->bridge, "bn-app");
    EXPECT_EQ(format_ipv4_cidr(*first->container_address), "10.89.1.5/24");
    EXPECT_EQ(format_ipv4(*first->gateway), "10.89.1.1");
    EXPECT_EQ(format_ipv6_cidr(*first->container_address6), "fd00:89:1::a59:105/64");
    EXPECT_EQ(format_ipv6(*first->gateway6), "fd00:89:1::a59:101");
    EXPECT_EQ(first->ports.size(), 1u);
    EXPECT_EQ(first->spoof_chain, "c-web-spoof");
    EXPECT_FALSE(first->masquerade);

    auto second = plan(as_bridge_member(d, joined_on(cache6, "10.89.2.7", 1, {"front"})));
    ASSERT_TRUE(second) << second.error().what();
    EXPECT_EQ(second->container_interface, "eth1");
    EXPECT_EQ(second->host_interface, "v1-web");
    EXPECT_EQ(second->bridge, "bn-cache");
    EXPECT_EQ(format_ipv4_cidr(*second->container_address), "10.89.2.7/24");
    EXPECT_FALSE(second->gateway) << "one default route, through the first network";
    EXPECT_EQ(format_ipv6_cidr(*second->container_address6), "fd00:89:2::a59:207/64");
    EXPECT_FALSE(second->gateway6);
    EXPECT_TRUE(second->ports.empty()) << "ports are published on the first network";
    EXPECT_EQ(second->spoof_chain, "c-web-spoof1");
    EXPECT_NE(second->nft_apply.find("hook ingress device \"v1-web\""), std::string::npos)
        << second->nft_apply;
    EXPECT_NE(second->nft_apply.find("ip saddr 10.89.2.7 accept"), std::string::npos) << second->nft_apply;
    EXPECT_NE(second->nft_apply.find("ip6 saddr fd00:89:2::a59:207 accept"), std::string::npos);
    EXPECT_EQ(second->nft_apply.find("prerouting"), std::string::npos) << "no DNAT on the second link";
    EXPECT_EQ(second->nft_remove, "delete chain netdev berth c-web-spoof1\n");
    EXPECT_NE(first->container_mac, second->container_mac);

    // A hand-made second link with ports is refused, not half-published.
    auto with_ports = as_bridge_member(d, joined_on(cache6, "10.89.2.7", 1));
    with_ports.network.ports.push_back(port);
    auto refused = plan(with_ports);
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message.find("first network only"), std::string::npos)
        << refused.error().what();
}

TEST(DeclaredNetwork, TheHostEndsOfFurtherLinksHaveNamesNoOtherContainerGets) {
    EXPECT_EQ(host_interface_name("web", 1), "v1-web");
    EXPECT_EQ(host_interface_name("web", 12), "v12-web");
    EXPECT_NE(host_interface_name("web", 1), host_interface_name("web-1"));
    EXPECT_NE(host_interface_name("web", 1), host_interface_name("v1-web"));
    auto a = host_interface_name("database-primary", 1), b = host_interface_name("database-primary", 2);
    EXPECT_NE(a, b);
    EXPECT_LE(a.size(), 15u);
    EXPECT_LE(host_interface_name("database-primary", 10).size(), 15u);
    EXPECT_EQ(a.rfind("v1-datab-", 0), 0u) << a;
}

// A static address is checked against the network it is on, and the error points at where it
// was written.
TEST(DeclaredNetwork, AStaticAddressOutsideItsNetworksSubnetIsRefusedWithFileLineAndColumn) {
    const std::string text =
        "[container]\n"
        "rootfs = \"/srv/web\"\n"
        "command = [\"/bin/true\"]\n"
        "[network]\n"
        "networks = [\"app\",\n"
        "            { name = \"cache\", address = \"10.89.1.9\" }]\n";
    auto d = config::parse_declaration("web", {"/etc/berth/containers/web.toml", text});
    ASSERT_TRUE(d) << d.error().what();
    auto app_pool = pool_of(app()), cache_pool = pool_of(dual("cache", "10.89.2.0/24", "fd00:89:2::/64"));
    ASSERT_TRUE(app_pool && cache_pool);
    EXPECT_TRUE(check_static_address(*d, 0, *app_pool)) << "no static address: nothing to check";
    auto r = check_static_address(*d, 1, *cache_pool);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, EINVAL);
    EXPECT_EQ(r.error().message,
              "/etc/berth/containers/web.toml:6:41: network.networks[1].address = '10.89.1.9' is not a host "
              "address in subnet 10.89.2.0/24 of network 'cache'")
        << r.error().what();
    // In its subnet it passes; the gateway does not.
    d->network.networks[1].address = "10.89.2.9";
    EXPECT_TRUE(check_static_address(*d, 1, *cache_pool));
    d->network.networks[1].address = "10.89.2.1";
    auto gw = check_static_address(*d, 1, *cache_pool);
    ASSERT_FALSE(gw);
    EXPECT_NE(gw.error().message.find("web.toml:6:41: "), std::string::npos) << gw.error().what();
    EXPECT_NE(gw.error().message.find("gateway"), std::string::npos) << gw.error().what();
}
