// attach() for real: a child process unshares its network namespace the way the runtime's payload
// does, the test attaches it, then proves the result with TCP traffic and checks that destroying
// the attachment leaves nothing of this test behind.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>

#include "basic/string-util.h"
#include "network/netlink.h"
#include "network/network.h"
#include "network/nft.h"
#include "test-util.h"

using namespace berth;
using namespace berth::network;
using config::NetworkMode;

namespace {

// A process in a fresh network namespace, kept alive until destruction (like the payload, which
// waits for the supervisor before it goes on).
class NetnsChild {
public:
    NetnsChild() {
        int ready[2], hold[2];
        if (::pipe2(ready, O_CLOEXEC) < 0 || ::pipe2(hold, O_CLOEXEC) < 0) return;
        pid_ = ::fork();
        if (pid_ == 0) {
            ::close(ready[0]);
            ::close(hold[1]);
            if (::unshare(CLONE_NEWNET) < 0) ::_exit(1);
            char c = 1;
            if (::write(ready[1], &c, 1) != 1) ::_exit(1);
            while (::read(hold[0], &c, 1) > 0) {
            }
            ::_exit(0);
        }
        ::close(ready[1]);
        ::close(hold[0]);
        hold_.reset(hold[1]);
        char c;
        bool ok = ::read(ready[0], &c, 1) == 1;
        ::close(ready[0]);
        if (!ok) stop();
    }
    ~NetnsChild() { stop(); }
    pid_t pid() const { return pid_; }
    void stop() {
        if (pid_ <= 0) return;
        hold_.reset();
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }
    UniqueFd netns() const {
        return UniqueFd(::open(fmt::format("/proc/{}/ns/net", pid_).c_str(), O_RDONLY | O_CLOEXEC));
    }

private:
    pid_t pid_ = -1;
    UniqueFd hold_;
};

// A socket created inside the child's netns (sockets keep their netns), by a short-lived thread
// so the test's own thread never leaves the host netns.
UniqueFd socket_in(const NetnsChild& child, int type = SOCK_STREAM) {
    UniqueFd out;
    std::thread t([&] {
        auto ns = child.netns();
        if (!ns || ::setns(ns.get(), CLONE_NEWNET) < 0) return;
        out.reset(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
    });
    t.join();
    return out;
}

UniqueFd host_socket(int type = SOCK_STREAM) { return UniqueFd(::socket(AF_INET, type | SOCK_CLOEXEC, 0)); }

sockaddr_in make_addr(const std::string& ip, uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
    return a;
}

void set_timeouts(int fd) {
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// Binds + listens `listener` on ip:port.
::testing::AssertionResult listen_on(int listener, const std::string& ip, uint16_t port) {
    int one = 1;
    ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    auto a = make_addr(ip, port);
    if (::bind(listener, reinterpret_cast<::sockaddr*>(&a), sizeof a) < 0)
        return ::testing::AssertionFailure() << "bind " << ip << ":" << port << ": " << strerror(errno);
    if (::listen(listener, 4) < 0) return ::testing::AssertionFailure() << "listen: " << strerror(errno);
    return ::testing::AssertionSuccess();
}

// Connects `client` to ip:port, where `listener` must receive the connection; sends a message each
// way. Returns the peer address the listener saw.
::testing::AssertionResult exchange(int client, int listener, const std::string& ip, uint16_t port,
                                    std::string* seen_peer = nullptr) {
    set_timeouts(client);
    auto a = make_addr(ip, port);
    if (::connect(client, reinterpret_cast<::sockaddr*>(&a), sizeof a) < 0)
        return ::testing::AssertionFailure() << "connect " << ip << ":" << port << ": " << strerror(errno);
    sockaddr_in peer{};
    socklen_t len = sizeof peer;
    set_timeouts(listener);
    UniqueFd conn(::accept4(listener, reinterpret_cast<::sockaddr*>(&peer), &len, SOCK_CLOEXEC));
    if (!conn) return ::testing::AssertionFailure() << "accept: " << strerror(errno);
    set_timeouts(conn.get());
    char buf[16] = {};
    if (::send(client, "ping", 4, 0) != 4 || ::recv(conn.get(), buf, sizeof buf, 0) != 4 ||
        std::string(buf, 4) != "ping")
        return ::testing::AssertionFailure() << "ping did not arrive";
    if (::send(conn.get(), "pong", 4, 0) != 4 || ::recv(client, buf, sizeof buf, 0) != 4 ||
        std::string(buf, 4) != "pong")
        return ::testing::AssertionFailure() << "pong did not come back";
    if (seen_peer) {
        char text[INET_ADDRSTRLEN];
        *seen_peer = ::inet_ntop(AF_INET, &peer.sin_addr, text, sizeof text);
    }
    return ::testing::AssertionSuccess();
}

bool link_exists(const std::string& name) { return ::if_nametoindex(name.c_str()) != 0; }

// What the berth table holds for container `name`: its chains and its port claims.
// (and the netdev table: its anti-spoofing chain).
std::vector<std::string> nft_leftovers(const std::string& name) {
    std::vector<std::string> out;
    auto nft = Nft::open(true);
    if (!nft) return {"cannot open nftables"};
    for (std::string family : {"ip", "netdev"}) {
        auto listing = nft->run("list table " + family + " berth");
        if (!listing) continue;  // no table at all
        auto doc = nlohmann::json::parse(*listing);
        for (auto& item : doc["nftables"]) {
            if (item.contains("chain") &&
                item["chain"]["name"].get<std::string>().rfind("c-" + name + "-", 0) == 0)
                out.push_back((family == "ip" ? "chain " : "netdev chain ") +
                              item["chain"]["name"].get<std::string>());
            if (item.contains("set"))
                for (auto& e : item["set"].value("elem", nlohmann::json::array()))
                    if (e.contains("elem") && e["elem"].value("comment", "") == name)
                        out.push_back("element " + e.dump());
        }
    }
    return out;
}

std::vector<AddressInfo> addresses_in(const NetnsChild& child) {
    auto ns = child.netns();
    auto nl = Netlink::open_in(ns.get());
    if (!nl) return {};
    auto a = nl->ipv4_addresses();
    return a ? *a : std::vector<AddressInfo>{};
}

std::optional<LinkInfo> link_in(const NetnsChild& child, const std::string& name) {
    auto ns = child.netns();
    auto nl = Netlink::open_in(ns.get());
    if (!nl) return std::nullopt;
    auto l = nl->find_link(name);
    return l ? *l : std::nullopt;
}

// Unique per test process: names, a 10.231.X.0/24 block and host ports below the ephemeral range.
struct Unique {
    pid_t pid = ::getpid();
    std::string name(char tag) const { return fmt::format("n{}{}", pid, tag); }
    std::string subnet(int slot, int host) const {
        return fmt::format("10.231.{}.{}", pid % 250, slot * 4 + host);
    }
    uint16_t port(int k) const { return static_cast<uint16_t>(20000 + (pid % 2000) * 6 + k); }
};

config::Declaration declaration(const std::string& name, NetworkMode mode) {
    config::Declaration d;
    d.name = name;
    d.network.mode = mode;
    return d;
}

class NetworkAttach : public ::testing::Test {
protected:
    // attach() turns on net.ipv4.ip_forward for ports reachable from other hosts (as Docker
    // does); the tests put the host back as they found it.
    void SetUp() override {
        BERTH_REQUIRE_ROOT();
        if (auto f = read_file("/proc/sys/net/ipv4/ip_forward")) ip_forward_ = *f;
    }
    void TearDown() override {
        if (!ip_forward_.empty()) (void)write_file("/proc/sys/net/ipv4/ip_forward", ip_forward_);
    }
    Unique u;
    std::string ip_forward_;
};

}  // namespace

TEST_F(NetworkAttach, ModeNoneBringsLoopbackUpInTheContainer) {
    NetnsChild child;
    ASSERT_GT(child.pid(), 0);
    {
        auto client = socket_in(child);
        auto a = make_addr("127.0.0.1", 9);
        ASSERT_LT(::connect(client.get(), reinterpret_cast<::sockaddr*>(&a), sizeof a), 0)
            << "lo should start down";
    }
    auto att = attach(declaration(u.name('l'), NetworkMode::None), child.pid());
    ASSERT_TRUE(att) << att.error().what();
    EXPECT_EQ(att->container_address(), "");
    auto listener = socket_in(child), client = socket_in(child);
    ASSERT_TRUE(listen_on(listener.get(), "127.0.0.1", 8080));
    EXPECT_TRUE(exchange(client.get(), listener.get(), "127.0.0.1", 8080));
}

TEST_F(NetworkAttach, ModeHostChangesNothing) {
    auto d = declaration(u.name('h'), NetworkMode::Host);
    auto att = attach(d, ::getpid());
    ASSERT_TRUE(att) << att.error().what();
    EXPECT_EQ(att->container_address(), "");
}

TEST_F(NetworkAttach, VethConnectsContainerAndHostBothWaysAndGoesAwayWithTheAttachment) {
    NetnsChild child;
    ASSERT_GT(child.pid(), 0);
    auto d = declaration(u.name('v'), NetworkMode::Veth);
    d.network.address = u.subnet(0, 2) + "/30";
    std::string host_ip = u.subnet(0, 1), container_ip = u.subnet(0, 2);
    std::string ifname = host_interface_name(d.name);
    {
        auto att = attach(d, child.pid());
        ASSERT_TRUE(att) << att.error().what();
        EXPECT_EQ(att->container_address(), container_ip);
        EXPECT_TRUE(link_exists(ifname));

        auto host0 = link_in(child, "host0");
        ASSERT_TRUE(host0) << "no host0 in the container";
        EXPECT_TRUE(host0->flags & IFF_UP);
        bool has_address = false;
        for (auto& a : addresses_in(child))
            if (a.index == host0->index && format_ipv4_cidr(a.address) == container_ip + "/30")
                has_address = true;
        EXPECT_TRUE(has_address) << "host0 lacks " << container_ip << "/30";

        // Container -> host end.
        auto host_listener = host_socket();
        ASSERT_TRUE(listen_on(host_listener.get(), host_ip, u.port(0)));
        auto c1 = socket_in(child);
        std::string peer;
        EXPECT_TRUE(exchange(c1.get(), host_listener.get(), host_ip, u.port(0), &peer));
        EXPECT_EQ(peer, container_ip);

        // Host -> container.
        auto container_listener = socket_in(child);
        ASSERT_TRUE(listen_on(container_listener.get(), "0.0.0.0", 80));
        auto c2 = host_socket();
        EXPECT_TRUE(exchange(c2.get(), container_listener.get(), container_ip, 80, &peer));
        EXPECT_EQ(peer, host_ip);
    }
    EXPECT_FALSE(link_exists(ifname)) << "host end survived the attachment";
    EXPECT_FALSE(link_in(child, "host0")) << "peer survived the attachment";
    EXPECT_TRUE(nft_leftovers(d.name).empty());
}

TEST_F(NetworkAttach, VethWithoutAddressesUsesThePoolAndAnExistingNameIsRefused) {
    NetnsChild child, second;
    ASSERT_GT(child.pid(), 0);
    ASSERT_GT(second.pid(), 0);
    auto d = declaration(u.name('p'), NetworkMode::Veth);
    auto att = attach(d, child.pid());
    ASSERT_TRUE(att) << att.error().what();
    auto address = parse_ipv4(att->container_address());
    ASSERT_TRUE(address);
    EXPECT_TRUE(same_subnet(*parse_ipv4_cidr("10.88.0.0/16", 0), *address));

    auto again = attach(d, second.pid());
    ASSERT_FALSE(again);
    EXPECT_NE(again.error().what().find("container '" + d.name + "'"), std::string::npos)
        << again.error().what();
    EXPECT_NE(again.error().what().find("already exists"), std::string::npos) << again.error().what();
    EXPECT_FALSE(link_in(second, "host0"));
    EXPECT_TRUE(link_exists(host_interface_name(d.name))) << "the first container lost its link";
}

TEST_F(NetworkAttach, TheVethGoesWithTheNetnsAndTheAttachmentStillCleansUpQuietly) {
    auto child = std::make_unique<NetnsChild>();
    auto d = declaration(u.name('k'), NetworkMode::Veth);
    d.network.address = u.subnet(1, 2) + "/30";
    auto att = attach(d, child->pid());
    ASSERT_TRUE(att) << att.error().what();
    child.reset();  // the payload dies; its netns and the pair with it
    for (int i = 0; i < 100 && link_exists(host_interface_name(d.name)); ++i) ::usleep(10000);
    EXPECT_FALSE(link_exists(host_interface_name(d.name)));
    auto r = att->detach();
    EXPECT_TRUE(r) << r.error().what();
}

TEST_F(NetworkAttach, AHostProcessIsRefusedForVeth) {
    auto r = attach(declaration(u.name('x'), NetworkMode::Veth), ::getpid());
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().what().find("host's network namespace"), std::string::npos) << r.error().what();
    EXPECT_FALSE(link_exists(host_interface_name(u.name('x'))));
}

namespace {

config::PortMapping published(uint16_t host, uint16_t container, std::string host_address = "") {
    config::PortMapping p;
    p.host_address = std::move(host_address);
    p.host_port = host;
    p.container_port = container;
    return p;
}

// Another machine, as far as the host can tell: a netns behind its own veth ("eth0" inside),
// with a default route via the host.
class OtherHost {
public:
    // default_route = false: a machine beyond the host that knows nothing of the containers'
    // subnets (only its own link), as the internet does.
    OtherHost(const std::string& link, const std::string& host_ip, const std::string& own_ip,
              bool default_route = true)
        : link_(link) {
        auto nl = Netlink::open();
        auto ns = child_.netns();
        if (!nl || !ns || !nl->create_veth(link, "eth0", ns.get())) return;
        created_ = true;
        auto host_end = nl->find_link(link);
        if (!host_end || !*host_end) return;
        if (!nl->add_address((*host_end)->index, *parse_ipv4_cidr(host_ip + "/30", 30))) return;
        // As attach() does: the host end, up first, is complete only once the kernel says so.
        auto monitor = LinkMonitor::open();
        if (!monitor || !nl->set_link((*host_end)->index, true)) return;
        auto inside = Netlink::open_in(ns.get());
        if (!inside) return;
        auto lo = inside->find_link("lo");
        auto eth0 = inside->find_link("eth0");
        if (!lo || !*lo || !eth0 || !*eth0) return;
        ok_ = inside->set_link((*lo)->index, true) &&
              inside->add_address((*eth0)->index, *parse_ipv4_cidr(own_ip + "/30", 30)) &&
              inside->set_link((*eth0)->index, true) &&
              (!default_route || inside->add_default_route((*eth0)->index, *parse_ipv4(host_ip))) &&
              monitor->wait_until_up((*host_end)->index, std::chrono::seconds(3)).value_or(false);
    }
    ~OtherHost() {
        if (created_)
            if (auto nl = Netlink::open()) (void)nl->delete_link(link_);
    }
    bool ok() const { return ok_; }
    const NetnsChild& netns() const { return child_; }

private:
    NetnsChild child_;
    std::string link_;
    bool created_ = false, ok_ = false;
};

class TestBridge {
public:
    TestBridge(const std::string& name, const std::string& cidr) : name_(name) {
        auto nl = Netlink::open();
        if (!nl || !nl->create_bridge(name)) return;
        created_ = true;
        auto br = nl->find_link(name);
        if (!br || !*br) return;
        index_ = (*br)->index;
        ok_ = nl->add_address(index_, *parse_ipv4_cidr(cidr, 24)) && nl->set_link(index_, true);
    }
    ~TestBridge() {
        if (created_)
            if (auto nl = Netlink::open()) (void)nl->delete_link(name_);
    }
    bool ok() const { return ok_; }
    int index() const { return index_; }

private:
    std::string name_;
    bool created_ = false, ok_ = false;
    int index_ = 0;
};

}  // namespace

TEST_F(NetworkAttach, APublishedPortIsReachableOnLoopbackOnTheHostAddressAndFromAnotherHost) {
    NetnsChild child;
    ASSERT_GT(child.pid(), 0);
    auto d = declaration(u.name('P'), NetworkMode::Veth);
    d.network.address = u.subnet(2, 2) + "/30";
    uint16_t hp = u.port(1);
    d.network.ports = {published(hp, 80)};
    std::string host_ip = u.subnet(2, 1), container_ip = u.subnet(2, 2);
    {
        auto att = attach(d, child.pid());
        ASSERT_TRUE(att) << att.error().what();
        EXPECT_EQ(nft_leftovers(d.name).size(), 6u) << "four chains, one port claim, the anti-spoofing chain";

        auto listener = socket_in(child);
        ASSERT_TRUE(listen_on(listener.get(), "0.0.0.0", 80));
        std::string peer;
        auto c1 = host_socket();
        EXPECT_TRUE(exchange(c1.get(), listener.get(), "127.0.0.1", hp, &peer)) << "127.0.0.1:" << hp;
        EXPECT_EQ(peer, host_ip) << "loopback clients are masqueraded to the host end";
        auto c2 = host_socket();
        EXPECT_TRUE(exchange(c2.get(), listener.get(), host_ip, hp, &peer)) << host_ip << ":" << hp;

        // From another machine: DNAT in prerouting, forwarded to the container, replies routed
        // back through the container's default route. The client's address is kept.
        OtherHost other(fmt::format("nx{}", u.pid), u.subnet(3, 1), u.subnet(3, 2));
        ASSERT_TRUE(other.ok());
        auto c3 = socket_in(other.netns());
        EXPECT_TRUE(exchange(c3.get(), listener.get(), u.subnet(3, 1), hp, &peer)) << "from another host";
        EXPECT_EQ(peer, u.subnet(3, 2));
    }
    EXPECT_FALSE(link_exists(host_interface_name(d.name)));
    EXPECT_EQ(nft_leftovers(d.name), std::vector<std::string>{});
    auto after = host_socket();
    set_timeouts(after.get());
    auto a = make_addr("127.0.0.1", hp);
    EXPECT_LT(::connect(after.get(), reinterpret_cast<::sockaddr*>(&a), sizeof a), 0)
        << "the DNAT rule outlived the container";
}

TEST_F(NetworkAttach, AHostPortWithAListenerIsRefusedBeforeAnythingIsCreated) {
    NetnsChild child;
    uint16_t hp = u.port(2);
    auto busy = host_socket();
    ASSERT_TRUE(listen_on(busy.get(), "127.0.0.1", hp));
    auto d = declaration(u.name('T'), NetworkMode::Veth);
    d.network.address = u.subnet(4, 2) + "/30";
    d.network.ports = {published(hp, 80)};
    auto att = attach(d, child.pid());
    ASSERT_FALSE(att);
    auto message = att.error().what();
    EXPECT_NE(message.find("container '" + d.name + "'"), std::string::npos) << message;
    EXPECT_NE(message.find(fmt::format("host port {}/tcp is already in use", hp)), std::string::npos)
        << message;
    EXPECT_FALSE(link_exists(host_interface_name(d.name)));
    EXPECT_FALSE(link_in(child, "host0"));
    EXPECT_EQ(nft_leftovers(d.name), std::vector<std::string>{});
}

TEST_F(NetworkAttach, AHostPortPublishedByAnotherContainerIsRefused) {
    NetnsChild first, second;
    uint16_t hp = u.port(3);
    auto a = declaration(u.name('A'), NetworkMode::Veth);
    a.network.address = u.subnet(5, 2) + "/30";
    a.network.ports = {published(hp, 80)};
    auto b = declaration(u.name('B'), NetworkMode::Veth);
    b.network.address = u.subnet(6, 2) + "/30";
    b.network.ports = {published(hp, 8080, "127.0.0.1")};
    auto att_a = attach(a, first.pid());
    ASSERT_TRUE(att_a) << att_a.error().what();
    auto att_b = attach(b, second.pid());
    ASSERT_FALSE(att_b);
    EXPECT_NE(att_b.error().what().find(
                  fmt::format("host port {}/tcp is already published by container '{}'", hp, a.name)),
              std::string::npos)
        << att_b.error().what();
    EXPECT_FALSE(link_exists(host_interface_name(b.name)));
    EXPECT_EQ(nft_leftovers(b.name), std::vector<std::string>{});
    EXPECT_EQ(nft_leftovers(a.name).size(), 6u) << "the first container's rules must be untouched";
}

TEST_F(NetworkAttach, AnAddressClashIsRefusedAndLeavesNothing) {
    NetnsChild first, second;
    auto a = declaration(u.name('C'), NetworkMode::Veth);
    a.network.address = u.subnet(7, 2) + "/30";
    auto att_a = attach(a, first.pid());
    ASSERT_TRUE(att_a) << att_a.error().what();
    auto b = declaration(u.name('D'), NetworkMode::Veth);
    b.network.address = u.subnet(7, 2) + "/30";
    auto att_b = attach(b, second.pid());
    ASSERT_FALSE(att_b);
    EXPECT_NE(att_b.error().what().find("container '" + b.name + "'"), std::string::npos)
        << att_b.error().what();
    EXPECT_NE(att_b.error().what().find("address clash"), std::string::npos) << att_b.error().what();
    EXPECT_FALSE(link_exists(host_interface_name(b.name)));
    EXPECT_FALSE(link_in(second, "host0"));
}

TEST_F(NetworkAttach, AMissingBridgeIsRefusedAndLeavesNothing) {
    NetnsChild child;
    auto d = declaration(u.name('M'), NetworkMode::Bridge);
    d.network.bridge = fmt::format("nomb{}", u.pid);
    d.network.address = u.subnet(8, 2) + "/30";
    auto att = attach(d, child.pid());
    ASSERT_FALSE(att);
    EXPECT_NE(att.error().what().find(fmt::format("container '{}': network: bridge '{}' does not exist",
                                                  d.name, d.network.bridge)),
              std::string::npos)
        << att.error().what();
    EXPECT_FALSE(link_exists(host_interface_name(d.name)));
    EXPECT_FALSE(link_in(child, "host0"));
}

TEST_F(NetworkAttach, BridgeModeEnslavesTheHostEndAndPublishesPortsThroughTheBridge) {
    std::string bridge_name = fmt::format("nb{}", u.pid);
    TestBridge bridge(bridge_name, fmt::format("10.232.{}.1/24", u.pid % 250));
    ASSERT_TRUE(bridge.ok());
    NetnsChild child;
    auto d = declaration(u.name('b'), NetworkMode::Bridge);
    d.network.bridge = bridge_name;
    std::string container_ip = fmt::format("10.232.{}.2", u.pid % 250);
    d.network.address = container_ip + "/24";
    d.network.gateway = fmt::format("10.232.{}.1", u.pid % 250);
    uint16_t hp = u.port(4);
    d.network.ports = {published(hp, 80)};
    std::string ifname = host_interface_name(d.name);
    {
        auto att = attach(d, child.pid());
        ASSERT_TRUE(att) << att.error().what();
        auto nl = Netlink::open();
        ASSERT_TRUE(nl);
        auto host_end = nl->find_link(ifname);
        ASSERT_TRUE(host_end && *host_end);
        EXPECT_EQ((*host_end)->master, bridge.index()) << "host end is not enslaved to the bridge";
        EXPECT_TRUE((*host_end)->flags & IFF_UP);

        auto listener = socket_in(child);
        ASSERT_TRUE(listen_on(listener.get(), "0.0.0.0", 80));
        auto c1 = host_socket();
        EXPECT_TRUE(exchange(c1.get(), listener.get(), container_ip, 80))
            << "host -> container over the bridge";
        auto c2 = host_socket();
        std::string peer;
        EXPECT_TRUE(exchange(c2.get(), listener.get(), "127.0.0.1", hp, &peer))
            << "published port on 127.0.0.1";
        EXPECT_EQ(peer, d.network.gateway);
    }
    EXPECT_FALSE(link_exists(ifname));
    EXPECT_TRUE(link_exists(bridge_name)) << "the bridge is the admin's, not ours";
    auto localnet = read_file("/proc/sys/net/ipv4/conf/" + bridge_name + "/route_localnet");
    EXPECT_TRUE(localnet && *localnet == "0\n") << "route_localnet stayed on the bridge";
    EXPECT_EQ(nft_leftovers(d.name), std::vector<std::string>{});
}

// As if the supervisor holding `att` had been SIGKILLed: what it set up is forgotten, and its
// loopback proxies (network/loopback-proxy.h) die with it, as PR_SET_PDEATHSIG makes them.
void release_as_killed(NetworkAttachment& att) {
    auto proxies = att.record().loopback_proxies;
    att.release();
    for (const auto& p : proxies) {
        ::kill(p.pid, SIGKILL);
        ::waitpid(p.pid, nullptr, 0);
    }
}

TEST_F(NetworkAttach, LeftoversOfAKilledSupervisorAreReplacedOnTheNextStart) {
    auto d = declaration(u.name('L'), NetworkMode::Veth);
    d.network.address = u.subnet(9, 2) + "/30";
    d.network.ports = {published(u.port(5), 80)};
    {
        NetnsChild first;
        auto att = attach(d, first.pid());
        ASSERT_TRUE(att) << att.error().what();
        release_as_killed(*att);
    }  // ... and its payload died: the pair went with the netns
    for (int i = 0; i < 100 && link_exists(host_interface_name(d.name)); ++i) ::usleep(10000);
    // The anti-spoofing chain may go with its device (older kernels release a netdev chain whose
    // only device disappears; recent ones keep it, unbound): 5 or 6.
    EXPECT_GE(nft_leftovers(d.name).size(), 5u);

    NetnsChild second;
    auto att = attach(d, second.pid());
    ASSERT_TRUE(att) << att.error().what();
    EXPECT_EQ(nft_leftovers(d.name).size(), 6u) << "stale rules were not replaced";
    auto r = att->detach();
    EXPECT_TRUE(r) << r.error().what();
    EXPECT_EQ(nft_leftovers(d.name), std::vector<std::string>{});

    // remove_leftovers on its own, for ExecStopPost-style cleanup.
    NetnsChild third;
    auto again = attach(d, third.pid());
    ASSERT_TRUE(again) << again.error().what();
    release_as_killed(*again);
    EXPECT_TRUE(remove_leftovers(d.name));
    EXPECT_EQ(nft_leftovers(d.name), std::vector<std::string>{});
    if (auto nl = Netlink::open()) (void)nl->delete_link(host_interface_name(d.name));
}

namespace {

uint16_t ip_checksum(const void* data, size_t len) {
    uint32_t sum = 0;
    auto* p = static_cast<const uint16_t*>(data);
    for (; len > 1; len -= 2) sum += *p++;
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<uint16_t>(~sum);
}

// What a container with CAP_NET_RAW (a default capability) can do: hand-craft a UDP datagram to
// `dst` and put it on host0 addressed to the host end's MAC, bypassing its own routing table.
bool forge_udp(const NetnsChild& child, const std::string& src, const std::string& dst, uint16_t port,
               const unsigned char mac[6]) {
    bool sent = false;
    std::thread t([&] {
        auto ns = child.netns();
        if (!ns || ::setns(ns.get(), CLONE_NEWNET) < 0) return;
        UniqueFd fd(::socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_IP)));
        if (!fd) return;
        struct {
            iphdr ip;
            udphdr udp;
            char payload[4];
        } __attribute__((packed)) pkt{};
        pkt.ip.version = 4;
        pkt.ip.ihl = 5;
        pkt.ip.ttl = 64;
        pkt.ip.protocol = IPPROTO_UDP;
        pkt.ip.tot_len = htons(sizeof pkt);
        ::inet_pton(AF_INET, src.c_str(), &pkt.ip.saddr);
        ::inet_pton(AF_INET, dst.c_str(), &pkt.ip.daddr);
        pkt.ip.check = ip_checksum(&pkt.ip, sizeof pkt.ip);
        pkt.udp.source = htons(40000);
        pkt.udp.dest = htons(port);
        pkt.udp.len = htons(sizeof pkt.udp + sizeof pkt.payload);
        std::memcpy(pkt.payload, "evil", 4);  // UDP checksum 0: none, allowed for IPv4
        sockaddr_ll to{};
        to.sll_family = AF_PACKET;
        to.sll_protocol = htons(ETH_P_IP);
        to.sll_ifindex = static_cast<int>(::if_nametoindex("host0"));
        to.sll_halen = 6;
        std::memcpy(to.sll_addr, mac, 6);
        sent = ::sendto(fd.get(), &pkt, sizeof pkt, 0, reinterpret_cast<::sockaddr*>(&to), sizeof to) ==
               sizeof pkt;
    });
    t.join();
    return sent;
}

