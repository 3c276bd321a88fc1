#include "runtime/network-seam.h"

namespace berth::runtime {

Result<std::unique_ptr<AttachedNetwork>> attach_network(const config::Declaration& decl, pid_t) {
    switch (decl.network.mode) {
        case config::NetworkMode::None:
        case config::NetworkMode::Host:
            return std::unique_ptr<AttachedNetwork>();
        case config::NetworkMode::Veth:
        case config::NetworkMode::Bridge:
            break;
    }
    return fail(EOPNOTSUPP, "network mode '{}' needs the network component, which is not built yet",
                decl.network.mode == config::NetworkMode::Veth ? "veth" : "bridge");
}

}  // namespace berth::runtime
