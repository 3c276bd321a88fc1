// Addresses on a declared network (config::NetworkDeclaration): which one each container gets.
//
//   pool_of(decl)            pure: the subnet, the gateway and the range addresses come from, with
//                            the documented defaults (gateway = first host, range = the subnet).
//   choose_address(...)      pure: the decision, given the current leases. Unit-tested.
//   acquire_address(...)     choose_address() under an exclusive flock on DIR/lock, then the lease
//                            is written as DIR/leases/CONTAINER: two containers starting at once
//                            never get the same address.
//   release_address(...)     at removal (berth rm), under the same lock.
//
// Stability: a container keeps its lease across restarts (the lease is keyed by its name and only
// removal releases it). A first allocation starts probing at a hash of the name, so that after a
// reboot (DIR is under /run) most containers get the same address again; collisions probe on.
//
// IPv6 (a dual-stack network): no second allocator and no second lease. A container's IPv6
// address is the network's IPv6 prefix with its IPv4 address in the last 32 bits (10.89.1.5 on
// fd00:89:1::/64 is fd00:89:1::a59:105), the bridge's likewise from the gateway. It is therefore
// taken under the same lock, as free of collisions and as stable as the IPv4 lease, released with
// it, and readable by a person. The parser keeps IPv6 prefixes to /96 or shorter for it.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "basic/ip-util.h"
#include "basic/ip6-util.h"
#include "basic/result.h"
#include "basic/unique.h"
#include "config/declaration.h"

namespace berth::network {

struct AddressPool {
    std::string network;              // its name, for messages
    Ipv4Cidr subnet;                  // network address / prefix
    Ipv4 gateway;                     // the bridge's address: never handed out
    Ipv4 first, last;                 // dynamic addresses come from first..last (inclusive)
    std::optional<Ipv6Cidr> subnet6;  // dual-stack: the IPv6 prefix (network address / prefix)
};

// The IPv6 address that goes with `address` on a dual-stack network (see above); nullopt when the
// network has no IPv6 subnet. The gateway's is ipv6_of(pool, pool.gateway).
std::optional<Ipv6Cidr> ipv6_of(const AddressPool& pool, Ipv4 address);

// Fails (EINVAL) only on what the parser lets through when given a hand-made declaration.
Result<AddressPool> pool_of(const config::NetworkDeclaration& decl);

// The address for `container` given the leases (container -> address) of the other containers and
// maybe its own: `requested` ("" for a dynamic one) if inside the subnet and free; else its lease
// if it has one inside the range; else the first free address of the range from hash(container).
// EADDRINUSE for a requested address someone holds, ENOSPC when the range is full.
Result<Ipv4> choose_address(const AddressPool& pool, const std::map<std::string, Ipv4>& leases,
                            const std::string& container, const std::string& requested);

// The network's lease directory: $BERTH_RUN_DIR/networks/NAME (default /run/berth/networks/NAME).
std::string network_run_dir(const std::string& network);
// The names in directory `path` not starting with '.', sorted; empty when it cannot be read.
// (A candidate for basic/fs-util.h; kept here so this branch does not rebuild every file.)
std::vector<std::string> list_directory(const std::string& path);
// The networks that have a directory under network_run_dir("") (leases, names), sorted.
std::vector<std::string> networks_with_run_dirs();

// An exclusive flock on DIR/FILE (created with DIR), released with the fd: "lock" serializes
// the leases, "up.lock" bringing the network up or down.
Result<UniqueFd> lock_network_dir(const std::string& dir, const std::string& file = "lock");

// Leases in `dir` (one file per container, holding its address), read under the lock by the
// callers below and by `berth network inspect`.
Result<std::map<std::string, Ipv4>> read_leases(const std::string& dir);

Result<Ipv4Cidr> acquire_address(const AddressPool& pool, const std::string& dir,
                                 const std::string& container, const std::string& requested);
// Forgets the container's lease; nothing to do when it has none.
Result<bool> release_address(const std::string& dir, const std::string& container);  // true: it held one

}  // namespace berth::network