bool received(int udp_socket) {
    char buf[16];
    timeval tv{1, 0};
    ::setsockopt(udp_socket, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return ::recv(udp_socket, buf, sizeof buf, 0) == 4 && std::string(buf, 4) == "evil";
}

UniqueFd udp_bound(const std::string& ip, uint16_t port) {
    auto fd = host_socket(SOCK_DGRAM);
    auto a = make_addr(ip, port);
    if (::bind(fd.get(), reinterpret_cast<::sockaddr*>(&a), sizeof a) < 0) fd.reset();
    return fd;
}

}  // namespace

TEST_F(NetworkAttach, RouteLocalnetDoesNotOpenTheHostsLoopbackToTheContainer) {
    NetnsChild child;
    auto d = declaration(u.name('G'), NetworkMode::Veth);
    d.network.address = u.subnet(10, 2) + "/30";
    d.network.ports = {published(u.port(0), 80)};
    std::string host_ip = u.subnet(10, 1), container_ip = u.subnet(10, 2);
    auto att = attach(d, child.pid());
    ASSERT_TRUE(att) << att.error().what();
    std::string ifname = host_interface_name(d.name);
    auto localnet = read_file("/proc/sys/net/ipv4/conf/" + ifname + "/route_localnet");
    ASSERT_TRUE(localnet);
    EXPECT_EQ(*localnet, "1\n") << "published 127.0.0.1 ports need route_localnet on the host end";

    ifreq ifr{};
    std::snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname.c_str());
    auto probe = host_socket(SOCK_DGRAM);
    ASSERT_EQ(::ioctl(probe.get(), SIOCGIFHWADDR, &ifr), 0);
    auto* mac = reinterpret_cast<const unsigned char*>(ifr.ifr_hwaddr.sa_data);

    uint16_t port = u.port(5);
    auto on_link = udp_bound(host_ip, port), on_lo = udp_bound("127.0.0.1", port);
    ASSERT_TRUE(on_link && on_lo);
    ASSERT_TRUE(forge_udp(child, container_ip, host_ip, port, mac));
    EXPECT_TRUE(received(on_link.get())) << "control: a forged datagram to the host end's address arrives";
    ASSERT_TRUE(forge_udp(child, container_ip, "127.0.0.1", port, mac));
    EXPECT_FALSE(received(on_lo.get())) << "the container reached the host's 127.0.0.1";

    // Without the guard chain the same datagram gets through: the guard is what protects.
    auto nft = Nft::open();
    ASSERT_TRUE(nft);
    ASSERT_TRUE(nft->run(fmt::format("delete chain ip berth c-{}-guard", d.name)));
    ASSERT_TRUE(forge_udp(child, container_ip, "127.0.0.1", port, mac));
    EXPECT_TRUE(received(on_lo.get())) << "control: without the guard, route_localnet lets it in";

    // Removal still cleans up everything although the table no longer matches the plan.
    auto r = att->detach();
    EXPECT_TRUE(r) << r.error().what();
    EXPECT_EQ(nft_leftovers(d.name), std::vector<std::string>{});
}

