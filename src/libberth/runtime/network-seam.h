// The runtime's one call into networking (src/libberth/network): attach the container's network
// namespace from outside once it exists and before the payload starts, and undo it at the end
// (RAII). Kept behind this small seam so the runtime's tests and logic do not depend on how the
// network component builds links and nftables rules.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "basic/result.h"
#include "config/declaration.h"
#include "runtime/state.h"

namespace berth::runtime {

class AttachedNetwork {
public:
    virtual ~AttachedNetwork() = default;                   // removes host-side links and nftables rules
    virtual std::string address() const = 0;                // container address without prefix, or ""
    virtual std::vector<std::string> warnings() const = 0;  // for RunOptions::warn, once
    // For the teardown in another process image (supervise-protocol.h).
    virtual NetworkTeardown teardown_record() const = 0;
};

// The container's address as "A.B.C.D/N" (declared, or from the network's pool), "" when none.
// Pure: used before the container exists, for /etc/hosts.
Result<std::string> planned_address(const config::Declaration& decl);

// The name servers of the container's /etc/resolv.conf when it is on a declared network: the
// network's gateway (its dnsmasq, network/dns.h). Empty for the other modes.
Result<std::vector<std::string>> planned_name_servers(const config::Declaration& decl);

// Attaches; a container on a declared network is also registered in its DNS (name, hostname,
// aliases), unregistered again when the result is destroyed or by detach_network().
Result<std::unique_ptr<AttachedNetwork>> attach_network(const config::Declaration& decl, pid_t payload_pid);

// Removes what teardown_record() describes (container `name`).
Result<> detach_network(const std::string& name, const NetworkTeardown& record);

}  // namespace berth::runtime
