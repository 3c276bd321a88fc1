#include "network/netlink.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <poll.h>
#include <sched.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <vector>

namespace berth::network {

// ---- NetnsEntry ---------------------------------------------------------------------------

Result<NetnsEntry> NetnsEntry::enter(int netns_fd) {
    NetnsEntry entry;
    entry.original_.reset(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    if (!entry.original_) return fail_errno("open '/proc/thread-self/ns/net'");
    if (::setns(netns_fd, CLONE_NEWNET) < 0) return fail_errno("enter network namespace");
    return entry;
}

Result<> NetnsEntry::restore() {
    if (!original_) return {};
    if (::setns(original_.get(), CLONE_NEWNET) < 0)
        return fail_errno("return to the original network namespace");
    original_.reset();
    return {};
}

// ---- Netlink ------------------------------------------------------------------------------

namespace {
// MNL_SOCKET_BUFFER_SIZE's upper bound as a constant: the macro calls sysconf(), which makes every
// buffer sized by it a variable-length array (clang: -Wvla-extension, an error under -Werror).
constexpr size_t kNetlinkBufferSize = 8192;
}  // namespace

Result<Netlink> Netlink::open() {
    Netlink nl;
    nl.socket_.reset(mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC));
    if (!nl.socket_) return fail_errno("open rtnetlink socket");
    if (mnl_socket_bind(nl.socket_.get(), 0, MNL_SOCKET_AUTOPID) < 0)
        return fail_errno("bind rtnetlink socket");
    nl.port_id_ = mnl_socket_get_portid(nl.socket_.get());
    nl.seq_ = static_cast<unsigned>(::time(nullptr));
    return nl;
}

Result<Netlink> Netlink::open_in(int netns_fd) {
    auto entry = BERTH_TRY(NetnsEntry::enter(netns_fd));
    auto nl = open();
    BERTH_TRY_VOID(entry.restore());
    return nl;
}

namespace {

struct Collector {
    const std::function<void(const nlmsghdr*)>* fn;
};

int on_data(const nlmsghdr* nlh, void* data) {
    auto* c = static_cast<Collector*>(data);
    if (c->fn && *c->fn) (*c->fn)(nlh);
    return MNL_CB_OK;
}

// A request in `buf`: the netlink header, then the zeroed family header T (ifinfomsg,
// ifaddrmsg, rtmsg) for the caller to fill in.
template <class T>
std::pair<nlmsghdr*, T*> request_message(char* buf, uint16_t type, uint16_t flags) {
    auto* nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = type;
    nlh->nlmsg_flags = flags;
    return {nlh, static_cast<T*>(mnl_nlmsg_put_extra_header(nlh, sizeof(T)))};
}

// A link request (family AF_UNSPEC).
std::pair<nlmsghdr*, ifinfomsg*> link_message(char* buf, uint16_t type, uint16_t flags) {
    auto [nlh, ifi] = request_message<ifinfomsg>(buf, type, flags);
    ifi->ifi_family = AF_UNSPEC;
    return {nlh, ifi};
}

// RTM_NEWLINK creating link `name` of `kind` ("veth", "bridge"); the caller adds kind-specific
// IFLA_INFO_DATA and closes the returned IFLA_LINKINFO nest.
std::pair<nlmsghdr*, nlattr*> new_link_message(char* buf, const std::string& name, const char* kind) {
    auto* nlh = link_message(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL).first;
    mnl_attr_put_strz(nlh, IFLA_IFNAME, name.c_str());
    auto* linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
    mnl_attr_put_strz(nlh, IFLA_INFO_KIND, kind);
    return {nlh, linkinfo};
}

}  // namespace

// Sends one request and reads until its ACK (or NLMSG_DONE for dumps), feeding data messages to
// `on_message`. Kernel errors come back as errno.
static Result<> transact(mnl_socket* sock, unsigned port_id, nlmsghdr* nlh,
                         const std::function<void(const nlmsghdr*)>* on_message) {
    if (mnl_socket_sendto(sock, nlh, nlh->nlmsg_len) < 0) return fail_errno("send netlink request");
    std::vector<char> buf(32768);  // MNL_SOCKET_DUMP_SIZE in newer libmnl
    Collector c{on_message};
    for (;;) {
        ssize_t n = mnl_socket_recvfrom(sock, buf.data(), buf.size());
        if (n < 0) return fail_errno("receive netlink reply");
        int r = mnl_cb_run(buf.data(), static_cast<size_t>(n), nlh->nlmsg_seq, port_id, on_data, &c);
        if (r == MNL_CB_ERROR) return fail_errno("netlink");
        if (r == MNL_CB_STOP) return {};
    }
}

Result<> Netlink::request(nlmsghdr* nlh) {
    nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
    nlh->nlmsg_seq = ++seq_;
    return transact(socket_.get(), port_id_, nlh, nullptr);
}

Result<> Netlink::dump(nlmsghdr* nlh, const std::function<void(const nlmsghdr*)>& on_message) {
    nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
    nlh->nlmsg_seq = ++seq_;
    return transact(socket_.get(), port_id_, nlh, &on_message);
}

// libmnl's mnl_attr_for_each macros do not compile as C++ (void* conversions); same loops here.
template <class F>
static void for_each_attr(const nlmsghdr* nlh, size_t offset, F&& fn) {
    auto* tail = static_cast<const char*>(mnl_nlmsg_get_payload_tail(nlh));
    for (auto* attr = static_cast<const nlattr*>(mnl_nlmsg_get_payload_offset(nlh, offset));
         mnl_attr_ok(attr, static_cast<int>(tail - reinterpret_cast<const char*>(attr)));
         attr = mnl_attr_next(attr))
        fn(attr);
}

template <class F>
static void for_each_nested(const nlattr* nest, F&& fn) {
    auto* tail = reinterpret_cast<const char*>(nest) + mnl_attr_get_len(nest);
    for (auto* attr = static_cast<const nlattr*>(mnl_attr_get_payload(nest));
         mnl_attr_ok(attr, static_cast<int>(tail - reinterpret_cast<const char*>(attr)));
         attr = mnl_attr_next(attr))
        fn(attr);
}

static LinkInfo parse_link(const nlmsghdr* nlh) {
    LinkInfo info;
    auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
    info.index = ifi->ifi_index;
    info.flags = ifi->ifi_flags;
    for_each_attr(nlh, sizeof(*ifi), [&](const nlattr* attr) {
        switch (mnl_attr_get_type(attr)) {
            case IFLA_IFNAME:
                info.name = mnl_attr_get_str(attr);
                break;
            case IFLA_MASTER:
                info.master = static_cast<int>(mnl_attr_get_u32(attr));
                break;
            case IFLA_OPERSTATE:
                info.operstate = mnl_attr_get_u8(attr);
                break;
            case IFLA_LINKINFO: {
                for_each_nested(attr, [&](const nlattr* nested) {
                    if (mnl_attr_get_type(nested) == IFLA_INFO_KIND) info.kind = mnl_attr_get_str(nested);
                });
                break;
            }
            default:
                break;
        }
    });
    return info;
}

Result<std::optional<LinkInfo>> Netlink::find_link(const std::string& name) {
    if (name.empty() || name.size() >= IFNAMSIZ) return std::optional<LinkInfo>{};
    char buf[kNetlinkBufferSize];
    auto* nlh = link_message(buf, RTM_GETLINK, 0).first;
    mnl_attr_put_strz(nlh, IFLA_IFNAME, name.c_str());
    std::optional<LinkInfo> found;
    auto r = dump(nlh, [&](const nlmsghdr* m) {
        if (m->nlmsg_type == RTM_NEWLINK) found = parse_link(m);
    });
    if (!r) {
        if (r.error().code == ENODEV) return std::optional<LinkInfo>{};
        return fail(r.error().wrap(fmt::format("look up link '{}'", name)));
    }
    return found;
}

Result<std::vector<AddressInfo>> Netlink::ipv4_addresses() {
    char buf[kNetlinkBufferSize];
    auto [nlh, ifa] = request_message<ifaddrmsg>(buf, RTM_GETADDR, NLM_F_DUMP);
    ifa->ifa_family = AF_INET;
    std::vector<AddressInfo> out;
    BERTH_TRY_VOID_CTX(dump(nlh,
                            [&](const nlmsghdr* m) {
                                if (m->nlmsg_type != RTM_NEWADDR) return;
                                auto* a = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(m));
                                if (a->ifa_family != AF_INET) return;
                                AddressInfo info;
                                info.index = static_cast<int>(a->ifa_index);
                                info.address.prefix = a->ifa_prefixlen;
                                bool have = false;
                                for_each_attr(m, sizeof(*a), [&](const nlattr* attr) {
                                    auto type = mnl_attr_get_type(attr);
                                    // IFA_LOCAL is the interface's own address (IFA_ADDRESS is the
                                    // peer on point-to-point links).
                                    if (type == IFA_LOCAL || (type == IFA_ADDRESS && !have)) {
                                        info.address.address.value = ntohl(mnl_attr_get_u32(attr));
                                        have = true;
                                    }
                                });
                                if (have) out.push_back(info);
                            }),
                       "list IPv4 addresses");
    return out;
}