TEST_F(NetworkAttach, APublishedUdpPortAnswersOnLoopback) {
    NetnsChild child;
    auto d = declaration(u.name('U'), NetworkMode::Veth);
    d.network.address = u.subnet(11, 2) + "/30";
    uint16_t hp = u.port(1);
    auto mapping = published(hp, 53);
    mapping.protocol = "udp";
    d.network.ports = {mapping};
    auto att = attach(d, child.pid());
    ASSERT_TRUE(att) << att.error().what();

    auto server = socket_in(child, SOCK_DGRAM);
    auto any = make_addr("0.0.0.0", 53);
    ASSERT_EQ(::bind(server.get(), reinterpret_cast<::sockaddr*>(&any), sizeof any), 0) << strerror(errno);
    set_timeouts(server.get());
    auto client = host_socket(SOCK_DGRAM);
    set_timeouts(client.get());
    auto to = make_addr("127.0.0.1", hp);
    ASSERT_EQ(::sendto(client.get(), "ping", 4, 0, reinterpret_cast<::sockaddr*>(&to), sizeof to), 4);
    char buf[8] = {};
    sockaddr_in from{};
    socklen_t len = sizeof from;
    ASSERT_EQ(::recvfrom(server.get(), buf, sizeof buf, 0, reinterpret_cast<::sockaddr*>(&from), &len), 4)
        << "the datagram did not reach the container";
    ASSERT_EQ(::sendto(server.get(), "pong", 4, 0, reinterpret_cast<::sockaddr*>(&from), len), 4);
    ASSERT_EQ(::recv(client.get(), buf, sizeof buf, 0), 4) << "the answer did not come back";
    EXPECT_EQ(std::string(buf, 4), "pong");
}

