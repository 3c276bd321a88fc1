// berthd.toml parsing: the only place the store touches toml++ (exceptions caught here).
#include <toml++/toml.h>

#include "basic/fs-util.h"
#include "basic/size-util.h"
#include "basic/string-util.h"
#include "store/dmthin/dmthin-toml.h"
#include "store/store.h"
#include "store/toml-values.h"

namespace berth::store {

Result<uint64_t> parse_size(std::string_view text) {
    // berth.toml's grammar (basic/size-util.h); a store size is never "infinity".
    auto bytes = berth::parse_size(text, false);
    if (!bytes)
        return fail(EINVAL, "invalid size '{}' (expected bytes or a number with K, M, G, T, P or E)", text);
    return *bytes;
}

namespace {

constexpr std::string_view kStoreKeys[] = {
    "root",
    "backend",
    "pool",
    "pool_size",
    "allow_device_nodes",
    "max_layer_size",
    "max_layer_entries",
    "max_layer_ratio",
    "max_import_size",
    "pull_parallel_layers",
};

}  // namespace

Result<StoreOptions> parse_store_options(std::string_view text, const std::string& source_name) {
    using namespace toml_value;
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
    for (auto&& entry : *t) {
        const auto& key = entry.first;
        const toml::node& node = entry.second;
        std::string k(key.str());
        if (t == &doc && node.is_table()) continue;  // other daemons' sections
        if (k == "root") {
            BERTH_TRY_VOID(read_absolute_path(node, k, source_name, o.root));
        } else if (k == "backend") {
            BERTH_TRY_VOID(read_string(node, k, source_name, o.backend));
            if (o.backend != "auto" && o.backend != "btrfs" && o.backend != "overlay" &&
                o.backend != "dm-thin")
                return fail(EINVAL, "{}: unknown backend '{}' (auto, btrfs, overlay, dm-thin)",
                            where(node, source_name), o.backend);
        } else if (k == "pool") {
            BERTH_TRY_VOID(read_string(node, k, source_name, o.pool));
        } else if (k == "pool_size") {
            BERTH_TRY_VOID(read_size(node, k, source_name, o.pool_size));
        } else if (k == "max_layer_size" || k == "max_import_size") {
            BERTH_TRY_VOID(read_size(node, k, source_name,
                                     k == "max_layer_size" ? o.max_layer_size : o.max_import_size));
        } else if (k == "max_layer_entries" || k == "max_layer_ratio") {
            uint64_t& out = k == "max_layer_entries" ? o.max_layer_entries : o.max_layer_ratio;
            auto v = node.value<int64_t>();
            if (!v || *v < 0)
                return fail(EINVAL, "{}: '{}' must be a whole number, 0 for no limit",
                            where(node, source_name), k);
            out = static_cast<uint64_t>(*v);
        } else if (k == "pull_parallel_layers") {
            // More connections than this gain nothing on one registry and look like abuse to it.
            auto v = node.value<int64_t>();
            if (!node.is_integer() || !v || *v < 1 || *v > 16)
                return fail(EINVAL, "{}: 'pull_parallel_layers' must be a whole number from 1 to 16",
                            where(node, source_name));
            o.pull_parallel_layers = static_cast<unsigned>(*v);
        } else if (k == "allow_device_nodes") {
            BERTH_TRY_VOID(read_bool(node, k, source_name, o.allow_device_nodes));
        } else if (!BERTH_TRY(parse_dmthin_key(o.dm_thin, k, node, source_name))) {
            std::string_view best;
            size_t best_d = SIZE_MAX;
            auto consider = [&](std::string_view known) {
                if (size_t d = edit_distance(k, known); d < best_d) best_d = d, best = known;
            };
            for (std::string_view known : kStoreKeys) consider(known);
            for (std::string_view known : dmthin_config_keys()) consider(known);
            // Point at the key, not its value.
            auto at =
                fmt::format("{}:{}:{}", source_name, key.source().begin.line, key.source().begin.column);
            if (best_d <= 3) return fail(EINVAL, "{}: unknown key '{}', did you mean '{}'?", at, k, best);
            return fail(EINVAL, "{}: unknown key '{}'", at, k);
        }
    }
    if (!o.pool.empty() && o.pool_size == 0 && !path_exists(o.pool))
        return fail(EINVAL, "{}: 'pool' needs 'pool_size' to create '{}'", source_name, o.pool);
    BERTH_TRY_VOID(check_dmthin_config(o.dm_thin, !o.pool.empty(), source_name));
    return o;
}

Result<StoreOptions> load_store_options(const std::string& path) {
    if (!path_exists(path)) return StoreOptions{};
    auto text = BERTH_TRY(read_file(path));
    return parse_store_options(text, path);
}

}  // namespace berth::store
