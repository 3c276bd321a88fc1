#include "runtime/network-seam.h"

#include <fcntl.h>
#include <unistd.h>

#include "basic/fs-util.h"
#include "config/config.h"
#include "network/declared.h"
#include "network/dns.h"
#include "network/netlink.h"
#include "network/network.h"

namespace berth::runtime {

namespace {

// A multi-homed container's own resolver (network/dns.h), named after the container.
Result<> stop_resolver(const std::string& name) {
    network::DnsPlan plan;
    plan.label = fmt::format("container '{}'", name);
    plan.pid_file = path_join(network::resolver_run_dir(), name + ".pid");
    return network::dns_down(plan);
}

class Attached final : public AttachedNetwork {
public:
    Attached(std::vector<network::NetworkAttachment> links, bool named, bool resolver)
        : links_(std::move(links)), named_(named), resolver_(resolver) {}
    // The container's names and its resolver go with its links (a hand-over execs, and
    // detach_network() does it). The resolver first: it keeps the container's netns alive.
    ~Attached() override {
        if (resolver_) (void)stop_resolver(links_.front().plan().container);
        if (named_) (void)network::unregister_names(links_.front().plan().container);
    }
    std::string address() const override { return links_.front().container_address(); }
    std::vector<std::string> warnings() const override {
        std::vector<std::string> out;
        for (const auto& l : links_) out.insert(out.end(), l.warnings().begin(), l.warnings().end());
        return out;
    }
    NetworkTeardown teardown_record() const override {
        auto r = links_.front().record();
        NetworkTeardown t{r.host_interface, r.own_link, r.nft_remove, r.own_nft, r.localnet_bridge, {}, {}};
        for (const auto& proxy : r.loopback_proxies) t.loopback_proxies.emplace_back(proxy.pid, proxy.target);
        for (size_t i = 1; i < links_.size(); ++i) {
            auto more = links_[i].record();
            if (more.own_link) t.more_interfaces.push_back(more.host_interface);
            t.nft_remove += more.nft_remove;
            t.own_nft = t.own_nft || more.own_nft;
        }
        return t;
    }

private:
    std::vector<network::NetworkAttachment> links_;
    bool named_ = false;
    bool resolver_ = false;
};

// The names a container answers to on one of its networks: its name, its hostname, the aliases
// of that membership.
std::vector<std::string> dns_names(const config::Declaration& decl, const network::Joined& joined) {
    std::vector<std::string> names{decl.name};
    if (!decl.hostname.empty()) names.push_back(decl.hostname);
    names.insert(names.end(), joined.aliases.begin(), joined.aliases.end());
    return names;
}

// Inside the container's namespace: no forwarding between its links (declared.h). The kernel
// may have given the new namespace the host's IPv4 settings (net.core.devconf_inherit_init_net),
// and a host with declared networks forwards.
Result<> no_forwarding_inside(int netns_fd) {
    auto inside = BERTH_TRY(network::NetnsEntry::enter(netns_fd));
    for (const char* sysctl :
         {"/proc/sys/net/ipv4/conf/all/forwarding", "/proc/sys/net/ipv6/conf/all/forwarding"}) {
        auto r = write_file(sysctl, "0\n");
        if (!r && r.error().code != ENOENT) return fail(r.error().wrap("in the container's namespace"));
    }
    return inside.restore();
}

}  // namespace

// mode = "network": the container joins each of its declared networks as a bridge member (the
// network's bridge, an address from its allocator; the first network's gateway); everything else
// is the bridge mode's. The networks are brought up if needed (embedded mode; under systemd
// their units did it already). `joined` (when given) receives the networks and addresses.
static Result<std::vector<config::Declaration>> resolved(const config::Declaration& decl, bool bring_up,
                                                         std::vector<network::Joined>* joined_out = nullptr) {
    if (decl.network.mode != config::NetworkMode::Network) return std::vector<config::Declaration>{decl};
    auto joined = network::join_networks(decl, config::SearchPaths::networks().dirs, bring_up);
    if (!joined) return fail(joined.error());
    std::vector<config::Declaration> out;
    for (const auto& j : *joined) out.push_back(network::as_bridge_member(decl, j));
    if (joined_out) *joined_out = std::move(*joined);
    return out;
}

Result<std::vector<std::string>> planned_name_servers(const config::Declaration& declared) {
    std::vector<network::Joined> joined;
    BERTH_TRY_VOID(resolved(declared, false, &joined));
    if (joined.empty()) return std::vector<std::string>{};
    // Several networks: the container's own resolver (network/dns.h).
    if (joined.size() > 1) return std::vector<std::string>{network::kContainerResolverAddress};
    return std::vector<std::string>{network::format_ipv4(joined.front().network.gateway.address)};
}

Result<std::vector<std::string>> planned_addresses(const config::Declaration& declared) {
    auto decls = BERTH_TRY(resolved(declared, false));
    std::vector<std::string> out;
    for (const auto& decl : decls) {
        auto plan = network::plan(decl);
        if (!plan) return fail(plan.error());
        if (plan->container_address) out.push_back(network::format_ipv4_cidr(*plan->container_address));
        if (plan->container_address6) out.push_back(network::format_ipv6_cidr(*plan->container_address6));
    }
    return out;
}

Result<std::unique_ptr<AttachedNetwork>> attach_network(const config::Declaration& declared,
                                                        pid_t payload_pid) {
    std::vector<network::Joined> joined;
    auto decls = BERTH_TRY(resolved(declared, true, &joined));
    const config::Declaration& decl = decls.front();
    // host: nothing to do; none: the container's first process brings lo up itself (an ioctl, no
    // netlink socket in its namespace and no nftables context: cheaper at every start).
    if (decl.network.mode == config::NetworkMode::Host ||
        (decl.network.mode == config::NetworkMode::None && decl.network.ports.empty()))
        return std::unique_ptr<AttachedNetwork>();
    // Whatever a previous run of this container left when it could not tear down (a SIGKILLed
    // supervisor, a failed exec of the teardown): its nftables chains, its resolver, and its veth
    // host ends if the kernel has not yet destroyed the old namespace. The caller holds the
    // container's lock.
    (void)network::remove_leftovers(decl.name);
    if (!joined.empty()) (void)stop_resolver(decl.name);
    if (decl.network.mode == config::NetworkMode::Veth || decl.network.mode == config::NetworkMode::Bridge)
        (void)network::remove_leftover_link(decl.name, static_cast<int>(decls.size()));
    std::vector<network::NetworkAttachment> links;
    for (const auto& d : decls) {
        auto attached = network::attach(d, payload_pid);
        if (!attached) return fail(attached.error());  // `links` removes the earlier ones
        links.push_back(std::move(*attached));
    }
    const bool multi = joined.size() > 1;
    // From here on `out` owns the links, the names and (several networks) the resolver, and
    // removes them if what follows fails (stopping a resolver that never started is a no-op).
    auto out = std::make_unique<Attached>(std::move(links), !joined.empty(), multi);
    if (multi) {
        auto context = fmt::format("container '{}': network", decl.name);
        std::string path = fmt::format("/proc/{}/ns/net", payload_pid);
        UniqueFd netns(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!netns) return fail_errno("{}: open '{}'", context, path);
        BERTH_TRY_VOID_CTX(no_forwarding_inside(netns.get()), context);
        std::vector<std::string> networks;
        for (const auto& j : joined) networks.push_back(j.network.network);
        BERTH_TRY_VOID_CTX(network::dns_up(network::plan_container_resolver(
                                               decl.name, networks, joined.front().network.gateway.address),
                                           netns.get()),
                           context);
    }
    // Resolvable by the other containers of each network from now on (dnsmasq's inotify).
    for (const auto& j : joined)
        BERTH_TRY_VOID(network::register_names(
            j.network.network, declared.name, j.address.address,
            j.address6 ? std::optional<Ipv6>(j.address6->address) : std::nullopt, dns_names(declared, j)));
    return std::unique_ptr<AttachedNetwork>(std::move(out));
}

Result<> detach_network(const std::string& name, const NetworkTeardown& t) {
    // The resolver first: while it runs, the container's namespace (and the links in it) lives.
    auto resolver = stop_resolver(name);
    std::vector<network::LoopbackProxy> proxies;
    for (const auto& [pid, target] : t.loopback_proxies) proxies.push_back({pid, target});
    auto attachment = network::NetworkAttachment::adopt(
        {name, t.host_interface, t.own_link, t.nft_remove, t.own_nft, t.localnet_bridge, std::move(proxies)});
    auto detached = attachment.detach();
    for (const auto& more : t.more_interfaces) {
        auto link = network::NetworkAttachment::adopt({name, more, true, "", false, "", {}});
        auto r = link.detach();
        if (!r && detached) detached = r;
    }
    auto unnamed = network::unregister_names(name);
    if (!detached) return detached;
    if (!resolver) return resolver;
    return unnamed;
}

}  // namespace berth::runtime
