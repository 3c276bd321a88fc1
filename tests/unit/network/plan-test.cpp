#include <gtest/gtest.h>

#include "network/network.h"

using namespace berth;
using namespace berth::network;
using config::NetworkMode;

namespace {
config::Declaration decl(const std::string& name, NetworkMode mode) {
    config::Declaration d;
    d.name = name;
    d.network.mode = mode;
    return d;
}
config::PortMapping port(uint16_t host, uint16_t container, std::string proto = "tcp",
                         std::string addr = "") {
    config::PortMapping p;
    p.host_address = std::move(addr);
    p.host_port = host;
    p.container_port = container;
    p.protocol = std::move(proto);
    return p;
}
std::string error_of(const config::Declaration& d) {
    auto p = plan(d);
    EXPECT_FALSE(p) << "plan() accepted the declaration";
    return p ? std::string() : p.error().what();
}
}  // namespace

TEST(Ipv4, ParsesAndFormatsDottedQuadsAndPrefixes) {
    auto a = parse_ipv4_cidr("10.0.0.2/24", 32);
    ASSERT_TRUE(a);
    EXPECT_EQ(format_ipv4_cidr(*a), "10.0.0.2/24");
    EXPECT_EQ(format_ipv4(network_of(*a)), "10.0.0.0");
    EXPECT_EQ(parse_ipv4_cidr("10.0.0.2", 24)->prefix, 24);
    for (const char* bad : {"10.0.0", "10.0.0.256", "10.0.0.2.1", "a.b.c.d", "010.0.0.1", "10..0.1", ""})
        EXPECT_FALSE(parse_ipv4(bad)) << bad;
    EXPECT_FALSE(parse_ipv4_cidr("10.0.0.1/33", 24));
    EXPECT_TRUE(subnets_overlap(*parse_ipv4_cidr("10.88.0.1/30", 0), *parse_ipv4_cidr("10.88.0.0/16", 0)));
    EXPECT_FALSE(subnets_overlap(*parse_ipv4_cidr("10.88.0.1/30", 0), *parse_ipv4_cidr("10.88.0.5/30", 0)));
}

TEST(InterfaceName, IsVeDashNameWhenItFits) {
    EXPECT_EQ(host_interface_name("web"), "ve-web");
    EXPECT_EQ(host_interface_name("abcdefghijkl"), "ve-abcdefghijkl");  // exactly 15
}

TEST(InterfaceName, LongNamesAreShortenedWithAHashAndStayDistinct) {
    auto a = host_interface_name("database-primary");
    auto b = host_interface_name("database-replica");
    EXPECT_EQ(a.size(), 15u);
    EXPECT_EQ(b.size(), 15u);
    EXPECT_EQ(a, "ve-datab-34e3af");
    EXPECT_NE(a, b);
    EXPECT_EQ(a, host_interface_name("database-primary"));  // stable across runs
}

TEST(InterfaceName, CharactersTheKernelRefusesAreReplaced) {
    auto n = host_interface_name("a:b c");
    EXPECT_EQ(n.find_first_of(": /"), std::string::npos);
    EXPECT_LE(n.size(), 15u);
}

TEST(Plan, ModeNoneAndHostCreateNothing) {
    auto none = plan(decl("web", NetworkMode::None));
    ASSERT_TRUE(none) << none.error().what();
    EXPECT_TRUE(none->host_interface.empty());
    EXPECT_TRUE(none->nft_apply.empty());
    EXPECT_TRUE(none->nft_remove.empty());
    EXPECT_FALSE(none->container_mac);
    auto host = plan(decl("web", NetworkMode::Host));
    ASSERT_TRUE(host);
    EXPECT_FALSE(host->container_address);
}

TEST(Plan, VethWithoutAddressesTakesAStableSlash30FromThePool) {
    auto p = plan(decl("web", NetworkMode::Veth));
    ASSERT_TRUE(p) << p.error().what();
    EXPECT_EQ(p->host_interface, "ve-web");
    EXPECT_EQ(p->container_interface, "host0");
    ASSERT_TRUE(p->container_address && p->host_address && p->gateway);
    EXPECT_TRUE(p->pool_address);
    EXPECT_EQ(p->container_address->prefix, 30);
    EXPECT_EQ(p->container_address->address.value, p->host_address->address.value + 1);
    EXPECT_EQ(*p->gateway, p->host_address->address);
    EXPECT_TRUE(subnets_overlap(*p->container_address, *parse_ipv4_cidr("10.88.0.0/16", 0)));
    EXPECT_EQ(plan(decl("web", NetworkMode::Veth))->container_address, p->container_address);
    EXPECT_NE(plan(decl("db", NetworkMode::Veth))->container_address, p->container_address);
}