// ---- outbound NAT ----------------------------------------------------------------------------

namespace {

// True if a TCP connection from inside `child` to ip:port is accepted by `listener` within 1 s
// and carries data both ways; `peer` = the source address the listener saw.
bool connects_out(const NetnsChild& child, int listener, const std::string& ip, uint16_t port,
                  std::string* peer) {
    auto client = socket_in(child);
    timeval tv{1, 0};
    ::setsockopt(client.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    auto a = make_addr(ip, port);
    if (::connect(client.get(), reinterpret_cast<::sockaddr*>(&a), sizeof a) < 0) return false;
    ::shutdown(client.get(), SHUT_RDWR);
    sockaddr_in from{};
    socklen_t len = sizeof from;
    UniqueFd conn(::accept4(listener, reinterpret_cast<::sockaddr*>(&from), &len, SOCK_CLOEXEC));
    if (!conn) return false;
    char text[INET_ADDRSTRLEN];
    *peer = ::inet_ntop(AF_INET, &from.sin_addr, text, sizeof text);
    return true;
}

}  // namespace

// The default for veth: a connection from the container to a machine beyond the host, which has
// no route to the container's subnet, is answered, and arrives from the host's own address on
// that link. With masquerade = false the same connection cannot be answered. The rule goes with
// the container (detach), and nothing of the test is left: links, chains, namespaces.
TEST_F(NetworkAttach, MasqueradeTakesTheContainerBeyondTheHostUnderTheHostsAddressAndGoesWithIt) {
    const std::string outside_link = fmt::format("nm{}", u.pid);
    OtherHost outside(outside_link, u.subnet(20, 1), u.subnet(20, 2), /*default_route=*/false);
    ASSERT_TRUE(outside.ok());
    // Replies come in on the outside link: forwarding on that interface only, so the test needs
    // no host-wide net.ipv4.ip_forward (other tests run beside it).
    ASSERT_TRUE(write_file(fmt::format("/proc/sys/net/ipv4/conf/{}/forwarding", outside_link), "1"));
    auto listener = socket_in(outside.netns());
    const uint16_t port = u.port(3);
    ASSERT_TRUE(listen_on(listener.get(), u.subnet(20, 2), port));
    set_timeouts(listener.get());

    for (bool masquerade : {true, false}) {
        SCOPED_TRACE(masquerade ? "masquerade (default)" : "masquerade = false");
        NetnsChild container;
        ASSERT_GT(container.pid(), 0);
        auto d = declaration(u.name('M'), NetworkMode::Veth);
        d.network.address = u.subnet(21, 2) + "/30";
        if (!masquerade) d.network.masquerade = false;
        {
            auto att = attach(d, container.pid());
            ASSERT_TRUE(att) << att.error().what();
            EXPECT_EQ(att->plan().masquerade, masquerade);
            const std::string spoof = "netdev chain c-" + d.name + "-spoof";
            const std::vector<std::string> expected =
                masquerade ? std::vector<std::string>{"chain c-" + d.name + "-postrouting", spoof}
                           : std::vector<std::string>{spoof};
            EXPECT_EQ(nft_leftovers(d.name), expected);
            std::string peer;
            if (masquerade) {
                EXPECT_TRUE(connects_out(container, listener.get(), u.subnet(20, 2), port, &peer));
                EXPECT_EQ(peer, u.subnet(20, 1)) << "the outside host saw the container's own address";
            } else {
                EXPECT_FALSE(connects_out(container, listener.get(), u.subnet(20, 2), port, &peer))
                    << "answered without NAT (peer " << peer << "): the test proves nothing";
            }
        }
        EXPECT_FALSE(link_exists(host_interface_name(d.name))) << "leaked veth";
        EXPECT_EQ(nft_leftovers(d.name), std::vector<std::string>{}) << "leaked masquerade rule";
    }
}

// Outbound NAT with published ports shares the container's postrouting chain; a leftover of a
// killed supervisor is removed by the next start like the rest (remove_leftovers).
TEST_F(NetworkAttach, MasqueradeAndPublishedPortsShareOneChainAndLeftoversAreRemoved) {
    NetnsChild container;
    auto d = declaration(u.name('N'), NetworkMode::Veth);
    d.network.address = u.subnet(22, 2) + "/30";
    d.network.ports = {published(u.port(4), 80)};
    auto att = attach(d, container.pid());
    ASSERT_TRUE(att) << att.error().what();
    EXPECT_EQ(nft_leftovers(d.name).size(), 6u) << "four chains, one port claim, the anti-spoofing chain";
    auto nft = Nft::open();
    ASSERT_TRUE(nft);
    auto chain = nft->run(fmt::format("list chain ip berth c-{}-postrouting", d.name));
    ASSERT_TRUE(chain) << chain.error().what();
    EXPECT_NE(chain->find(fmt::format("ip saddr {} oifname != \"{}\" masquerade", u.subnet(22, 2),
                                      host_interface_name(d.name))),
              std::string::npos)
        << *chain;
    release_as_killed(*att);
    EXPECT_TRUE(remove_leftovers(d.name));
    EXPECT_EQ(nft_leftovers(d.name), std::vector<std::string>{});
    EXPECT_TRUE(remove_leftover_link(d.name));
    EXPECT_FALSE(link_exists(host_interface_name(d.name))) << "remove_leftover_link left the veth";
}

// ip_forward is the host's router switch: berth does not flip it for masquerade unless asked
// (ip_forward = true), and says so when it is off. Run in a private network namespace, so the
// sysctl can be 0 without disturbing anything else on the machine.
TEST_F(NetworkAttach, MasqueradeWarnsWhenTheHostDoesNotForwardAndIpForwardTurnsItOn) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        if (::unshare(CLONE_NEWNET) < 0) ::_exit(10);
        if (!write_file("/proc/sys/net/ipv4/ip_forward", "0")) ::_exit(11);
        int code = 0;
        {
            NetnsChild container;
            auto d = declaration(u.name('W'), NetworkMode::Veth);
            auto att = attach(d, container.pid());
            if (!att) ::_exit(12);
            if (att->warnings().size() != 1 ||
                att->warnings()[0].find("net.ipv4.ip_forward = 0") == std::string::npos)
                code |= 1;
            if (read_file("/proc/sys/net/ipv4/ip_forward").value_or("") != "0\n") code |= 2;
        }
        {
            NetnsChild container;
            auto d = declaration(u.name('W'), NetworkMode::Veth);
            d.network.ip_forward = true;
            auto att = attach(d, container.pid());
            if (!att) ::_exit(13);
            if (!att->warnings().empty()) code |= 4;
            if (read_file("/proc/sys/net/ipv4/ip_forward").value_or("") != "1\n") code |= 8;
        }
        ::_exit(code);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status));
    int code = WEXITSTATUS(status);
    EXPECT_LT(code, 10) << "setup failed: " << code;
    EXPECT_FALSE(code < 10 && (code & 1)) << "no warning while ip_forward = 0";
    EXPECT_FALSE(code < 10 && (code & 2)) << "ip_forward was flipped without being asked";
    EXPECT_FALSE(code < 10 && (code & 4)) << "a warning although ip_forward = true";
    EXPECT_FALSE(code < 10 && (code & 8)) << "ip_forward = true did not turn forwarding on";
}

