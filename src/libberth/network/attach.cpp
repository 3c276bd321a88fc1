// attach(): the apply half of berth-network. Runs in the supervisor, in the HOST network
// namespace, after the payload has unshared its own. Order matters for "nothing left behind":
//
//   1. plan() and every check that needs no change (bridge exists, host end name free, no address
//      clash, host ports not listened on nor claimed by another container);
//   2. the veth pair, created with its peer already inside the payload's netns as "host0" (one
//      RTM_NEWLINK with IFLA_NET_NS_FD on the peer, so the peer never appears in the host netns and
//      no rename is needed) and with the MAC the plan chose; from here on the NetworkAttachment
//      owns the link, and any later error destroys it, and with it the peer;
//   3. the nftables script of the plan, one atomic transaction: the anti-spoofing chain on the
//      host end's ingress (in place before either end is up, so no frame ever passes unfiltered),
//      and the published-port claims (`create element`, fails if another container claimed the
//      port first), DNAT and masquerade rules;
//   4. host-end sysctls (accept_ra=0 among them), address, bridge master, link up;
//   5. inside the netns (a netlink socket created there, see Netlink::open_in): lo up, host0
//      address, up, default route;
//   6. wait until the kernel has finished bringing the host end up (LinkMonitor), so the payload's
//      first packets are not dropped.
#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "basic/fs-util.h"
#include "basic/string-util.h"
#include "network/netlink.h"
#include "network/network.h"
#include "network/nft.h"