TEST(Plan, VethHostEndDefaultsToTheFirstOtherHostOfTheSubnet) {
    auto d = decl("web", NetworkMode::Veth);
    d.network.address = "10.0.0.2/24";
    auto p = plan(d);
    ASSERT_TRUE(p) << p.error().what();
    EXPECT_EQ(format_ipv4_cidr(*p->host_address), "10.0.0.1/24");
    EXPECT_EQ(format_ipv4(*p->gateway), "10.0.0.1");
    d.network.address = "10.0.0.1/24";
    EXPECT_EQ(format_ipv4_cidr(*plan(d)->host_address), "10.0.0.2/24");
    d.network.host_address = "10.0.0.9";
    d.network.gateway = "10.0.0.254";
    p = plan(d);
    ASSERT_TRUE(p) << p.error().what();
    EXPECT_EQ(format_ipv4_cidr(*p->host_address), "10.0.0.9/24");
    EXPECT_EQ(format_ipv4(*p->gateway), "10.0.0.254");
}

TEST(Plan, BadAddressesAreRefusedWithTheContainerName) {
    auto d = decl("web", NetworkMode::Veth);
    d.network.address = "10.0.0.300/24";
    EXPECT_NE(error_of(d).find("container 'web'"), std::string::npos);
    d.network.address = "10.0.0.0/24";  // network address
    EXPECT_NE(error_of(d).find("cannot be a host's address"), std::string::npos);
    d.network.address = "10.0.0.2/24";
    d.network.host_address = "10.0.0.2/24";
    EXPECT_NE(error_of(d).find("address clash"), std::string::npos);
    d.network.host_address = "10.0.1.1/24";
    EXPECT_NE(error_of(d).find("same subnet"), std::string::npos);
    d.network.host_address = "";
    d.network.address = "10.0.0.2/32";
    EXPECT_NE(error_of(d).find("no room"), std::string::npos);
}

TEST(Plan, BridgeModeNeedsABridgeAndTakesNoHostAddress) {
    auto d = decl("web", NetworkMode::Bridge);
    EXPECT_NE(error_of(d).find("needs bridge"), std::string::npos);
    d.network.bridge = "br0";
    d.network.address = "192.168.50.10/24";
    d.network.gateway = "192.168.50.1";
    auto p = plan(d);
    ASSERT_TRUE(p) << p.error().what();
    EXPECT_EQ(p->bridge, "br0");
    EXPECT_FALSE(p->host_address);
    EXPECT_FALSE(p->forwarding);
    d.network.host_address = "192.168.50.1/24";
    EXPECT_NE(error_of(d).find("host_address"), std::string::npos);
}

TEST(Plan, PortsNeedVethOrBridge) {
    auto d = decl("web", NetworkMode::Host);
    d.network.ports.push_back(port(8080, 80));
    EXPECT_NE(error_of(d).find("ports need mode"), std::string::npos);
    d.network.mode = NetworkMode::None;
    EXPECT_NE(error_of(d).find("ports need mode"), std::string::npos);
}

TEST(Plan, PortsAreValidated) {
    auto d = decl("web", NetworkMode::Veth);
    d.network.ports = {port(8080, 80, "sctp")};
    EXPECT_NE(error_of(d).find("protocol"), std::string::npos);
    d.network.ports = {port(0, 80)};
    EXPECT_NE(error_of(d).find("1..65535"), std::string::npos);
    d.network.ports = {port(8080, 80, "tcp", "localhost")};
    EXPECT_NE(error_of(d).find("not an IPv4 address"), std::string::npos);
    d.network.ports = {port(8080, 80), port(8080, 81, "tcp", "127.0.0.1")};
    EXPECT_NE(error_of(d).find("published twice"), std::string::npos);
    d.network.ports = {port(8080, 80), port(8080, 80, "udp")};
    EXPECT_TRUE(plan(d));
}