// Bridge mode with masquerade = true (off by default there): the container on the user's bridge
// reaches a machine beyond the host under the host's address; the rule names the bridge and goes
// with the container.
TEST_F(NetworkAttach, MasqueradeOnABridgeTakesTheContainerBeyondTheHost) {
    const std::string bridge_name = fmt::format("nq{}", u.pid);
    const std::string net = fmt::format("10.234.{}", u.pid % 250);
    TestBridge bridge(bridge_name, net + ".1/24");
    ASSERT_TRUE(bridge.ok());
    const std::string outside_link = fmt::format("nr{}", u.pid);
    OtherHost outside(outside_link, u.subnet(23, 1), u.subnet(23, 2), /*default_route=*/false);
    ASSERT_TRUE(outside.ok());
    // The user's bridge routes (ingress of the container's packets), as does the outside link
    // (ingress of the replies): per interface, both the test's own.
    for (const auto& link : {bridge_name, outside_link})
        ASSERT_TRUE(write_file(fmt::format("/proc/sys/net/ipv4/conf/{}/forwarding", link), "1"));
    auto listener = socket_in(outside.netns());
    const uint16_t port = u.port(2);
    ASSERT_TRUE(listen_on(listener.get(), u.subnet(23, 2), port));
    set_timeouts(listener.get());

    NetnsChild container;
    auto d = declaration(u.name('Q'), NetworkMode::Bridge);
    d.network.bridge = bridge_name;
    d.network.address = net + ".2/24";
    d.network.gateway = net + ".1";
    d.network.masquerade = true;
    {
        auto att = attach(d, container.pid());
        ASSERT_TRUE(att) << att.error().what();
        std::string peer;
        EXPECT_TRUE(connects_out(container, listener.get(), u.subnet(23, 2), port, &peer));
        EXPECT_EQ(peer, u.subnet(23, 1)) << "the outside host saw the container's own address";
        auto nft = Nft::open();
        ASSERT_TRUE(nft);
        auto chain = nft->run(fmt::format("list chain ip berth c-{}-postrouting", d.name));
        ASSERT_TRUE(chain) << chain.error().what();
        EXPECT_NE(chain->find(fmt::format("oifname != \"{}\" masquerade", bridge_name)), std::string::npos)
            << *chain;
    }
    EXPECT_FALSE(link_exists(host_interface_name(d.name))) << "leaked veth";
    EXPECT_EQ(nft_leftovers(d.name), std::vector<std::string>{}) << "leaked masquerade rule";
}

// ---- anti-spoofing ---------------------------------------------------------------------------
//
// What a container with CAP_NET_RAW (a default capability) can put on its link: any frame. The
// tests below hand-craft them inside the container (AF_PACKET on host0, so neither its routing
// table nor its addresses are involved) and look for them where they would do harm: the host's
// sockets and addresses, and a packet socket in a second container on the same bridge. (Not on the
// host end itself: a packet socket there sees frames before the ingress hook that drops them.)

namespace {

using Bytes = std::vector<uint8_t>;
using MacBytes = std::array<uint8_t, 6>;

// Runs fn on a short-lived thread inside the child's netns (the test's own thread stays put).
void run_in(const NetnsChild& child, const std::function<void()>& fn) {
    std::thread t([&] {
        auto ns = child.netns();
        if (ns && ::setns(ns.get(), CLONE_NEWNET) == 0) fn();
    });
    t.join();
}

// The MAC of `ifname` in the calling thread's netns.
MacBytes mac_of(const std::string& ifname) {
    MacBytes mac{};
    ifreq ifr{};
    std::snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname.c_str());
    UniqueFd probe(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (probe && ::ioctl(probe.get(), SIOCGIFHWADDR, &ifr) == 0)
        std::memcpy(mac.data(), ifr.ifr_hwaddr.sa_data, 6);
    return mac;
}

MacBytes mac_in(const NetnsChild& child, const std::string& ifname) {
    MacBytes mac{};
    run_in(child, [&] { mac = mac_of(ifname); });
    return mac;
}

void put16(Bytes& b, size_t at, uint16_t v) {
    b[at] = static_cast<uint8_t>(v >> 8);
    b[at + 1] = static_cast<uint8_t>(v);
}

void put_ipv4(Bytes& b, size_t at, const std::string& ip) { ::inet_pton(AF_INET, ip.c_str(), &b[at]); }

Bytes ethernet(const MacBytes& dst, const MacBytes& src, uint16_t type, size_t payload) {
    Bytes b(14 + payload, 0);
    std::memcpy(&b[0], dst.data(), 6);
    std::memcpy(&b[6], src.data(), 6);
    put16(b, 12, type);
    return b;
}

// A UDP datagram src_ip:40000 -> dst_ip:port carrying the 4-byte `tag`.
Bytes udp4_frame(const MacBytes& src_mac, const MacBytes& dst_mac, const std::string& src_ip,
                 const std::string& dst_ip, uint16_t port, const char tag[4]) {
    Bytes b = ethernet(dst_mac, src_mac, ETH_P_IP, 20 + 8 + 4);
    uint8_t* ip = &b[14];
    ip[0] = 0x45;
    put16(b, 16, 32);  // total length
    ip[8] = 64;        // ttl
    ip[9] = IPPROTO_UDP;
    put_ipv4(b, 26, src_ip);
    put_ipv4(b, 30, dst_ip);
    uint16_t sum = ip_checksum(ip, 20);
    std::memcpy(&ip[10], &sum, 2);  // already in network order: the sum is over raw 16-bit words
    put16(b, 34, 40000);
    put16(b, 36, port);
    put16(b, 38, 12);  // UDP length; checksum 0 = none (IPv4)
    std::memcpy(&b[42], tag, 4);
    return b;
}

// A gratuitous ARP request (broadcast): "sender_ip is at sender_mac".
Bytes arp_frame(const MacBytes& src_mac, const MacBytes& sender_mac, const std::string& sender_ip) {
    Bytes b = ethernet({0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, src_mac, ETH_P_ARP, 28);
    put16(b, 14, 1);  // htype ethernet
    put16(b, 16, ETH_P_IP);
    b[18] = 6;
    b[19] = 4;
    put16(b, 20, 1);  // request
    std::memcpy(&b[22], sender_mac.data(), 6);
    put_ipv4(b, 28, sender_ip);
    put_ipv4(b, 38, sender_ip);  // target = sender: gratuitous
    return b;
}

// fe80::EUI-64(mac).
std::array<uint8_t, 16> link_local(const MacBytes& m) {
    return {0xfe, 0x80, 0,    0,    0,    0,    0,   0, static_cast<uint8_t>(m[0] ^ 2),
            m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]};
}

// The checksum of the ICMPv6 message at `o` (`len` bytes) in a frame whose IPv6 header is at 14:
// over the pseudo header (source, destination, length, next header) and the message.
void set_icmpv6_checksum(Bytes& b, size_t o, size_t len) {
    uint32_t sum = 0;
    auto add = [&](const uint8_t* p, size_t n) {
        for (size_t i = 0; i + 1 < n; i += 2) sum += (uint32_t{p[i]} << 8) | p[i + 1];
    };
    add(&b[22], 32);
    sum += static_cast<uint32_t>(len) + IPPROTO_ICMPV6;
    add(&b[o], len);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    put16(b, o + 2, static_cast<uint16_t>(~sum));
}

// A router advertisement from fe80::EUI-64(src_mac) to all nodes (ff02::1), hop limit 255 as the
// receiver demands, router lifetime 0 (no default route: the tests share the machine) and a
// prefix option for `prefix`::/64 with the autonomous flag: a host that accepts it adds an
// address in that prefix to the receiving interface.
Bytes ra_frame(const MacBytes& src_mac, const std::array<uint8_t, 8>& prefix) {
    const size_t icmp_len = 16 + 32 + 8;  // RA header, prefix information, source link-layer address
    Bytes b = ethernet({0x33, 0x33, 0, 0, 0, 1}, src_mac, ETH_P_IPV6, 40 + icmp_len);
    uint8_t* ip6 = &b[14];
    ip6[0] = 0x60;
    put16(b, 18, icmp_len);
    ip6[6] = IPPROTO_ICMPV6;
    ip6[7] = 255;
    auto src = link_local(src_mac);
    std::memcpy(&ip6[8], src.data(), 16);
    const uint8_t all_nodes[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    std::memcpy(&ip6[24], all_nodes, 16);
    size_t o = 54;  // the ICMPv6 message
    b[o] = 134;     // router advertisement
    b[o + 4] = 64;  // cur hop limit; flags 0, router lifetime 0, timers 0
    size_t pio = o + 16;
    b[pio] = 3;         // prefix information
    b[pio + 1] = 4;     // 32 bytes
    b[pio + 2] = 64;    // prefix length
    b[pio + 3] = 0xc0;  // on-link, autonomous
    for (size_t k : {pio + 4, pio + 8}) {
        b[k + 2] = 0x02;
        b[k + 3] = 0x58;
    }  // valid, preferred: 600 s
    std::memcpy(&b[pio + 16], prefix.data(), 8);
    size_t sll = pio + 32;
    b[sll] = 1;  // source link-layer address
    b[sll + 1] = 1;
    std::memcpy(&b[sll + 2], src_mac.data(), 6);
    set_icmpv6_checksum(b, o, icmp_len);
    return b;
}

// Puts a whole frame, Ethernet header included, on `ifname` inside the child.
bool send_frame(const NetnsChild& child, const std::string& ifname, const Bytes& frame) {
    bool sent = false;
    run_in(child, [&] {
        UniqueFd fd(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0));
        if (!fd) return;
        sockaddr_ll to{};
        to.sll_family = AF_PACKET;
        to.sll_ifindex = static_cast<int>(::if_nametoindex(ifname.c_str()));
        to.sll_halen = 6;
        std::memcpy(to.sll_addr, frame.data(), 6);
        sent = ::sendto(fd.get(), frame.data(), frame.size(), 0, reinterpret_cast<::sockaddr*>(&to),
                        sizeof to) == static_cast<ssize_t>(frame.size());
    });
    return sent;
}

// Every frame that arrives on an interface (not the ones it sends), from creation on.
class Capture {
public:
    explicit Capture(const std::string& ifname, const NetnsChild* child = nullptr) {
        auto open = [&] {
            fd_.reset(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(ETH_P_ALL)));
            if (!fd_) return;
            int one = 1;
            ::setsockopt(fd_.get(), SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one);
            sockaddr_ll at{};
            at.sll_family = AF_PACKET;
            at.sll_protocol = htons(ETH_P_ALL);
            at.sll_ifindex = static_cast<int>(::if_nametoindex(ifname.c_str()));
            if (at.sll_ifindex == 0 || ::bind(fd_.get(), reinterpret_cast<::sockaddr*>(&at), sizeof at) < 0)
                fd_.reset();
        };
        if (child)
            run_in(*child, open);
        else
            open();
    }
    bool ok() const { return bool(fd_); }
    // What arrived until `ms` from now.
    std::vector<Bytes> collect(int ms) {
        std::vector<Bytes> out;
        auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
        for (;;) {
            auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now())
                    .count();
            if (left <= 0) break;
            pollfd p{fd_.get(), POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
            Bytes frame(2048);
            ssize_t n;
            while ((n = ::recv(fd_.get(), frame.data(), frame.size(), 0)) > 0)
                out.emplace_back(frame.begin(), frame.begin() + n);
        }
        return out;
    }

private:
    UniqueFd fd_;
};

