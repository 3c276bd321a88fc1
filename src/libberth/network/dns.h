// Names on a declared network: one dnsmasq per network, bound to the network's gateway address
// only, answering from a hosts directory berth maintains and forwarding everything else to the
// host's upstream resolvers. berth writes no DNS server of its own; dnsmasq is the one libvirt
// runs on its networks the same way.
//
//   upstream_servers(...)   pure: which servers dnsmasq forwards to. The network's `dns` if
//                           declared; else the host's resolv.conf without loopback stubs
//                           (127.0.0.53 is systemd-resolved's stub: its real upstreams are in
//                           /run/systemd/resolve/resolv.conf), the stubs only when nothing else.
//   plan_dns(...)           pure: dnsmasq's command line, pid file and hosts directory.
//   dns_up / dns_down       start (idempotent: a live dnsmasq of this network is kept) and stop
//                           it. `berth network up|down` (berth-network@NAME.service) call them
//                           through network_up()/network_down().
//   register_names(...)     a container's entry: hosts/CONTAINER holds "ADDRESS NAME ALIAS...".
//                           dnsmasq rereads the directory by inotify (new, changed and removed
//                           files), so a start or a stop needs no signal and no restart. Written
//                           under a dot name and renamed: dnsmasq ignores dot files and so never
//                           reads half a file.
//   unregister_names(...)   at the container's stop: its entry on every network.
//
// Why the gateway only: --bind-interfaces with --listen-address binds one socket to that address
// (never 0.0.0.0), so the server is not reachable on the host's other addresses, and
// --except-interface=lo keeps it off loopback. A container on another network could still send to
// this gateway through the host (it is a local address); the network's nftables table drops DNS
// to its gateway that does not come in through its own bridge (declared.h).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "basic/ip-util.h"
#include "basic/ip6-util.h"
#include "basic/result.h"

namespace berth::network {

struct DeclaredNetworkPlan;

struct DnsPlan {
    std::string network;
    std::string label;                    // for messages: "network 'app'", "container 'web'"
    Ipv4 listen;                          // the gateway
    std::vector<std::string> upstreams;   // --server=; empty: local names only
    std::string hosts_dir;                // RUN/networks/NAME/hosts
    std::vector<std::string> hosts_dirs;  // every --hostsdir (hosts_dir; a container resolver's: several)
    std::string pid_file;                 // RUN/networks/NAME/dnsmasq.pid
    std::vector<std::string> argv;        // dnsmasq and its options
};

// `declared`: the network's `dns` key. `resolv_conf`: the host's /etc/resolv.conf;
// `resolved_conf`: /run/systemd/resolve/resolv.conf ("" when absent).
std::vector<std::string> upstream_servers(const std::vector<std::string>& declared,
                                          const std::string& resolv_conf, const std::string& resolved_conf);

// run_dir: network_run_dir(network) (ipam.h).
DnsPlan plan_dns(const DeclaredNetworkPlan& network, const std::vector<std::string>& upstreams,
                 const std::string& run_dir);

// The pid of this network's running dnsmasq (its pid file names a live dnsmasq whose command line
// has this pid file), or nullopt.
std::optional<pid_t> dns_server_pid(const DnsPlan& plan);

// Starts dnsmasq unless running. dnsmasq daemonizes once its socket is bound, so on success it
// answers. ENOENT naming dnsmasq when it is not installed (Debian: dnsmasq-base). netns_fd >= 0:
// in that network namespace (a container resolver, below); the calling thread enters it only
// for the fork.
Result<> dns_up(const DnsPlan& plan, int netns_fd = -1);
// Stops it (SIGTERM, waited for; SIGKILL after 5 s) and removes the pid file. Safe when none runs.
Result<> dns_down(const DnsPlan& plan);

// ---- a multi-homed container's own resolver -------------------------------------------------
//
// A network's dnsmasq answers whoever reaches its gateway with that network's names: it has no
// per-client views, so it cannot answer a container on app and cache with the names of both
// while a container on app alone gets app's only. Asking both gateways does not work either: a
// resolver stops at the first server that answers, and an NXDOMAIN from app's server for "redis"
// is an answer. So a container on more than one network gets a resolver of its own (Docker's
// model, its 127.0.0.11): Debian's dnsmasq again, one `--hostsdir` per network of the
// container (the directories berth maintains anyway, reread by inotify), listening on
// 127.0.0.11 inside the container's network namespace only (nothing outside can reach it) and
// forwarding every other name to its first network's dnsmasq (the gateway), which forwards to
// the upstreams: the same answers as a single-homed container gets for names beyond its networks.
// It runs in the host's mount namespace (it reads the host's /run/berth), is started by the
// supervisor after the links (so under systemd it is in the unit's cgroup and dies with it) and
// stopped with the container. A single-homed container keeps asking its network's dnsmasq: no
// process of its own, nothing to start on the start path.
inline constexpr const char* kContainerResolverAddress = "127.0.0.11";

// RUN/resolvers (RUN: $BERTH_RUN_DIR, default /run/berth): the resolvers' pid files.
std::string resolver_run_dir();
// Pure: `networks` the container's, in order; `upstream` its first network's gateway.
DnsPlan plan_container_resolver(const std::string& container, const std::vector<std::string>& networks,
                                Ipv4 upstream);

// The hosts-file lines for one container: "10.89.1.5\tdb pg\n", and on a dual-stack network a
// second line with its IPv6 address and the same names (dnsmasq answers AAAA from it).
std::string hosts_entry(Ipv4 address, const std::vector<std::string>& names,
                        const std::optional<Ipv6>& address6 = std::nullopt);

// Writes RUN/networks/NETWORK/hosts/CONTAINER (creating the directory).
Result<> register_names(const std::string& network, const std::string& container, Ipv4 address,
                        const std::optional<Ipv6>& address6, const std::vector<std::string>& names);
// The containers registered on `network` now (running ones), sorted.
std::vector<std::string> registered_containers(const std::string& network);
// Removes hosts/CONTAINER under every network's run directory. Safe when there is none.
Result<> unregister_names(const std::string& container);

}  // namespace berth::network