// A template's instance "web@1": '@' would start a set reference in nft's syntax; its chains are
// c-web/1-* ('/' is in no container name, so no other container shares them).
TEST(Plan, AnInstancesChainsAreNamedWithoutTheAt) {
    auto instance = decl("web@1", NetworkMode::Veth);
    instance.network.ports = {port(8080, 80)};
    instance.network.address = "10.0.0.2/24";
    auto planned = plan(instance);
    ASSERT_TRUE(planned) << planned.error().what();
    for (const auto* script : {&planned->nft_apply, &planned->nft_remove}) {
        EXPECT_NE(script->find("c-web/1-prerouting"), std::string::npos) << *script;
        std::string unquoted;  // names in "..." (comments, interfaces) may hold anything
        bool quoted = false;
        for (char c : *script) {
            if (c == '"') quoted = !quoted;
            if (!quoted) unquoted += c;
        }
        EXPECT_EQ(unquoted.find("web@1"), std::string::npos) << *script;
    }
}

TEST(Plan, PublishedPortsRenderDnatInPreroutingAndOutputAndLoopbackMasquerade) {
    auto d = decl("web", NetworkMode::Veth);
    d.network.address = "10.0.0.2/24";
    d.network.ports = {port(8080, 80), port(5353, 53, "udp", "192.0.2.1")};
    auto p = plan(d);
    ASSERT_TRUE(p) << p.error().what();
    const auto& s = p->nft_apply;
    EXPECT_NE(s.find("create element ip berth published { tcp . 8080 comment \"web\" }"), std::string::npos)
        << s;
    EXPECT_NE(s.find("create element ip berth published { udp . 5353 comment \"web\" }"), std::string::npos)
        << s;
    EXPECT_NE(s.find("create chain ip berth c-web-prerouting { type nat hook prerouting"), std::string::npos)
        << s;
    EXPECT_NE(
        s.find("add rule ip berth c-web-prerouting fib daddr type local tcp dport 8080 dnat to 10.0.0.2:80"),
        std::string::npos)
        << s;
    EXPECT_NE(
        s.find("add rule ip berth c-web-output fib daddr type local tcp dport 8080 dnat to 10.0.0.2:80"),
        std::string::npos)
        << s;
    EXPECT_NE(s.find("add rule ip berth c-web-output ip daddr 192.0.2.1 udp dport 5353 dnat to 10.0.0.2:53"),
              std::string::npos)
        << s;
    EXPECT_NE(s.find("oifname \"ve-web\" ip daddr 10.0.0.2 ct status dnat ip saddr { 127.0.0.0/8, 10.0.0.2 } "
                     "masquerade"),
              std::string::npos)
        << s;
    EXPECT_EQ(p->localnet_interface, "ve-web");
    const auto& r = p->nft_remove;
    for (const char* line :
         {"delete chain ip berth c-web-prerouting", "delete chain ip berth c-web-output",
          "delete chain ip berth c-web-postrouting", "delete element ip berth published { tcp . 8080 }",
          "delete element ip berth published { udp . 5353 }"})
        EXPECT_NE(r.find(line), std::string::npos) << line;
    EXPECT_EQ(r.find("delete table"), std::string::npos) << "removal must never touch other containers";
}

TEST(Plan, PortsOnANonLoopbackAddressNeedNoRouteLocalnet) {
    auto d = decl("web", NetworkMode::Veth);
    d.network.ports = {port(8080, 80, "tcp", "192.0.2.1")};
    auto p = plan(d);
    ASSERT_TRUE(p);
    EXPECT_TRUE(p->localnet_interface.empty());
}

TEST(Plan, BridgePortsMasqueradeOnTheBridge) {
    auto d = decl("web", NetworkMode::Bridge);
    d.network.bridge = "br0";
    d.network.address = "192.168.50.10/24";
    d.network.ports = {port(8080, 80)};
    auto p = plan(d);
    ASSERT_TRUE(p) << p.error().what();
    EXPECT_NE(p->nft_apply.find("oifname \"br0\""), std::string::npos);
    EXPECT_EQ(p->localnet_interface, "br0");
}

TEST(HostsFile, NamesTheContainerAtItsAddress) {
    auto d = decl("web", NetworkMode::Veth);
    auto h = hosts_file(d, "10.88.0.2");
    EXPECT_NE(h.find("127.0.0.1\tlocalhost\n"), std::string::npos);
    EXPECT_NE(h.find("10.88.0.2\tweb\n"), std::string::npos);
    d.hostname = "front";
    EXPECT_NE(hosts_file(d, "").find("127.0.1.1\tfront\n"), std::string::npos);
    EXPECT_EQ(hosts_file(decl("web", NetworkMode::Host), ""), "");
}

