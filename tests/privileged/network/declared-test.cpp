// Declared networks for real: bridges, gateway addresses and nftables tables brought up and down,
// containers (network namespaces attached as the runtime does, through a bridge-mode attach())
// on them, and traffic proving isolation. Names carry the test's pid; every network, netns and
// veth is removed even when an assertion fails (RAII guards).
#include "network/declared.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "basic/fs-util.h"
#include "basic/string-util.h"
#include "basic/unique.h"
#include "network/ipam.h"
#include "network/netlink.h"
#include "network/network.h"
#include "network/nft.h"
#include "test-util.h"

using namespace berth;
using namespace berth::network;

namespace {

void kill_and_reap(pid_t pid) {
    if (pid <= 0) return;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
}

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
    ~Netns() { kill_and_reap(pid_); }
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
    std::optional<Ipv6Cidr> address6;  // dual-stack networks
    Member(std::string n, const UpNetwork& net, std::vector<config::PortMapping> ports = {})
        : name(std::move(n)) {
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
        // As as_bridge_member() does on a dual-stack network.
        address6 = ipv6_of(net.pool, address.address);
        if (address6 && net.plan.gateway6) {
            d.network.address6 = format_ipv6_cidr(*address6);
            d.network.gateway6 = format_ipv6(net.plan.gateway6->address);
        }
        d.network.ports = std::move(ports);
        auto attached = attach(d, ns.pid());
        EXPECT_TRUE(attached) << attached.error().what();
        if (attached) attachment = std::move(*attached);
    }
    std::string ip() const { return format_ipv4(address.address); }
    std::string ip6() const { return address6 ? format_ipv6(address6->address) : ""; }
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

namespace {

// The payload of the dual-stack test: a TCP server (IPv4 and IPv6 on one socket) that answers
// each connection with the client's address as it sees it, then closes. It writes `ready` once
// listening.
constexpr const char* kWhoServer = R"(import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", int(sys.argv[1])))
s.listen(16)
open(sys.argv[2], "w").close()
while True:
    c, a = s.accept()
    c.sendall(a[0].removeprefix("::ffff:").encode())
    c.close()
)";
// Connects to HOST PORT and prints what the server said; exit status 1 when it cannot.
constexpr const char* kWhoClient = R"(import socket, sys
try:
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
    print(c.recv(100).decode(), end="")
except OSError as e:
    print(e, file=sys.stderr)
    sys.exit(1)
)";

// kWhoServer running in `ns`'s network namespace until destruction.
class WhoServer {
public:
    WhoServer(const Netns& ns, const std::string& dir, int port) {
        std::string ready = fmt::format("{}/ready-{}-{}", dir, ns.pid(), port);
        std::string script = dir + "/who-server.py", port_text = std::to_string(port);
        auto netns = ns.fd();
        // A server that ran before on this port in this namespace left the same file: without
        // this, the wait below ended at once and a client could find nothing listening yet (the
        // "refused" CI saw through the [::1] proxy, blamed first on IPv6 DAD: addresses are NODAD).
        ::unlink(ready.c_str());
        pid_ = ::fork();
        if (pid_ == 0) {
            if (::setns(netns.get(), CLONE_NEWNET) < 0) ::_exit(127);
            ::execl("/usr/bin/python3", "python3", script.c_str(), port_text.c_str(), ready.c_str(), nullptr);
            ::_exit(127);
        }
        for (int i = 0; i < 500 && !path_exists(ready); ++i) ::usleep(10000);
        EXPECT_TRUE(path_exists(ready)) << "server on port " << port << " did not start";
    }
    ~WhoServer() { kill_and_reap(pid_); }
    WhoServer(const WhoServer&) = delete;
    WhoServer& operator=(const WhoServer&) = delete;

private:
    pid_t pid_ = -1;
};

// What kWhoServer at host:port answered a client in `ns` (the host's netns when ns is null), or
// "" when the connection failed.
// The systemd-socket-proxyd processes (network/loopback-proxy.h) that connect to ADDRESS:...
std::vector<std::string> proxy_pids(const std::string& address) {
    std::vector<std::string> out;
    for (const auto& pid : list_directory("/proc")) {
        auto cmdline = read_file("/proc/" + pid + "/cmdline");
        if (cmdline && cmdline->rfind(kSocketProxyd, 0) == 0 &&
            cmdline->find(std::string(1, '\0') + address + ":") != std::string::npos)
            out.push_back(pid);
    }
    return out;
}
int proxies_to(const std::string& address) { return static_cast<int>(proxy_pids(address).size()); }

