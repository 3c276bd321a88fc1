#include "network/ipam.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <set>

#include "basic/fs-util.h"
#include "basic/string-util.h"
#include "basic/unique.h"
#include "config/config.h"
#include "network/network.h"

namespace berth::network {

Result<AddressPool> pool_of(const config::NetworkDeclaration& decl) {
    auto bad = [&](std::string what) { return fail(EINVAL, "network {}: {}", quote(decl.name), what); };
    AddressPool pool;
    pool.network = decl.name;
    std::optional<Ipv4Cidr> subnet;
    for (const auto& s : decl.subnets)
        if (auto c = parse_ipv4_cidr(s, -1); c && c->prefix >= 0) subnet = c;
    if (!subnet || subnet->prefix > 30) return bad("no IPv4 subnet of /30 or larger");
    for (const auto& s : decl.subnets)
        if (auto c = s.find(':') != std::string::npos ? parse_ipv6_cidr(s, -1) : std::nullopt) {
            if (c->prefix > 96) return bad(fmt::format("IPv6 subnet {} is longer than /96", quote(s)));
            pool.subnet6 = Ipv6Cidr{network_of(*c), c->prefix};
        }
    pool.subnet = Ipv4Cidr{network_of(*subnet), subnet->prefix};
    uint32_t lowest = pool.subnet.address.value + 1, highest = broadcast_of(pool.subnet).value - 1;
    if (decl.gateway.empty()) {
        pool.gateway = Ipv4{lowest};
    } else {
        auto g = parse_ipv4(decl.gateway);
        if (!g || !same_subnet(pool.subnet, *g))
            return bad(fmt::format("gateway {} is not in the subnet", quote(decl.gateway)));
        pool.gateway = *g;
    }
    pool.first = Ipv4{lowest};
    pool.last = Ipv4{highest};
    if (!decl.range.empty()) {
        auto dash = decl.range.find('-');
        std::optional<Ipv4> a, b;
        if (dash == std::string::npos) {
            if (auto c = parse_ipv4_cidr(decl.range, -1); c && c->prefix >= 0) {
                a = network_of(*c);
                b = broadcast_of(*c);
            }
        } else {
            a = parse_ipv4(std::string_view(decl.range).substr(0, dash));
            b = parse_ipv4(std::string_view(decl.range).substr(dash + 1));
        }
        if (!a || !b || a->value > b->value)
            return bad(fmt::format("range {} is invalid", quote(decl.range)));
        // Never the subnet's own network and broadcast addresses.
        pool.first = Ipv4{std::max(a->value, lowest)};
        pool.last = Ipv4{std::min(b->value, highest)};
        if (pool.first.value > pool.last.value)
            return bad(fmt::format("range {} has no address inside the subnet", quote(decl.range)));
    }
    return pool;
}

Result<Ipv4> choose_address(const AddressPool& pool, const std::map<std::string, Ipv4>& leases,
                            const std::string& container, const std::string& requested) {
    auto holder = [&](Ipv4 a) -> std::string {
        for (const auto& [name, address] : leases)
            if (address == a && name != container) return name;
        return "";
    };
    std::string where = fmt::format("network {}", quote(pool.network));
    if (!requested.empty()) {
        auto a = parse_ipv4(requested);
        if (!a || !same_subnet(pool.subnet, *a) || !usable_host_address(Ipv4Cidr{*a, pool.subnet.prefix}))
            return fail(EINVAL, "{}: address {} is not a host address in {}", where, quote(requested),
                        format_ipv4_cidr(pool.subnet));
        if (*a == pool.gateway)
            return fail(EADDRINUSE, "{}: address {} is the network's gateway", where, quote(requested));
        if (auto other = holder(*a); !other.empty())
            return fail(EADDRINUSE, "{}: address {} is taken by container {}", where, quote(requested),
                        quote(other));
        return *a;
    }
    auto in_range = [&](Ipv4 a) { return a.value >= pool.first.value && a.value <= pool.last.value; };
    if (auto own = leases.find(container); own != leases.end() && in_range(own->second) &&
                                           own->second != pool.gateway && holder(own->second).empty())
        return own->second;
    std::set<uint32_t> taken = {pool.gateway.value};
    for (const auto& [name, address] : leases)
        if (name != container) taken.insert(address.value);
    uint64_t size = uint64_t{pool.last.value} - pool.first.value + 1;
    uint64_t start = name_hash(container) % size;
    for (uint64_t i = 0; i < size; ++i) {
        uint32_t candidate = pool.first.value + static_cast<uint32_t>((start + i) % size);
        if (!taken.count(candidate)) return Ipv4{candidate};
    }
    return fail(ENOSPC, "{}: no free address in {}-{} ({} leases)", where, format_ipv4(pool.first),
                format_ipv4(pool.last), leases.size());
}

std::optional<Ipv6Cidr> ipv6_of(const AddressPool& pool, Ipv4 address) {
    if (!pool.subnet6) return std::nullopt;
    return with_low32(*pool.subnet6, address.value);
}

std::string network_run_dir(const std::string& network) {
    const char* run = std::getenv("BERTH_RUN_DIR");
    return path_join(path_join(run && *run ? run : "/run/berth", "networks"), network);
}

std::vector<std::string> list_directory(const std::string& path) {
    std::vector<std::string> out;
    DIR* d = ::opendir(path.c_str());
    if (!d) return out;
    while (struct dirent* entry = ::readdir(d))
        if (entry->d_name[0] != '.') out.emplace_back(entry->d_name);
    ::closedir(d);
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<std::string> networks_with_run_dirs() { return list_directory(network_run_dir("")); }

Result<UniqueFd> lock_network_dir(const std::string& dir, const std::string& file) {
    BERTH_TRY_VOID_CTX(mkdir_p(path_join(dir, "leases"), 0755), fmt::format("network directory '{}'", dir));
    std::string path = path_join(dir, file);
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd) return fail_errno("open '{}'", path);
    if (::flock(fd.get(), LOCK_EX) < 0) return fail_errno("lock '{}'", path);
    return fd;
}

Result<std::map<std::string, Ipv4>> read_leases(const std::string& dir) {
    std::map<std::string, Ipv4> out;
    std::string leases = path_join(dir, "leases");
    DIR* d = ::opendir(leases.c_str());
    if (!d) {
        if (errno == ENOENT) return out;
        return fail_errno("open '{}'", leases);
    }
    std::vector<std::string> names;
    while (struct dirent* entry = ::readdir(d))
        // Skips write_file_atomic()'s "NAME.tmp-XXXXXX" left by a writer that died mid-write.
        if (entry->d_name[0] != '.' &&
            std::string_view(entry->d_name).find(".tmp-") == std::string_view::npos)
            names.emplace_back(entry->d_name);
    ::closedir(d);
    for (const auto& name : names) {
        std::string path = path_join(leases, name);
        auto text = read_file(path);
        if (!text) return fail(text.error().wrap(fmt::format("lease '{}'", path)));
        auto a = parse_ipv4(trim(*text));
        if (!a) return fail(EINVAL, "lease '{}' holds no IPv4 address", path);
        out.emplace(name, *a);
    }
    return out;
}

Result<Ipv4Cidr> acquire_address(const AddressPool& pool, const std::string& dir,
                                 const std::string& container, const std::string& requested) {
    if (!config::is_valid_name(container)) return fail(EINVAL, "invalid container name {}", quote(container));
    auto lock = lock_network_dir(dir);
    if (!lock) return fail(lock.error());
    auto leases = read_leases(dir);
    if (!leases) return fail(leases.error());
    auto chosen = choose_address(pool, *leases, container, requested);
    if (!chosen) return fail(chosen.error());
    auto own = leases->find(container);
    if (own == leases->end() || own->second != *chosen)
        BERTH_TRY_VOID_CTX(
            write_file_atomic(path_join(path_join(dir, "leases"), container), format_ipv4(*chosen) + "\n"),
            fmt::format("lease of {}", quote(container)));
    return Ipv4Cidr{*chosen, pool.subnet.prefix};
}

Result<bool> release_address(const std::string& dir, const std::string& container) {
    if (!config::is_valid_name(container)) return fail(EINVAL, "invalid container name {}", quote(container));
    if (!path_exists(dir)) return false;
    auto lock = lock_network_dir(dir);
    if (!lock) return fail(lock.error());
    std::string path = path_join(path_join(dir, "leases"), container);
    if (::unlink(path.c_str()) == 0) return true;
    if (errno != ENOENT) return fail_errno("remove '{}'", path);
    return false;
}

}  // namespace berth::network
