#include "runtime/etc-files.h"

#include "basic/string-util.h"

namespace berth::runtime {

std::string render_hostname(const std::string& hostname) { return hostname + "\n"; }

std::string render_hosts(const std::string& hostname, const std::string& address) {
    return render_hosts(hostname, address.empty() ? std::vector<std::string>{} : std::vector{address});
}

std::string render_hosts(const std::string& hostname, const std::vector<std::string>& addresses) {
    std::string out =
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";
    bool any = false;
    for (const auto& address : addresses) {
        std::string ip = address.substr(0, address.find('/'));
        if (ip.empty()) continue;
        out += ip + "\t" + hostname + "\n";
        any = true;
    }
    if (!any) out += "127.0.1.1\t" + hostname + "\n";
    return out;
}

std::string render_resolv_conf(config::NetworkMode mode, const std::string& host) {
    using config::NetworkMode;
    if (mode == NetworkMode::None) return "# berth: network mode \"none\", no name servers\n";
    if (mode == NetworkMode::Host) return host;
    std::string out;
    bool have_server = false;
    for (const auto& line : split(host, '\n', true)) {
        std::string_view t = trim(line);
        if (t.substr(0, 10) == "nameserver") {
            std::string_view addr = trim(t.substr(10));
            if (addr.substr(0, 4) == "127." || addr == "::1") continue;
            have_server = true;
        }
        if (!t.empty()) out += std::string(t) + "\n";
    }
    if (!have_server) out += "nameserver 8.8.8.8\nnameserver 8.8.4.4\n";
    return out;
}

std::string render_network_resolv_conf(const std::vector<std::string>& servers, const std::string& host) {
    std::string out;
    for (const auto& server : servers) out += "nameserver " + server + "\n";
    for (const auto& line : split(host, '\n')) {
        std::string_view t = trim(line);
        if (t.substr(0, 6) == "search" || t.substr(0, 7) == "options") out += std::string(t) + "\n";
    }
    return out;
}

std::string apply_add_hosts(std::string hosts, const config::Network& network) {
    if (!network.add_hosts.empty() && !hosts.empty() && hosts.back() != '\n') hosts += '\n';
    for (const auto& entry : network.add_hosts) hosts += entry.address + "\t" + entry.name + "\n";
    return hosts;
}

std::string apply_dns_settings(const std::string& resolv_conf, const config::Network& network) {
    const bool servers = !network.dns.empty(), search = !network.dns_search.empty(),
               options = !network.dns_options.empty();
    if (!servers && !search && !options) return resolv_conf;
    auto first_word = [](std::string_view line) { return line.substr(0, line.find_first_of(" \t")); };
    std::string out;
    for (const auto& line : split(resolv_conf, '\n', true)) {
        std::string_view word = first_word(trim(line));
        if ((servers && word == "nameserver") || (search && (word == "search" || word == "domain")) ||
            (options && word == "options"))
            continue;
        if (!trim(line).empty()) out += std::string(trim(line)) + "\n";
    }
    for (const auto& server : network.dns) out += "nameserver " + server + "\n";
    if (search) out += "search " + join(network.dns_search, " ") + "\n";
    if (options) out += "options " + join(network.dns_options, " ") + "\n";
    return out;
}

}  // namespace berth::runtime
