// The declaration: one container as written by its admin in NAME.toml (+ drop-ins), after
// parsing, merging and validation. This struct is the contract between the config parser, the
// generator, the runtime and the CLI; every field documents its TOML key and default
// (man/berth.toml.5 is the user-facing copy of the same table).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "basic/size-util.h"
#include "registry/auto-update.h"
#include "registry/pull-policy.h"

namespace berth::config {

// "infinity" for sizes, counts and durations (MemoryMax=infinity, TimeoutStopSec=infinity).
using berth::kInfinity;  // basic/size-util.h

// Where a value came from, for file:line:col messages.
struct SourceRegion {
    std::string file;
    int line = 0;
    int column = 0;

    bool operator==(const SourceRegion&) const = default;
};

// [container] on_image_change: what a persistent container does when its image changed (by id)
// since its writable layer was made. Recreate (default, as Compose): a fresh layer on the new
// image, the old one retained until `berth rm` / `berth gc`; Keep: go on with the old layer.
enum class OnImageChange { Recreate, Keep };

// [container] notify = "started" | "container" | "healthy" (READY=1 after the first passing probe)
enum class NotifyMode { Started, Container, Healthy };
enum class MountType { Bind, Tmpfs, Volume };                  // [[mount]] type
enum class NetworkMode { None, Host, Veth, Bridge, Network };  // [network] mode
enum class SeccompMode { Default, Unconfined, Profile };       // [security] seccomp
enum class UserNamespaceMode { Off, Pick, Fixed };             // [security] user_namespace

struct UserSpec {       // [container] user = "name" | "uid" | "uid:gid" | "name:group"
    std::string user;   // name or decimal uid, as written; empty = image default / root
    std::string group;  // name or decimal gid; empty = the user's primary group

    bool operator==(const UserSpec&) const = default;
};

struct Mount {  // [[mount]]
    MountType type = MountType::Bind;
    std::string source;  // bind: absolute host path; volume: volume name; tmpfs: unused
    std::string target;  // absolute path inside the container (required)
    bool read_only = false;
    std::optional<uint64_t> size;  // tmpfs size in bytes (from "64M" etc.)
    std::optional<uint32_t> mode;  // tmpfs mode (from "1777" octal string or integer)
    SourceRegion where;

    bool operator==(const Mount&) const = default;
};

struct PortMapping {           // [network] ports = ["[HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|udp]"]
    std::string host_address;  // empty = all host addresses
    uint16_t host_port = 0;
    uint16_t container_port = 0;
    std::string protocol = "tcp";

    bool operator==(const PortMapping&) const = default;
};

// [network] networks: one declared network (/etc/berth/networks/NAME.toml) the container joins,
// written "NAME" or { name = "NAME", address = "A.B.C.D", aliases = ["..."] }.
struct NetworkMembership {
    std::string network;
    std::string address;               // static IPv4 address in the network's subnet; "" = allocated
    std::vector<std::string> aliases;  // extra names the container resolves as on this network

    bool operator==(const NetworkMembership&) const = default;
};

// [network] add_hosts entry "NAME:ADDRESS": one more /etc/hosts line.
struct HostEntry {
    std::string name;     // a host name (is_valid_hostname)
    std::string address;  // IPv4 or IPv6

    bool operator==(const HostEntry&) const = default;
};

// The network a container with mode = "network" and no `networks` joins.
inline constexpr const char* kDefaultNetwork = "default";

struct Network {
    NetworkMode mode = NetworkMode::None;
    std::vector<NetworkMembership> networks;  // mode = "network" (implied by networks)
    std::string bridge;                       // mode = bridge: host bridge name (required)
    std::string address;                      // "10.0.0.2/24" (CIDR), veth/bridge
    std::string host_address;                 // veth: host end address "10.0.0.1/24" (optional)
    std::string gateway;                      // default route inside the container
    std::vector<PortMapping> ports;
    // Outbound NAT of the container's address to the host's (docs/NETWORKING.md, "Outbound
    // traffic"). Unset = the mode's default: veth true, bridge false.
    std::optional<bool> masquerade;
    bool ip_forward = false;  // berth sets net.ipv4.ip_forward=1 at start (never resets it)
    // IPv6 (bridge mode): the container's "fd00:89:1::a59:105/64" and its default route. Not
    // TOML keys: a dual-stack declared network fills them in (network::as_bridge_member).
    std::string address6;
    std::string gateway6;
    // Not a TOML key either: the container's link on its declared networks, in declaration
    // order (network::as_bridge_member): the container end is "eth<link>", the host end and the
    // anti-spoofing chain are named after it. -1: a single link of its own ("host0").
    int link = -1;
    // /etc/hosts and /etc/resolv.conf additions (runtime/etc-files.h renders them, for every mode
    // and for declared networks alike).
    std::vector<HostEntry> add_hosts;      // add_hosts = ["NAME:ADDRESS"]
    std::vector<std::string> dns;          // name server addresses; replace the inherited ones
    std::vector<std::string> dns_search;   // search domains; replace the inherited ones
    std::vector<std::string> dns_options;  // resolv.conf options ("ndots:2"); replace the inherited

