// dns.h, the pure half: which upstream servers a network's dnsmasq forwards to, its command line,
// and the hosts-directory entries berth writes for containers.
#include "network/dns.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "network/declared.h"

using namespace berth;
using namespace berth::network;

TEST(Dns, UpstreamsAreTheDeclaredServersElseTheHostsWithoutLoopbackStubs) {
    const std::string host = "# generated\nnameserver 127.0.0.53\nnameserver 10.255.255.53\nsearch lan\n";
    EXPECT_EQ(upstream_servers({"9.9.9.9"}, host, ""), std::vector<std::string>{"9.9.9.9"});
    EXPECT_EQ(upstream_servers({}, host, ""), std::vector<std::string>{"10.255.255.53"});
    // systemd-resolved's stub only: the servers it forwards to.
    EXPECT_EQ(upstream_servers({}, "nameserver 127.0.0.53\noptions edns0\n",
                               "nameserver 192.0.2.1\nnameserver ::1\n"),
              std::vector<std::string>{"192.0.2.1"});
    // Nothing but a stub: dnsmasq runs on the host, where the stub answers.
    EXPECT_EQ(upstream_servers({}, "nameserver 127.0.0.53\n", ""), std::vector<std::string>{"127.0.0.53"});
    EXPECT_TRUE(upstream_servers({}, "", "").empty());
}

TEST(Dns, DnsmasqListensOnTheGatewayOnlyAndReadsTheNetworksHostsDirectory) {
    config::NetworkDeclaration d;
    d.name = "app";
    d.subnets = {"10.89.1.0/24"};
    auto net = plan_network(d);
    ASSERT_TRUE(net) << net.error().what();
    auto p = plan_dns(*net, {"192.0.2.1", "192.0.2.2"}, "/run/berth/networks/app");
    EXPECT_EQ(p.hosts_dir, "/run/berth/networks/app/hosts");
    EXPECT_EQ(p.pid_file, "/run/berth/networks/app/dnsmasq.pid");
    auto has = [&](const std::string& arg) {
        return std::find(p.argv.begin(), p.argv.end(), arg) != p.argv.end();
    };
    EXPECT_EQ(p.argv.front(), "dnsmasq");
    for (auto arg : {"--conf-file=/dev/null", "--no-hosts", "--no-resolv", "--bind-interfaces",
                     "--listen-address=10.89.1.1", "--except-interface=lo", "--domain-needed",
                     "--pid-file=/run/berth/networks/app/dnsmasq.pid",
                     "--hostsdir=/run/berth/networks/app/hosts", "--server=192.0.2.1", "--server=192.0.2.2"})
        EXPECT_TRUE(has(arg)) << arg;
    // Never every interface, never the loopback.
    EXPECT_FALSE(std::any_of(p.argv.begin(), p.argv.end(),
                             [](const std::string& a) { return a.rfind("--interface", 0) == 0; }));
}

TEST(Dns, AHostsEntryHasTheAddressAndEachNameOnce) {
    EXPECT_EQ(hosts_entry(*parse_ipv4("10.89.1.5"), {"db", "pg", "db", "", "postgres"}),
              "10.89.1.5\tdb pg postgres\n");
    // Dual-stack: the same names on a second line, for AAAA.
    EXPECT_EQ(hosts_entry(*parse_ipv4("10.89.1.5"), {"db", "pg"}, parse_ipv6("fd00:89:1::a59:105")),
              "10.89.1.5\tdb pg\nfd00:89:1::a59:105\tdb pg\n");
}

// Issue #20: a container on several networks asks a resolver of its own, in its network namespace
// on 127.0.0.11, that knows the names of each of its networks and nothing else, and forwards the
// rest to its first network's dnsmasq.
TEST(Dns, AMultiHomedContainersResolverReadsEachOfItsNetworksAndForwardsToTheFirst) {
    ::setenv("BERTH_RUN_DIR", "/run/berth-test", 1);
    auto p = plan_container_resolver("web", {"app", "cache"}, *parse_ipv4("10.89.1.1"));
    ::unsetenv("BERTH_RUN_DIR");
    EXPECT_EQ(p.pid_file, "/run/berth-test/resolvers/web.pid");
    EXPECT_EQ(p.hosts_dirs, (std::vector<std::string>{"/run/berth-test/networks/app/hosts",
                                                      "/run/berth-test/networks/cache/hosts"}));
    EXPECT_EQ(p.argv, (std::vector<std::string>{
                          "dnsmasq", "--conf-file=/dev/null", "--no-hosts", "--no-resolv",
                          "--bind-interfaces", "--listen-address=127.0.0.11", "--domain-needed",
                          "--bogus-priv", "--no-negcache", "--pid-file=/run/berth-test/resolvers/web.pid",
                          "--hostsdir=/run/berth-test/networks/app/hosts",
                          "--hostsdir=/run/berth-test/networks/cache/hosts", "--server=10.89.1.1"}));
}
