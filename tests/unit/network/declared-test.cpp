// plan_network(): the bridge, gateway and nftables table of a declared network, from its declaration.
#include "network/declared.h"

#include <gtest/gtest.h>

#include "network/ipam.h"

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