bool has_tag(const Bytes& f, const char tag[4]) {
    return std::search(f.begin(), f.end(), tag, tag + 4) != f.end();
}
bool any_tagged(const std::vector<Bytes>& frames, const char tag[4]) {
    return std::any_of(frames.begin(), frames.end(), [&](auto& f) { return has_tag(f, tag); });
}
bool from_mac(const Bytes& f, const MacBytes& mac) {
    return f.size() >= 14 && std::equal(mac.begin(), mac.end(), f.begin() + 6);
}
// An ARP frame whose sender is `sender_ip`, announced with `sender_mac`.
bool any_arp_claim(const std::vector<Bytes>& frames, const MacBytes& sender_mac,
                   const std::string& sender_ip) {
    uint8_t ip[4];
    ::inet_pton(AF_INET, sender_ip.c_str(), ip);
    return std::any_of(frames.begin(), frames.end(), [&](auto& f) {
        return f.size() >= 42 && f[12] == 0x08 && f[13] == 0x06 &&
               std::equal(sender_mac.begin(), sender_mac.end(), f.begin() + 22) &&
               std::equal(ip, ip + 4, f.begin() + 28);
    });
}
bool any_router_advert(const std::vector<Bytes>& frames, const MacBytes& from) {
    return std::any_of(frames.begin(), frames.end(), [&](auto& f) {
        return f.size() >= 55 && from_mac(f, from) && f[12] == 0x86 && f[13] == 0xdd &&
               f[20] == IPPROTO_ICMPV6 && f[54] == 134;
    });
}

// True if a datagram carrying `tag` arrives on `fd` within `ms`.
bool received_tag(int fd, const char tag[4], int ms = 500) {
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    for (;;) {
        auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now())
                .count();
        if (left <= 0) return false;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
        char buf[64];
        ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n == 4 && std::memcmp(buf, tag, 4) == 0) return true;
    }
}

// An address in 2001:db8:PREFIX::/64 on `ifname`, in the calling thread's netns (SLAAC from an
// accepted router advertisement), waiting up to `ms` for it.
std::array<uint8_t, 8> test_prefix(pid_t pid) {
    return {0x20, 0x01, 0x0d, 0xb8, static_cast<uint8_t>(pid >> 8), static_cast<uint8_t>(pid), 0, 1};
}
bool has_address_in(const std::string& ifname, const std::array<uint8_t, 8>& prefix, int ms) {
    std::string hex;
    for (auto byte : prefix) hex += fmt::format("{:02x}", byte);
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    do {
        std::ifstream in("/proc/thread-self/net/if_inet6");
        std::string address, index, plen, scope, flags, name;
        while (in >> address >> index >> plen >> scope >> flags >> name)
            if (name == ifname && address.rfind(hex, 0) == 0) return true;
        ::usleep(20000);
    } while (std::chrono::steady_clock::now() < end);
    return false;
}

}  // namespace

// veth: what the container sends must carry its own address and MAC, and the host takes no router
// advertisement from it (CVE-2020-13401), by the anti-spoofing chain and by accept_ra=0 on the
// host end. A frame with the container's own address and MAC still gets through; without the
// chain and with accept_ra back at the kernel's default, the forged frames do too.
TEST_F(NetworkAttach, AVethContainerCannotSendFromAnotherAddressOrMacNorAdvertiseARouterToTheHost) {
    NetnsChild child;
    ASSERT_GT(child.pid(), 0);
    // A /24, so that a forged source (.3) is one the host routes to the container and reverse-path
    // filtering, where it is on, does not drop it first.
    const std::string net = fmt::format("10.236.{}", u.pid % 250);
    auto d = declaration(u.name('s'), NetworkMode::Veth);
    d.network.address = net + ".2/24";
    d.network.masquerade = false;
    auto att = attach(d, child.pid());
    ASSERT_TRUE(att) << att.error().what();
    const std::string ifname = host_interface_name(d.name);
    EXPECT_EQ(read_file("/proc/sys/net/ipv6/conf/" + ifname + "/accept_ra").value_or("?"), "0\n")
        << "the host end accepts router advertisements";

    const MacBytes own = mac_in(child, "host0"), host_end = mac_of(ifname),
                   fake = {0x02, 0, 0x5e, 0x10, 0x20, 0x30};
    ASSERT_TRUE(att->plan().container_mac);
    EXPECT_EQ(own, att->plan().container_mac->bytes) << "host0 does not have the MAC the rules name";
    const uint16_t port = u.port(0);
    auto sock = udp_bound(net + ".1", port);
    ASSERT_TRUE(sock);
    const auto prefix = test_prefix(u.pid);

    ASSERT_TRUE(send_frame(child, "host0", udp4_frame(own, host_end, net + ".2", net + ".1", port, "good")));
    EXPECT_TRUE(received_tag(sock.get(), "good")) << "control: the container's own traffic must get through";

    auto forge = [&] {
        EXPECT_TRUE(
            send_frame(child, "host0", udp4_frame(own, host_end, net + ".3", net + ".1", port, "ip4!")));
        EXPECT_TRUE(
            send_frame(child, "host0", udp4_frame(fake, host_end, net + ".2", net + ".1", port, "mac!")));
        EXPECT_TRUE(send_frame(child, "host0", ra_frame(own, prefix)));
    };
    forge();
    EXPECT_FALSE(received_tag(sock.get(), "ip4!")) << "a datagram from a forged IPv4 source reached the host";
    EXPECT_FALSE(received_tag(sock.get(), "mac!", 100)) << "a frame from a forged MAC reached the host";
    EXPECT_FALSE(has_address_in(ifname, prefix, 300)) << "the host took the container's router advertisement";

    // The controls: without the chain, and with the kernel's accept_ra, all of it gets in.
    auto nft = Nft::open();
    ASSERT_TRUE(nft);
    ASSERT_TRUE(nft->run(fmt::format("delete chain netdev berth c-{}-spoof", d.name)));
    // 2, not the kernel's default 1: a host that forwards IPv6 (a dual-stack network is up)
    // ignores router advertisements under accept_ra=1.
    ASSERT_TRUE(write_file("/proc/sys/net/ipv6/conf/" + ifname + "/accept_ra", "2"));
    forge();
    EXPECT_TRUE(received_tag(sock.get(), "ip4!")) << "control: the forged source is deliverable";
    EXPECT_TRUE(received_tag(sock.get(), "mac!", 100)) << "control: the forged MAC is deliverable";
    EXPECT_TRUE(has_address_in(ifname, prefix, 2000)) << "control: the router advertisement is well formed";

    auto r = att->detach();
    EXPECT_TRUE(r) << r.error().what();
    EXPECT_FALSE(link_exists(ifname));
    EXPECT_EQ(nft_leftovers(d.name), std::vector<std::string>{});
}

