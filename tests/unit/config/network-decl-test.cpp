// Network declarations (/etc/berth/networks/NAME.toml) and a container's [network] networks: the
// same search path, drop-ins, masking and FILE:LINE:COL errors as container declarations.
#include <gtest/gtest.h>
#include <unistd.h>

#include "basic/fs-util.h"
#include "basic/names.h"
#include "config/config.h"
#include "test-util.h"

using namespace berth;
using namespace berth::config;

namespace {

void put(const std::string& path, std::string_view text) {
    ASSERT_TRUE(mkdir_p(path.substr(0, path.rfind('/'))));
    ASSERT_TRUE(write_file(path, text));
}

std::string network_error(std::string_view text) {
    auto n = parse_network_declaration("app", SourceText{"app.toml", std::string(text)});
    EXPECT_FALSE(n) << "expected an error for:\n" << text;
    return n ? std::string() : n.error().what();
}

Result<Declaration> container(std::string_view network_section) {
    return parse_declaration(
        "web", SourceText{"web.toml", "[container]\nimage = \"busybox\"\n" + std::string(network_section)});
}

}  // namespace

TEST(NetworkDeclaration, ReadsEveryKey) {
    auto n = parse_network_declaration("app", SourceText{"app.toml",
                                                         "[network]\n"
                                                         "bridge = \"br-app\"\n"
                                                         "subnets = [\"10.89.1.0/24\", \"fd00:89:1::/64\"]\n"
                                                         "gateway = \"10.89.1.1\"\n"
                                                         "range = \"10.89.1.100-10.89.1.200\"\n"
                                                         "internal = true\n"
                                                         "mtu = 1400\n"
                                                         "dns = [\"192.0.2.53\", \"2001:db8::53\"]\n"});
    ASSERT_TRUE(n) << n.error().what();
    EXPECT_EQ(n->name, "app");
    EXPECT_EQ(n->bridge, "br-app");
    EXPECT_EQ(n->subnets, (std::vector<std::string>{"10.89.1.0/24", "fd00:89:1::/64"}));
    EXPECT_EQ(n->gateway, "10.89.1.1");
    EXPECT_EQ(n->range, "10.89.1.100-10.89.1.200");
    EXPECT_TRUE(n->internal);
    EXPECT_FALSE(n->masquerade.has_value());
    EXPECT_EQ(n->mtu, 1400u);
    EXPECT_EQ(n->dns, (std::vector<std::string>{"192.0.2.53", "2001:db8::53"}));
}

TEST(NetworkDeclaration, ReportsEachBadValueWithItsPosition) {
    EXPECT_EQ(
        network_error("[network]\nsubnets = [\"10.89.1.7/24\"]\n"),
        "app.toml:2:12: network.subnets[0] = '10.89.1.7/24' is not a subnet, expected a network address "
        "with prefix such as \"10.89.1.0/24\" (/8 to /30, host bits zero) or \"fd00:89:1::/64\" (/16 to "
        "/96, host bits zero, not link-local, multicast or loopback)");
    // IPv6: a container's address is the prefix + its IPv4 address, so at least 32 host bits.
    for (const char* bad : {"fd00:89:1::/112", "fd00:89:1::5/64", "fe80::/64", "ff02::/64", "fd00::/8"})
        EXPECT_NE(network_error(fmt::format("[network]\nsubnets = [\"10.89.1.0/24\", \"{}\"]\n", bad))
                      .find(fmt::format("app.toml:2:28: network.subnets[1] = '{}' is not a subnet", bad)),
                  std::string::npos)
            << bad;
    EXPECT_EQ(
        network_error("[network]\nsubnets = [\"10.89.1.0/24\"]\ngateway = \"10.89.2.1\"\n"),
        "app.toml:3:11: network.gateway = '10.89.2.1' is not a host address in 10.89.1.0/24, expected an "
        "IPv4 address of the subnet such as \"10.89.1.1\"");
    EXPECT_EQ(network_error("[network]\nsubnets = [\"10.89.1.0/24\"]\nrange = \"10.89.1.9-10.89.9.9\"\n"),
              "app.toml:3:9: network.range = '10.89.1.9-10.89.9.9' is not inside 10.89.1.0/24, expected "
              "\"A.B.C.D-E.F.G.H\" or \"A.B.C.D/N\" within the IPv4 subnet");
    EXPECT_EQ(network_error("[network]\nsubnets = [\"10.89.1.0/24\"]\ninternal = true\nmasquerade = true\n"),
              "app.toml:4:14: network.masquerade = true conflicts with internal = true (line 3), expected no "
              "outbound NAT on an internal network");
    EXPECT_EQ(
        network_error("[network]\nsubnet = [\"10.89.1.0/24\"]\n"),
        "app.toml:1:1: no network.subnets, expected subnets = [\"10.89.1.0/24\"] (one IPv4 subnet, and "
        "optionally one IPv6)\n"
        "app.toml:2:1: unknown key 'subnet' in [network], expected a known key; did you mean 'subnets'?");
    EXPECT_EQ(
        network_error("[network]\nsubnets = [\"fd00::/64\"]\n"),
        "app.toml:2:11: network.subnets has no IPv4 subnet, expected one IPv4 subnet (IPv6-only networks "
        "are not supported)");
    EXPECT_EQ(network_error("[network]\nsubnets = [\"10.89.1.0/24\"]\nmtu = 20\ndns = [\"resolver\"]\n"),
              "app.toml:3:7: network.mtu = 20 is out of range, expected an integer from 68 to 65535\n"
              "app.toml:4:8: network.dns[0] = 'resolver' is not an IP address, expected an upstream server "
              "such as \"192.0.2.53\" or \"2001:db8::53\"");
    EXPECT_NE(network_error("[network\n").find("app.toml:1:"), std::string::npos);
}

