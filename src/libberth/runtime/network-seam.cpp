#include "runtime/network-seam.h"

#include "config/config.h"
#include "network/declared.h"
#include "network/dns.h"
#include "network/network.h"

namespace berth::runtime {

namespace {

class Attached final : public AttachedNetwork {
public:
    explicit Attached(network::NetworkAttachment a, bool named) : attachment_(std::move(a)), named_(named) {}
    // The container's names go with its links (a hand-over execs, and detach_network() does it).
    ~Attached() override {
        if (named_) (void)network::unregister_names(attachment_.plan().container);
    }
    std::string address() const override { return attachment_.container_address(); }
    std::vector<std::string> warnings() const override { return attachment_.warnings(); }
    NetworkTeardown teardown_record() const override {
        auto r = attachment_.record();
        return NetworkTeardown{r.host_interface, r.own_link, r.nft_remove, r.own_nft, r.localnet_bridge};
    }

private:
    network::NetworkAttachment attachment_;
    bool named_ = false;
};

// The names a container answers to on its network: its name, its hostname, its aliases.
std::vector<std::string> dns_names(const config::Declaration& decl) {
    std::vector<std::string> names{decl.name};
    if (!decl.hostname.empty()) names.push_back(decl.hostname);
    const auto& members = decl.network.networks;
    if (!members.empty())
        names.insert(names.end(), members.front().aliases.begin(), members.front().aliases.end());
    return names;
}

}  // namespace

// mode = "network": the container joins its declared network as a bridge member (the network's
// bridge, an address from its allocator, its gateway); everything else is the bridge mode's.
// The network is brought up if needed (embedded mode; under systemd its unit did it already).
// `joined` (when given) receives the network and address.
static Result<config::Declaration> resolved(const config::Declaration& decl, bool bring_up,
                                            std::optional<network::Joined>* joined_out = nullptr) {
    if (decl.network.mode != config::NetworkMode::Network) return decl;
    auto joined = network::join_network(decl, config::SearchPaths::networks().dirs, bring_up);
    if (!joined) return fail(joined.error());
    if (joined_out) *joined_out = *joined;
    return network::as_bridge_member(decl, *joined);
}

Result<std::vector<std::string>> planned_name_servers(const config::Declaration& declared) {
    std::optional<network::Joined> joined;
    BERTH_TRY_VOID(resolved(declared, false, &joined));
    if (!joined) return std::vector<std::string>{};
    return std::vector<std::string>{network::format_ipv4(joined->network.gateway.address)};
}

Result<std::string> planned_address(const config::Declaration& declared) {
    auto decl = resolved(declared, false);
    if (!decl) return fail(decl.error());
    auto plan = network::plan(*decl);
    if (!plan) return fail(plan.error());
    return plan->container_address ? network::format_ipv4_cidr(*plan->container_address) : std::string();
}

Result<std::unique_ptr<AttachedNetwork>> attach_network(const config::Declaration& declared,
                                                        pid_t payload_pid) {
    std::optional<network::Joined> joined;
    auto resolved_decl = resolved(declared, true, &joined);
    if (!resolved_decl) return fail(resolved_decl.error());
    const config::Declaration& decl = *resolved_decl;
    // host: nothing to do; none: the container's first process brings lo up itself (an ioctl, no
    // netlink socket in its namespace and no nftables context: cheaper at every start).
    if (decl.network.mode == config::NetworkMode::Host ||
        (decl.network.mode == config::NetworkMode::None && decl.network.ports.empty()))
        return std::unique_ptr<AttachedNetwork>();
    // Whatever a previous run of this container left when it could not tear down (a SIGKILLed
    // supervisor, a failed exec of the teardown): its nftables chains, and its veth host end if
    // the kernel has not yet destroyed the old namespace. The caller holds the container's lock.
    (void)network::remove_leftovers(decl.name);
    if (decl.network.mode == config::NetworkMode::Veth || decl.network.mode == config::NetworkMode::Bridge)
        (void)network::remove_leftover_link(decl.name);
    auto attached = network::attach(decl, payload_pid);
    if (!attached) return fail(attached.error());
    auto out = std::make_unique<Attached>(std::move(*attached), joined.has_value());
    // Resolvable by the other containers of the network from now on (dnsmasq's inotify).
    if (joined)
        BERTH_TRY_VOID(network::register_names(joined->network.network, declared.name,
                                               joined->address.address, dns_names(declared)));
    return std::unique_ptr<AttachedNetwork>(std::move(out));
}

Result<> detach_network(const std::string& name, const NetworkTeardown& t) {
    auto attachment = network::NetworkAttachment::adopt(
        {name, t.host_interface, t.own_link, t.nft_remove, t.own_nft, t.localnet_bridge});
    auto detached = attachment.detach();
    auto unnamed = network::unregister_names(name);
    if (!detached) return detached;
    return unnamed;
}

}  // namespace berth::runtime
