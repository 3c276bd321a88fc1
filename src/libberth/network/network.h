// berth-network: the container's network, planned from its declaration and applied from outside.
//
//   plan(decl)          pure: validates [network], fills in the documented defaults and renders the
//                       nftables script; unit-tested, also what `berth plan` can show.
//   attach(decl, pid)   the supervisor calls it OUTSIDE the container, once the payload's network
//                       namespace exists (payload_pid lives in it) and before the payload goes on.
//   NetworkAttachment   RAII owner of what attach() created on the host (the veth host end and
//                       this container's nftables chains and published-port claims).
//   hosts_file(...)     the text of the container's /etc/hosts.
//
// docs/NETWORKING.md describes the modes, the address defaults, published ports and the nftables
// layout in prose.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "basic/ip-util.h"
#include "basic/ip6-util.h"
#include "basic/result.h"
#include "config/declaration.h"
#include "network/loopback-proxy.h"

namespace berth::network {

// IPv4 vocabulary (basic/ip-util.h), shared with the declarations.
using berth::format_ipv4;
using berth::format_ipv4_cidr;
using berth::format_ipv6;
using berth::format_ipv6_cidr;
using berth::Ipv4;
using berth::Ipv4Cidr;
using berth::Ipv6;
using berth::Ipv6Cidr;
using berth::network_of;
using berth::parse_ipv4;
using berth::parse_ipv4_cidr;
using berth::parse_ipv6;
using berth::parse_ipv6_cidr;
using berth::same_subnet;
using berth::subnets_overlap;

// A MAC address.
struct Mac {
    std::array<uint8_t, 6> bytes{};
    friend bool operator==(const Mac&, const Mac&) = default;
};
std::string format_mac(const Mac& mac);  // "02:be:0a:58:00:02"
// The container end's MAC when the container has an IPv4 address: 02:be: + the four bytes of the
// address (locally administered, unicast), unique wherever the address is, as Docker's 02:42:...
// berth sets it when it creates the pair, so the anti-spoofing rules can name it beforehand.
Mac mac_for(Ipv4 address);
// A random locally administered unicast MAC (bridge mode without an address; not pure).
Mac random_mac();

// FNV-1a of a name: stable across builds and hosts (interface names, first address probes).
uint32_t name_hash(std::string_view name);

// "ve-NAME" when it fits in IFNAMSIZ-1 = 15 characters and NAME is a valid interface name;
// otherwise "ve-" + the first 5 characters + "-" + 6 hex digits of a hash of the whole name, so
// that long names sharing a prefix still get different interfaces. `link` > 0: the host end of
// the container's link on its second, third, ... declared network ("v1-NAME", "v2-NAME", ...).
std::string host_interface_name(const std::string& container_name, int link = 0);

// The container end of a veth pair, inside the container's network namespace.
inline constexpr const char* kContainerInterface = "host0";
// The nftables table that holds every berth rule (and nothing else).
inline constexpr const char* kNftTable = "berth";
// The named set in kNftTable in which each published host port is claimed once (proto . port).
inline constexpr const char* kNftPortSet = "published";
// The anti-spoofing chains live in a table of the same name in the netdev family ("table netdev
// berth"): one chain per container on the ingress hook of its host end (docs/NETWORKING.md).

// Which families a published port listens on: "8080:80" both (IPv6 only when the container has
// an IPv6 address), "0.0.0.0:8080:80" or "A.B.C.D:..." IPv4, "[::]:8080:80" or "[X:Y::Z]:..." IPv6.
enum class PortFamily { Both, Ipv4, Ipv6 };

struct PublishedPort {
    PortFamily family = PortFamily::Both;
    std::optional<Ipv4> host_address;   // IPv4: nullopt = every local address of the host
    std::optional<Ipv6> host_address6;  // IPv6: nullopt = every local address but ::1
    uint16_t host_port = 0;
    uint16_t container_port = 0;
    std::string protocol;           // "tcp" | "udp"
    bool reaches_loopback() const;  // true if 127.0.0.1:host_port is published
    bool ipv4() const { return family != PortFamily::Ipv6; }
};

struct NetworkPlan {
    std::string container;  // the declaration's name
    config::NetworkMode mode = config::NetworkMode::None;

    // Links (veth and bridge modes): the host end in the host netns, the peer created directly in
    // the container's netns under the name kContainerInterface.
    std::string host_interface;       // "ve-web"
    std::string container_interface;  // "host0"
    std::string bridge;               // bridge mode: the existing bridge the host end joins

    // Addresses and routes.
    std::optional<Ipv4Cidr> container_address;  // on host0
    std::optional<Ipv4Cidr> host_address;       // on the host end (veth mode only)
    std::optional<Ipv4> gateway;                // default route inside the container (onlink)
    bool pool_address = false;                  // container/host addresses came from the 10.88/16 pool
    // IPv6 on host0 and the default route through the bridge's IPv6 address (bridge mode, from a
    // dual-stack declared network: config::Network::address6/gateway6).
    std::optional<Ipv6Cidr> container_address6;
    std::optional<Ipv6> gateway6;

    // Host-side sysctls of the host end (or of the bridge in bridge mode).
    std::string localnet_interface;  // gets route_localnet=1 when 127.0.0.1 ports are published
    bool forwarding = false;         // net.ipv4.conf.<host end>.forwarding=1 (and ip_forward)
    // Outbound NAT: connections the container opens to anywhere but its own link leave with the
    // host's address (a rule in the container's postrouting chain, removed with it).
    bool masquerade = false;
    bool ip_forward = false;  // set net.ipv4.ip_forward=1 (the user asked for it)

