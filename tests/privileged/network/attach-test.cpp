// attach() for real: a child process unshares its network namespace the way the runtime's payload
// does, the test attaches it, then proves the result with TCP traffic and checks that destroying
// the attachment leaves nothing of this test behind.
#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <thread>

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
            while (::read(hold[0], &c, 1) > 0) {}
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
    UniqueFd netns() const { return UniqueFd(::open(fmt::format("/proc/{}/ns/net", pid_).c_str(), O_RDONLY | O_CLOEXEC)); }

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
    if (::send(client, "ping", 4, 0) != 4 || ::recv(conn.get(), buf, sizeof buf, 0) != 4 || std::string(buf, 4) != "ping")
        return ::testing::AssertionFailure() << "ping did not arrive";
    if (::send(conn.get(), "pong", 4, 0) != 4 || ::recv(client, buf, sizeof buf, 0) != 4 || std::string(buf, 4) != "pong")
        return ::testing::AssertionFailure() << "pong did not come back";
    if (seen_peer) {
        char text[INET_ADDRSTRLEN];
        *seen_peer = ::inet_ntop(AF_INET, &peer.sin_addr, text, sizeof text);
    }
    return ::testing::AssertionSuccess();
}

bool link_exists(const std::string& name) { return ::if_nametoindex(name.c_str()) != 0; }

// What the berth table holds for container `name`: its chains and its port claims.
std::vector<std::string> nft_leftovers(const std::string& name) {
    std::vector<std::string> out;
    auto nft = Nft::open(true);
    if (!nft) return {"cannot open nftables"};
    auto listing = nft->run("list table ip berth");
    if (!listing) return {};  // no table at all
    auto doc = nlohmann::json::parse(*listing);
    for (auto& item : doc["nftables"]) {
        if (item.contains("chain") && item["chain"]["name"].get<std::string>().rfind("c-" + name + "-", 0) == 0)
            out.push_back("chain " + item["chain"]["name"].get<std::string>());
        if (item.contains("set"))
            for (auto& e : item["set"].value("elem", nlohmann::json::array()))
                if (e.contains("elem") && e["elem"].value("comment", "") == name) out.push_back("element " + e.dump());
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
    std::string subnet(int slot, int host) const { return fmt::format("10.231.{}.{}", pid % 250, slot * 4 + host); }
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
    void SetUp() override { BERTH_REQUIRE_ROOT(); }
    Unique u;
};

}  // namespace

TEST_F(NetworkAttach, ModeNoneBringsLoopbackUpInTheContainer) {
    NetnsChild child;
    ASSERT_GT(child.pid(), 0);
    {
        auto client = socket_in(child);
        auto a = make_addr("127.0.0.1", 9);
        ASSERT_LT(::connect(client.get(), reinterpret_cast<::sockaddr*>(&a), sizeof a), 0) << "lo should start down";
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
            if (a.index == host0->index && format_ipv4_cidr(a.address) == container_ip + "/30") has_address = true;
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
    EXPECT_NE(again.error().what().find("container '" + d.name + "'"), std::string::npos) << again.error().what();
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
