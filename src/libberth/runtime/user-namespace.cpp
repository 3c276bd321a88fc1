#include "runtime/user-namespace.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>

#include "basic/fs-util.h"
#include "basic/string-util.h"
#include "basic/unique.h"

namespace berth::runtime {

std::optional<uint32_t> pick_free_range(const std::vector<IdRange>& used, uint32_t size) {
    const uint64_t step = 0x10000;
    uint64_t span = (static_cast<uint64_t>(size) + step - 1) / step * step;
    for (uint64_t base = kPickFirst; base + span <= kPickLast; base += step) {
        bool clash = false;
        for (const auto& r : used)
            if (base < static_cast<uint64_t>(r.base) + r.size && r.base < base + span) clash = true;
        if (!clash) return static_cast<uint32_t>(base);
    }
    return std::nullopt;
}

std::vector<IdRange> parse_subid_file(const std::string& text) {
    std::vector<IdRange> out;
    for (const auto& line : split(text, '\n')) {
        auto f = split(line, ':', true);
        if (f.size() != 3) continue;
        auto b = parse_unsigned(f[1]), n = parse_unsigned(f[2]);
        if (b && n && *b <= 0xffffffffULL && *n <= 0xffffffffULL)
            out.push_back({static_cast<uint32_t>(*b), static_cast<uint32_t>(*n)});
    }
    return out;
}

static std::optional<IdRange> parse_record(const std::string& text) {
    auto f = split(std::string(trim(text)), ' ');
    if (f.size() != 2) return std::nullopt;
    auto b = parse_unsigned(f[0]), n = parse_unsigned(f[1]);
    if (!b || !n || *b > 0xffffffffULL || *n > 0xffffffffULL || *n == 0) return std::nullopt;
    return IdRange{static_cast<uint32_t>(*b), static_cast<uint32_t>(*n)};
}

Result<std::optional<IdRange>> resolve_user_namespace(const config::Declaration& decl,
                                                      const std::string& state_dir) {
    const auto& u = decl.security.user_namespace;
    if (u.mode == config::UserNamespaceMode::Off) return std::optional<IdRange>{};
    if (u.mode == config::UserNamespaceMode::Fixed) {
        if (u.size == 0) return fail(EINVAL, "user_namespace size must be positive");
        return std::optional<IdRange>{IdRange{u.uid, u.size}};
    }
    std::string dir = path_join(state_dir, "userns");
    BERTH_TRY_VOID_CTX(mkdir_p(dir, 0700), "user namespace records");
    UniqueFd lock(::open(path_join(dir, ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!lock) return fail_errno("open '{}'", path_join(dir, ".lock"));
    if (::flock(lock.get(), LOCK_EX) < 0) return fail_errno("lock '{}'", path_join(dir, ".lock"));
    std::string mine = path_join(dir, decl.name);
    if (auto text = read_file(mine)) {
        if (auto r = parse_record(*text); r && r->size == u.size) return std::optional<IdRange>{*r};
    }
    std::vector<IdRange> used;
    if (DIR* d = ::opendir(dir.c_str())) {
        while (auto* e = ::readdir(d)) {
            std::string n = e->d_name;
            if (n.empty() || n[0] == '.' || n == decl.name) continue;
            if (auto text = read_file(path_join(dir, n)))
                if (auto r = parse_record(*text)) used.push_back(*r);
        }
        ::closedir(d);
    }
    for (const char* f : {"/etc/subuid", "/etc/subgid"})
        if (auto text = read_file(f))
            for (auto r : parse_subid_file(*text)) used.push_back(r);
    auto base = pick_free_range(used, u.size);
    if (!base) return fail(ENOSPC, "no free range of {} user ids left", u.size);
    IdRange range{*base, u.size};
    BERTH_TRY_VOID(write_file_atomic(mine, fmt::format("{} {}\n", range.base, range.size), 0644));
    return std::optional<IdRange>{range};
}

std::string container_id_map(const IdRange& range) {
    return fmt::format("0 {} {}\n", range.base, range.size);
}

Result<std::string> writable_layer_id_map(const IdRange& range) {
    if (range.size == 0 || range.size > kLayerBookkeepingId)
        return fail(EINVAL, "user namespace size {} must be between 1 and {}", range.size,
                    kLayerBookkeepingId);
    if (range.base == 0) return fail(EINVAL, "user namespace range maps the host's root");
    return container_id_map(range) + fmt::format("{} 0 1\n", kLayerBookkeepingId);
}

Result<> write_id_maps(pid_t pid, const IdRange& range) {
    return write_id_maps(pid, container_id_map(range));
}

Result<> write_id_maps(pid_t pid, const std::string& map) {
    BERTH_TRY_VOID(write_file(fmt::format("/proc/{}/uid_map", pid), map, O_WRONLY));
    BERTH_TRY_VOID(write_file(fmt::format("/proc/{}/gid_map", pid), map, O_WRONLY));
    return {};
}

}  // namespace berth::runtime