TEST(Plan, VethMasqueradesByDefaultInItsOwnPostroutingChainAndBridgeDoesNot) {
    auto d = decl("web", NetworkMode::Veth);
    d.network.address = "10.0.0.2/24";
    auto p = plan(d);
    ASSERT_TRUE(p) << p.error().what();
    EXPECT_TRUE(p->masquerade);
    EXPECT_FALSE(p->ip_forward);
    const std::string spoof = antispoof_script(*p, *p->container_mac);
    EXPECT_EQ(
        p->nft_apply,
        "add table ip berth\n"
        "create chain ip berth c-web-postrouting { type nat hook postrouting priority 100; policy accept; }\n"
        "add rule ip berth c-web-postrouting ip saddr 10.0.0.2 oifname != \"ve-web\" masquerade\n" +
            spoof);
    EXPECT_EQ(p->nft_remove,
              "delete chain ip berth c-web-postrouting\ndelete chain netdev berth c-web-spoof\n");

    d.network.masquerade = false;
    p = plan(d);
    ASSERT_TRUE(p);
    EXPECT_FALSE(p->masquerade);
    EXPECT_EQ(p->nft_apply, spoof) << "anti-spoofing only";
    EXPECT_EQ(p->nft_remove, "delete chain netdev berth c-web-spoof\n");

    auto b = decl("web", NetworkMode::Bridge);
    b.network.bridge = "br0";
    b.network.address = "192.168.50.10/24";
    p = plan(b);
    ASSERT_TRUE(p);
    EXPECT_FALSE(p->masquerade) << "a bridge is the user's own network";
    EXPECT_EQ(p->nft_apply.find(" ip berth "), std::string::npos) << p->nft_apply;
    b.network.masquerade = true;
    p = plan(b);
    ASSERT_TRUE(p);
    EXPECT_NE(p->nft_apply.find("ip saddr 192.168.50.10 oifname != \"br0\" masquerade"), std::string::npos)
        << p->nft_apply;
}

TEST(Plan, MasqueradeJoinsThePublishedPortsChainAndIsRemovedWithIt) {
    auto d = decl("web", NetworkMode::Veth);
    d.network.address = "10.0.0.2/24";
    d.network.ports = {port(8080, 80)};
    auto p = plan(d);
    ASSERT_TRUE(p) << p.error().what();
    const auto& s = p->nft_apply;
    EXPECT_EQ(s.find("create chain ip berth c-web-postrouting"),
              s.rfind("create chain ip berth c-web-postrouting"))
        << "one postrouting chain: " << s;
    EXPECT_NE(
        s.find("add rule ip berth c-web-postrouting ip saddr 10.0.0.2 oifname != \"ve-web\" masquerade"),
        std::string::npos)
        << s;
    EXPECT_NE(p->nft_remove.find("delete chain ip berth c-web-postrouting"), std::string::npos);
}

TEST(Plan, MasqueradeAndIpForwardNeedALinkAndMasqueradeNeedsAnAddress) {
    auto d = decl("web", NetworkMode::None);
    d.network.masquerade = true;
    EXPECT_NE(error_of(d).find("masquerade is only used with mode"), std::string::npos) << error_of(d);
    d.network.masquerade = false;
    EXPECT_TRUE(plan(d)) << "false says nothing to do";
    d.network.ip_forward = true;
    EXPECT_NE(error_of(d).find("ip_forward is only used with mode"), std::string::npos) << error_of(d);

    auto b = decl("web", NetworkMode::Bridge);
    b.network.bridge = "br0";
    b.network.masquerade = true;
    EXPECT_NE(error_of(b).find("masquerade needs the container's address"), std::string::npos) << error_of(b);
    b.network.ip_forward = true;
    b.network.masquerade = false;
    auto p = plan(b);
    ASSERT_TRUE(p) << p.error().what();
    EXPECT_TRUE(p->ip_forward);
}

// ---- anti-spoofing -----------------------------------------------------------------------------

