// The runtime's one call into networking (the network component, src/libberth/network): attach
// the container's network namespace from outside once it exists and before the payload starts.
// None and host need nothing from outside (the child brings lo up itself).
#pragma once

#include <sys/types.h>

#include <memory>

#include "basic/result.h"
#include "config/declaration.h"

namespace berth::runtime {

class AttachedNetwork {
public:
    virtual ~AttachedNetwork() = default;  // removes host-side links and nftables rules
};

Result<std::unique_ptr<AttachedNetwork>> attach_network(const config::Declaration& decl, pid_t payload_pid);

}  // namespace berth::runtime