TEST(NetworkDeclaration, LoadsWithSearchPathDropInsAndMasking) {
    test::TempDir tmp;
    put(tmp / "etc/app.toml", "[network]\nsubnets = [\"10.89.1.0/24\"]\n");
    put(tmp / "usr/app.toml", "[network]\nsubnets = [\"10.99.1.0/24\"]\n");  // overridden by /etc
    put(tmp / "usr/app.toml.d/10-mtu.toml", "[network]\nmtu = 1400\n");
    put(tmp / "etc/app.toml.d/20-bad.toml", "\n[network]\ngateway = \"10.1.1.1\"\n");
    SearchPaths paths{{tmp / "etc", tmp / "usr"}};
    auto bad = load_network("app", paths);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().what().substr(0, (tmp / "etc/app.toml.d/20-bad.toml:3:11").size()),
              tmp / "etc/app.toml.d/20-bad.toml:3:11");

    ASSERT_EQ(::unlink((tmp / "etc/app.toml.d/20-bad.toml").c_str()), 0);
    auto n = load_network("app", paths);
    ASSERT_TRUE(n) << n.error().what();
    EXPECT_EQ(n->subnets, std::vector<std::string>{"10.89.1.0/24"});
    EXPECT_EQ(n->mtu, 1400u);
    EXPECT_EQ(n->source_path, tmp / "etc/app.toml");

    // The default network exists without a file; a declared one replaces it; /dev/null masks.
    auto all = load_all_networks(paths);
    ASSERT_EQ(all.size(), 2u);
    ASSERT_TRUE(all.at("default"));
    EXPECT_TRUE(all.at("default")->builtin);
    EXPECT_FALSE(load_network("nope", paths));
    ASSERT_EQ(::symlink("/dev/null", (tmp / "etc/app.toml").c_str()), -1);  // exists: unlink first
    ASSERT_EQ(::unlink((tmp / "etc/app.toml").c_str()), 0);
    ASSERT_EQ(::symlink("/dev/null", (tmp / "etc/app.toml").c_str()), 0);
    ASSERT_EQ(::symlink("/dev/null", (tmp / "etc/default.toml").c_str()), 0);
    auto masked = load_network("app", paths);
    ASSERT_FALSE(masked);
    EXPECT_EQ(masked.error().what(),
              fmt::format("network 'app' is masked ({} -> /dev/null): No such file or directory",
                          tmp / "etc/app.toml"));
    EXPECT_TRUE(load_all_networks(paths).empty());
    EXPECT_FALSE(load_network("default", paths));
}

TEST(ContainerNetworks, ListsNetworksWithAddressesAndAliasesAndRoundTrips) {
    auto d = container(
        "[network]\nnetworks = [\"app\", { name = \"db\", address = \"10.89.2.5\", aliases = [\"pg\", "
        "\"postgres\"] }]\nports = [\"8080:80\"]\n");
    ASSERT_TRUE(d) << d.error().what();
    EXPECT_EQ(d->network.mode, NetworkMode::Network);
    ASSERT_EQ(d->network.networks.size(), 2u);
    EXPECT_EQ(d->network.networks[0], (NetworkMembership{"app", "", {}}));
    EXPECT_EQ(d->network.networks[1], (NetworkMembership{"db", "10.89.2.5", {"pg", "postgres"}}));
    auto again = parse_declaration("web", SourceText{"canonical.toml", to_toml(*d)});
    ASSERT_TRUE(again) << again.error().what() << "\n" << to_toml(*d);
    EXPECT_EQ(again->network, d->network);

    auto plain = container("[network]\nmode = \"network\"\n");  // the default network
    ASSERT_TRUE(plain) << plain.error().what();
    EXPECT_EQ(plain->network.mode, NetworkMode::Network);
    EXPECT_TRUE(plain->network.networks.empty());
}

TEST(ContainerNetworks, RejectsContradictionsWithTheirPositions) {
    auto error = [](std::string_view section) {
        auto d = container(section);
        EXPECT_FALSE(d) << section;
        return d ? std::string() : d.error().what();
    };
    EXPECT_EQ(
        error("[network]\nmode = \"veth\"\nnetworks = [\"app\"]\n"),
        "web.toml:5:12: network.networks needs network.mode \"network\", expected no networks with mode "
        "'veth' or mode = \"network\"");
    EXPECT_EQ(
        error("[network]\nnetworks = [\"app\"]\naddress = \"10.0.0.2/24\"\n"),
        "web.toml:5:11: network.address does not apply to mode \"network\", expected it in the network's "
        "declaration (or networks = [{ name = ..., address = ... }])");
    EXPECT_EQ(error("[network]\nnetworks = [\"app\", \"app\"]\n"),
              "web.toml:4:20: network.networks[1] joins network 'app' again, expected each network once");
    EXPECT_EQ(error("[network]\nnetworks = [{ name = \"app\", address = \"10.0.0.300\" }]\n"),
              "web.toml:4:39: network.networks[0].address = '10.0.0.300' is invalid, expected a host's IPv4 "
              "address such as \"10.89.0.5\" (the prefix is the network's)");
    EXPECT_EQ(error("[network]\nnetworks = [{ address = \"10.0.0.3\" }]\n"),
              "web.toml:4:13: network.networks[0] has no name, expected name = \"NAME\"");
    EXPECT_EQ(
        error("[network]\nnetworks = [{ name = \"a/b\" }]\n"),
        "web.toml:4:22: network.networks[0] names network 'a/b', expected " + name_rule(NameKind::Container));
}
