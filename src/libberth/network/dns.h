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
#include "basic/result.h"

namespace berth::network {

struct DeclaredNetworkPlan;

struct DnsPlan {
    std::string network;
    Ipv4 listen;                         // the gateway
    std::vector<std::string> upstreams;  // --server=; empty: local names only
    std::string hosts_dir;               // RUN/networks/NAME/hosts
    std::string pid_file;                // RUN/networks/NAME/dnsmasq.pid
    std::vector<std::string> argv;       // dnsmasq and its options
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
// answers. ENOENT naming dnsmasq when it is not installed (Debian: dnsmasq-base).
Result<> dns_up(const DnsPlan& plan);
// Stops it (SIGTERM, waited for; SIGKILL after 5 s) and removes the pid file. Safe when none runs.
Result<> dns_down(const DnsPlan& plan);

// The hosts-file line for one container: "10.89.1.5\tdb pg\n".
std::string hosts_entry(Ipv4 address, const std::vector<std::string>& names);

// Writes RUN/networks/NETWORK/hosts/CONTAINER (creating the directory).
Result<> register_names(const std::string& network, const std::string& container, Ipv4 address,
                        const std::vector<std::string>& names);
// The containers registered on `network` now (running ones), sorted.
std::vector<std::string> registered_containers(const std::string& network);
// Removes hosts/CONTAINER under every network's run directory. Safe when there is none.
Result<> unregister_names(const std::string& container);

}  // namespace berth::network
