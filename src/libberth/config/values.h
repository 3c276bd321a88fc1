// Parsers and formatters for the value syntaxes of berth.toml: sizes, durations, percentages,
// capability and signal names, port mappings, CPU lists, addresses. Pure functions, no logging;
// each returns nullopt on bad input and the caller says what was expected (it knows the key).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "basic/size-util.h"
#include "config/declaration.h"

namespace berth::config {

// Sizes and durations: basic/size-util.h, shared with berthd.toml.
using berth::format_duration;
using berth::format_size;
using berth::parse_duration_us;
using berth::parse_size;

// NetworkMode::Veth -> "veth": the word [network] mode is written with.
const char* network_mode_name(NetworkMode mode);

// "150%" -> 150 (1..100000).
std::optional<uint32_t> parse_percent(std::string_view text);

// "CAP_SYS_ADMIN", "sys_admin", "ALL" -> "CAP_SYS_ADMIN" / "ALL", via libcap's cap_from_name.
std::optional<std::string> normalize_capability(std::string_view text);

// "SIGTERM", "TERM", "15", "SIGRTMIN+3" -> signal number.
std::optional<int> parse_signal(std::string_view text);
// 15 -> "SIGTERM"; real-time signals as "SIGRTMIN+N".
std::string signal_name(int signal);

// "8080:80", "8080:80/udp", "127.0.0.1:8080:80/tcp", "[::1]:8080:80".
std::optional<PortMapping> parse_port_mapping(std::string_view text);
std::string format_port_mapping(const PortMapping& port);

// [[socket]] listen: "ADDR:PORT" (IPv4), "[ADDR]:PORT" (IPv6, "[::]" = every address) or an
// absolute unix socket path (at most 107 bytes, what sockaddr_un holds). Written to the socket
// unit as it is.
bool is_valid_socket_listen(std::string_view text);

// Where a [[secret]]'s file lives in the container (a private tmpfs), and $CREDENTIALS_DIRECTORY.
inline constexpr std::string_view kSecretsDir = "/run/secrets";

// "0-3,5" (systemd AllowedCPUs= syntax; also space separated).
bool is_valid_cpu_list(std::string_view text);

bool is_valid_ip_address(std::string_view text);    // IPv4 or IPv6, no prefix
bool is_valid_cidr_address(std::string_view text);  // "10.0.0.2/24", "fd00::2/64"

// Environment variable name: [A-Za-z_][A-Za-z0-9_]*.
bool is_valid_env_name(std::string_view text);
// Host name label sequence, at most 64 bytes (what sethostname accepts and resolvers like).
bool is_valid_hostname(std::string_view text);
// Network interface name (bridge): 1..15 bytes, no '/', ':' or whitespace.
bool is_valid_ifname(std::string_view text);
// Volume names, like container names: [A-Za-z0-9][A-Za-z0-9_.-]*, at most 128 characters.
bool is_valid_volume_name(std::string_view text);
// User or group as written in `user = "..."`: a decimal id or a POSIX-ish account name.
bool is_valid_account(std::string_view text);

// "nofile" -> true; the rlimit names berth knows (same as systemd's Limit*= without "Limit").
bool is_valid_rlimit(std::string_view name);
// "nofile" -> "NOFILE" for LimitNOFILE=.
std::string rlimit_unit_suffix(std::string_view name);

// systemd Restart= values.
bool is_valid_restart(std::string_view text);

// One [security] devices entry: a host device node, optionally with the access it gets
// ("/dev/fuse", "/dev/kvm:rw"), or a CDI device name ("nvidia.com/gpu=all", cdi.h). Written back
// as it was given (the declaration keeps the strings).
struct DeviceEntry {
    bool cdi = false;
    std::string path;                 // host node, normalised (not cdi)
    std::string permissions = "rwm";  // a non-empty subset of "rwm" (not cdi)
    std::string kind;                 // "nvidia.com/gpu" (cdi)
    std::string name;                 // "all", "0", "GPU-1234" (cdi)
};
// nullopt with *why set: what is wrong and what was expected.
std::optional<DeviceEntry> parse_device_entry(std::string_view text, std::string* why);
// "vendor.com/class": a CDI vendor (domain-like) and class.
bool is_valid_cdi_kind(std::string_view kind);
bool is_valid_cdi_device_name(std::string_view name);

// [container] sysctl: why the key (dotted, "net.ipv4.ip_forward") may not be set in a container,
// or "" when it may. Only sysctls the kernel keeps per namespace are allowed (net.* per network
// namespace, kernel.shm*, kernel.msg*, kernel.sem and fs.mqueue.* per IPC namespace): any other
// one would change the host for everyone. net.* also needs a private network namespace.
std::string sysctl_refusal(std::string_view key, NetworkMode mode);
// The value as written to /proc/sys: printable, one line, at most 4095 bytes.
bool is_valid_sysctl_value(std::string_view value);
// "net.ipv4.ip_forward" -> "/proc/sys/net/ipv4/ip_forward".
std::string sysctl_path(std::string_view key);

// [container] timezone: "host" or a zone name under /usr/share/zoneinfo ("Europe/Paris", "UTC",
// "Etc/GMT+5"): components of [A-Za-z0-9_+-], never "." or "..", at most 255 bytes.
bool is_valid_timezone(std::string_view text);
inline constexpr std::string_view kZoneinfoDir = "/usr/share/zoneinfo";

// [network] add_hosts: "NAME:ADDRESS" (the address may be IPv6: the name has no ':').
std::optional<HostEntry> parse_host_entry(std::string_view text);
// [network] dns_search: a domain name (letters, digits, '-', '_' and '.'), at most 253 bytes.
bool is_valid_dns_domain(std::string_view text);
// [network] dns_options: one resolv.conf(5) option such as "ndots:2", "edns0", "timeout:1".
bool is_valid_dns_option(std::string_view text);

// Docker's masked and read-only /proc and /sys paths (moby oci/defaults.go): what [security]
// unmask may name, and what the runtime masks or makes read-only by default.
const std::vector<std::string>& default_masked_paths();
const std::vector<std::string>& default_read_only_paths();

}  // namespace berth::config
