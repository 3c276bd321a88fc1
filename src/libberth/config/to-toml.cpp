// Canonical TOML for a Declaration, written by hand (no toml++ here: it is one slow translation
// unit already). Every setting is written explicitly, unset optionals are left out, and the
// order is fixed, so the text is stable: `berth plan` diffs it, and the unit runs exactly it.
#include <fmt/format.h>

#include "basic/string-util.h"
#include "config/config.h"
#include "config/values.h"

namespace berth::config {

namespace {

std::string str(std::string_view text) {
    std::string out = "\"";
    for (unsigned char c : text) {
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\b':
                out += "\\b";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\f':
                out += "\\f";
                break;
            case '\r':
                out += "\\r";
                break;
            default:
                if (c < 0x20 || c == 0x7f)
                    out += fmt::format("\\u{:04X}", c);
                else
                    out += static_cast<char>(c);
        }
    }
    return out + "\"";
}

// Bare keys are A-Za-z0-9_-; anything else is quoted.
std::string key(std::string_view text) {
    bool bare = !text.empty();
    for (char c : text)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '-'))
            bare = false;
    return bare ? std::string(text) : str(text);
}

std::string list(const std::vector<std::string>& items) {
    std::string out = "[";
    for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + str(items[i]);
    return out + "]";
}

const char* boolean(bool b) { return b ? "true" : "false"; }

std::string count(uint64_t value) { return value == kInfinity ? "\"infinity\"" : fmt::format("{}", value); }

}  // namespace

