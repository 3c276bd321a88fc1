// Declared networks for real: bridges, gateway addresses and nftables tables brought up and down,
// containers (network namespaces attached as the runtime does, through a bridge-mode attach())
// on them, and traffic proving isolation. Names carry the test's pid; every network, netns and
// veth is removed even when an assertion fails (RAII guards).
#include "network/declared.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "basic/fs-util.h"
#include "basic/string-util.h"
#include "network/ipam.h"
#include "network/netlink.h"
#include "network/network.h"
#include "network/nft.h"
#include "test-util.h"

using namespace berth;
using namespace berth::network;

namespace {

// A process in a fresh network namespace, alive until destruction.
class Netns {
public:
    Netns() {
        int ready[2];
        if (::pipe2(ready, O_CLOEXEC) < 0) return;
        pid_ = ::fork();
        if (pid_ == 0) {
            ::close(ready[0]);
            if (::unshare(CLONE_NEWNET) < 0) ::_exit(1);
            char c = 1;
            (void)!::write(ready[1], &c, 1);
            for (;;) ::pause();
        }
        ::close(ready[1]);
        char c;
        if (::read(ready[0], &c, 1) != 1) pid_ = -1;
        ::close(ready[0]);
    }
    ~Netns() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }
    Netns(const Netns&) = delete;
    Netns& operator=(const Netns&) = delete;
    pid_t pid() const { return pid_; }
    UniqueFd fd() const {
        return UniqueFd(::open(fmt::format("/proc/{}/ns/net", pid_).c_str(), O_RDONLY | O_CLOEXEC));
    }
    // Runs `command` (a shell line) inside; returns its exit status.
    int run(const std::string& command) const {
        std::string line =
            fmt::format("nsenter --net=/proc/{}/ns/net sh -c '{}' >/dev/null 2>&1", pid_, command);
        return ::system(line.c_str());
    }

private:
    pid_t pid_ = -1;
};

// A declared network, up for the life of the guard.
struct UpNetwork {
    DeclaredNetworkPlan plan;
    AddressPool pool;
    std::string leases;
    explicit UpNetwork(const config::NetworkDeclaration& decl, const std::string& lease_dir)
        : leases(lease_dir) {
        plan = *plan_network(decl);
        pool = *pool_of(decl);
        auto up = network_up(plan);
        EXPECT_TRUE(up) << up.error().what();
    }
    ~UpNetwork() { (void)network_down(plan); }
};

// A container on a declared network: its netns attached to the network's bridge with an address
// from the allocator, as the runtime does for mode = "network".
struct Member {
    std::string name;
    Netns ns;
    NetworkAttachment attachment;
    Ipv4Cidr address;
    Member(std::string n, const UpNetwork& net) : name(std::move(n)) {
        auto a = acquire_address(net.pool, net.leases, name, "");
        EXPECT_TRUE(a) << a.error().what();
        if (!a) return;
        address = *a;
        config::Declaration d;
        d.name = name;
        d.network.mode = config::NetworkMode::Bridge;
        d.network.bridge = net.plan.bridge;
        d.network.address = format_ipv4_cidr(address);
        d.network.gateway = format_ipv4(net.plan.gateway.address);
        auto attached = attach(d, ns.pid());
        EXPECT_TRUE(attached) << attached.error().what();
        if (attached) attachment = std::move(*attached);
    }
    std::string ip() const { return format_ipv4(address.address); }
};

std::string nft_list(const std::string& what) {
    auto nft = Nft::open();
    if (!nft) return "";
    auto out = nft->run("list " + what + "\n");
    return out ? *out : "";
}

// The packets counted by the rule of `table`'s forward chain commented `comment`.
uint64_t dropped(const std::string& table, const std::string& comment) {
    uint64_t total = 0;
    for (const auto& line : split(nft_list("table inet " + table), '\n')) {
        if (line.find("comment \"" + comment + "\"") == std::string::npos) continue;
        auto at = line.find("packets ");
        if (at != std::string::npos) total += std::stoull(line.substr(at + 8));
    }
    return total;
}

bool link_exists(const std::string& name) { return path_exists("/sys/class/net/" + name); }

}  // namespace