// [::1]:port can be bound (nothing listens there; TIME_WAIT connections do not count).
bool loopback6_port_free(int port) {
    UniqueFd s(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
    int one = 1;
    if (!s || ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) return false;
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(static_cast<uint16_t>(port));
    a.sin6_addr = in6addr_loopback;
    return s && ::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
}

std::string who(const std::string& dir, const Netns* ns, const std::string& host, int port) {
    std::string out = dir + "/answer";
    (void)::unlink(out.c_str());
    std::string enter = ns ? fmt::format("nsenter --net=/proc/{}/ns/net ", ns->pid()) : "";
    std::string line = fmt::format("{}/usr/bin/python3 {}/who-client.py {} {} > {} 2>/dev/null", enter, dir,
                                   host, port, out);
    if (::system(line.c_str()) != 0) return "";
    auto text = read_file(out);
    return text ? *text : "";
}

}  // namespace

// IPv6 on a declared network (issue #20): container to container over IPv6, published ports on
// both families reached from a peer beyond the host and from the host itself with the client's
// address preserved, an internal network without IPv6 egress, and nothing left after down.
TEST(DeclaredNetworks, CarryIpv6BetweenContainersAndToPublishedPortsOnBothFamilies) {
    ASSERT_EQ(::geteuid(), 0u) << "needs root";
    if (!path_exists("/proc/sys/net/ipv6/conf/all/forwarding")) GTEST_SKIP() << "this kernel has no IPv6";
    const int id = ::getpid() % 100000;
    const int k = ::getpid() % 200;
    const int port = 20000 + id % 20000, port6 = 40000 + id % 10000, port_lo = 50000 + id % 10000;
    // network_up() switches IPv6 forwarding on for good (as it documents); the test host gets its
    // setting back, since forwarding makes the kernel ignore router advertisements elsewhere.
    struct SysctlRestore {
        std::string path, value;
        ~SysctlRestore() { (void)write_file(path, value); }
    } forwarding{"/proc/sys/net/ipv6/conf/all/forwarding",
                 read_file("/proc/sys/net/ipv6/conf/all/forwarding").value_or("0\n")};
    test::TempDir tmpdir("berth-netv6");
    const std::string& tmp = tmpdir.path();
    ASSERT_TRUE(write_file(tmpdir / "who-server.py", kWhoServer));
    ASSERT_TRUE(write_file(tmpdir / "who-client.py", kWhoClient));
    auto declare = [&](std::string name, int octet, int v6, bool internal) {
        config::NetworkDeclaration d;
        d.name = std::move(name);
        d.subnets = {fmt::format("172.29.{}.{}/26", k, octet),
                     fmt::format("fd{:02x}:{:x}:{:x}::/64", v6, id >> 16, id & 0xffff)};
        d.internal = internal;
        return d;
    };
    auto app_decl = declare(fmt::format("a6{}", id), 0, 0xb6, false);
    auto internal_decl = declare(fmt::format("i6{}", id), 64, 0xb7, true);
    std::vector<DeclaredNetworkPlan> plans = {*plan_network(app_decl), *plan_network(internal_decl)};
    ASSERT_TRUE(plans[0].gateway6);

    // The host's "other address": a test bridge with an address of each family, and beyond it a
    // peer in its own netns.
    Netns peer;
    ASSERT_GT(peer.pid(), 0);
    std::string test_bridge = fmt::format("tb6{}", id), peer_link = fmt::format("pv6{}", id);
    struct LinkGuard {
        std::string name;
        ~LinkGuard() {
            if (auto nl = Netlink::open()) (void)nl->delete_link(name);
        }
    } bridge_guard{test_bridge}, peer_guard{peer_link};
    const std::string host4 = fmt::format("198.19.{}.1", k), peer4 = fmt::format("198.19.{}.2", k);
    const std::string host6 = fmt::format("fdb8:{:x}:{:x}::1", id >> 16, id & 0xffff);
    const std::string peer6 = fmt::format("fdb8:{:x}:{:x}::2", id >> 16, id & 0xffff);
    {
        auto nl = Netlink::open();
        ASSERT_TRUE(nl);
        ASSERT_TRUE(nl->create_bridge(test_bridge));
        auto bridge = nl->find_link(test_bridge);
        ASSERT_TRUE(bridge && *bridge);
        ASSERT_TRUE(nl->add_address((*bridge)->index, Ipv4Cidr{*parse_ipv4(host4), 24}));
        ASSERT_TRUE(nl->add_address6((*bridge)->index, Ipv6Cidr{*parse_ipv6(host6), 64}));
        auto peer_fd = peer.fd();
        ASSERT_TRUE(nl->create_veth(peer_link, "eth0", peer_fd.get()));
        auto link = nl->find_link(peer_link);
        ASSERT_TRUE(link && *link);
        ASSERT_TRUE(nl->set_link((*link)->index, true, (*bridge)->index));
        ASSERT_TRUE(nl->set_link((*bridge)->index, true));
        auto inside = Netlink::open_in(peer_fd.get());
        ASSERT_TRUE(inside);
        auto eth0 = inside->find_link("eth0");
        ASSERT_TRUE(eth0 && *eth0);
        ASSERT_TRUE(inside->add_address((*eth0)->index, Ipv4Cidr{*parse_ipv4(peer4), 24}));
        ASSERT_TRUE(inside->add_address6((*eth0)->index, Ipv6Cidr{*parse_ipv6(peer6), 64}));
        ASSERT_TRUE(inside->set_link((*eth0)->index, true));
        auto lo = inside->find_link("lo");
        ASSERT_TRUE(lo && *lo);
        ASSERT_TRUE(inside->set_link((*lo)->index, true));
    }

    std::string web6, db6;  // the containers' IPv6 addresses, for the checks after detach
    {
        UpNetwork app(app_decl, tmpdir / "app"), internal(internal_decl, tmpdir / "int");
        ASSERT_TRUE(network_up(app.plan));  // idempotent with the IPv6 address already there
        config::PortMapping published{"", static_cast<uint16_t>(port), 80, "tcp"};
        config::PortMapping on6{"::", static_cast<uint16_t>(port6), 80, "tcp"},
            on_lo{"::1", static_cast<uint16_t>(port_lo), 80, "tcp"};
        Member web(fmt::format("w6{}", id), app, {published}), db(fmt::format("d6{}", id), app, {on6, on_lo});
        Member hermit(fmt::format("h6{}", id), internal);
        ASSERT_FALSE(::testing::Test::HasFailure());
        ASSERT_FALSE(web.ip6().empty());
        web6 = web.ip6();
        db6 = db.ip6();

        // Container to container: ping and TCP over IPv6, the client's own address seen.
        EXPECT_EQ(web.ns.run("busybox ping -c1 -W2 " + db.ip6()), 0);
        {
            WhoServer server(db.ns, tmp, 80);
            EXPECT_EQ(who(tmp, &web.ns, db.ip6(), 80), web.ip6());
        }

        // The published port, on both families, with the client's address preserved.
        WhoServer server(web.ns, tmp, 80);
        EXPECT_EQ(who(tmp, &peer, host6, port), peer6);
        EXPECT_EQ(who(tmp, &peer, host4, port), peer4);
        // From the host itself: its other addresses (output-chain DNAT) and 127.0.0.1
        // (route_localnet; masqueraded to the gateway, the loopback address cannot leave).
        EXPECT_EQ(who(tmp, nullptr, host6, port), host6);
        EXPECT_EQ(who(tmp, nullptr, host4, port), host4);
        EXPECT_EQ(who(tmp, nullptr, "127.0.0.1", port), format_ipv4(app.plan.gateway.address));
        // ::1 cannot be DNATed (no route_localnet for IPv6): a loopback proxy (loopback-proxy.h)
        // connects from the host's side of the link, the network's gateway.
        const std::string gateway6 = format_ipv6(app.plan.gateway6->address);
        EXPECT_EQ(who(tmp, nullptr, "::1", port), gateway6);
        EXPECT_EQ(proxies_to(web6), 1);
        for (const auto& pid : proxy_pids(web6)) {
            auto status = read_file("/proc/" + pid + "/status").value_or("");
            EXPECT_NE(status.find("\nUid:\t65534\t65534\t65534\t65534\n"), std::string::npos)
                << "the proxy runs as nobody: " << status;
            EXPECT_NE(status.find("\nNoNewPrivs:\t1\n"), std::string::npos);
        }
        {
            // [::]:P and [::1]:P of another container: ::1 answers; [::] also on the host's
            // other address, with the client's address.
            WhoServer db_server(db.ns, tmp, 80);
            EXPECT_EQ(who(tmp, nullptr, "::1", port6), gateway6);
            EXPECT_EQ(who(tmp, nullptr, "::1", port_lo), gateway6);
            EXPECT_EQ(who(tmp, &peer, host6, port6), peer6);
            EXPECT_EQ(who(tmp, nullptr, host6, port6), host6);
            EXPECT_EQ(who(tmp, &peer, host6, port_lo), "") << "published on ::1 only";
            EXPECT_EQ(proxies_to(db6), 2);
        }

        // An internal network: no IPv6 egress, counted.
        uint64_t before = dropped(internal.plan.nft_table, "internal");
        EXPECT_NE(hermit.ns.run("busybox ping -c1 -W1 " + peer6), 0);
        EXPECT_GT(dropped(internal.plan.nft_table, "internal"), before);
    }

    // Detached: no loopback proxy is left, and the ports on ::1 are free again.
    EXPECT_EQ(proxies_to(web6), 0);
    EXPECT_EQ(proxies_to(db6), 0);
    for (int p : {port, port6, port_lo}) EXPECT_TRUE(loopback6_port_free(p)) << p;
    // Down: no bridge, table, IPv6 address or port chain of these networks remains.
    for (const auto& p : plans) {
        EXPECT_FALSE(link_exists(p.bridge)) << p.bridge;
        EXPECT_EQ(nft_list("tables").find(p.nft_table), std::string::npos) << p.nft_table;
    }
    EXPECT_EQ(nft_list("ruleset").find(fmt::format("c-w6{}-", id)), std::string::npos);
    auto inet6 = read_file("/proc/net/if_inet6");
    ASSERT_TRUE(inet6);
    for (const auto& p : plans) {
        std::string prefix = format_ipv6(p.subnet6->address);
        for (const auto& line : split(*inet6, '\n')) {
            auto hex = line.substr(0, 16);  // the /64 in hex
            std::string want;
            for (int i = 0; i < 8; ++i) want += fmt::format("{:02x}", p.subnet6->address.bytes[i]);
            EXPECT_NE(hex, want) << prefix << " still on the host: " << line;
        }
    }
}

