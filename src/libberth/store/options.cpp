// berthd.toml parsing: the only place the store touches toml++ (exceptions caught here).
#include <toml++/toml.h>

#include <sstream>

#include "basic/fs-util.h"
#include "basic/string-util.h"
#include "store/store.h"

namespace berth::store {

Result<uint64_t> parse_size(std::string_view text) {
    std::string_view t = trim(text);
    if (t.empty()) return fail(EINVAL, "empty size");
    uint64_t mult = 1;
    char last = t.back();
    if (last == 'B' || last == 'b') {
        t.remove_suffix(1);
        if (t.empty()) return fail(EINVAL, "invalid size '{}'", text);
        last = t.back();
    }
    switch (last) {
    case 'K': case 'k': mult = 1ull << 10; break;
    case 'M': case 'm': mult = 1ull << 20; break;
    case 'G': case 'g': mult = 1ull << 30; break;
    case 'T': case 't': mult = 1ull << 40; break;
    default: break;
    }
    if (mult != 1) t.remove_suffix(1);
    auto n = parse_unsigned(t);
    if (!n || (*n != 0 && mult > UINT64_MAX / *n)) return fail(EINVAL, "invalid size '{}'", text);
    return *n * mult;
}

Result<StoreOptions> parse_store_options(std::string_view text, const std::string& source_name) {
    StoreOptions o;
    toml::table doc;
    try {
        doc = toml::parse(text, source_name);
    } catch (const toml::parse_error& e) {
        const auto& b = e.source().begin;
        return fail(EINVAL, "{}:{}:{}: {}", source_name, b.line, b.column, e.description());
    }
    const toml::table* t = &doc;
    if (auto* s = doc["store"].as_table()) t = s;
    auto where = [&](const toml::node& n) {
        return fmt::format("{}:{}:{}", source_name, n.source().begin.line, n.source().begin.column);
    };
    for (auto&& entry : *t) {
        // Not a structured binding: clang 14 (the fuzz/sanitizer compiler) cannot capture those
        // in the lambdas below.
        const auto& key = entry.first;
        const toml::node& node = entry.second;
        std::string k(key.str());
        if (t == &doc && node.is_table()) continue;  // other daemons' sections
        auto want_string = [&](std::string& out) -> Result<> {
            auto v = node.value<std::string>();
            if (!v) return fail(EINVAL, "{}: '{}' must be a string", where(node), k);
            out = *v;
            return {};
        };
        auto want_size = [&](uint64_t& out) -> Result<> {
            if (auto i = node.value<int64_t>()) {
                if (*i < 0) return fail(EINVAL, "{}: '{}' must not be negative", where(node), k);
                out = static_cast<uint64_t>(*i);
                return {};
            }
            if (auto s = node.value<std::string>()) {
                auto r = parse_size(*s);
                if (!r) return fail(EINVAL, "{}: '{}': {}", where(node), k, r.error().message);
                out = *r;
                return {};
            }
            return fail(EINVAL, "{}: '{}' must be a size (\"10G\" or bytes)", where(node), k);
        };
        if (k == "root") {
            BERTH_TRY_VOID(want_string(o.root));
            if (o.root.empty() || o.root[0] != '/')
                return fail(EINVAL, "{}: 'root' must be an absolute path", where(node));
        } else if (k == "backend") {
            BERTH_TRY_VOID(want_string(o.backend));
            if (o.backend != "auto" && o.backend != "btrfs" && o.backend != "overlay" && o.backend != "dm-thin")
                return fail(EINVAL, "{}: unknown backend '{}' (auto, btrfs, overlay, dm-thin)", where(node), o.backend);
        } else if (k == "pool") {
            BERTH_TRY_VOID(want_string(o.pool));
        } else if (k == "pool_size") {
            BERTH_TRY_VOID(want_size(o.pool_size));
        } else if (k == "thin_pool") {
            BERTH_TRY_VOID(want_string(o.thin_pool));
        } else if (k == "thin_fstype") {
            BERTH_TRY_VOID(want_string(o.thin_fstype));
        } else if (k == "thin_volume_size") {
            BERTH_TRY_VOID(want_size(o.thin_volume_size));
        } else if (k == "allow_device_nodes") {
            auto v = node.value<bool>();
            if (!v) return fail(EINVAL, "{}: 'allow_device_nodes' must be true or false", where(node));
            o.allow_device_nodes = *v;
        } else {
            return fail(EINVAL, "{}: unknown key '{}'", where(node), k);
        }
    }
    if (!o.pool.empty() && o.pool_size == 0 && !path_exists(o.pool))
        return fail(EINVAL, "{}: 'pool' needs 'pool_size' to create '{}'", source_name, o.pool);
    return o;
}

Result<StoreOptions> load_store_options(const std::string& path) {
    if (!path_exists(path)) return StoreOptions{};
    auto text = BERTH_TRY(read_file(path));
    return parse_store_options(text, path);
}

}  // namespace berth::store
