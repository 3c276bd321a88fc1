// The address allocator of declared networks: defaults, static addresses, collisions, exhaustion,
// stability across restarts and release, with the lease directory in a temporary directory.
#include "network/ipam.h"

#include <gtest/gtest.h>

#include <set>

#include "basic/fs-util.h"
#include "config/config.h"
#include "test-util.h"

using namespace berth;
using namespace berth::network;

namespace {

config::NetworkDeclaration declared(std::string subnet, std::string range = "", std::string gateway = "") {
    config::NetworkDeclaration d;
    d.name = "app";
    d.subnets = {std::move(subnet), "fd00:89::/64"};
    d.range = std::move(range);
    d.gateway = std::move(gateway);
    return d;
}

AddressPool pool(std::string subnet, std::string range = "", std::string gateway = "") {
    auto p = pool_of(declared(std::move(subnet), std::move(range), std::move(gateway)));
    EXPECT_TRUE(p) << p.error().what();
    return p ? *p : AddressPool{};
}

Ipv4 ip(std::string_view text) { return *parse_ipv4(text); }

// The address as text, or the error: comparable and readable in a failure.
std::string show(const Result<Ipv4>& r) { return r ? format_ipv4(*r) : "error: " + r.error().what(); }
std::string show(const Result<Ipv4Cidr>& r) {
    return r ? format_ipv4_cidr(*r) : "error: " + r.error().what();
}

}  // namespace

TEST(Ipam, ThePoolDefaultsToTheFirstHostAsGatewayAndTheWholeSubnet) {
    auto p = pool("10.89.1.0/24");
    EXPECT_EQ(format_ipv4_cidr(p.subnet), "10.89.1.0/24");
    EXPECT_EQ(format_ipv4(p.gateway), "10.89.1.1");
    EXPECT_EQ(format_ipv4(p.first), "10.89.1.1");
    EXPECT_EQ(format_ipv4(p.last), "10.89.1.254");
    auto r = pool("10.89.1.0/24", "10.89.1.0/25", "10.89.1.254");
    EXPECT_EQ(format_ipv4(r.gateway), "10.89.1.254");
    EXPECT_EQ(format_ipv4(r.first), "10.89.1.1");
    EXPECT_EQ(format_ipv4(r.last), "10.89.1.127");
    auto dash = pool("10.89.1.0/24", "10.89.1.100-10.89.1.110");
    EXPECT_EQ(format_ipv4(dash.first), "10.89.1.100");
    EXPECT_EQ(format_ipv4(dash.last), "10.89.1.110");
    auto none = pool_of(config::NetworkDeclaration{});
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().code, EINVAL);
}

TEST(Ipam, NeverHandsOutTheGatewayOrAnAddressSomeoneHolds) {
    auto p = pool("10.89.1.0/29");  // hosts .1-.6, gateway .1
    std::map<std::string, Ipv4> leases;
    std::set<uint32_t> seen;
    for (int i = 0; i < 5; ++i) {
        std::string name = "c" + std::to_string(i);
        auto a = choose_address(p, leases, name, "");
        ASSERT_TRUE(a) << a.error().what();
        EXPECT_NE(*a, p.gateway);
        EXPECT_TRUE(seen.insert(a->value).second) << format_ipv4(*a) << " twice";
        leases[name] = *a;
    }
    auto full = choose_address(p, leases, "c5", "");
    ASSERT_FALSE(full);
    EXPECT_EQ(full.error().code, ENOSPC);
    EXPECT_EQ(full.error().message, "network 'app': no free address in 10.89.1.1-10.89.1.6 (5 leases)");
    // A holder keeps its own address even when the range is full.
    EXPECT_EQ(show(choose_address(p, leases, "c3", "")), format_ipv4(leases["c3"]));
}

TEST(Ipam, AStaticAddressMustBeInTheSubnetAndFree) {
    auto p = pool("10.89.1.0/24", "10.89.1.100-10.89.1.200");
    std::map<std::string, Ipv4> leases = {{"db", ip("10.89.1.5")}};
    EXPECT_EQ(show(choose_address(p, {}, "web", "")), show(choose_address(p, {}, "web", "")));
    EXPECT_EQ(show(choose_address(p, leases, "web", "10.89.1.6")), "10.89.1.6");  // outside the range is fine
    EXPECT_EQ(show(choose_address(p, leases, "db", "10.89.1.5")), "10.89.1.5");
    auto taken = choose_address(p, leases, "web", "10.89.1.5");
    ASSERT_FALSE(taken);
    EXPECT_EQ(taken.error().code, EADDRINUSE);
    EXPECT_EQ(taken.error().message, "network 'app': address '10.89.1.5' is taken by container 'db'");
    auto gateway = choose_address(p, leases, "web", "10.89.1.1");
    ASSERT_FALSE(gateway);
    EXPECT_EQ(gateway.error().message, "network 'app': address '10.89.1.1' is the network's gateway");
    for (const char* bad : {"10.89.2.5", "10.89.1.255", "10.89.1.0", "nonsense"}) {
        auto a = choose_address(p, leases, "web", bad);
        ASSERT_FALSE(a) << bad;
        EXPECT_EQ(a.error().code, EINVAL);
    }
}

TEST(Ipam, LeasesAreStableAcrossRestartsAndReleasedAtRemoval) {
    test::TempDir tmp;
    auto p = pool("10.89.3.0/24");
    std::string dir = tmp / "networks/app";
    auto web = acquire_address(p, dir, "web", "");
    ASSERT_TRUE(web) << web.error().what();
    EXPECT_EQ(web->prefix, 24);
    auto db = acquire_address(p, dir, "db", "");
    ASSERT_TRUE(db);
    EXPECT_NE(web->address, db->address);
    // A restart (the same name again) gets the same address, and so does a fresh host (an empty
    // directory, as after a reboot) when nothing else took it: the first probe is a hash.
    EXPECT_EQ(show(acquire_address(p, dir, "web", "")), show(web));
    test::TempDir other;
    EXPECT_EQ(show(acquire_address(p, other / "app", "web", "")), show(web));
    auto leases = read_leases(dir);
    ASSERT_TRUE(leases);
    EXPECT_EQ(leases->size(), 2u);
    EXPECT_EQ(leases->at("web"), web->address);
    // Released at removal: the next container whose probe lands there may take it.
    ASSERT_TRUE(release_address(dir, "web"));
    ASSERT_TRUE(release_address(dir, "web"));  // twice: nothing to do
    EXPECT_EQ(read_leases(dir)->count("web"), 0u);
    auto taken = acquire_address(p, dir, "other", format_ipv4(web->address));
    EXPECT_TRUE(taken) << taken.error().what();
    auto bad = acquire_address(p, dir, "../escape", "");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, EINVAL);
}