// bridge: a container cannot pass itself off as its neighbour or as the host (their address,
// their MAC, an ARP claim) nor advertise a router; neither the host (on the bridge) nor the other
// container sees any of it, while traffic between the two, IPv4 and IPv6 link-local, still flows.
TEST_F(NetworkAttach, ABridgedContainerCannotImpersonateItsNeighbourOrTheHostNorAdvertiseARouter) {
    const std::string bridge_name = fmt::format("ns{}", u.pid);
    const std::string net = fmt::format("10.237.{}", u.pid % 250);
    TestBridge bridge(bridge_name, net + ".1/24");
    ASSERT_TRUE(bridge.ok());
    NetnsChild attacker, neighbour;
    ASSERT_GT(attacker.pid(), 0);
    ASSERT_GT(neighbour.pid(), 0);
    // No duplicate address detection in the containers: their link-local addresses are usable at
    // once for the IPv6 check (DAD would keep them tentative for a second).
    for (auto* c : {&attacker, &neighbour})
        run_in(*c, [] { (void)write_file("/proc/sys/net/ipv6/conf/default/accept_dad", "0"); });
    auto decl_for = [&](char tag, int host) {
        auto d = declaration(u.name(tag), NetworkMode::Bridge);
        d.network.bridge = bridge_name;
        d.network.address = fmt::format("{}.{}/24", net, host);
        d.network.gateway = net + ".1";
        return d;
    };
    auto da = decl_for('a', 2), dn = decl_for('c', 3);
    const std::string a_ip = net + ".2", n_ip = net + ".3", host_ip = net + ".1";
    {
        auto att_a = attach(da, attacker.pid());
        ASSERT_TRUE(att_a) << att_a.error().what();
        auto att_n = attach(dn, neighbour.pid());
        ASSERT_TRUE(att_n) << att_n.error().what();
        for (const auto& d : {da, dn})
            EXPECT_EQ(read_file("/proc/sys/net/ipv6/conf/" + host_interface_name(d.name) + "/accept_ra")
                          .value_or("?"),
                      "0\n");

        // Legitimate traffic: TCP from one container to the other, and IPv6 link-local (neighbour
        // discovery through both containers' chains).
        auto listener = socket_in(neighbour);
        ASSERT_TRUE(listen_on(listener.get(), n_ip, u.port(1)));
        auto client = socket_in(attacker);
        EXPECT_TRUE(exchange(client.get(), listener.get(), n_ip, u.port(1)))
            << "container to container over IPv4";
        const MacBytes a_mac = mac_in(attacker, "host0"), n_mac = mac_in(neighbour, "host0");
        const MacBytes br_mac = mac_of(bridge_name);
        {
            UniqueFd rx, tx;
            run_in(neighbour, [&] {
                rx.reset(::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
                sockaddr_in6 any{};
                any.sin6_family = AF_INET6;
                any.sin6_port = htons(u.port(2));
                if (::bind(rx.get(), reinterpret_cast<::sockaddr*>(&any), sizeof any) < 0) rx.reset();
            });
            bool sent = false;
            run_in(attacker, [&] {
                tx.reset(::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
                sockaddr_in6 to{};
                to.sin6_family = AF_INET6;
                to.sin6_port = htons(u.port(2));
                auto ll = link_local(n_mac);
                std::memcpy(&to.sin6_addr, ll.data(), 16);
                to.sin6_scope_id = ::if_nametoindex("host0");
                sent = ::sendto(tx.get(), "ll6!", 4, 0, reinterpret_cast<::sockaddr*>(&to), sizeof to) == 4;
            });
            ASSERT_TRUE(rx);
            EXPECT_TRUE(sent) << "sendto over IPv6 link-local failed";
            EXPECT_TRUE(received_tag(rx.get(), "ll6!", 3000))
                << "container to container over IPv6 link-local";
        }

        Capture on_host(bridge_name), on_neighbour("host0", &neighbour);
        ASSERT_TRUE(on_host.ok() && on_neighbour.ok());
        auto host_sock = udp_bound(host_ip, u.port(3));
        ASSERT_TRUE(host_sock);
        const MacBytes broadcast = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
        const auto prefix = test_prefix(u.pid);
        // The control: the attacker's own broadcast, which both must see.
        ASSERT_TRUE(send_frame(attacker, "host0",
                               udp4_frame(a_mac, broadcast, a_ip, net + ".255", u.port(3), "own!")));
        // The neighbour's address towards the host; the host's address towards the neighbour.
        ASSERT_TRUE(
            send_frame(attacker, "host0", udp4_frame(a_mac, br_mac, n_ip, host_ip, u.port(3), "nip!")));
        ASSERT_TRUE(
            send_frame(attacker, "host0", udp4_frame(a_mac, n_mac, host_ip, n_ip, u.port(3), "hip!")));
        // The neighbour's MAC (a bridge that learnt it would send the neighbour's traffic here).
        ASSERT_TRUE(send_frame(attacker, "host0",
                               udp4_frame(n_mac, broadcast, a_ip, net + ".255", u.port(3), "nmc!")));
        // ARP: "the neighbour's address, and the host's, are at my MAC".
        ASSERT_TRUE(send_frame(attacker, "host0", arp_frame(a_mac, a_mac, n_ip)));
        ASSERT_TRUE(send_frame(attacker, "host0", arp_frame(a_mac, a_mac, host_ip)));
        // A router advertisement to all nodes.
        ASSERT_TRUE(send_frame(attacker, "host0", ra_frame(a_mac, prefix)));

        auto host_saw = on_host.collect(500), neighbour_saw = on_neighbour.collect(50);
        EXPECT_TRUE(any_tagged(host_saw, "own!")) << "control: the host sees the attacker's own broadcast";
        EXPECT_TRUE(any_tagged(neighbour_saw, "own!"))
            << "control: the neighbour sees the attacker's own broadcast";
        EXPECT_FALSE(any_tagged(host_saw, "nip!")) << "the host saw a datagram from the neighbour's address";
        EXPECT_FALSE(received_tag(host_sock.get(), "nip!", 50))
            << "a datagram from the neighbour's address reached the host's socket";
        EXPECT_FALSE(any_tagged(neighbour_saw, "hip!"))
            << "the neighbour saw a datagram from the host's address";
        EXPECT_FALSE(any_tagged(host_saw, "nmc!")) << "the host saw a frame from the neighbour's MAC";
        EXPECT_FALSE(any_tagged(neighbour_saw, "nmc!")) << "the neighbour saw a frame from its own MAC";
        EXPECT_FALSE(any_arp_claim(host_saw, a_mac, n_ip))
            << "the host saw an ARP claim for the neighbour's address";
        EXPECT_FALSE(any_arp_claim(neighbour_saw, a_mac, host_ip))
            << "the neighbour saw an ARP claim for the host's address";
        EXPECT_FALSE(any_router_advert(host_saw, a_mac))
            << "the host saw the container's router advertisement";
        EXPECT_FALSE(any_router_advert(neighbour_saw, a_mac))
            << "the neighbour saw the container's router advertisement";
        EXPECT_FALSE(has_address_in(bridge_name, prefix, 0))
            << "the host configured an address from the advertisement";
        bool neighbour_took_it = false;
        run_in(neighbour, [&] { neighbour_took_it = has_address_in("host0", prefix, 0); });
        EXPECT_FALSE(neighbour_took_it) << "the neighbour configured an address from the advertisement";
    }
    for (const auto& d : {da, dn}) {
        EXPECT_FALSE(link_exists(host_interface_name(d.name)));
        EXPECT_EQ(nft_leftovers(d.name), std::vector<std::string>{});
    }
}

// bridge without an address: nothing to derive the MAC from, so attach() picks a random one, sets
// it on host0 and names it in the chain, which then lets no IPv4 through; all of it goes with the
// attachment.
TEST_F(NetworkAttach, ABridgedContainerWithoutAnAddressGetsARandomMacThatItsChainNames) {
    const std::string bridge_name = fmt::format("nt{}", u.pid);
    TestBridge bridge(bridge_name, fmt::format("10.238.{}.1/24", u.pid % 250));
    ASSERT_TRUE(bridge.ok());
    NetnsChild child;
    auto d = declaration(u.name('r'), NetworkMode::Bridge);
    d.network.bridge = bridge_name;
    {
        auto att = attach(d, child.pid());
        ASSERT_TRUE(att) << att.error().what();
        ASSERT_TRUE(att->plan().container_mac);
        const Mac mac = *att->plan().container_mac;
        EXPECT_EQ(mac.bytes[0] & 0x03, 0x02) << "not a locally administered unicast MAC: " << format_mac(mac);
        EXPECT_EQ(mac_in(child, "host0"), mac.bytes);
        auto nft = Nft::open();
        ASSERT_TRUE(nft);
        auto chain = nft->run(fmt::format("list chain netdev berth c-{}-spoof", d.name));
        ASSERT_TRUE(chain) << chain.error().what();
        EXPECT_NE(chain->find("ether saddr != " + format_mac(mac) + " counter packets"), std::string::npos)
            << *chain;
        EXPECT_EQ(chain->find("ip saddr"), std::string::npos) << "no address, no IPv4: " << *chain;
    }
    EXPECT_FALSE(link_exists(host_interface_name(d.name)));
    EXPECT_EQ(nft_leftovers(d.name), std::vector<std::string>{});
}

// ---- IPv6 anti-spoofing on a dual-stack network (issue #20) ------------------------------------

namespace {

void put_ipv6(Bytes& b, size_t at, const std::string& ip) { ::inet_pton(AF_INET6, ip.c_str(), &b[at]); }

// A UDP datagram src_ip:40000 -> dst_ip:port carrying the 4-byte `tag` (checksum left 0: the
// frame is looked for on the wire, not delivered to a socket).
Bytes udp6_frame(const MacBytes& src_mac, const MacBytes& dst_mac, const std::string& src_ip,
                 const std::string& dst_ip, uint16_t port, const char tag[4]) {
    Bytes b = ethernet(dst_mac, src_mac, ETH_P_IPV6, 40 + 8 + 4);
    b[14] = 0x60;
    put16(b, 18, 12);  // payload length
    b[20] = IPPROTO_UDP;
    b[21] = 64;
    put_ipv6(b, 22, src_ip);
    put_ipv6(b, 38, dst_ip);
    put16(b, 54, 40000);
    put16(b, 56, port);
    put16(b, 58, 12);
    std::memcpy(&b[62], tag, 4);
    return b;
}

// An unsolicited neighbour advertisement (override) to all nodes from `src_ip`: "`target` is at
// `src_mac`", the IPv6 form of the gratuitous ARP.
Bytes na_frame(const MacBytes& src_mac, const std::string& src_ip, const std::string& target) {
    const size_t icmp_len = 8 + 16 + 8;  // header, target, target link-layer address option
    Bytes b = ethernet({0x33, 0x33, 0, 0, 0, 1}, src_mac, ETH_P_IPV6, 40 + icmp_len);
    b[14] = 0x60;
    put16(b, 18, icmp_len);
    b[20] = IPPROTO_ICMPV6;
    b[21] = 255;
    put_ipv6(b, 22, src_ip);
    put_ipv6(b, 38, "ff02::1");
    const size_t o = 54;
    b[o] = 136;       // neighbour advertisement
    b[o + 4] = 0x20;  // override
    put_ipv6(b, o + 8, target);
    b[o + 24] = 2;  // target link-layer address
    b[o + 25] = 1;
    std::memcpy(&b[o + 26], src_mac.data(), 6);
    set_icmpv6_checksum(b, o, icmp_len);
    return b;
}

bool any_na_for(const std::vector<Bytes>& frames, const MacBytes& from, const std::string& target) {
    uint8_t t[16];
    ::inet_pton(AF_INET6, target.c_str(), t);
    return std::any_of(frames.begin(), frames.end(), [&](auto& f) {
        return f.size() >= 78 && from_mac(f, from) && f[12] == 0x86 && f[13] == 0xdd &&
               f[20] == IPPROTO_ICMPV6 && f[54] == 136 && std::equal(t, t + 16, f.begin() + 62);
    });
}

// The packets counted by the rules of `chain` (netdev berth) whose text holds `needle`.
uint64_t counted(const std::string& chain, const std::string& needle) {
    auto nft = Nft::open();
    if (!nft) return 0;
    auto listing = nft->run("list chain netdev berth " + chain);
    if (!listing) return 0;
    uint64_t total = 0;
    for (const auto& line : split(*listing, '\n')) {
        auto at = line.find("counter packets ");
        if (at == std::string::npos || line.find(needle) == std::string::npos) continue;
        total += std::strtoull(line.c_str() + at + 16, nullptr, 10);
    }
    return total;
}

}  // namespace

// A container on a dual-stack bridge (a declared network's link) cannot send from its neighbour's
// IPv6 address nor claim that address with an unsolicited neighbour advertisement: neither the
// host nor the neighbour sees either, and the chain's counters count both. Its own IPv6 traffic
// still flows; without the chain, the forged datagram gets through (the control).
TEST_F(NetworkAttach, ADualStackContainerCannotSendFromOrAdvertiseItsNeighboursIpv6Address) {
    const std::string bridge_name = fmt::format("n6{}", u.pid);
    const std::string net = fmt::format("10.239.{}", u.pid % 250);
    const std::string net6 = fmt::format("fd00:239:{:x}::", u.pid % 250 + 1);
    TestBridge bridge(bridge_name, net + ".1/24");
    ASSERT_TRUE(bridge.ok());
    NetnsChild attacker, neighbour;
    ASSERT_GT(attacker.pid(), 0);
    ASSERT_GT(neighbour.pid(), 0);
    auto decl_for = [&](char tag, int host) {
        auto d = declaration(u.name(tag), NetworkMode::Bridge);
        d.network.bridge = bridge_name;
        d.network.address = fmt::format("{}.{}/24", net, host);
        d.network.address6 = fmt::format("{}{}/64", net6, host);
        d.network.link = 0;
        return d;
    };
    auto da = decl_for('a', 2), dn = decl_for('c', 3);
    const std::string a6 = net6 + "2", n6 = net6 + "3";
    {
        auto att_a = attach(da, attacker.pid());
        ASSERT_TRUE(att_a) << att_a.error().what();
        auto att_n = attach(dn, neighbour.pid());
        ASSERT_TRUE(att_n) << att_n.error().what();
        EXPECT_EQ(att_a->plan().container_interface, "eth0");
        const std::string chain = att_a->plan().spoof_chain;
        const MacBytes a_mac = mac_in(attacker, "eth0"), n_mac = mac_in(neighbour, "eth0");
        const MacBytes broadcast6 = {0x33, 0x33, 0, 0, 0, 1};

        Capture on_host(bridge_name), on_neighbour("eth0", &neighbour);
        ASSERT_TRUE(on_host.ok() && on_neighbour.ok());
        const uint64_t dropped_before = counted(chain, "spoofed"),
                       na_before = counted(chain, "nd-neighbor-advert");
        // The control: its own address, which both must see.
        ASSERT_TRUE(
            send_frame(attacker, "eth0", udp6_frame(a_mac, broadcast6, a6, "ff02::1", u.port(4), "ow6!")));
        // The neighbour's address as source, to the neighbour and to everyone.
        ASSERT_TRUE(send_frame(attacker, "eth0", udp6_frame(a_mac, n_mac, n6, n6, u.port(4), "sp6!")));
        ASSERT_TRUE(
            send_frame(attacker, "eth0", udp6_frame(a_mac, broadcast6, n6, "ff02::1", u.port(4), "sq6!")));
        // "The neighbour's address is at my MAC", from its own address and from the neighbour's.
        ASSERT_TRUE(send_frame(attacker, "eth0", na_frame(a_mac, a6, n6)));
        ASSERT_TRUE(send_frame(attacker, "eth0", na_frame(a_mac, n6, n6)));

        auto host_saw = on_host.collect(500), neighbour_saw = on_neighbour.collect(50);
        EXPECT_TRUE(any_tagged(host_saw, "ow6!")) << "control: the host sees the container's own IPv6";
        EXPECT_TRUE(any_tagged(neighbour_saw, "ow6!"))
            << "control: the neighbour sees the container's own IPv6";
        for (const char* tag : {"sp6!", "sq6!"}) {
            EXPECT_FALSE(any_tagged(host_saw, tag)) << "the host saw a datagram from the neighbour's address";
            EXPECT_FALSE(any_tagged(neighbour_saw, tag))
                << "the neighbour saw a datagram from its own address";
        }
        EXPECT_FALSE(any_na_for(host_saw, a_mac, n6)) << "the host saw a claim for the neighbour's address";
        EXPECT_FALSE(any_na_for(neighbour_saw, a_mac, n6)) << "the neighbour saw a claim for its own address";
        EXPECT_GE(counted(chain, "spoofed") - dropped_before, 2u) << "the forged datagrams are counted";
        EXPECT_GE(counted(chain, "nd-neighbor-advert") - na_before, 2u)
            << "the forged advertisements are counted";

        // The control: without the chain the forged datagram and advertisement reach the neighbour.
        auto nft = Nft::open();
        ASSERT_TRUE(nft);
        ASSERT_TRUE(nft->run(fmt::format("delete chain netdev berth {}", chain)));
        Capture again("eth0", &neighbour);
        ASSERT_TRUE(again.ok());
        ASSERT_TRUE(
            send_frame(attacker, "eth0", udp6_frame(a_mac, broadcast6, n6, "ff02::1", u.port(4), "sq6!")));
        ASSERT_TRUE(send_frame(attacker, "eth0", na_frame(a_mac, a6, n6)));
        auto unfiltered = again.collect(300);
        EXPECT_TRUE(any_tagged(unfiltered, "sq6!")) << "control: the forged datagram is deliverable";
        EXPECT_TRUE(any_na_for(unfiltered, a_mac, n6)) << "control: the forged advertisement is deliverable";
    }
    for (const auto& d : {da, dn}) {
        EXPECT_FALSE(link_exists(host_interface_name(d.name)));
        EXPECT_EQ(nft_leftovers(d.name), std::vector<std::string>{});
    }
}

// The kernel finishes bringing the host end up asynchronously (its link watcher); until then the
// end drops what it sends and a bridge does not forward to it, so a payload that connects at once
// lost its first ARP or SYN and waited a second for the retry (before the fix: 11 of 40 veth and 23
// of 40 bridge starts on an idle host). attach() returns only once the link carries traffic: the
// host end is operationally up (a bridge port forwarding) and a connection from the container is
// answered before TCP's and ARP's first retry (1 s).
TEST_F(NetworkAttach, ThePayloadsFirstPacketsAreCarriedAsSoonAsAttachReturns) {
    const std::string bridge_name = fmt::format("nx{}", u.pid);
    const std::string net = fmt::format("10.235.{}", u.pid % 250);
    for (NetworkMode mode : {NetworkMode::Veth, NetworkMode::Bridge}) {
        for (int round = 0; round < 10; ++round) {
            SCOPED_TRACE(fmt::format("{} round {}", mode == NetworkMode::Veth ? "veth" : "bridge", round));
            // A fresh bridge each round: the first port is the case where the bridge itself
            // changes state as well.
            std::optional<TestBridge> bridge;
            auto d = declaration(u.name('F'), mode);
            std::string host_ip;
            if (mode == NetworkMode::Bridge) {
                bridge.emplace(bridge_name, net + ".1/24");
                ASSERT_TRUE(bridge->ok());
                d.network.bridge = bridge_name;
                d.network.address = net + ".2/24";
                d.network.gateway = net + ".1";
                host_ip = net + ".1";
            } else {
                d.network.address = u.subnet(30, 2) + "/30";
                host_ip = u.subnet(30, 1);
            }
            NetnsChild container;
            ASSERT_GT(container.pid(), 0);
            auto listener = host_socket();
            ASSERT_TRUE(listen_on(listener.get(), "0.0.0.0", u.port(5)));
            auto client = socket_in(container);
            timeval below_first_retry{0, 900 * 1000};
            ::setsockopt(client.get(), SOL_SOCKET, SO_SNDTIMEO, &below_first_retry, sizeof below_first_retry);

            auto att = attach(d, container.pid());
            ASSERT_TRUE(att) << att.error().what();
            const std::string sys = "/sys/class/net/" + host_interface_name(d.name);
            EXPECT_EQ(read_file(sys + "/operstate").value_or("?"), "up\n");
            if (mode == NetworkMode::Bridge) {
                EXPECT_EQ(read_file(sys + "/brport/state").value_or("?"), "3\n")
                    << "the port is not forwarding";
            }
            EXPECT_TRUE(att->warnings().empty()) << att->warnings()[0];
            auto a = make_addr(host_ip, u.port(5));
            EXPECT_EQ(::connect(client.get(), reinterpret_cast<::sockaddr*>(&a), sizeof a), 0)
                << "the first connection was not answered before the first retry: " << strerror(errno);
        }
    }
}
