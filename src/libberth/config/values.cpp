#include "config/values.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <signal.h>
#include <string.h>
#include <sys/capability.h>

#include <algorithm>
#include <array>
#include <cctype>

#include "basic/fs-util.h"
#include "basic/names.h"
#include "basic/string-util.h"

namespace berth::config {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

std::string upper(std::string_view text) {
    std::string out(text);
    for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}
std::string lower(std::string_view text) {
    std::string out(text);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

}  // namespace

const char* network_mode_name(NetworkMode mode) {
    switch (mode) {
        case NetworkMode::None:
            return "none";
        case NetworkMode::Host:
            return "host";
        case NetworkMode::Veth:
            return "veth";
        case NetworkMode::Bridge:
            return "bridge";
        case NetworkMode::Network:
            return "network";
    }
    return "?";
}

std::optional<uint32_t> parse_percent(std::string_view text) {
    if (text.size() < 2 || text.back() != '%') return std::nullopt;
    auto number = parse_unsigned(text.substr(0, text.size() - 1));
    if (!number || *number == 0 || *number > 100000) return std::nullopt;
    return static_cast<uint32_t>(*number);
}

std::optional<std::string> normalize_capability(std::string_view text) {
    if (text.empty() || text.size() > 64) return std::nullopt;
    std::string name = upper(text);
    if (name == "ALL") return name;
    if (name.rfind("CAP_", 0) != 0) name = "CAP_" + name;
    // cap_from_name also takes decimal numbers: we want names only.
    for (char c : name)
        if (!(std::isupper(static_cast<unsigned char>(c)) || c == '_')) return std::nullopt;
    cap_value_t value = 0;
    if (cap_from_name(lower(name).c_str(), &value) != 0) return std::nullopt;
    return name;
}

std::optional<int> parse_signal(std::string_view text) {
    if (auto number = parse_unsigned(text)) {
        if (*number >= 1 && *number <= static_cast<unsigned long long>(SIGRTMAX))
            return static_cast<int>(*number);
        return std::nullopt;
    }
    std::string name = upper(text);
    if (name.rfind("SIG", 0) == 0) name.erase(0, 3);
    if (name.rfind("RTMIN+", 0) == 0) {
        auto offset = parse_unsigned(std::string_view(name).substr(6));
        if (!offset || *offset > static_cast<unsigned long long>(SIGRTMAX - SIGRTMIN)) return std::nullopt;
        return SIGRTMIN + static_cast<int>(*offset);
    }
    if (name == "RTMIN") return SIGRTMIN;
    if (name == "RTMAX") return SIGRTMAX;
    for (int sig = 1; sig < SIGRTMIN; ++sig) {
        const char* abbrev = sigabbrev_np(sig);
        if (abbrev && name == abbrev) return sig;
    }
    return std::nullopt;
}

std::string signal_name(int signal) {
    if (signal >= SIGRTMIN && signal <= SIGRTMAX) {
        if (signal == SIGRTMIN) return "SIGRTMIN";
        return fmt::format("SIGRTMIN+{}", signal - SIGRTMIN);
    }
    const char* abbrev = sigabbrev_np(signal);
    if (abbrev) return std::string("SIG") + abbrev;
    return fmt::format("{}", signal);
}

std::optional<PortMapping> parse_port_mapping(std::string_view text) {
    PortMapping port;
    size_t slash = text.rfind('/');
    if (slash != std::string_view::npos) {
        std::string_view proto = text.substr(slash + 1);
        if (proto != "tcp" && proto != "udp") return std::nullopt;
        port.protocol = std::string(proto);
        text = text.substr(0, slash);
    }
    if (!text.empty() && text[0] == '[') {
        size_t close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
            return std::nullopt;
        port.host_address = std::string(text.substr(1, close - 1));
        struct in6_addr a6;
        if (inet_pton(AF_INET6, port.host_address.c_str(), &a6) != 1) return std::nullopt;
        text = text.substr(close + 2);
    }
    auto parts = split(text, ':', true);
    if (parts.size() == 3 && port.host_address.empty()) {
        port.host_address = parts[0];
        struct in_addr a4;
        if (inet_pton(AF_INET, port.host_address.c_str(), &a4) != 1) return std::nullopt;
        parts.erase(parts.begin());
    }
    if (parts.size() != 2) return std::nullopt;
    auto host = parse_unsigned(parts[0]);
    auto container = parse_unsigned(parts[1]);
    if (!host || !container || *host < 1 || *host > 65535 || *container < 1 || *container > 65535)
        return std::nullopt;
    port.host_port = static_cast<uint16_t>(*host);
    port.container_port = static_cast<uint16_t>(*container);
    return port;
}

std::string format_port_mapping(const PortMapping& port) {
    std::string host;
    if (!port.host_address.empty())
        host = port.host_address.find(':') != std::string::npos ? "[" + port.host_address + "]:"
                                                                : port.host_address + ":";
    return fmt::format("{}{}:{}/{}", host, port.host_port, port.container_port, port.protocol);
}

bool is_valid_cpu_list(std::string_view text) {
    bool any = false;
    for (const auto& item : split(text, ',')) {
        for (const auto& range : split(item, ' ')) {
            auto bounds = split(range, '-', true);
            if (bounds.empty() || bounds.size() > 2) return false;
            auto lo = parse_unsigned(bounds[0]);
            if (!lo || *lo >= 8192) return false;
            if (bounds.size() == 2) {
                auto hi = parse_unsigned(bounds[1]);
                if (!hi || *hi >= 8192 || *hi < *lo) return false;
            }
            any = true;
        }
    }
    return any;
}

bool is_valid_ip_address(std::string_view text) {
    std::string s(text);
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

bool is_valid_socket_listen(std::string_view text) {
    if (!text.empty() && text[0] == '/')
        return text.size() <= 107 && text.find('\0') == std::string_view::npos && text.back() != '/';
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    auto port = parse_unsigned(text.substr(colon + 1));
    if (!port || *port < 1 || *port > 65535) return false;
    std::string_view address = text.substr(0, colon);
    if (address.front() == '[') {
        if (address.size() < 3 || address.back() != ']') return false;
        std::string inner(address.substr(1, address.size() - 2));
        unsigned char buf[sizeof(struct in6_addr)];
        return inet_pton(AF_INET6, inner.c_str(), buf) == 1;
    }
    std::string v4(address);
    unsigned char buf[sizeof(struct in_addr)];
    return inet_pton(AF_INET, v4.c_str(), buf) == 1;
}

bool is_valid_cidr_address(std::string_view text) {
    size_t slash = text.find('/');
    if (slash == std::string_view::npos) return false;
    std::string address(text.substr(0, slash));
    auto prefix = parse_unsigned(text.substr(slash + 1));
    if (!prefix) return false;
    unsigned char buf[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, address.c_str(), buf) == 1) return *prefix <= 32;
    if (inet_pton(AF_INET6, address.c_str(), buf) == 1) return *prefix <= 128;
    return false;
}

bool is_valid_env_name(std::string_view text) {
    if (text.empty() || is_digit(text[0])) return false;
    for (char c : text)
        if (!(is_alnum(c) || c == '_')) return false;
    return true;
}

namespace {

// Dot-separated labels of letters, digits, '-' and '_', none empty or starting or ending with '-'.
bool is_label_sequence(std::string_view text, size_t max) {
    if (text.empty() || text.size() > max) return false;
    for (const auto& label : split(text, '.', true)) {
        if (label.empty() || label.front() == '-' || label.back() == '-') return false;
        for (char c : label)
            if (!(is_alnum(c) || c == '-' || c == '_')) return false;
    }
    return true;
}

}  // namespace

bool is_valid_hostname(std::string_view text) { return is_label_sequence(text, 64); }

bool is_valid_dns_domain(std::string_view text) { return is_label_sequence(text, 253); }

bool is_valid_dns_option(std::string_view text) {
    if (text.empty() || text.size() > 64) return false;
    return std::all_of(text.begin(), text.end(),
                       [](char c) { return is_alnum(c) || c == '-' || c == '_' || c == ':' || c == '.'; });
}

std::optional<HostEntry> parse_host_entry(std::string_view text) {
    size_t colon = text.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    HostEntry entry{std::string(text.substr(0, colon)), std::string(text.substr(colon + 1))};
    if (!is_valid_hostname(entry.name) || !is_valid_ip_address(entry.address)) return std::nullopt;
    return entry;
}

std::string sysctl_refusal(std::string_view key, NetworkMode mode) {
    bool grammar = !key.empty() && key.size() <= 255 && std::all_of(key.begin(), key.end(), [](char c) {
        return is_alnum(c) || c == '_' || c == '-' || c == '.';
    });
    if (grammar)
        for (const auto& part : split(key, '.', true))
            if (part.empty()) grammar = false;
    if (!grammar) return "is not a sysctl name, expected dot-separated words such as \"net.core.somaxconn\"";
    auto starts = [&](std::string_view prefix) { return key.substr(0, prefix.size()) == prefix; };
    if (starts("net.")) {
        if (mode == NetworkMode::Host)
            return "is per network namespace, and with [network] mode = \"host\" the container shares the "
                   "host's: setting it would change the host";
        return "";
    }
    if (starts("kernel.shm") || starts("kernel.msg") || key == "kernel.sem" || key == "kernel.sem_next_id" ||
        starts("fs.mqueue."))
        return "";
    return "is not namespaced: it is the host's, shared by every container, expected net.*, kernel.shm*, "
           "kernel.msg*, kernel.sem or fs.mqueue.*";
}

bool is_valid_sysctl_value(std::string_view value) {
    return !value.empty() && value.size() < 4096 &&
           std::all_of(value.begin(), value.end(), [](char c) { return c >= 0x20 && c != 0x7f; });
}

std::string sysctl_path(std::string_view key) {
    std::string path = "/proc/sys/" + std::string(key);
    std::replace(path.begin() + 10, path.end(), '.', '/');
    return path;
}

bool is_valid_timezone(std::string_view text) {
    if (text == "host") return true;
    if (text.empty() || text.size() > 255) return false;
    for (const auto& part : split(text, '/', true)) {
        if (part.empty() || part == "." || part == "..") return false;
        for (char c : part)
            if (!(is_alnum(c) || c == '_' || c == '+' || c == '-')) return false;
    }
    return true;
}

const std::vector<std::string>& default_masked_paths() {
    // Files that leak host hardware, timing or key state. /proc/asound and /proc/interrupts are
    // masked, not merely read-only: reading them is the leak.
    static const std::vector<std::string> paths = {
        "/proc/asound",      "/proc/acpi",          "/proc/interrupts", "/proc/kcore",
        "/proc/keys",        "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
        "/proc/sched_debug", "/proc/scsi",          "/sys/firmware",    "/sys/devices/virtual/powercap",
    };
    return paths;
}

const std::vector<std::string>& default_read_only_paths() {
    // The kernel's tunables stay visible but read-only.
    static const std::vector<std::string> paths = {
        "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
    };
    return paths;
}

bool is_valid_ifname(std::string_view text) {
    if (text.empty() || text.size() > 15 || text == "." || text == "..") return false;
    for (char c : text)
        if (c == '/' || c == ':' || c == '%' || std::isspace(static_cast<unsigned char>(c)) ||
            !std::isprint(static_cast<unsigned char>(c)))
            return false;
    return true;
}

bool is_valid_volume_name(std::string_view text) { return is_valid_object_name(NameKind::Volume, text); }

bool is_valid_account(std::string_view text) {
    if (text.empty() || text.size() > 32) return false;
    if (parse_unsigned(text)) return parse_unsigned(text) < 4294967295ULL;
    if (!(std::isalpha(static_cast<unsigned char>(text[0])) || text[0] == '_')) return false;
    for (size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (is_alnum(c) || c == '_' || c == '.' || c == '-') continue;
        if (c == '$' && i + 1 == text.size()) continue;
        return false;
    }
    return true;
}

namespace {
constexpr std::array<std::string_view, 16> kRlimits = {
    "cpu",   "fsize",   "data",  "stack",      "core",     "rss",  "nofile", "as",
    "nproc", "memlock", "locks", "sigpending", "msgqueue", "nice", "rtprio", "rttime"};
}

bool is_valid_rlimit(std::string_view name) {
    for (auto known : kRlimits)
        if (known == name) return true;
    return false;
}

std::string rlimit_unit_suffix(std::string_view name) { return upper(name); }

bool is_valid_restart(std::string_view text) {
    for (std::string_view known :
         {"no", "on-success", "on-failure", "on-abnormal", "on-watchdog", "on-abort", "always"})
        if (known == text) return true;
    return false;
}

namespace {

// CDI's name grammar (the spec's "Fully-qualified device name"): each part starts and ends with a
// letter or digit; inner characters are letters, digits and `extra`.
bool is_cdi_part(std::string_view text, std::string_view extra, bool letter_first) {
    if (text.empty() || text.size() > 253) return false;
    if (!is_alnum(text.front()) || !is_alnum(text.back())) return false;
    if (letter_first && !std::isalpha(static_cast<unsigned char>(text.front()))) return false;
    for (char c : text)
        if (!is_alnum(c) && extra.find(c) == std::string_view::npos) return false;
    return true;
}

}  // namespace

bool is_valid_cdi_kind(std::string_view kind) {
    auto slash = kind.find('/');
    if (slash == std::string_view::npos) return false;
    std::string_view vendor = kind.substr(0, slash), klass = kind.substr(slash + 1);
    return vendor.find('.') != std::string_view::npos && is_cdi_part(vendor, "-_.", false) &&
           is_cdi_part(klass, "-_.", true);
}

bool is_valid_cdi_device_name(std::string_view name) { return is_cdi_part(name, "-_.:", false); }

std::optional<DeviceEntry> parse_device_entry(std::string_view text, std::string* why) {
    DeviceEntry e;
    if (!text.empty() && text[0] == '/') {
        std::string_view path = text;
        if (auto colon = text.rfind(':'); colon != std::string_view::npos) {
            path = text.substr(0, colon);
            e.permissions = std::string(text.substr(colon + 1));
            bool ok = !e.permissions.empty() && e.permissions.size() <= 3 &&
                      e.permissions.find_first_not_of("rwm") == std::string::npos;
            for (char c : e.permissions)
                ok = ok && std::count(e.permissions.begin(), e.permissions.end(), c) == 1;
            if (!ok) {
                *why = fmt::format("has permissions {}, expected letters of \"rwm\" such as \"/dev/kvm:rw\"",
                                   quote(e.permissions));
                return std::nullopt;
            }
        }
        e.path = normalize_absolute_path(path);
        if (e.path.rfind("/dev/", 0) != 0 || e.path.size() <= 5 ||
            path.find('\0') != std::string_view::npos) {
            *why =
                "is not under /dev, expected a device node path such as \"/dev/fuse\" or a CDI name such as "
                "\"nvidia.com/gpu=all\"";
            return std::nullopt;
        }
        return e;
    }
    auto eq = text.find('=');
    e.cdi = true;
    if (eq != std::string_view::npos) {
        e.kind = std::string(text.substr(0, eq));
        e.name = std::string(text.substr(eq + 1));
    }
    if (eq == std::string_view::npos || !is_valid_cdi_kind(e.kind) || !is_valid_cdi_device_name(e.name)) {
        *why =
            "is neither a device node path nor a CDI device name, expected \"/dev/fuse\", \"/dev/kvm:rw\" or "
            "\"vendor.com/class=name\" such as \"nvidia.com/gpu=all\"";
        return std::nullopt;
    }
    return e;
}

}  // namespace berth::config