TEST(Plan, TheContainerEndGetsAMacFromItsAddressAndAnAntiSpoofingChainOnTheHostEnd) {
    auto d = decl("web", NetworkMode::Veth);
    d.network.address = "10.0.0.2/24";
    d.network.masquerade = false;
    auto p = plan(d);
    ASSERT_TRUE(p) << p.error().what();
    ASSERT_TRUE(p->container_mac);
    EXPECT_EQ(format_mac(*p->container_mac), "02:be:0a:00:00:02");
    EXPECT_EQ(p->spoof_chain, "c-web-spoof");
    // EUI-64 of 02:be:0a:00:00:02: 00be:0aff:fe00:0002.
    EXPECT_EQ(
        p->nft_apply,
        "add table netdev berth\n"
        "create chain netdev berth c-web-spoof { type filter hook ingress device \"ve-web\" priority -500; "
        "policy drop; }\n"
        "add rule netdev berth c-web-spoof ether saddr != 02:be:0a:00:00:02 counter drop\n"
        "add rule netdev berth c-web-spoof ether type arp arp htype 1 arp ptype ip arp hlen 6 arp plen 4 "
        "arp saddr ether 02:be:0a:00:00:02 arp saddr ip { 10.0.0.2, 0.0.0.0 } accept\n"
        "add rule netdev berth c-web-spoof ether type ip ip saddr 10.0.0.2 udp sport 67 counter drop\n"
        "add rule netdev berth c-web-spoof ether type ip ip saddr 10.0.0.2 icmp type redirect counter drop\n"
        "add rule netdev berth c-web-spoof ether type ip ip saddr 10.0.0.2 accept\n"
        "add rule netdev berth c-web-spoof ether type ip6 icmpv6 type { nd-router-advert, nd-redirect, "
        "router-renumbering } counter drop\n"
        "add rule netdev berth c-web-spoof ether type ip6 udp sport 547 counter drop\n"
        "add rule netdev berth c-web-spoof ether type ip6 icmpv6 type nd-neighbor-advert @th,128,64 != "
        "0x00be0afffe000002 counter drop\n"
        "add rule netdev berth c-web-spoof ether type ip6 ip6 saddr :: icmpv6 type nd-neighbor-solicit "
        "@th,128,64 0x00be0afffe000002 accept\n"
        "add rule netdev berth c-web-spoof ether type ip6 ip6 saddr :: icmpv6 type { mld-listener-report, "
        "mld2-listener-report } accept\n"
        "add rule netdev berth c-web-spoof ether type ip6 ip6 saddr & ::ffff:ffff:ffff:ffff == "
        "::be:aff:fe00:2 accept\n"
        "add rule netdev berth c-web-spoof counter drop comment \"spoofed\"\n");
    EXPECT_EQ(p->nft_remove, "delete chain netdev berth c-web-spoof\n");
    EXPECT_EQ(p->nft_remove.find("delete table"), std::string::npos)
        << "removal must never touch other containers";
}

TEST(Plan, ABridgedContainerWithoutAnAddressGetsItsMacAtAttachAndSendsNoIpv4) {
    auto b = decl("web", NetworkMode::Bridge);
    b.network.bridge = "br0";
    auto p = plan(b);
    ASSERT_TRUE(p) << p.error().what();
    EXPECT_FALSE(p->container_mac) << "nothing to derive it from: attach() picks a random one";
    EXPECT_EQ(p->nft_apply, "") << "the chain needs the MAC";
    EXPECT_EQ(p->nft_remove, "delete chain netdev berth c-web-spoof\n") << "but is removed all the same";
    auto s = antispoof_script(*p, Mac{{0x06, 0x11, 0x22, 0x33, 0x44, 0x55}});
    EXPECT_NE(s.find("device \"ve-web\""), std::string::npos) << s;
    EXPECT_NE(s.find("ether saddr != 06:11:22:33:44:55 counter drop"), std::string::npos) << s;
    EXPECT_EQ(s.find("arp"), std::string::npos) << "no address, no ARP: " << s;
    EXPECT_EQ(s.find("ip saddr"), std::string::npos) << "no address, no IPv4: " << s;
    EXPECT_NE(s.find("ip6 saddr & ::ffff:ffff:ffff:ffff == ::411:22ff:fe33:4455 accept"), std::string::npos)
        << s;

    b.network.address = "192.168.50.10/24";
    p = plan(b);
    ASSERT_TRUE(p);
    EXPECT_EQ(format_mac(*p->container_mac), "02:be:c0:a8:32:0a");
    EXPECT_NE(p->nft_apply.find("device \"ve-web\""), std::string::npos) << "the host end, not the bridge";
}

TEST(Mac, IsFormattedAndRandomOnesAreLocalUnicast) {
    EXPECT_EQ(format_mac(mac_for(*parse_ipv4("10.88.0.2"))), "02:be:0a:58:00:02");
    for (int i = 0; i < 8; ++i) {
        auto m = random_mac();
        EXPECT_EQ(m.bytes[0] & 0x03, 0x02) << format_mac(m);
    }
}