    // Anti-spoofing (veth and bridge): what the container sends into the host end must carry its
    // own MAC and addresses; no router advertisements, redirects or DHCP server replies. A chain
    // on the netdev ingress hook of the host end; accept_ra=0 on the host end.
    std::optional<Mac> container_mac;  // set on host0 at creation; nullopt: attach() picks one
    std::string spoof_chain;           // "c-web-spoof" in table netdev berth

    std::vector<PublishedPort> ports;
    // TCP ports published on ::1 (explicitly, or with [::] or both families): the kernel cannot
    // DNAT them, a userland proxy on [::1]:host_port connects to `target` (loopback-proxy.h).
    struct Loopback6Port {
        uint16_t host_port = 0;
        // "fd00::5:80" (systemd-socket-proxyd splits at the last colon; brackets would reach
        // getaddrinfo), or "10.89.1.5:80" without an IPv6 address
        std::string target;
    };
    std::vector<Loopback6Port> loopback6_ports;
    std::string nft_chain_prefix;  // "web-": chains web-prerouting, web-output, web-postrouting
    std::string nft_apply;         // nftables script that creates this container's rules
    std::string nft_remove;        // nftables script that removes exactly them
};

// Validates decl.network and fills in the defaults. Pure: reads nothing but `decl`.
// Errors name the container: "container 'web': network: address '10.0.0.300/24' is not ...".
Result<NetworkPlan> plan(const config::Declaration& decl);

// The nftables script (netdev family) that creates the container's anti-spoofing chain on the
// ingress of p.host_interface for a container end with MAC `mac`. Pure; plan() appends it to
// nft_apply when it knows the MAC, attach() when it had to pick one.
std::string antispoof_script(const NetworkPlan& p, const Mac& mac);

// What attach() created for one container; undoes it on destruction.
class NetworkAttachment {
public:
    NetworkAttachment() = default;
    NetworkAttachment(NetworkAttachment&& other) noexcept;
    NetworkAttachment& operator=(NetworkAttachment&& other) noexcept;
    NetworkAttachment(const NetworkAttachment&) = delete;
    NetworkAttachment& operator=(const NetworkAttachment&) = delete;
    // Removes the host end of the veth (and with it the peer) and this container's nftables
    // chains and port claims. Never throws; failures are ignored (there is nobody to tell).
    ~NetworkAttachment();

    // Forget everything without removing it (ownership moved on, e.g. to another process).
    void release() noexcept;
    // Remove now and report failures; the destructor then has nothing left to do.
    Result<> detach();

    // What detach() needs, so that another process can finish the job (the runtime's teardown
    // runs in a fresh berth process after the small supervisor; see runtime/supervise-protocol.h).
    struct Record {
        std::string container;
        std::string host_interface;
        bool own_link = false;
        std::string nft_remove;
        bool own_nft = false;
        std::string localnet_bridge;
        std::vector<LoopbackProxy> loopback_proxies;  // stopped first (loopback-proxy.h)
    };
    Record record() const;
    static NetworkAttachment adopt(Record record);

    // The container's address without prefix ("10.88.0.2"), or "" for none/host.
    std::string container_address() const;
    // Its IPv6 address without prefix, or "" for none.
    std::string container_address6() const;
    const NetworkPlan& plan() const { return plan_; }
    // What the caller should tell the user once (library code does not log), e.g. that
    // masquerade is on while the host does not forward IPv4.
    const std::vector<std::string>& warnings() const { return warnings_; }

private:
    friend Result<NetworkAttachment> attach(const config::Declaration&, pid_t);
    NetworkPlan plan_;
    bool own_link_ = false;
    bool own_nft_ = false;
    std::string localnet_bridge_;         // bridge whose route_localnet we set (reset when last user goes)
    std::vector<LoopbackProxy> proxies_;  // of the TCP ports published on ::1
    std::vector<std::string> warnings_;
};

// Mode none: brings lo up in the payload's netns. host: nothing (the caller did not unshare the
// netns). veth: creates "ve-NAME" with its peer "host0" directly in the payload's netns, addresses,
// links up, default route via the gateway. bridge: the host end joins the named bridge. ports:
// nftables DNAT rules. Checks first (missing bridge, address clash, host port taken by a listener
// or by another container) and leaves nothing behind on any error.
Result<NetworkAttachment> attach(const config::Declaration& decl, pid_t payload_pid);

// Removes whatever a previous instance of the container `name` left in the berth nftables table
// (its chains and port claims), e.g. after the supervisor was SIGKILLed. Safe when there is
// nothing to remove.
Result<> remove_leftovers(const std::string& name);

// Deletes a veth host end named host_interface_name(name) left by a previous instance. The veth
// dies with the container's network namespace, but the kernel destroys a namespace
// asynchronously (a work queue, tens of ms later), so a start right after a supervisor that
// could not tear down would otherwise find it and refuse. Only for a caller that holds the
// container's lock (no live instance of `name` can own the link then). Not a veth: left alone.
// `links`: how many links the container has (one per declared network).
Result<> remove_leftover_link(const std::string& name, int links = 1);

// The container's /etc/hosts: localhost lines plus "ADDRESS HOSTNAME" (container_address, or
// 127.0.1.1 when there is none). For host mode it returns "" and the runtime should show the
// host's /etc/hosts instead (read-only bind), as Docker does with --network host.
std::string hosts_file(const config::Declaration& decl, const std::string& container_address);

// "c-NAME": the stem of a container's nftables chains. A template's instance "web@1" becomes
// "c-web/1": '@' starts a set reference in nft's syntax, '/' is allowed in its identifiers and in
// no container name, so no two containers share a stem.
std::string nft_chain_stem(std::string_view container);

}  // namespace berth::network
