#include "runtime/network-seam.h"

#include "config/config.h"
#include "network/declared.h"
#include "network/network.h"

namespace berth::runtime {

namespace {

class Attached final : public AttachedNetwork {
public:
    explicit Attached(network::NetworkAttachment a) : attachment_(std::move(a)) {}
    std::string address() const override { return attachment_.container_address(); }
    std::vector<std::string> warnings() const override { return attachment_.warnings(); }
    NetworkTeardown teardown_record() const override {
        auto r = attachment_.record();
        return NetworkTeardown{r.host_interface, r.own_link, r.nft_remove, r.own_nft, r.localnet_bridge};
    }

private:
    network::NetworkAttachment attachment_;
};

}  // namespace

// mode = "network": the container joins its declared network as a bridge member (the network's
// bridge, an address from its allocator, its gateway); everything else is the bridge mode's.
// The network is brought up if needed (embedded mode; under systemd its unit did it already).
static Result<config::Declaration> resolved(const config::Declaration& decl, bool bring_up) {
    if (decl.network.mode != config::NetworkMode::Network) return decl;
    auto joined = network::join_network(decl, config::SearchPaths::networks().dirs, bring_up);
    if (!joined) return fail(joined.error());
    return network::as_bridge_member(decl, *joined);
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
    auto resolved_decl = resolved(declared, true);
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
    return std::unique_ptr<AttachedNetwork>(new Attached(std::move(*attached)));
}

Result<> detach_network(const std::string& name, const NetworkTeardown& t) {
    auto attachment = network::NetworkAttachment::adopt(
        {name, t.host_interface, t.own_link, t.nft_remove, t.own_nft, t.localnet_bridge});
    return attachment.detach();
}

}  // namespace berth::runtime
