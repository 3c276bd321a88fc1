#include "network/dns.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include <algorithm>

#include "basic/fs-util.h"
#include "basic/process-util.h"
#include "basic/program.h"
#include "basic/string-util.h"
#include "network/declared.h"
#include "network/ipam.h"
#include "network/netlink.h"

namespace berth::network {

namespace {

// The "nameserver" addresses of a resolv.conf text, in order.
std::vector<std::string> name_servers(const std::string& text) {
    std::vector<std::string> out;
    for (const auto& line : split(text, '\n')) {
        auto words = split(trim(line), ' ');
        if (words.size() >= 2 && words[0] == "nameserver") out.emplace_back(trim(words[1]));
    }
    return out;
}

// A loopback stub (systemd-resolved's 127.0.0.53, a local dnsmasq's 127.0.1.1, ::1).
bool is_loopback_server(const std::string& server) { return server.rfind("127.", 0) == 0 || server == "::1"; }

constexpr const char* kHostsDir = "hosts";

std::string hosts_dir_of(const std::string& run_dir) { return path_join(run_dir, kHostsDir); }

}  // namespace

std::vector<std::string> upstream_servers(const std::vector<std::string>& declared,
                                          const std::string& resolv_conf, const std::string& resolved_conf) {
    if (!declared.empty()) return declared;
    std::vector<std::string> all = name_servers(resolv_conf), out;
    std::copy_if(all.begin(), all.end(), std::back_inserter(out),
                 [](const std::string& s) { return !is_loopback_server(s); });
    if (!out.empty()) return out;
    // Only stubs: systemd-resolved keeps the servers it uses here.
    for (auto& s : name_servers(resolved_conf))
        if (!is_loopback_server(s)) out.push_back(s);
    if (!out.empty()) return out;
    // Nothing but a loopback stub: dnsmasq runs in the host's namespace and can reach it.
    return all;
}

DnsPlan plan_dns(const DeclaredNetworkPlan& network, const std::vector<std::string>& upstreams,
                 const std::string& run_dir) {
    DnsPlan p;
    p.network = network.network;
    p.label = "network " + quote(network.network);
    p.listen = network.gateway.address;
    p.upstreams = upstreams;
    p.hosts_dir = hosts_dir_of(run_dir);
    p.hosts_dirs = {p.hosts_dir};
    p.pid_file = path_join(run_dir, "dnsmasq.pid");
    p.argv = {
        "dnsmasq",
        "--conf-file=/dev/null",  // none of the host's dnsmasq configuration
        "--no-hosts",             // nor the host's /etc/hosts: the network's names only
        "--no-resolv",            // upstreams from --server= below, not a resolv.conf it polls
        "--bind-interfaces",
        "--listen-address=" + format_ipv4(p.listen),
        "--except-interface=lo",
        "--domain-needed",  // single-label names that are not ours never leave the host
        "--bogus-priv",     // nor reverse lookups of private ranges
        "--no-negcache",    // a name asked for before its container started resolves once it has
        "--pid-file=" + p.pid_file,
        "--hostsdir=" + p.hosts_dir,
    };
    for (const auto& s : upstreams) p.argv.push_back("--server=" + s);
    return p;
}

std::string resolver_run_dir() {
    const char* run = std::getenv("BERTH_RUN_DIR");
    return path_join(run && *run ? run : "/run/berth", "resolvers");
}

DnsPlan plan_container_resolver(const std::string& container, const std::vector<std::string>& networks,
                                Ipv4 upstream) {
    DnsPlan p;
    p.label = "container " + quote(container);
    p.listen = *parse_ipv4(kContainerResolverAddress);
    p.upstreams = {format_ipv4(upstream)};
    p.pid_file = path_join(resolver_run_dir(), container + ".pid");
    p.argv = {
        "dnsmasq",
        "--conf-file=/dev/null",
        "--no-hosts",
        "--no-resolv",
        "--bind-interfaces",  // 127.0.0.11 on the container's lo, nothing else
        "--listen-address=" + format_ipv4(p.listen),
        "--domain-needed",
        "--bogus-priv",
        "--no-negcache",
        "--pid-file=" + p.pid_file,
    };
    for (const auto& n : networks) {
        p.hosts_dirs.push_back(hosts_dir_of(network_run_dir(n)));
        p.argv.push_back("--hostsdir=" + p.hosts_dirs.back());
    }
    if (!p.hosts_dirs.empty()) p.hosts_dir = p.hosts_dirs.front();
    p.argv.push_back("--server=" + p.upstreams.front());
    return p;
}

std::optional<pid_t> dns_server_pid(const DnsPlan& plan) {
    auto text = read_file(plan.pid_file);
    if (!text) return std::nullopt;
    auto pid = parse_unsigned(trim(*text));
    if (!pid || *pid == 0 || *pid > 0x3fffffff) return std::nullopt;
    // A recycled pid is not ours: the process must be a dnsmasq started with this pid file.
    auto comm = read_file(fmt::format("/proc/{}/comm", *pid));
    if (!comm || trim(*comm) != "dnsmasq") return std::nullopt;
    auto cmdline = read_file(fmt::format("/proc/{}/cmdline", *pid));
    if (!cmdline) return std::nullopt;
    std::string want = "--pid-file=" + plan.pid_file;
    auto args = split(*cmdline, '\0');
    if (std::find(args.begin(), args.end(), want) == args.end()) return std::nullopt;
    return static_cast<pid_t>(*pid);
}

Result<> dns_up(const DnsPlan& plan, int netns_fd) {
    auto context = fmt::format("start the name server of {}", plan.label);
    if (dns_server_pid(plan)) return {};
    // dnsmasq drops its privileges (user nobody) before it reads the directory.
    for (const auto& dir : plan.hosts_dirs) BERTH_TRY_VOID_CTX(mkdir_p(dir, 0755), context);
    BERTH_TRY_VOID_CTX(mkdir_p(split_parent(plan.pid_file).first, 0755), context);
    if (find_program("dnsmasq").empty())
        return fail(ENOENT, "{}: dnsmasq is not installed (Debian: dnsmasq-base)", context);
    std::optional<NetnsEntry> inside;
    if (netns_fd >= 0) {
        auto entered = NetnsEntry::enter(netns_fd);
        if (!entered) return fail(entered.error().wrap(context));
        inside.emplace(std::move(*entered));
    }
    auto ran = run_program(plan.argv);
    if (inside) BERTH_TRY_VOID_CTX(inside->restore(), context);
    if (!ran) return fail(ran.error().wrap(context));
    return {};
}

Result<> dns_down(const DnsPlan& plan) {
    auto context = fmt::format("stop the name server of {}", plan.label);
    if (auto pid = dns_server_pid(plan)) {
        // Through a pidfd: the signal cannot reach a process that took over the pid meanwhile.
        auto pidfd = pidfd_open(*pid);
        if (pidfd) {
            auto gone = [&](int timeout_ms) {
                struct pollfd p {
                    pidfd->get(), POLLIN, 0
                };
                return ::poll(&p, 1, timeout_ms) == 1;
            };
            (void)pidfd_signal_raw(pidfd->get(), SIGTERM);
            if (!gone(5000)) {
                (void)pidfd_signal_raw(pidfd->get(), SIGKILL);
                if (!gone(5000)) return fail(ETIMEDOUT, "{}: dnsmasq (pid {}) does not exit", context, *pid);
            }
        }
    }
    if (::unlink(plan.pid_file.c_str()) < 0 && errno != ENOENT)
        return fail_errno("{}: remove '{}'", context, plan.pid_file);
    return {};
}

std::string hosts_entry(Ipv4 address, const std::vector<std::string>& names,
                        const std::optional<Ipv6>& address6) {
    std::vector<std::string> unique;
    for (const auto& n : names)
        if (!n.empty() && std::find(unique.begin(), unique.end(), n) == unique.end()) unique.push_back(n);
    std::string out = fmt::format("{}\t{}\n", format_ipv4(address), join(unique, " "));
    if (address6) out += fmt::format("{}\t{}\n", format_ipv6(*address6), join(unique, " "));
    return out;
}

Result<> register_names(const std::string& network, const std::string& container, Ipv4 address,
                        const std::optional<Ipv6>& address6, const std::vector<std::string>& names) {
    auto context = fmt::format("register container {} on network {}", quote(container), quote(network));
    std::string dir = hosts_dir_of(network_run_dir(network));
    BERTH_TRY_VOID_CTX(mkdir_p(dir, 0755), context);
    std::string tmp = path_join(dir, "." + container), final_path = path_join(dir, container);
    BERTH_TRY_VOID_CTX(write_file(tmp, hosts_entry(address, names, address6), 0, 0644), context);
    if (::rename(tmp.c_str(), final_path.c_str()) < 0) {
        int e = errno;
        ::unlink(tmp.c_str());
        return fail(e, "{}: rename '{}'", context, tmp);
    }
    return {};
}

std::vector<std::string> registered_containers(const std::string& network) {
    return list_directory(hosts_dir_of(network_run_dir(network)));
}

Result<> unregister_names(const std::string& container) {
    for (const auto& n : networks_with_run_dirs()) {
        std::string path = path_join(hosts_dir_of(network_run_dir(n)), container);
        if (::unlink(path.c_str()) < 0 && errno != ENOENT && errno != ENOTDIR)
            return fail_errno("unregister container {}: remove '{}'", quote(container), path);
    }
    return {};
}

}  // namespace berth::network