    bool operator==(const Network&) const = default;
};

struct Resources {  // [resources]; unset = systemd/kernel default
    // Sizes in bytes; "infinity" is stored as kInfinity (UINT64_MAX), unset = systemd default.
    std::optional<uint64_t> memory_max;
    std::optional<uint64_t> memory_high;
    std::optional<uint64_t> memory_swap_max;
    std::optional<uint32_t> cpu_weight;         // 1..10000
    std::optional<uint32_t> cpu_quota_percent;  // "150%" -> 150
    std::string allowed_cpus;                   // "0-1,3"
    std::optional<uint64_t> tasks_max;          // kInfinity = "infinity"
    std::optional<uint32_t> io_weight;          // 1..10000
    std::map<std::string, uint64_t> limits;     // rlimits: "nofile" -> soft=hard value (kInfinity ok)

    bool operator==(const Resources&) const = default;
};

struct UserNamespace {
    UserNamespaceMode mode = UserNamespaceMode::Off;
    uint32_t uid = 0;  // Fixed: first host uid
    uint32_t size = 65536;

    bool operator==(const UserNamespace&) const = default;
};

struct Security {
    std::vector<std::string> capabilities_add;  // normalised "CAP_X" names, or "ALL"
    std::vector<std::string> capabilities_drop;
    SeccompMode seccomp = SeccompMode::Default;
    std::string seccomp_profile;  // SeccompMode::Profile: absolute path
    bool no_new_privileges = true;
    UserNamespace user_namespace;
    std::vector<std::string> devices;  // absolute host device node paths
    std::vector<std::string> mask;     // more in-container paths hidden like /proc/kcore
    // Default masked or read-only /proc and /sys paths (config::default_masked_paths(),
    // default_read_only_paths()) left alone, or "ALL" for every one of them.
    std::vector<std::string> unmask;

    bool operator==(const Security&) const = default;
};

struct Service {
    std::string restart = "no";              // systemd Restart= value
    std::optional<uint64_t> restart_sec_us;  // microseconds
    std::vector<std::string> requires_;      // container NAMEs or unit names ("foo.service")
    std::vector<std::string> wants;
    std::vector<std::string> after;
    std::optional<uint64_t> timeout_start_us;
    std::optional<uint64_t> timeout_stop_us;

    bool operator==(const Service&) const = default;
};

// Docker's HEALTHCHECK defaults, for the [health] keys left unset.
inline constexpr uint64_t kHealthDefaultIntervalUs = 30'000'000;
inline constexpr uint64_t kHealthDefaultTimeoutUs = 30'000'000;
inline constexpr uint64_t kHealthDefaultStartIntervalUs = 5'000'000;
inline constexpr uint32_t kHealthDefaultRetries = 3;

// [health] on_failure: what the supervisor does when the container becomes unhealthy.
enum class HealthOnFailure { None, Kill, Restart, Stop };

// [health]: a probe the supervisor runs inside the container (runtime/health.h). Every key is
// optional: an unset one takes the image's HEALTHCHECK value, then Docker's default
// (docs in man/berth.toml.5.md). `command = []` disables the image's check.
struct Health {
    std::optional<std::vector<std::string>> command;  // exec form, run inside the container
    std::optional<uint64_t> interval_us;              // default 30s
    std::optional<uint64_t> timeout_us;               // default 30s
    std::optional<uint32_t> retries;                  // default 3
    std::optional<uint64_t> start_period_us;          // default 0
    std::optional<uint64_t> start_interval_us;        // default 5s
    HealthOnFailure on_failure = HealthOnFailure::None;
    bool watchdog = false;                    // WatchdogSec= + WATCHDOG=1 while healthy
    int reload_signal = 0;                    // ExecReload= sends it to the payload; 0 = none
    std::vector<std::string> reload_command;  // ExecReload= runs it inside the container

    bool operator==(const Health&) const = default;
};

// [[secret]]: a systemd credential made visible to the payload as a file (and, on request, an
// environment variable). The declaration names where the value comes from, never the value.
enum class SecretSource {
    File,        // source = "/path": a plain file, LoadCredential=NAME:PATH
    Encrypted,   // source = "/path", encrypted = true: `systemd-creds encrypt` output,
                 // LoadCredentialEncrypted=NAME:PATH
    Credential,  // source = "credential:ID": a credential the host passes to the service manager,
                 // LoadCredential=NAME:ID
};

struct Secret {
    std::string name;  // credential name: [A-Za-z0-9_.-], also the file name in /run/secrets
    SecretSource kind = SecretSource::File;
    std::string source;                // absolute host path (File, Encrypted) or the credential ID
    std::string target;                // absolute in-container path; default /run/secrets/NAME
    uint32_t mode = 0400;              // file mode
    std::optional<uint32_t> uid, gid;  // default: the container's user and its group
    std::string environment;           // "VAR": also exported as $VAR to the payload (opt-in)
    SourceRegion where;