std::string to_toml(const Declaration& d) {
    std::string out;
    auto line = [&](std::string_view k, std::string_view v) { out += fmt::format("{} = {}\n", k, v); };

    out += fmt::format("# berth declaration {}, merged from {}", quote(d.name),
                       d.source_path.empty() ? std::string("(memory)") : d.source_path);
    for (const auto& p : d.dropin_paths) out += ", " + p;
    out += "\n\n[container]\n";
    if (!d.image.empty()) line("image", str(d.image));
    if (!d.rootfs.empty()) line("rootfs", str(d.rootfs));
    if (!d.command.empty()) line("command", list(d.command));
    line("environment_files", list(d.environment_files));
    if (!d.user.user.empty())
        line("user", str(d.user.group.empty() ? d.user.user : d.user.user + ":" + d.user.group));
    line("supplementary_groups", list(d.supplementary_groups));
    if (!d.workdir.empty()) line("workdir", str(d.workdir));
    if (!d.hostname.empty()) line("hostname", str(d.hostname));
    line("ephemeral", boolean(d.ephemeral));
    // Only when not the default: the generator's golden units stay as they were.
    if (d.on_image_change == OnImageChange::Keep) line("on_image_change", "\"keep\"");
    if (d.pull != registry::PullPolicy::Missing) line("pull", str(registry::pull_policy_name(d.pull)));
    if (d.auto_update != registry::AutoUpdateMode::Off)
        line("auto_update", str(registry::auto_update_mode_name(d.auto_update)));
    line("read_only", boolean(d.read_only));
    if (d.read_only_tmpfs) line("read_only_tmpfs", boolean(*d.read_only_tmpfs));
    if (d.shm_size) line("shm_size", str(format_size(*d.shm_size)));
    if (!d.timezone.empty()) line("timezone", str(d.timezone));
    line("stop_signal", str(signal_name(d.stop_signal)));
    if (d.stop_timeout_us) line("stop_timeout", str(format_duration(*d.stop_timeout_us)));
    line("notify", d.notify == NotifyMode::Started     ? "\"started\""
                   : d.notify == NotifyMode::Container ? "\"container\""
                                                       : "\"healthy\"");
    line("init", boolean(d.init));
    out += "\n[container.environment]\n";
    for (const auto& [k, v] : d.environment) line(key(k), str(v));
    if (!d.sysctl.empty()) {
        out += "\n[container.sysctl]\n";
        for (const auto& [k, v] : d.sysctl) line(str(k), str(v));
    }

    for (const auto& m : d.mounts) {
        out += "\n[[mount]]\n";
        line("type", m.type == MountType::Bind    ? "\"bind\""
                     : m.type == MountType::Tmpfs ? "\"tmpfs\""
                                                  : "\"volume\"");
        if (!m.source.empty()) line("source", str(m.source));
        line("target", str(m.target));
        line("read_only", boolean(m.read_only));
        if (m.size) line("size", str(format_size(*m.size)));
        if (m.mode) line("mode", str(fmt::format("{:04o}", *m.mode)));
    }

    // Where each secret comes from, never its value.
    for (const auto& secret : d.secrets) {
        out += "\n[[secret]]\n";
        line("name", str(secret.name));
        line("source",
             str(secret.kind == SecretSource::Credential ? "credential:" + secret.source : secret.source));
        if (secret.kind == SecretSource::Encrypted) line("encrypted", "true");
        line("target", str(secret.target));
        line("mode", str(fmt::format("{:04o}", secret.mode)));
        if (secret.uid) line("uid", fmt::format("{}", *secret.uid));
        if (secret.gid) line("gid", fmt::format("{}", *secret.gid));
        if (!secret.environment.empty()) line("environment", str(secret.environment));
    }
    for (const auto& socket : d.sockets) {
        out += "\n[[socket]]\n";
        line("listen", str(socket.listen));
        line("type", socket.type == SocketType::Stream ? "\"stream\"" : "\"datagram\"");
        if (!socket.name.empty()) line("name", str(socket.name));
    }

    const Network& n = d.network;
    out += "\n[network]\n";
    line("mode", str(network_mode_name(n.mode)));
    if (!n.bridge.empty()) line("bridge", str(n.bridge));
    if (!n.address.empty()) line("address", str(n.address));
    if (!n.host_address.empty()) line("host_address", str(n.host_address));
    if (!n.gateway.empty()) line("gateway", str(n.gateway));
    if (n.mode == NetworkMode::Network && !n.networks.empty()) {
        std::string items;
        for (const auto& m : n.networks) {
            items += items.empty() ? "" : ", ";
            if (m.address.empty() && m.aliases.empty()) {
                items += str(m.network);
                continue;
            }
            items += "{ name = " + str(m.network);
            if (!m.address.empty()) items += ", address = " + str(m.address);
            if (!m.aliases.empty()) items += ", aliases = " + list(m.aliases);
            items += " }";
        }
        line("networks", "[" + items + "]");
    }
    if (n.mode == NetworkMode::Veth || n.mode == NetworkMode::Bridge || n.mode == NetworkMode::Network) {
        std::vector<std::string> ports;
        for (const auto& p : n.ports) ports.push_back(format_port_mapping(p));
        line("ports", list(ports));
        if (n.masquerade) line("masquerade", boolean(*n.masquerade));
        if (n.ip_forward) line("ip_forward", boolean(true));
    }
    if (!n.add_hosts.empty()) {
        std::vector<std::string> hosts;
        for (const auto& h : n.add_hosts) hosts.push_back(h.name + ":" + h.address);
        line("add_hosts", list(hosts));
    }
    if (!n.dns.empty()) line("dns", list(n.dns));
    if (!n.dns_search.empty()) line("dns_search", list(n.dns_search));
    if (!n.dns_options.empty()) line("dns_options", list(n.dns_options));

    const Resources& r = d.resources;
    out += "\n[resources]\n";
    if (r.memory_max) line("memory_max", str(format_size(*r.memory_max)));
    if (r.memory_high) line("memory_high", str(format_size(*r.memory_high)));
    if (r.memory_swap_max) line("memory_swap_max", str(format_size(*r.memory_swap_max)));
    if (r.cpu_weight) line("cpu_weight", fmt::format("{}", *r.cpu_weight));
    if (r.cpu_quota_percent) line("cpu_quota", str(fmt::format("{}%", *r.cpu_quota_percent)));
    if (!r.allowed_cpus.empty()) line("allowed_cpus", str(r.allowed_cpus));
    if (r.tasks_max) line("tasks_max", count(*r.tasks_max));
    if (r.io_weight) line("io_weight", fmt::format("{}", *r.io_weight));
    out += "\n[resources.limits]\n";
    for (const auto& [k, v] : r.limits) line(key(k), count(v));

    const Security& s = d.security;
    out += "\n[security]\n";
    line("capabilities_add", list(s.capabilities_add));
    line("capabilities_drop", list(s.capabilities_drop));
    line("seccomp", s.seccomp == SeccompMode::Default      ? "\"default\""
                    : s.seccomp == SeccompMode::Unconfined ? "\"unconfined\""
                                                           : str(s.seccomp_profile));
    line("no_new_privileges", boolean(s.no_new_privileges));
    switch (s.user_namespace.mode) {
        case UserNamespaceMode::Off:
            line("user_namespace", "\"off\"");
            break;
        case UserNamespaceMode::Pick:
            line("user_namespace", "\"pick\"");
            break;
        case UserNamespaceMode::Fixed:
            line("user_namespace",
                 fmt::format("{{ uid = {}, size = {} }}", s.user_namespace.uid, s.user_namespace.size));
            break;
    }
    line("devices", list(s.devices));
    if (!s.mask.empty()) line("mask", list(s.mask));
    if (!s.unmask.empty()) line("unmask", list(s.unmask));

    const Service& v = d.service;
    out += "\n[service]\n";
    line("restart", str(v.restart));
    if (v.restart_sec_us) line("restart_sec", str(format_duration(*v.restart_sec_us)));
    line("requires", list(v.requires_));
    line("wants", list(v.wants));
    line("after", list(v.after));
    if (v.timeout_start_us) line("timeout_start", str(format_duration(*v.timeout_start_us)));
    if (v.timeout_stop_us) line("timeout_stop", str(format_duration(*v.timeout_stop_us)));

    // Only when written: the generator's golden units stay as they were.
    const Health& h = d.health;
    if (h != Health{}) {
        out += "\n[health]\n";
        if (h.command) line("command", list(*h.command));
        if (h.interval_us) line("interval", str(format_duration(*h.interval_us)));
        if (h.timeout_us) line("timeout", str(format_duration(*h.timeout_us)));
        if (h.retries) line("retries", fmt::format("{}", *h.retries));
        if (h.start_period_us) line("start_period", str(format_duration(*h.start_period_us)));
        if (h.start_interval_us) line("start_interval", str(format_duration(*h.start_interval_us)));
        static const char* const on_failure[] = {"none", "kill", "restart", "stop"};
        line("on_failure", str(on_failure[static_cast<size_t>(h.on_failure)]));
        line("watchdog", boolean(h.watchdog));
        if (h.reload_signal) line("reload_signal", str(signal_name(h.reload_signal)));
        if (!h.reload_command.empty()) line("reload_command", list(h.reload_command));
    }

    out += "\n[install]\n";
    line("wanted_by", list(d.install.wanted_by));
    line("required_by", list(d.install.required_by));
    if (!d.install.default_instances.empty()) line("default_instances", list(d.install.default_instances));
    return out;
}

}  // namespace berth::config
