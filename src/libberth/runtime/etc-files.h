// Contents of the generated /etc/hostname, /etc/hosts and /etc/resolv.conf (pure).
#pragma once

#include <string>
#include <vector>

#include "config/declaration.h"

namespace berth::runtime {

std::string render_hostname(const std::string& hostname);
// `address` is the container's CIDR address ("10.0.0.2/24") or empty.
std::string render_hosts(const std::string& hostname, const std::string& address);
// Every address of the container ("10.89.1.5/24", "fd00:89:1::a59:105/64", one link's after the
// other's), each on a line with the hostname; 127.0.1.1 when there is none.
std::string render_hosts(const std::string& hostname, const std::vector<std::string>& addresses);
// none: no name servers (no network); host: the host's file as is; veth/bridge: the host's file
// without loopback name servers (unreachable from another network namespace), falling back to
// public resolvers as Docker does when nothing is left.
std::string render_resolv_conf(config::NetworkMode mode, const std::string& host_resolv_conf);
// A container on declared networks: `servers` (their gateways, where the networks' dnsmasq
// listens) and the host's search and options lines; dnsmasq forwards the rest upstream.
std::string render_network_resolv_conf(const std::vector<std::string>& servers,
                                       const std::string& host_resolv_conf);

// The operator's [network] settings over a rendered file, whatever rendered it (the mode's
// default above, or a declared network's resolver): add_hosts lines are appended to /etc/hosts;
// dns, dns_search and dns_options each replace the resolv.conf lines of their kind ("nameserver",
// "search"/"domain", "options") when set, and leave them alone when not.
std::string apply_add_hosts(std::string hosts, const config::Network& network);
std::string apply_dns_settings(const std::string& resolv_conf, const config::Network& network);

}  // namespace berth::runtime
