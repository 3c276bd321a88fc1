// rtnetlink through libmnl: just the verbs berth-network needs. A Netlink socket stays bound to
// the network namespace it was created in, which is how we operate inside a container's netns
// without staying there (see NetnsEntry).
#pragma once

#include <linux/netlink.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "basic/result.h"
#include "basic/unique.h"
#include "network/network.h"

struct mnl_socket;
extern "C" int mnl_socket_close(struct mnl_socket*);

namespace berth::network {

// Enters a network namespace on the calling thread and goes back on destruction (or restore()).
class NetnsEntry {
public:
    static Result<NetnsEntry> enter(int netns_fd);
    NetnsEntry(NetnsEntry&& other) noexcept : original_(std::move(other.original_)) {}
    NetnsEntry& operator=(NetnsEntry&&) = delete;
    ~NetnsEntry() { (void)restore(); }
    Result<> restore();

private:
    NetnsEntry() = default;
    UniqueFd original_;
};

struct LinkInfo {
    int index = 0;
    std::string name;
    std::string kind;  // IFLA_INFO_KIND: "veth", "bridge", "" for plain devices
    int master = 0;
    unsigned flags = 0;     // IFF_*
    uint8_t operstate = 0;  // IFLA_OPERSTATE: IF_OPER_UP once the kernel's link watcher saw the carrier
};

struct AddressInfo {
    int index = 0;  // interface index
    Ipv4Cidr address;
};

class Netlink {
public:
    // A NETLINK_ROUTE socket in the calling thread's current netns.
    static Result<Netlink> open();
    // A socket in the netns of `netns_fd` (enters it just long enough to create the socket).
    static Result<Netlink> open_in(int netns_fd);

    Result<std::optional<LinkInfo>> find_link(const std::string& name);
    Result<std::vector<AddressInfo>> ipv4_addresses();

    // A veth pair: `host_name` here, its peer `peer_name` created directly in `peer_netns_fd`.
    // NLM_F_EXCL: fails with EEXIST when `host_name` exists. `peer_mac`: the peer's MAC (default:
    // a random one from the kernel).
    Result<> create_veth(const std::string& host_name, const std::string& peer_name, int peer_netns_fd,
                         const std::optional<Mac>& peer_mac = std::nullopt);
    Result<> delete_link(const std::string& name);
    Result<> set_link(int index, bool up, int master = -1);  // master -1: unchanged
    Result<> set_link_attributes(int index, std::optional<uint32_t> mtu, std::optional<uint32_t> group);
    Result<> add_address(int index, const Ipv4Cidr& address);
    Result<> add_default_route(int index, Ipv4 gateway);
    // IPv6, without duplicate address detection (IFA_F_NODAD): berth's allocator already made the
    // address unique on its link, and DAD would leave it "tentative", unusable as a source, for a
    // second or more after every start.
    Result<> add_address6(int index, const Ipv6Cidr& address);
    Result<> add_default_route6(int index, const Ipv6& gateway);
    // A bridge, for tests and for nothing else in berth.
    Result<> create_bridge(const std::string& name);

private:
    Result<> request(struct nlmsghdr* nlh);
    Result<> dump(struct nlmsghdr* nlh, const std::function<void(const struct nlmsghdr*)>& on_message);

    CPtr<struct mnl_socket, mnl_socket_close> socket_;
    unsigned port_id_ = 0;
    unsigned seq_ = 0;
};

// The link notifications (RTNLGRP_LINK) of the calling thread's netns, subscribed before a change
// whose effect the kernel completes later, so that no notification is missed.
//
// Why: a veth end brought up before its peer gets its carrier when the peer comes up, and the
// kernel finishes that asynchronously (the link watcher, a work item that needs the RTNL lock).
// Until it ran, the end transmits through the no-op queue, which drops every packet, and a bridge
// port is disabled. A payload that starts at once loses its first ARP or SYN and waits for the
// retry, a second later (measured: 11 of 40 veth starts, 23 of 40 bridge starts, on an idle host).
class LinkMonitor {
public:
    static Result<LinkMonitor> open();
    // Waits until link `index` is operationally up: the link watcher's notification, sent after
    // it attached the queue and told the bridge. false when `timeout` passed first.
    Result<bool> wait_until_up(int index, std::chrono::milliseconds timeout);

private:
    Result<> ask_for_link(int index);

    CPtr<struct mnl_socket, mnl_socket_close> socket_;
    unsigned seq_ = 0;
};

}  // namespace berth::network
