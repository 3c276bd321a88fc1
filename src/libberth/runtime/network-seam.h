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

// Every address of the container, IPv4 and IPv6 CIDRs, link by link (one per declared network),
// for /etc/hosts. Used before the container exists: takes (or finds) the leases, changes nothing
// on the host.
Result<std::vector<std::string>> planned_addresses(const config::Declaration& decl);

// The name servers of the container's /etc/resolv.conf when it is on declared networks: the
// network's gateway (its dnsmasq, network/dns.h); on several networks, the container's own
// resolver (127.0.0.11, network/dns.h says why). Empty for the other modes.
Result<std::vector<std::string>> planned_name_servers(const config::Declaration& decl);

// Attaches (one link per declared network); a container on declared networks is also registered
// in each one's DNS (name, hostname, that membership's aliases) and, on several, gets its own
// resolver; all of it is undone when the result is destroyed or by detach_network().
Result<std::unique_ptr<AttachedNetwork>> attach_network(const config::Declaration& decl, pid_t payload_pid);

// Removes what teardown_record() describes (container `name`).
Result<> detach_network(const std::string& name, const NetworkTeardown& record);

}  // namespace berth::runtime