namespace berth::network {

using config::NetworkMode;

// ---- NetworkAttachment --------------------------------------------------------------------

NetworkAttachment::NetworkAttachment(NetworkAttachment&& other) noexcept
    : plan_(std::move(other.plan_)),
      own_link_(std::exchange(other.own_link_, false)),
      own_nft_(std::exchange(other.own_nft_, false)),
      localnet_bridge_(std::exchange(other.localnet_bridge_, std::string())),
      proxies_(std::exchange(other.proxies_, {})),
      warnings_(std::move(other.warnings_)) {}

NetworkAttachment& NetworkAttachment::operator=(NetworkAttachment&& other) noexcept {
    if (this != &other) {
        (void)detach();
        plan_ = std::move(other.plan_);
        own_link_ = std::exchange(other.own_link_, false);
        own_nft_ = std::exchange(other.own_nft_, false);
        localnet_bridge_ = std::exchange(other.localnet_bridge_, std::string());
        proxies_ = std::exchange(other.proxies_, {});
        warnings_ = std::move(other.warnings_);
    }
    return *this;
}

NetworkAttachment::~NetworkAttachment() {
    try {
        (void)detach();
    } catch (...) {
        // std::bad_alloc from building a message: nothing sensible left to do.
    }
}

void NetworkAttachment::release() noexcept {
    own_link_ = false;
    own_nft_ = false;
    localnet_bridge_.clear();
    proxies_.clear();
}

NetworkAttachment::Record NetworkAttachment::record() const {
    return Record{plan_.container, plan_.host_interface, own_link_, plan_.nft_remove,
                  own_nft_,        localnet_bridge_,     proxies_};
}

NetworkAttachment NetworkAttachment::adopt(Record r) {
    NetworkAttachment att;
    att.plan_.container = std::move(r.container);
    att.plan_.host_interface = std::move(r.host_interface);
    att.plan_.nft_remove = std::move(r.nft_remove);
    att.own_link_ = r.own_link;
    att.own_nft_ = r.own_nft;
    att.localnet_bridge_ = std::move(r.localnet_bridge);
    att.proxies_ = std::move(r.loopback_proxies);
    return att;
}

std::string NetworkAttachment::container_address() const {
    return plan_.container_address ? format_ipv4(plan_.container_address->address) : std::string();
}

std::string NetworkAttachment::container_address6() const {
    return plan_.container_address6 ? format_ipv6(plan_.container_address6->address) : std::string();
}

Result<> NetworkAttachment::detach() {
    Result<> result;
    // The proxies first: the port on ::1 is free once detach() returns.
    for (const auto& proxy : std::exchange(proxies_, {}))
        if (auto r = stop_loopback_proxy(proxy); !r && result) result = Unexpected(r.error());
    if (own_nft_) {
        own_nft_ = false;
        auto nft = Nft::open();
        auto removed = nft ? nft->run(plan_.nft_remove) : Result<std::string>(Unexpected(nft.error()));
        if (!removed) {
            // Someone changed the table behind our back: remove whatever of ours is still there.
            auto r = remove_leftovers(plan_.container);
            if (!r && result) result = Unexpected(r.error());
        }
    }
    if (!localnet_bridge_.empty()) {
        // route_localnet on a shared bridge: switch it off again when no other container's guard
        // chain still names the bridge (the guard and the sysctl belong together).
        std::string bridge = std::exchange(localnet_bridge_, std::string());
        auto nft = Nft::open();
        auto listing = nft ? nft->run(fmt::format("list table ip {}", kNftTable))
                           : Result<std::string>(Unexpected(nft.error()));
        std::string needle = fmt::format("iifname \"{}\" ip daddr 127.0.0.0/8 drop", bridge);
        if (!listing || listing->find(needle) == std::string::npos) {
            auto r = write_file(fmt::format("/proc/sys/net/ipv4/conf/{}/route_localnet", bridge), "0");
            if (!r && r.error().code != ENOENT && result) result = Unexpected(r.error());
        }
    }
    if (own_link_) {
        own_link_ = false;
        auto nl = Netlink::open();
        // Deleting the host end deletes the peer. ENODEV: the container's netns is gone already,
        // which took the pair with it.
        auto r = nl ? nl->delete_link(plan_.host_interface) : Result<>(Unexpected(nl.error()));
        if (!r && r.error().code != ENODEV && result) result = Unexpected(r.error());
    }
    if (!result)
        return fail(result.error().wrap(fmt::format("container '{}': remove network", plan_.container)));
    return {};
}

Mac random_mac() {
    Mac mac;
    if (::getrandom(mac.bytes.data(), mac.bytes.size(), 0) != static_cast<ssize_t>(mac.bytes.size())) {
        // getrandom() on 6 bytes does not fail once the pool is ready; never leave it all-zero.
        uint64_t t = static_cast<uint64_t>(::time(nullptr)) ^ (static_cast<uint64_t>(::getpid()) << 20);
        for (auto& byte : mac.bytes) byte = static_cast<uint8_t>(t >>= 5);
    }
    mac.bytes[0] = static_cast<uint8_t>((mac.bytes[0] & 0xfe) | 0x02);  // unicast, locally administered
    return mac;
}

// ---- helpers ------------------------------------------------------------------------------

namespace {

std::string ifname_of(int index) {
    char name[IF_NAMESIZE] = {};
    if (::if_indextoname(static_cast<unsigned>(index), name)) return name;
    return fmt::format("#{}", index);
}

Result<> write_sysctl(const std::string& path, const char* value) {
    return with_context(write_file(path, value), fmt::format("set sysctl '{}'", path));
}

struct Listener {
    std::optional<Ipv4> address;  // nullopt = any
    uint16_t port;
};

// Sockets listening in the host netns (TCP LISTEN, unconnected UDP), from /proc/net. IPv6
// sockets bound to :: also take IPv4; other IPv6 addresses do not compete with our IPv4 rules.
uint32_t hex(const std::string& text) {
    return static_cast<uint32_t>(std::strtoul(text.c_str(), nullptr, 16));
}

std::vector<Listener> listeners(const std::string& protocol) {
    std::vector<Listener> out;
    const char* state = protocol == "tcp" ? "0A" : "07";
    for (bool v6 : {false, true}) {
        std::ifstream in("/proc/net/" + protocol + (v6 ? "6" : ""));
        std::string line;
        std::getline(in, line);  // header
        while (std::getline(in, line)) {
            auto fields = split(line, ' ');
            if (fields.size() < 4 || fields[3] != state) continue;
            auto colon = fields[1].find(':');
            if (colon == std::string::npos) continue;
            std::string addr = fields[1].substr(0, colon);
            uint16_t port = static_cast<uint16_t>(hex(fields[1].substr(colon + 1)));
            Listener l{std::nullopt, port};
            if (!v6) {
                uint32_t raw = hex(addr);
                if (raw != 0) l.address = Ipv4{ntohl(raw)};
            } else if (addr != std::string(32, '0')) {
                // ::ffff:a.b.c.d is printed as four host-endian words: 0 0 FFFF0000 addr.
                if (addr.substr(0, 16) != std::string(16, '0') || addr.substr(16, 8) != "FFFF0000") continue;
                l.address = Ipv4{ntohl(hex(addr.substr(24, 8)))};
            }
            out.push_back(l);
        }
    }
    return out;
}

// The container that claimed proto . port in the berth table, or "" if none.
Result<std::map<std::pair<std::string, int>, std::string>> claimed_ports() {
    std::map<std::pair<std::string, int>, std::string> out;
    auto nft = BERTH_TRY(Nft::open(true));
    auto listing = nft.run(fmt::format("list set ip {} {}", kNftTable, kNftPortSet));
    if (!listing) {
        if (listing.error().code == ENOENT) return out;  // no table or set yet: nothing claimed
        return fail(listing.error());
    }
    auto doc = nlohmann::json::parse(*listing, nullptr, false);
    if (doc.is_discarded()) return fail(EIO, "nftables: unreadable JSON listing");
    try {
        for (auto& item : doc.value("nftables", nlohmann::json::array())) {
            if (!item.contains("set")) continue;
            for (auto& e : item["set"].value("elem", nlohmann::json::array())) {
                const auto& el = e.contains("elem") ? e["elem"] : e;
                std::string comment = el.is_object() ? el.value("comment", "") : "";
                const auto& val = el.is_object() && el.contains("val") ? el["val"] : el;
                if (!val.is_object() || !val.contains("concat")) continue;
                auto& c = val["concat"];
                if (c.size() != 2 || !c[0].is_string() || !c[1].is_number_integer()) continue;
                out[{c[0].get<std::string>(), c[1].get<int>()}] = comment;
            }
        }
    } catch (const nlohmann::json::exception& e) {
        return fail(EIO, "nftables: unexpected JSON listing: {}", e.what());
    }
    return out;
}

Result<> check_ports(const NetworkPlan& p) {
    auto claimed = BERTH_TRY(claimed_ports());
    for (const auto& pp : p.ports) {
        auto it = claimed.find({pp.protocol, pp.host_port});
        // Our own name: a leftover of a previous run of this container, removed before applying.
        if (it != claimed.end() && it->second != p.container)
            return fail(EADDRINUSE, "host port {}/{} is already published by container '{}'", pp.host_port,
                        pp.protocol, it->second);
        for (const auto& l : listeners(pp.protocol)) {
            if (l.port != pp.host_port) continue;
            if (!l.address || !pp.host_address || *l.address == *pp.host_address)
                return fail(EADDRINUSE, "host port {}/{} is already in use on the host ({}:{} is listening)",
                            pp.host_port, pp.protocol, l.address ? format_ipv4(*l.address) : "*", l.port);
        }
    }
    return {};
}

Result<> check_addresses(Netlink& nl, const NetworkPlan& p) {
    auto addresses = BERTH_TRY(nl.ipv4_addresses());
    for (const auto& a : addresses) {
        std::string where = fmt::format("{} on '{}'", format_ipv4_cidr(a.address), ifname_of(a.index));
        if (p.container_address && a.address.address == p.container_address->address)
            return fail(EADDRINUSE,
                        "address clash: the container's address {} is already used by the host ({}){}",
                        format_ipv4(p.container_address->address), where,
                        p.pool_address ? "; set [network] address to pick another subnet" : "");
        if (p.mode == NetworkMode::Veth && subnets_overlap(a.address, *p.host_address))
            return fail(EADDRINUSE, "address clash: subnet {}/{} is already in use on the host ({}){}",
                        format_ipv4(network_of(*p.host_address)), p.host_address->prefix, where,
                        p.pool_address ? "; set [network] address to pick another subnet" : "");
    }
    return {};
}

bool needs_ip_forward(const NetworkPlan& p) {
    return std::any_of(p.ports.begin(), p.ports.end(), [](const PublishedPort& pp) {
        return pp.ipv4() && (!pp.host_address || (pp.host_address->value >> 24) != 127);
    });
}

// Measured 0.06-1.4 ms on an idle host; the link watcher waits for the RTNL lock, which a busy
// host may hold for a while. Past this, the start goes on with a warning rather than failing.
constexpr std::chrono::milliseconds kLinkUpTimeout{3000};

Result<UniqueFd> open_netns(pid_t pid) {
    std::string path = fmt::format("/proc/{}/ns/net", pid);
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return fail_errno("open '{}'", path);
    struct stat theirs {
    }, ours{};
    if (::fstat(fd.get(), &theirs) < 0) return fail_errno("stat '{}'", path);
    if (::stat("/proc/self/ns/net", &ours) < 0) return fail_errno("stat '/proc/self/ns/net'");
    if (theirs.st_dev == ours.st_dev && theirs.st_ino == ours.st_ino)
        return fail(EINVAL, "process {} is in the host's network namespace (was CLONE_NEWNET forgotten?)",
                    pid);
    return fd;
}

Result<> attach_inside(int netns_fd, const NetworkPlan& p) {
    auto nl = BERTH_TRY(Netlink::open_in(netns_fd));
    auto lo = BERTH_TRY(nl.find_link("lo"));
    if (!lo) return fail(ENODEV, "no 'lo' in the container's network namespace");
    BERTH_TRY_VOID_CTX(nl.set_link(lo->index, true), "bring 'lo' up");
    if (p.mode == NetworkMode::None) return {};

    auto peer = BERTH_TRY(nl.find_link(p.container_interface));
    if (!peer)
        return fail(ENODEV, "'{}' did not arrive in the container's network namespace",
                    p.container_interface);
    if (p.container_address)
        BERTH_TRY_VOID_CTX(nl.add_address(peer->index, *p.container_address),
                           fmt::format("configure '{}'", p.container_interface));
    BERTH_TRY_VOID_CTX(nl.set_link(peer->index, true), fmt::format("bring '{}' up", p.container_interface));
    if (p.gateway) BERTH_TRY_VOID_CTX(nl.add_default_route(peer->index, *p.gateway), "in the container");
    if (p.container_address6)
        BERTH_TRY_VOID_CTX(nl.add_address6(peer->index, *p.container_address6),
                           fmt::format("configure '{}'", p.container_interface));
    if (p.gateway6) BERTH_TRY_VOID_CTX(nl.add_default_route6(peer->index, *p.gateway6), "in the container");
    return {};
}

}  // namespace

namespace {

// The deletions that remove container `name`'s chains (and, in the ip table, its port claims)
// from one of berth's tables, as listed by `nft -j`.
Result<std::string> leftovers_in(Nft& nft, const char* family, const std::string& name) {
    auto listing = nft.run(fmt::format("list table {} {}", family, kNftTable));
    if (!listing) {
        if (listing.error().code == ENOENT) return std::string();
        return fail(listing.error().wrap(fmt::format("list berth's nftables table ({})", family)));
    }
    auto doc = nlohmann::json::parse(*listing, nullptr, false);
    if (doc.is_discarded()) return fail(EIO, "nftables: unreadable JSON listing");
    std::string script;
    std::string prefix = nft_chain_stem(name) + "-";
    try {
        for (auto& item : doc.value("nftables", nlohmann::json::array())) {
            if (item.contains("chain")) {
                std::string chain = item["chain"].value("name", "");
                // "spoof1", "spoof2", ...: the links on its second, third, ... declared network.
                std::string_view rest = std::string_view(chain).substr(
                    chain.rfind(prefix, 0) == 0 ? prefix.size() : chain.size());
                bool ours = rest.size() > 5 && rest.substr(0, 5) == "spoof" &&
                            rest.find_first_not_of("0123456789", 5) == std::string_view::npos;
                for (const char* suffix : {"prerouting", "output", "postrouting", "guard", "spoof"})
                    if (rest == suffix) ours = true;
                if (ours) script += fmt::format("delete chain {} {} {}\n", family, kNftTable, chain);
            }
            if (item.contains("set") && item["set"].value("name", "") == kNftPortSet) {
                for (auto& e : item["set"].value("elem", nlohmann::json::array())) {
                    if (!e.contains("elem") || e["elem"].value("comment", "") != name) continue;
                    auto& c = e["elem"]["val"]["concat"];
                    if (c.size() != 2 || !c[0].is_string() || !c[1].is_number_integer()) continue;
                    script += fmt::format("delete element {} {} {} {{ {} . {} }}\n", family, kNftTable,
                                          kNftPortSet, c[0].get<std::string>(), c[1].get<int>());
                }
            }
        }
    } catch (const nlohmann::json::exception& e) {
        return fail(EIO, "nftables: unexpected JSON listing: {}", e.what());
    }
    return script;
}

}  // namespace

Result<> remove_leftovers(const std::string& name) {
    auto nft = BERTH_TRY(Nft::open(true));
    // The anti-spoofing chain: depending on the kernel, it is deleted with its device or stays,
    // unbound, until removed here.
    std::string script = BERTH_TRY(leftovers_in(nft, "ip", name));
    script += BERTH_TRY(leftovers_in(nft, "ip6", name));
    script += BERTH_TRY(leftovers_in(nft, "netdev", name));
    if (script.empty()) return {};
    auto plain = BERTH_TRY(Nft::open());
    BERTH_TRY_VOID_CTX(plain.run(script), fmt::format("remove leftover rules of container '{}'", name));
    return {};
}

Result<> remove_leftover_link(const std::string& name, int links) {
    auto nl = BERTH_TRY(Netlink::open());
    for (int i = 0; i < std::max(links, 1); ++i) {
        const std::string link = host_interface_name(name, i);
        auto found = BERTH_TRY(nl.find_link(link));
        if (!found || found->kind != "veth") continue;
        auto r = nl.delete_link(link);
        if (!r && r.error().code != ENODEV)
            return fail(r.error().wrap(fmt::format("remove leftover link '{}'", link)));
    }
    return {};
}

Result<NetworkAttachment> attach(const config::Declaration& decl, pid_t payload_pid) {
    NetworkAttachment att;
    att.plan_ = BERTH_TRY(plan(decl));
    if ((att.plan_.mode == NetworkMode::Veth || att.plan_.mode == NetworkMode::Bridge) &&
        !att.plan_.container_mac) {
        // Bridge mode without an address: no address to derive the MAC from, and one derived from
        // the name would clash with a same-named container of another host on the same LAN.
        att.plan_.container_mac = random_mac();
        att.plan_.nft_apply += antispoof_script(att.plan_, *att.plan_.container_mac);
    }
    const NetworkPlan& p = att.plan_;
    auto context = fmt::format("container '{}': network", decl.name);
    auto wrap = [&](Error e) { return fail(std::move(e).wrap(context)); };

    if (p.mode == NetworkMode::Host) return att;

    auto netns = open_netns(payload_pid);
    if (!netns) return wrap(netns.error());

    if (p.mode == NetworkMode::None) {
        auto r = attach_inside(netns->get(), p);
        if (!r) return wrap(r.error());
        return att;
    }

    // 1. Checks, before anything is created.
    auto nl = Netlink::open();
    if (!nl) return wrap(nl.error());
    int bridge_index = -1;
    if (p.mode == NetworkMode::Bridge) {
        auto bridge = nl->find_link(p.bridge);
        if (!bridge) return wrap(bridge.error());
        if (!*bridge) return wrap(Error{ENODEV, fmt::format("bridge '{}' does not exist", p.bridge)});
        if ((*bridge)->kind != "bridge")
            return wrap(Error{EINVAL, fmt::format("'{}' is not a bridge (it is a {} link)", p.bridge,
                                                  (*bridge)->kind.empty() ? "plain" : (*bridge)->kind)});
        bridge_index = (*bridge)->index;
    }
    auto existing = nl->find_link(p.host_interface);
    if (!existing) return wrap(existing.error());
    if (*existing)
        return wrap(
            Error{EEXIST, fmt::format("interface '{}' already exists (is container '{}' already running?)",
                                      p.host_interface, decl.name)});
    if (auto r = check_addresses(*nl, p); !r) return wrap(r.error());
    if (!p.ports.empty())
        if (auto r = check_ports(p); !r) return wrap(r.error());

    // 2. The pair. From here on `att` removes the link on any error.
    if (auto r = nl->create_veth(p.host_interface, p.container_interface, netns->get(), p.container_mac);
        !r) {
        if (r.error().code == EEXIST)
            return wrap(Error{
                EEXIST, fmt::format("interface '{}' already exists (is container '{}' already running?)",
                                    p.host_interface, decl.name)});
        return wrap(r.error());
    }
    att.own_link_ = true;

    // 3. nftables: anti-spoofing, published ports and outbound NAT, before anything is up.
    if (!p.nft_apply.empty()) {
        // Once per container: a further link's (declared.h) must not remove the first one's.
        if (decl.network.link <= 0)
            if (auto r = remove_leftovers(decl.name); !r) return wrap(r.error());
        auto nft = Nft::open();
        if (!nft) return wrap(nft.error());
        if (auto r = nft->run(p.nft_apply); !r) {
            if (r.error().code == EEXIST && !p.ports.empty()) {
                // Lost a race with another container claiming the same port.
                if (auto c = check_ports(p); !c) return wrap(c.error());
            }
            return wrap(
                r.error().wrap(p.ports.empty() ? "anti-spoofing and masquerade rules" : "publish ports"));
        }
        att.own_nft_ = true;
    }

    // 4. The host end. Its link notifications first: the kernel completes "up" later (step 6).
    auto link_monitor = LinkMonitor::open();
    if (!link_monitor) return wrap(link_monitor.error());
    auto host_end = nl->find_link(p.host_interface);
    if (!host_end) return wrap(host_end.error());
    if (!*host_end) return wrap(Error{ENODEV, fmt::format("'{}' vanished after creation", p.host_interface)});
    std::string conf = "/proc/sys/net/ipv4/conf/";
    if (p.forwarding)
        if (auto r = write_sysctl(conf + p.host_interface + "/forwarding", "1"); !r) return wrap(r.error());
    // The host takes no router advertisement from a container (CVE-2020-13401); the anti-spoofing
    // chain drops them as well, this is the second lock. ENOENT: IPv6 is off on this host.
    if (auto r = write_file("/proc/sys/net/ipv6/conf/" + p.host_interface + "/accept_ra", "0");
        !r && r.error().code != ENOENT)
        return wrap(r.error().wrap(fmt::format("set sysctl 'net.ipv6.conf.{}.accept_ra'", p.host_interface)));
    if (!p.localnet_interface.empty()) {
        if (auto r = write_sysctl(conf + p.localnet_interface + "/route_localnet", "1"); !r)
            return wrap(r.error());
        if (p.mode == NetworkMode::Bridge) att.localnet_bridge_ = p.localnet_interface;
    }
    if (p.host_address)
        if (auto r = nl->add_address((*host_end)->index, *p.host_address); !r)
            return wrap(r.error().wrap(fmt::format("configure '{}'", p.host_interface)));
    if (auto r = nl->set_link((*host_end)->index, true, bridge_index); !r)
        return wrap(r.error().wrap(p.mode == NetworkMode::Bridge
                                       ? fmt::format("add '{}' to bridge '{}'", p.host_interface, p.bridge)
                                       : fmt::format("bring '{}' up", p.host_interface)));

    // 5. Inside the container's netns.
    if (auto r = attach_inside(netns->get(), p); !r) return wrap(r.error());

    // 6. The host end got its carrier when the container's end came up; until the kernel's link
    // watcher has run for it, it drops what it sends and a bridge does not forward to it
    // (LinkMonitor). The payload's first packets must not be lost to that.
    auto up = link_monitor->wait_until_up((*host_end)->index, kLinkUpTimeout);
    if (!up) return wrap(up.error().wrap(fmt::format("wait for '{}' to come up", p.host_interface)));
    if (!*up)
        att.warnings_.push_back(fmt::format(
            "network: '{}' is not up after {} ms (the kernel's link watcher is late); the container's "
            "first packets may be lost",
            p.host_interface, kLinkUpTimeout.count()));

    if (p.ip_forward || needs_ip_forward(p))
        if (auto r = write_sysctl("/proc/sys/net/ipv4/ip_forward", "1"); !r) return wrap(r.error());
    // IPv6 ports are forwarded from the host's interfaces to the bridge as well.
    if (p.container_address6 && std::any_of(p.ports.begin(), p.ports.end(), [](const PublishedPort& pp) {
            return pp.family != PortFamily::Ipv4;
        }))
        if (auto r = write_sysctl("/proc/sys/net/ipv6/conf/all/forwarding", "1"); !r) return wrap(r.error());
    if (p.masquerade && !p.ip_forward) {
        // Not flipped behind the user's back: ip_forward makes the host a router for every
        // interface (docs/NETWORKING.md). Said once, at start, by the caller.
        auto forward = read_file("/proc/sys/net/ipv4/ip_forward");
        if (forward && trim(*forward) == "0")
            // The caller names the container (RunOptions::warn).
            att.warnings_.push_back(
                "network: masquerade is on but the host does not forward IPv4 (net.ipv4.ip_forward = 0): the "
                "container reaches the host only; set [network] ip_forward = true or sysctl "
                "net.ipv4.ip_forward=1");
    }
    // 7. TCP ports on ::1: their loopback proxies (loopback-proxy.h), last, as they connect to
    // the container.
    for (const auto& port : p.loopback6_ports) {
        auto proxy = start_loopback_proxy(port.host_port, port.target);
        if (!proxy) return wrap(proxy.error());
        att.proxies_.push_back(std::move(*proxy));
    }
    return att;
}

}  // namespace berth::network