    bool operator==(const Secret&) const = default;
};

enum class SocketType { Stream, Datagram };  // [[socket]] type

struct Socket {          // [[socket]]: a listening socket systemd opens for berth@NAME.socket
    std::string listen;  // "ADDR:PORT", "[::]:PORT", "PORT" or an absolute unix socket path
    SocketType type = SocketType::Stream;
    // FileDescriptorName=: what the payload's $LISTEN_FDNAMES says for this socket's fd; "" =
    // systemd's default, the socket unit's name. Sockets of one name share one .socket unit.
    std::string name;
    SourceRegion where;

    bool operator==(const Socket&) const = default;
};

struct Install {
    std::vector<std::string> wanted_by = {"berth.target"};  // -> NAME.wants/ symlinks
    std::vector<std::string> required_by;                   // -> NAME.requires/ symlinks
    // A template (web@.toml) only: the instances enabled without a file of their own; each
    // berth@web@INSTANCE.service is linked into wanted_by/required_by as a declaration's unit is.
    std::vector<std::string> default_instances;

    bool operator==(const Install&) const = default;
};

struct Declaration {
    std::string name;                       // NAME of NAME.toml
    std::string source_path;                // the main TOML file
    std::vector<std::string> dropin_paths;  // applied in this order
    // Where each setting was written, keyed by its dotted path ("service.requires.1",
    // "resources.memory_max"), for file:line:col messages from checks that run after parsing
    // (undeclared dependencies, cycles). Not part of the settings: equality tests clear it.
    std::map<std::string, SourceRegion> regions;

    // [container]
    std::string image;  // a reference (registry/reference.h) or "sha256:<hex>"; exclusive with rootfs
    registry::PullPolicy pull = registry::PullPolicy::Missing;  // [container] pull
    // [container] auto_update: what `berth auto-update` follows (registry/auto-update.h)
    registry::AutoUpdateMode auto_update = registry::AutoUpdateMode::Off;
    std::string rootfs;                // absolute host directory used as read-only base
    std::vector<std::string> command;  // empty = image default (Entrypoint + Cmd)
    std::map<std::string, std::string> environment;
    std::vector<std::string> environment_files;  // absolute host paths, KEY=VALUE lines
    UserSpec user;
    std::vector<std::string> supplementary_groups;
    std::string workdir;   // absolute in-container path; empty = image default or "/"
    std::string hostname;  // default NAME
    bool ephemeral = false;
    OnImageChange on_image_change = OnImageChange::Recreate;
    bool read_only = false;
    // With read_only: /tmp, /var/tmp and /run as fresh tmpfs (unset = true); an error without it.
    std::optional<bool> read_only_tmpfs;
    std::optional<uint64_t> shm_size;  // /dev/shm tmpfs size in bytes; unset = 64M
    // "host" (the host's /etc/localtime) or a zone name ("Europe/Paris") bound read-only from
    // /usr/share/zoneinfo on /etc/localtime; empty = the image's.
    std::string timezone;
    // Namespaced kernel tunables ("net.ipv4.ip_unprivileged_port_start" -> "0") written in the
    // container's namespaces before the payload starts (config::sysctl_refusal says which).
    std::map<std::string, std::string> sysctl;
    int stop_signal = 15;  // SIGTERM; written as "SIGTERM" / "TERM" / number
    std::optional<uint64_t> stop_timeout_us;
    NotifyMode notify = NotifyMode::Started;
    bool init = false;

    std::vector<Mount> mounts;
    std::vector<Secret> secrets;
    std::vector<Socket> sockets;
    Network network;
    Resources resources;
    Security security;
    Service service;
    Health health;
    Install install;

    bool operator==(const Declaration&) const = default;
};

// A declared network: /etc/berth/networks/NAME.toml (+ drop-ins), all under [network]. Loaded with
// the same search path, drop-ins, masking and file:line:col errors as containers (config.h).
// docs: man/berth.network.5.md.
struct NetworkDeclaration {
    std::string name;
    std::string bridge;                // interface name; default "bn-NAME" (network plan)
    std::vector<std::string> subnets;  // "10.89.1.0/24", "fd00:89:1::/64": at most one per family
    std::string gateway;               // IPv4 of the bridge; default the subnet's first host
    std::string range;                 // "A.B.C.D-E.F.G.H" allocated from; default the whole subnet
    bool internal = false;             // no forwarding beyond the bridge
    std::optional<bool> masquerade;    // outbound NAT; default !internal
    std::optional<uint32_t> mtu;       // bridge and veth MTU; default the kernel's (1500)
    std::vector<std::string> dns;      // upstream servers; default the host's resolv.conf
    bool builtin = false;              // the default network when no file declares it
    std::string source_path;
    std::vector<std::string> dropin_paths;

    bool operator==(const NetworkDeclaration&) const = default;
};

}  // namespace berth::config