TEST(DeclaredNetworks, IsolateNetworksKeepInternalOnesInsideAndLeaveNothingWhenDown) {
    ASSERT_EQ(::geteuid(), 0u) << "needs root";
    const int id = ::getpid() % 100000;
    const int k = ::getpid() % 200;
    test::TempDir tmp("berth-netdecl");
    auto declare = [&](std::string name, std::string subnet, bool internal) {
        config::NetworkDeclaration d;
        d.name = std::move(name);
        d.subnets = {std::move(subnet)};
        d.internal = internal;
        return d;
    };
    auto app_decl = declare(fmt::format("a{}", id), fmt::format("172.30.{}.0/26", k), false);
    auto other_decl = declare(fmt::format("o{}", id), fmt::format("172.30.{}.64/26", k), false);
    auto internal_decl = declare(fmt::format("i{}", id), fmt::format("172.30.{}.128/26", k), true);
    std::vector<DeclaredNetworkPlan> plans = {*plan_network(app_decl), *plan_network(other_decl),
                                              *plan_network(internal_decl)};

    // A peer beyond the host: its own netns behind a veth with a /30 of its own.
    Netns peer;
    ASSERT_GT(peer.pid(), 0);
    std::string peer_link = fmt::format("pe{}", id);
    Ipv4Cidr peer_host{*parse_ipv4(fmt::format("198.18.{}.1", k)), 30};
    Ipv4Cidr peer_addr{*parse_ipv4(fmt::format("198.18.{}.2", k)), 30};
    struct LinkGuard {
        std::string name;
        ~LinkGuard() {
            if (auto nl = Netlink::open()) (void)nl->delete_link(name);
        }
    } peer_guard{peer_link};
    {
        auto nl = Netlink::open();
        ASSERT_TRUE(nl);
        auto peer_fd = peer.fd();
        ASSERT_TRUE(nl->create_veth(peer_link, "eth0", peer_fd.get()));
        auto link = nl->find_link(peer_link);
        ASSERT_TRUE(link && *link);
        ASSERT_TRUE(nl->add_address((*link)->index, peer_host));
        ASSERT_TRUE(nl->set_link((*link)->index, true));
        auto inside = Netlink::open_in(peer_fd.get());
        ASSERT_TRUE(inside);
        auto eth0 = inside->find_link("eth0");
        ASSERT_TRUE(eth0 && *eth0);
        ASSERT_TRUE(inside->add_address((*eth0)->index, peer_addr));
        ASSERT_TRUE(inside->set_link((*eth0)->index, true));
    }

    {
        UpNetwork app(app_decl, tmp / "app"), other(other_decl, tmp / "other"),
            internal(internal_decl, tmp / "int");
        // `up` again is harmless (the unit's ExecStart after a daemon-reload).
        ASSERT_TRUE(network_up(app.plan));
        Member web(fmt::format("w{}", id), app), db(fmt::format("d{}", id), app);
        Member stranger(fmt::format("s{}", id), other), hermit(fmt::format("h{}", id), internal);
        ASSERT_FALSE(::testing::Test::HasFailure());

        EXPECT_EQ(web.ns.run("busybox ping -c1 -W2 " + db.ip()), 0);
        // Beyond the host: masqueraded from app; never from the internal network.
        EXPECT_EQ(web.ns.run("busybox ping -c1 -W2 " + format_ipv4(peer_addr.address)), 0);
        EXPECT_NE(hermit.ns.run("busybox ping -c1 -W1 " + format_ipv4(peer_addr.address)), 0);
        EXPECT_GT(dropped(internal.plan.nft_table, "internal"), 0u);
        // Between networks: nothing either way.
        EXPECT_NE(stranger.ns.run("busybox ping -c1 -W1 " + web.ip()), 0);
        EXPECT_NE(web.ns.run("busybox ping -c1 -W1 " + stranger.ip()), 0);
        EXPECT_GT(dropped(app.plan.nft_table, "isolation") + dropped(other.plan.nft_table, "isolation"), 0u);
    }

    // Down: no bridge, address, route or table of these networks remains.
    for (const auto& p : plans) {
        EXPECT_FALSE(link_exists(p.bridge)) << p.bridge;
        EXPECT_EQ(nft_list("tables").find(p.nft_table), std::string::npos) << p.nft_table;
    }
    auto nl = Netlink::open();
    ASSERT_TRUE(nl);
    auto addresses = nl->ipv4_addresses();
    ASSERT_TRUE(addresses);
    for (const auto& a : *addresses)
        for (const auto& p : plans)
            EXPECT_FALSE(subnets_overlap(a.address, p.subnet)) << format_ipv4_cidr(a.address);
    EXPECT_TRUE(network_down(plans[0]));  // twice: nothing to do
}