Result<> Netlink::create_veth(const std::string& host_name, const std::string& peer_name, int peer_netns_fd,
                              const std::optional<Mac>& peer_mac) {
    char buf[kNetlinkBufferSize];
    auto [nlh, linkinfo] = new_link_message(buf, host_name, "veth");
    auto* data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
    auto* peer = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
    // The peer's attributes start with its own ifinfomsg.
    auto* peer_ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
    peer_ifi->ifi_family = AF_UNSPEC;
    mnl_attr_put_strz(nlh, IFLA_IFNAME, peer_name.c_str());
    mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, static_cast<uint32_t>(peer_netns_fd));
    if (peer_mac) mnl_attr_put(nlh, IFLA_ADDRESS, peer_mac->bytes.size(), peer_mac->bytes.data());
    mnl_attr_nest_end(nlh, peer);
    mnl_attr_nest_end(nlh, data);
    mnl_attr_nest_end(nlh, linkinfo);
    return with_context(request(nlh), fmt::format("create veth '{}' with peer '{}'", host_name, peer_name));
}

Result<> Netlink::delete_link(const std::string& name) {
    char buf[kNetlinkBufferSize];
    auto* nlh = link_message(buf, RTM_DELLINK, 0).first;
    mnl_attr_put_strz(nlh, IFLA_IFNAME, name.c_str());
    return with_context(request(nlh), fmt::format("delete link '{}'", name));
}