TEST(NetworkPlan, ProxiesTcpOnIpv6LoopbackRefusesUdpThereAndIpv6WithoutAnIpv6Address) {
    config::Declaration d;
    d.name = "web";
    d.network.mode = config::NetworkMode::Bridge;
    d.network.bridge = "bn-app";
    d.network.address = "10.89.1.5/24";
    d.network.ports = {config::PortMapping{"::", 8080, 80, "tcp"}};
    auto p = plan(d);
    ASSERT_FALSE(p);
    EXPECT_NE(p.error().message.find("needs the container's IPv6 address"), std::string::npos)
        << p.error().message;
    d.network.address6 = "fd00:89:1::a59:105/64";
    d.network.gateway6 = "fd00:89:1::a59:101";
    p = plan(d);
    ASSERT_TRUE(p) << p.error().message;
    EXPECT_NE(
        p->nft_apply.find("add rule ip6 berth c-web-prerouting fib daddr type local tcp dport 8080 dnat to "
                          "[fd00:89:1::a59:105]:80"),
        std::string::npos)
        << p->nft_apply;
    EXPECT_NE(p->nft_apply.find("ether type ip6 ip6 saddr fd00:89:1::a59:105 accept"), std::string::npos);
    EXPECT_EQ(p->nft_apply.find("add rule ip berth c-web-prerouting"),
              std::string::npos);  // [::] is IPv6 only
    ASSERT_EQ(p->loopback6_ports.size(), 1u) << "[::] includes ::1: its loopback proxy";
    EXPECT_EQ(p->loopback6_ports[0].host_port, 8080);
    EXPECT_EQ(p->loopback6_ports[0].target, "fd00:89:1::a59:105:80");
    // [::1]: the proxy only, no DNAT rule (it could not work).
    d.network.ports = {config::PortMapping{"::1", 8080, 80, "tcp"}};
    p = plan(d);
    ASSERT_TRUE(p) << p.error().message;
    ASSERT_EQ(p->loopback6_ports.size(), 1u);
    EXPECT_EQ(p->nft_apply.find("add rule ip6 berth c-web-prerouting"), std::string::npos) << p->nft_apply;
    // Without an IPv6 address, [::1] and both families reach the container's IPv4 address.
    config::Declaration v4 = d;
    v4.network.address6.clear();
    v4.network.gateway6.clear();
    v4.network.ports = {config::PortMapping{"::1", 8080, 80, "tcp"}, config::PortMapping{"", 8081, 81, "tcp"},
                        config::PortMapping{"", 8082, 82, "udp"}};
    p = plan(v4);
    ASSERT_TRUE(p) << p.error().message;
    ASSERT_EQ(p->loopback6_ports.size(), 2u) << "TCP only";
    EXPECT_EQ(p->loopback6_ports[0].target, "10.89.1.5:80");
    EXPECT_EQ(p->loopback6_ports[1].target, "10.89.1.5:81");
    // UDP on ::1: no proxy for it, refused with the reason.
    d.network.ports = {config::PortMapping{"::1", 5353, 53, "udp"}};
    p = plan(d);
    ASSERT_FALSE(p);
    EXPECT_NE(p.error().message.find("port '[::1]:5353:53/udp': UDP cannot be published on ::1"),
              std::string::npos)
        << p.error().message;
}
