#include "config/unit.h"

#include <errno.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "basic/fs-util.h"
#include "basic/string-util.h"
#include "berth-config.h"
#include "config/values.h"
#include "registry/reference.h"

namespace berth::config {

namespace {

// Unit files expand %-specifiers in most values; a line ending in '\' continues; control
// characters have no place in a one-line value.
std::string unit_value(std::string_view text) {
    std::string out;
    for (char c : text) {
        if (c == '%')
            out += "%%";
        else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
            out += ' ';
        else
            out += c;
    }
    while (!out.empty() && (out.back() == '\\' || out.back() == ' ')) out.pop_back();
    return out;
}

// One ExecStart= argument: specifiers and $VARIABLES escaped, quoted when it has spaces or quotes.
std::string exec_arg(std::string_view text) {
    bool needs_quotes = text.empty();
    std::string body;
    for (char c : text) {
        switch (c) {
            case '%':
                body += "%%";
                break;
            case '$':
                body += "$$";
                break;
            case '\\':
                body += "\\\\";
                break;
            case '"':
                body += "\\\"";
                needs_quotes = true;
                break;
            case '\'':
            case ' ':
            case '\t':
            case ';':
                body += c;
                needs_quotes = true;
                break;
            default:
                if (static_cast<unsigned char>(c) < 0x20)
                    body += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
                else
                    body += c;
        }
    }
    return needs_quotes ? "\"" + body + "\"" : body;
}

std::string bindir_of(const UnitOptions& options) {
    return options.bindir.empty() ? BERTH_BINDIR : options.bindir;
}

void add_list(std::string& out, std::string_view key, const std::vector<std::string>& units) {
    if (units.empty()) return;
    out += fmt::format("{}={}\n", key, unit_value(join(units, " ")));
}

std::string systemd_count(uint64_t value) {
    return value == kInfinity ? "infinity" : fmt::format("{}", value);
}

// A closed device cgroup for the unit (systemd attaches its BPF program to the unit's cgroup,
// which covers the runtime's delegated subtree): systemd's standard pseudo devices, the nodes every
// container's /dev holds, and the declared devices. The runtime attaches its own, precise program
// to the payload's cgroup as well (runtime/device-cgroup.h); both must allow an open.
void render_device_policy(std::string& out, const Declaration& d, const UnitOptions& options) {
    std::vector<std::string> allow, cdi_names;
    for (const auto& text : d.security.devices) {
        std::string why;
        auto entry = parse_device_entry(text, &why);
        if (!entry) continue;  // validated by the parser
        if (entry->cdi)
            cdi_names.push_back(text);
        else
            allow.push_back(fmt::format("{} {}", entry->path, entry->permissions));
    }
    if (!cdi_names.empty()) {
        auto resolved = options.cdi_device_allow ? options.cdi_device_allow(cdi_names) : std::nullopt;
        if (!resolved) {
            out +=
                "# DevicePolicy= left open: the CDI devices could not be resolved when this unit was\n"
                "# generated; the runtime's device program closes the container's devices.\n";
            return;
        }
        allow.insert(allow.end(), resolved->begin(), resolved->end());
    }
    out += "DevicePolicy=closed\n";
    for (const char* standard : {"/dev/tty rwm", "/dev/console rwm", "/dev/ptmx rwm", "char-pts rw"})
        out += fmt::format("DeviceAllow={}\n", standard);
    // A dm-thin root or block volume is mounted by the runtime from inside the unit's cgroup; the
    // payload's own program denies these once the mounts are made.
    out += "DeviceAllow=block-device-mapper rw\n";
    for (const auto& a : allow) {  // "PATH PERMS": the path quoted alone (systemd reads the first word)
        auto space = a.rfind(' ');
        out += fmt::format("DeviceAllow={} {}\n", unit_value(a.substr(0, space)), a.substr(space + 1));
    }
}

}  // namespace

bool pulls_from_registry(const Declaration& d) {
    if (d.image.empty() || d.image.rfind("sha256:", 0) == 0) return false;
    return registry::names_a_registry(d.image) || d.pull == registry::PullPolicy::Always ||
           d.pull == registry::PullPolicy::Newer;
}

std::string describe_image_change(const Declaration& before, const Declaration& after) {
    std::vector<std::string> parts;
    if (before.image != after.image)
        parts.push_back(fmt::format("image {} -> {}", quote(before.image), quote(after.image)));
    if (before.pull != after.pull)
        parts.push_back(fmt::format("pull \"{}\" -> \"{}\"", registry::pull_policy_name(before.pull),
                                    registry::pull_policy_name(after.pull)));
    return join(parts, "; ");
}

std::string unit_name(std::string_view container_name) {
    return fmt::format("berth@{}.service", container_name);
}

uint64_t health_watchdog_usec(const Health& h) {
    if (!h.watchdog) return 0;
    return h.interval_us.value_or(kHealthDefaultIntervalUs) * h.retries.value_or(kHealthDefaultRetries) +
           h.timeout_us.value_or(kHealthDefaultTimeoutUs);
}

namespace {

// The [health] part of the unit: watchdog, what on_failure's exit statuses mean to Restart=,
// and ExecReload=.
void render_health(std::string& out, const Declaration& d, const std::string& berth) {
    const Health& h = d.health;
    if (uint64_t usec = health_watchdog_usec(h)) {
        out += fmt::format("WatchdogSec={}\n", format_duration(usec));
        // The supervisor stops the payload in order on SIGTERM (and tears down); SIGABRT, the
        // default, would leave the container's cgroup and network for the next start.
        out += "WatchdogSignal=SIGTERM\n";
    }
    // The supervisor's exit statuses after on_failure (runtime/health.h): "restart" restarts
    // whatever Restart= says, "stop" never does.
    if (h.on_failure == HealthOnFailure::Restart) out += "RestartForceExitStatus=250\n";
    if (h.on_failure == HealthOnFailure::Stop) out += "RestartPreventExitStatus=251\n";
    if (h.reload_signal)
        out += fmt::format("ExecReload={} kill {} {}\n", exec_arg(berth),
                           exec_arg("--signal=" + signal_name(h.reload_signal)), exec_arg(d.name));
    if (!h.reload_command.empty()) {
        out += fmt::format("ExecReload={} exec --no-stdin {} --", exec_arg(berth), exec_arg(d.name));
        for (const auto& a : h.reload_command) out += " " + exec_arg(a);
        out += "\n";
    }
}

}  // namespace

std::string render_unit(const Declaration& d, const UnitOptions& options) {
    std::string pinned = path_join(options.pinned_dir, d.name + ".toml");
    std::string out;
    out += fmt::format("# Generated by berth-generator(8) from {}", d.source_path);
    for (const auto& p : d.dropin_paths) out += ", " + p;
    out += ".\n# Edit the declaration and run 'systemctl daemon-reload'; systemd drop-ins go in\n";
    out += fmt::format("# /etc/systemd/system/{}.d/*.conf.\n", unit_name(d.name));
    out += "[Unit]\n";
    out += fmt::format("Description=berth container {}\n", d.name);
    out += "Documentation=man:berth.toml(5) man:berth(1)\n";
    out += fmt::format("SourcePath={}\n", unit_value(d.source_path));

    // requires and wants also order: a container that needs another one starts after it.
    std::vector<std::string> requires_, wants, after;
    auto add_unique = [](std::vector<std::string>& v, std::string unit) {
        if (std::find(v.begin(), v.end(), unit) == v.end()) v.push_back(std::move(unit));
    };
    for (const auto& dep : d.service.requires_) {
        add_unique(requires_, dependency_unit(dep));
        add_unique(after, dependency_unit(dep));
    }
    for (const auto& dep : d.service.wants) {
        add_unique(wants, dependency_unit(dep));
        add_unique(after, dependency_unit(dep));
    }
    for (const auto& dep : d.service.after) add_unique(after, dependency_unit(dep));
    // A pull needs the network up, as Quadlet's Image= does (network-online.target is only
    // pulled in on demand, so Wants= too).
    if (pulls_from_registry(d)) {
        add_unique(wants, "network-online.target");
        add_unique(after, "network-online.target");
    }
    // A container on declared networks needs them up first; stopping a network's unit stops it.
    if (d.network.mode == NetworkMode::Network) {
        std::vector<std::string> networks;
        for (const auto& m : d.network.networks) networks.push_back(m.network);
        if (networks.empty()) networks.push_back(kDefaultNetwork);
        for (const auto& n : networks) {
            add_unique(requires_, fmt::format("berth-network@{}.service", n));
            add_unique(after, fmt::format("berth-network@{}.service", n));
        }
    }
    add_list(out, "Requires", requires_);
    add_list(out, "Wants", wants);
    add_list(out, "After", after);

    out += "\n[Service]\n";
    out += "Type=notify\n";
    out += "NotifyAccess=all\n";
    out += "Delegate=yes\n";
    out += "KillMode=mixed\n";
    out += "Slice=berth.slice\n";
    out += fmt::format("ExecStart={} run --systemd {} {}\n", exec_arg(path_join(bindir_of(options), "berth")),
                       exec_arg("--pinned=" + pinned), exec_arg(d.name));
    out += fmt::format("Restart={}\n", d.service.restart);
    if (d.service.restart_sec_us)
        out += fmt::format("RestartSec={}\n", format_duration(*d.service.restart_sec_us));
    if (d.service.timeout_start_us)
        out += fmt::format("TimeoutStartSec={}\n", format_duration(*d.service.timeout_start_us));
    auto stop = d.service.timeout_stop_us ? d.service.timeout_stop_us : d.stop_timeout_us;
    if (stop) out += fmt::format("TimeoutStopSec={}\n", format_duration(*stop));
    render_health(out, d, path_join(bindir_of(options), "berth"));
    // One .socket per socket name: the service takes the fds of all of them (the first one,
    // berth@NAME.socket, it would take by its name alone).
    if (auto sockets = socket_unit_names(d); sockets.size() > 1) add_list(out, "Sockets", sockets);

    // systemd reads (and decrypts) each secret into the unit's private $CREDENTIALS_DIRECTORY at
    // start; the unit names only where it comes from.
    for (const auto& secret : d.secrets) {
        const char* key =
            secret.kind == SecretSource::Encrypted ? "LoadCredentialEncrypted" : "LoadCredential";
        out += fmt::format("{}={}:{}\n", key, secret.name, unit_value(secret.source));
    }

    const Resources& r = d.resources;
    if (r.memory_max) out += fmt::format("MemoryMax={}\n", format_size(*r.memory_max));
    if (r.memory_high) out += fmt::format("MemoryHigh={}\n", format_size(*r.memory_high));
    if (r.memory_swap_max) out += fmt::format("MemorySwapMax={}\n", format_size(*r.memory_swap_max));
    if (r.cpu_weight) out += fmt::format("CPUWeight={}\n", *r.cpu_weight);
    if (r.cpu_quota_percent) out += fmt::format("CPUQuota={}%\n", *r.cpu_quota_percent);
    if (!r.allowed_cpus.empty()) out += fmt::format("AllowedCPUs={}\n", r.allowed_cpus);
    if (r.tasks_max) out += fmt::format("TasksMax={}\n", systemd_count(*r.tasks_max));
    if (r.io_weight) out += fmt::format("IOWeight={}\n", *r.io_weight);
    for (const auto& [name, value] : r.limits)
        out += fmt::format("Limit{}={}\n", rlimit_unit_suffix(name), systemd_count(value));
    render_device_policy(out, d, options);
    return out;
}

std::string socket_unit_name(std::string_view container_name) {
    return fmt::format("berth@{}.socket", container_name);
}

std::vector<std::string> socket_names(const Declaration& d) {
    std::vector<std::string> names;
    for (const auto& socket : d.sockets)
        if (std::find(names.begin(), names.end(), socket.name) == names.end()) names.push_back(socket.name);
    return names;
}

std::vector<std::string> socket_unit_names(const Declaration& d) {
    std::vector<std::string> units;
    auto names = socket_names(d);
    for (size_t i = 0; i < names.size(); ++i)
        units.push_back(i == 0 ? socket_unit_name(d.name) : fmt::format("berth@{}:{}.socket", d.name, i + 1));
    return units;
}

std::vector<std::string> listen_fd_names(const Declaration& d) {
    std::vector<std::string> out;
    auto names = socket_names(d);
    auto units = socket_unit_names(d);
    for (size_t i = 0; i < names.size(); ++i) out.push_back(names[i].empty() ? units[i] : names[i]);
    return out;
}

std::string render_socket(const Declaration& d, size_t group) {
    std::string name = socket_names(d).at(group);
    std::string out;
    out += fmt::format("# Generated by berth-generator(8) from {}", d.source_path);
    for (const auto& p : d.dropin_paths) out += ", " + p;
    out += ".\n[Unit]\n";
    out += fmt::format("Description=berth container {} (sockets)\n", d.name);
    out += "Documentation=man:berth.toml(5) man:berth(1)\n";
    out += fmt::format("SourcePath={}\n", unit_value(d.source_path));
    out += "\n[Socket]\n";
    for (const auto& socket : d.sockets)
        if (socket.name == name)
            out +=
                fmt::format("{}={}\n", socket.type == SocketType::Stream ? "ListenStream" : "ListenDatagram",
                            unit_value(socket.listen));
    // The parser let through printable names without ':'; '%' is a specifier in unit files.
    if (!name.empty()) out += fmt::format("FileDescriptorName={}\n", unit_value(name));
    out += fmt::format("Service={}\n", unit_name(d.name));
    return out;
}

std::string render_failed_unit(std::string_view name, const std::string& source_path, const Error& error,
                               const UnitOptions& options) {
    std::string what = error.what();
    std::string first = what.substr(0, what.find('\n'));
    if (first.size() > 200) first = first.substr(0, 197) + "...";
    std::string error_file = path_join(options.pinned_dir, std::string(name) + ".error");
    std::string out;
    out += fmt::format("# Generated by berth-generator(8) from {}.\n", source_path);
    out += "# The declaration is INVALID: starting this unit fails and logs why (see the .error file).\n";
    out += "[Unit]\n";
    out += fmt::format("Description=berth container {} (invalid declaration: {})\n", name, unit_value(first));
    out += "Documentation=man:berth.toml(5) man:berth(1)\n";
    out += fmt::format("SourcePath={}\n", unit_value(source_path));
    out += "\n[Service]\n";
    out += "Type=oneshot\n";
    out += "Slice=berth.slice\n";
    out += fmt::format("ExecStart={} validate {}\n", exec_arg(path_join(bindir_of(options), "berth")),
                       exec_arg("--report-error=" + error_file));
    return out;
}

namespace {

Result<> write(const std::string& path, std::string_view content) {
    // Generator output lives in /run (tmpfs) and is rewritten at every daemon-reload: no fsync.
    return write_file(path, content, O_CREAT | O_TRUNC, 0644);
}

// `made` holds the .wants/.requires directories this run has made: one mkdir per target, not one
// per container (1000 declarations: 5000 failed mkdir calls before).
Result<> link_unit(const std::string& output_dir, const std::string& target, std::string_view dependency_type,
                   const std::string& unit, std::set<std::string>& made) {
    std::string dir = path_join(output_dir, target + std::string(dependency_type));
    if (!made.count(dir)) {
        BERTH_TRY_VOID(mkdir_p(dir));
        made.insert(dir);
    }
    std::string link = path_join(dir, unit);
    std::string to = "../" + unit;
    // systemd empties the generator directories before each run: a link is only there when the
    // generator runs by hand into an old directory, so it is replaced only then.
    if (::symlink(to.c_str(), link.c_str()) == 0) return {};
    if (errno != EEXIST) return fail_errno("symlink '{}'", link);
    if (::unlink(link.c_str()) < 0 && errno != ENOENT) return fail_errno("remove '{}'", link);
    if (::symlink(to.c_str(), link.c_str()) < 0) return fail_errno("symlink '{}'", link);
    return {};
}

}  // namespace

// A declared network as canonical TOML, every setting written (berth/NAME.network): what
// `berth plan` compares after a changed network declaration.
static std::string network_record(const NetworkDeclaration& n) {
    // The parser let through addresses and interface names only: nothing to escape.
    auto str = [](const std::string& v) { return "\"" + v + "\""; };
    auto list = [&](const std::vector<std::string>& v) {
        std::string out;
        for (const auto& s : v) out += (out.empty() ? "" : ", ") + str(s);
        return "[" + out + "]";
    };
    std::string s = fmt::format("# {}{}\n[network]\n", n.source_path,
                                n.dropin_paths.empty() ? "" : " + " + join(n.dropin_paths, " + "));
    s += fmt::format("bridge = {}\nsubnets = {}\ngateway = {}\nrange = {}\ninternal = {}\n", str(n.bridge),
                     list(n.subnets), str(n.gateway), str(n.range), n.internal);
    if (n.masquerade) s += fmt::format("masquerade = {}\n", *n.masquerade);
    if (n.mtu) s += fmt::format("mtu = {}\n", *n.mtu);
    s += fmt::format("dns = {}\n", list(n.dns));
    return s;
}

// NAME.toml in one of the search directories.
static bool has_own_file(const SearchPaths& paths, const std::string& name) {
    for (const auto& dir : paths.dirs)
        if (path_exists(path_join(dir, name + ".toml"))) return true;
    return false;
}

Result<GenerateReport> generate(const SearchPaths& paths, const std::string& output_dir,
                                const UnitOptions& options) {
    UnitOptions opts = options;
    std::string pinned_out = path_join(output_dir, "berth");
    if (opts.pinned_dir.empty()) opts.pinned_dir = pinned_out;
    BERTH_TRY_VOID_CTX(mkdir_p(pinned_out), fmt::format("create '{}'", pinned_out));

    GenerateReport report;
    std::set<std::string> made_dirs;
    LoadedSet set = load_all(paths);
    for (auto& [name, result] : set.by_name) {
        std::string unit = unit_name(name);
        std::string unit_path = path_join(output_dir, unit);
        if (result) {
            const Declaration& d = *result;
            BERTH_TRY_VOID(write(path_join(pinned_out, name + ".toml"), to_toml(d)));
            BERTH_TRY_VOID(write(unit_path, render_unit(d, opts)));
            report.units.push_back(unit);
            // With sockets, the sockets are what start at boot; a first connection starts the service.
            std::vector<std::string> installed = {unit};
            if (!d.sockets.empty()) {
                installed = socket_unit_names(d);
                for (size_t i = 0; i < installed.size(); ++i) {
                    BERTH_TRY_VOID(write(path_join(output_dir, installed[i]), render_socket(d, i)));
                    report.units.push_back(installed[i]);
                }
            }
            // A template's instance is enabled when the template lists it in default_instances or it
            // has a file of its own (which may say wanted_by = [] to be declared but not enabled).
            bool enabled = true;
            if (auto at = name.find('@'); at != std::string::npos) {
                auto templ = set.templates.find(name.substr(0, at + 1));
                const auto& defaults = templ != set.templates.end() && templ->second
                                           ? templ->second->install.default_instances
                                           : std::vector<std::string>{};
                enabled =
                    std::find(defaults.begin(), defaults.end(), name.substr(at + 1)) != defaults.end() ||
                    has_own_file(paths, name);
            }
            for (const auto& target : enabled ? d.install.wanted_by : std::vector<std::string>{})
                for (const auto& u : installed)
                    BERTH_TRY_VOID(link_unit(output_dir, target, ".wants", u, made_dirs));
            for (const auto& target : enabled ? d.install.required_by : std::vector<std::string>{})
                for (const auto& u : installed)
                    BERTH_TRY_VOID(link_unit(output_dir, target, ".requires", u, made_dirs));
            continue;
        }
        report.invalid.push_back(name);
        report.errors.push_back(result.error().what());
        // Without a usable NAME there is no unit name to carry the error: it is only reported.
        if (!is_valid_name(name)) continue;
        // Find the main file for SourcePath: the first line of the error names it, or the set's path.
        // A template's default instance has no file of its own: its template's.
        std::string source;
        for (const std::string& file : {name, name.substr(0, name.find('@') + 1)})
            for (const auto& dir : paths.dirs) {
                std::string p = path_join(dir, file + ".toml");
                if (source.empty() && !file.empty() && path_exists(p)) source = p;
            }
        BERTH_TRY_VOID(write(path_join(pinned_out, name + ".error"), result.error().what() + "\n"));
        BERTH_TRY_VOID(write(unit_path, render_failed_unit(name, source, result.error(), opts)));
        BERTH_TRY_VOID(link_unit(output_dir, "berth.target", ".wants", unit, made_dirs));
        report.units.push_back(unit);
    }
    // A template is no unit of its own; an invalid one is reported here (its instances' units fail).
    for (auto& [name, result] : set.templates)
        if (!result) {
            report.invalid.push_back(name);
            report.errors.push_back(result.error().what());
        }
    // Declared networks: berth-network@NAME.service reads the live declaration at its start; the
    // record is for `berth plan` (a changed network shows as a changed berth/NAME.network).
    for (auto& [name, network] : load_all_networks(SearchPaths::networks())) {
        if (!network) {
            report.errors.push_back(network.error().what());
            continue;
        }
        if (!network->builtin)
            BERTH_TRY_VOID(write(path_join(pinned_out, name + ".network"), network_record(*network)));
    }
    return report;
}

}  // namespace berth::config