Result<> Netlink::set_link(int index, bool up, int master) {
    char buf[kNetlinkBufferSize];
    auto [nlh, ifi] = link_message(buf, RTM_NEWLINK, 0);
    ifi->ifi_index = index;
    ifi->ifi_change = IFF_UP;
    ifi->ifi_flags = up ? IFF_UP : 0;
    if (master >= 0) mnl_attr_put_u32(nlh, IFLA_MASTER, static_cast<uint32_t>(master));
    return with_context(request(nlh), fmt::format("set link {} {}", index, up ? "up" : "down"));
}

Result<> Netlink::set_link_attributes(int index, std::optional<uint32_t> mtu, std::optional<uint32_t> group) {
    char buf[kNetlinkBufferSize];
    auto [nlh, ifi] = link_message(buf, RTM_NEWLINK, 0);
    ifi->ifi_index = index;
    if (mtu) mnl_attr_put_u32(nlh, IFLA_MTU, *mtu);
    if (group) mnl_attr_put_u32(nlh, IFLA_GROUP, *group);
    return with_context(request(nlh), fmt::format("set mtu/group of link {}", index));
}

namespace {

// RTM_NEWADDR on link `index`, to which the caller adds the address attributes.
nlmsghdr* address_message(char* buf, unsigned char family, int prefix, int index, unsigned char flags) {
    auto [nlh, ifa] = request_message<ifaddrmsg>(buf, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
    ifa->ifa_family = family;
    ifa->ifa_prefixlen = static_cast<unsigned char>(prefix);
    ifa->ifa_flags = flags;
    ifa->ifa_scope = RT_SCOPE_UNIVERSE;
    ifa->ifa_index = static_cast<unsigned>(index);
    return nlh;
}

// RTM_NEWROUTE: a default route in the main table out of link `index`; the caller adds the
// gateway.
std::pair<nlmsghdr*, rtmsg*> default_route_message(char* buf, unsigned char family, int index) {
    auto [nlh, rtm] = request_message<rtmsg>(buf, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
    rtm->rtm_family = family;
    rtm->rtm_dst_len = 0;
    rtm->rtm_table = RT_TABLE_MAIN;
    rtm->rtm_protocol = RTPROT_STATIC;
    rtm->rtm_scope = RT_SCOPE_UNIVERSE;
    rtm->rtm_type = RTN_UNICAST;
    mnl_attr_put_u32(nlh, RTA_OIF, static_cast<uint32_t>(index));
    return {nlh, rtm};
}

}  // namespace

Result<> Netlink::add_address(int index, const Ipv4Cidr& address) {
    char buf[kNetlinkBufferSize];
    nlmsghdr* nlh = address_message(buf, AF_INET, address.prefix, index, 0);
    uint32_t a = htonl(address.address.value);
    mnl_attr_put_u32(nlh, IFA_LOCAL, a);
    mnl_attr_put_u32(nlh, IFA_ADDRESS, a);
    if (address.prefix < 31) {
        uint32_t broadcast =
            htonl(address.address.value | (address.prefix == 0 ? ~0u : ~(~0u << (32 - address.prefix))));
        mnl_attr_put_u32(nlh, IFA_BROADCAST, broadcast);
    }
    return with_context(request(nlh), fmt::format("add address {}", format_ipv4_cidr(address)));
}

Result<> Netlink::add_default_route(int index, Ipv4 gateway) {
    char buf[kNetlinkBufferSize];
    auto [nlh, rtm] = default_route_message(buf, AF_INET, index);
    // onlink: the gateway is reachable on this link even if it is outside our subnet.
    rtm->rtm_flags = RTNH_F_ONLINK;
    mnl_attr_put_u32(nlh, RTA_GATEWAY, htonl(gateway.value));
    return with_context(request(nlh), fmt::format("add default route via {}", format_ipv4(gateway)));
}

Result<> Netlink::add_address6(int index, const Ipv6Cidr& address) {
    char buf[kNetlinkBufferSize];
    nlmsghdr* nlh = address_message(buf, AF_INET6, address.prefix, index, IFA_F_NODAD);
    mnl_attr_put(nlh, IFA_LOCAL, address.address.bytes.size(), address.address.bytes.data());
    mnl_attr_put(nlh, IFA_ADDRESS, address.address.bytes.size(), address.address.bytes.data());
    return with_context(request(nlh), fmt::format("add address {}", format_ipv6_cidr(address)));
}

Result<> Netlink::add_default_route6(int index, const Ipv6& gateway) {
    char buf[kNetlinkBufferSize];
    nlmsghdr* nlh = default_route_message(buf, AF_INET6, index).first;
    mnl_attr_put(nlh, RTA_GATEWAY, gateway.bytes.size(), gateway.bytes.data());
    return with_context(request(nlh), fmt::format("add default route via {}", format_ipv6(gateway)));
}

// ---- LinkMonitor --------------------------------------------------------------------------

Result<LinkMonitor> LinkMonitor::open() {
    LinkMonitor m;
    m.socket_.reset(mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!m.socket_) return fail_errno("open rtnetlink socket");
    if (mnl_socket_bind(m.socket_.get(), RTMGRP_LINK, MNL_SOCKET_AUTOPID) < 0)
        return fail_errno("subscribe to link notifications");
    m.seq_ = static_cast<unsigned>(::time(nullptr));
    return m;
}

// The link's current state, answered on the same socket as an RTM_NEWLINK like the notifications:
// after an overrun (ENOBUFS), when notifications may have been lost.
Result<> LinkMonitor::ask_for_link(int index) {
    char buf[kNetlinkBufferSize];
    auto [nlh, ifi] = link_message(buf, RTM_GETLINK, 0);
    nlh->nlmsg_flags |= NLM_F_REQUEST;
    nlh->nlmsg_seq = ++seq_;
    ifi->ifi_index = index;
    if (mnl_socket_sendto(socket_.get(), nlh, nlh->nlmsg_len) < 0)
        return fail_errno("ask for link {}", index);
    return {};
}

Result<bool> LinkMonitor::wait_until_up(int index, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::vector<char> buf(32768);
    for (;;) {
        ssize_t n = mnl_socket_recvfrom(socket_.get(), buf.data(), buf.size());
        if (n < 0 && errno == ENOBUFS) {
            BERTH_TRY_VOID(ask_for_link(index));
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) return fail_errno("receive link notifications");
        int left = static_cast<int>(std::max<ssize_t>(n, 0));
        for (auto* m = reinterpret_cast<const nlmsghdr*>(buf.data()); mnl_nlmsg_ok(m, left);
             m = mnl_nlmsg_next(m, &left)) {
            if (m->nlmsg_type != RTM_NEWLINK) continue;  // NLMSG_ERROR of a vanished link: wait on
            auto link = parse_link(m);
            if (link.index == index && link.operstate == IF_OPER_UP) return true;
        }
        if (n > 0) continue;  // drain what is queued before sleeping
        auto left_ms =
            std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left_ms.count() <= 0) return false;
        pollfd pfd{mnl_socket_get_fd(socket_.get()), POLLIN, 0};
        if (::poll(&pfd, 1, static_cast<int>(left_ms.count())) < 0 && errno != EINTR)
            return fail_errno("wait for link notifications");
    }
}

Result<> Netlink::create_bridge(const std::string& name) {
    char buf[kNetlinkBufferSize];
    auto [nlh, linkinfo] = new_link_message(buf, name, "bridge");
    mnl_attr_nest_end(nlh, linkinfo);
    return with_context(request(nlh), fmt::format("create bridge '{}'", name));
}

}  // namespace berth::network
