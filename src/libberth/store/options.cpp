// berthd.toml parsing: the only place the store touches toml++ (exceptions caught here).
#include <toml++/toml.h>

#include <sstream>

#include "basic/fs-util.h"
#include "basic/size-util.h"
#include "basic/string-util.h"
#include "store/store.h"

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
    "thin_pool",
    "thin_data_device",
    "thin_metadata_device",
    "thin_data_size",
    "thin_metadata_size",
    "thin_block_size",
    "thin_fstype",
    "thin_volume_size",
    "thin_mkfs_options",
    "thin_mount_options",
    "thin_min_free_data_percent",
    "thin_min_free_metadata_percent",
    "thin_discard",
};

}  // namespace

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
            if (o.backend != "auto" && o.backend != "btrfs" && o.backend != "overlay" &&
                o.backend != "dm-thin")
                return fail(EINVAL, "{}: unknown backend '{}' (auto, btrfs, overlay, dm-thin)", where(node),
                            o.backend);
        } else if (k == "pool") {
            BERTH_TRY_VOID(want_string(o.pool));
        } else if (k == "pool_size") {
            BERTH_TRY_VOID(want_size(o.pool_size));
        } else if (k == "thin_pool") {
            BERTH_TRY_VOID(want_string(o.thin_pool));
            // A dm name: no '/', not empty, within DM_NAME_LEN with room for "-thin-<id>".
            if (o.thin_pool.empty() || o.thin_pool.find('/') != std::string::npos || o.thin_pool.size() > 100)
                return fail(EINVAL, "{}: 'thin_pool' must be a device-mapper name (no '/', 1-100 characters)",
                            where(node));
        } else if (k == "thin_data_device" || k == "thin_metadata_device") {
            std::string& out = k == "thin_data_device" ? o.thin_data_device : o.thin_metadata_device;
            BERTH_TRY_VOID(want_string(out));
            if (out.empty() || out[0] != '/')
                return fail(EINVAL, "{}: '{}' must be an absolute path", where(node), k);
        } else if (k == "thin_data_size") {
            BERTH_TRY_VOID(want_size(o.thin_data_size));
        } else if (k == "thin_metadata_size") {
            BERTH_TRY_VOID(want_size(o.thin_metadata_size));
            // The kernel's thin-pool metadata limit is just under 16 GiB; 2 MiB is its floor.
            if (o.thin_metadata_size < (2ull << 20) || o.thin_metadata_size > (16ull << 30))
                return fail(EINVAL, "{}: 'thin_metadata_size' must be between 2M and 16G", where(node));
        } else if (k == "thin_block_size") {
            BERTH_TRY_VOID(want_size(o.thin_block_size));
            // dm-thin: a multiple of 64 KiB between 64 KiB and 1 GiB.
            if (o.thin_block_size < (64ull << 10) || o.thin_block_size > (1ull << 30) ||
                o.thin_block_size % (64ull << 10) != 0)
                return fail(EINVAL, "{}: 'thin_block_size' must be a multiple of 64K between 64K and 1G",
                            where(node));
        } else if (k == "thin_fstype") {
            BERTH_TRY_VOID(want_string(o.thin_fstype));
            if (o.thin_fstype != "ext4" && o.thin_fstype != "xfs")
                return fail(EINVAL, "{}: unknown thin_fstype '{}' (ext4, xfs)", where(node), o.thin_fstype);
        } else if (k == "thin_volume_size") {
            BERTH_TRY_VOID(want_size(o.thin_volume_size));
            if (o.thin_volume_size < (64ull << 20))
                return fail(EINVAL, "{}: 'thin_volume_size' must be at least 64M", where(node));
        } else if (k == "thin_mkfs_options") {
            auto* a = node.as_array();
            if (!a) return fail(EINVAL, "{}: 'thin_mkfs_options' must be an array of strings", where(node));
            o.thin_mkfs_options.clear();
            for (const toml::node& e : *a) {
                auto v = e.value<std::string>();
                if (!v) return fail(EINVAL, "{}: 'thin_mkfs_options' must be an array of strings", where(e));
                o.thin_mkfs_options.push_back(*v);
            }
        } else if (k == "thin_mount_options") {
            BERTH_TRY_VOID(want_string(o.thin_mount_options));
        } else if (k == "thin_min_free_data_percent" || k == "thin_min_free_metadata_percent") {
            double& out = k == "thin_min_free_data_percent" ? o.thin_min_free_data_percent
                                                            : o.thin_min_free_metadata_percent;
            auto v = node.value<double>();  // integers convert too
            if (!v || !(*v >= 0.0 && *v < 100.0))
                return fail(EINVAL, "{}: '{}' must be a number from 0 to below 100", where(node), k);
            out = *v;
        } else if (k == "thin_discard") {
            auto v = node.value<bool>();
            if (!v) return fail(EINVAL, "{}: 'thin_discard' must be true or false", where(node));
            o.thin_discard = *v;
        } else if (k == "max_layer_size") {
            BERTH_TRY_VOID(want_size(o.max_layer_size));
        } else if (k == "max_layer_entries" || k == "max_layer_ratio") {
            uint64_t& out = k == "max_layer_entries" ? o.max_layer_entries : o.max_layer_ratio;
            auto v = node.value<int64_t>();
            if (!v || *v < 0)
                return fail(EINVAL, "{}: '{}' must be a whole number, 0 for no limit", where(node), k);
            out = static_cast<uint64_t>(*v);
        } else if (k == "allow_device_nodes") {
            auto v = node.value<bool>();
            if (!v) return fail(EINVAL, "{}: 'allow_device_nodes' must be true or false", where(node));
            o.allow_device_nodes = *v;
        } else {
            std::string_view best;
            size_t best_d = SIZE_MAX;
            for (std::string_view known : kStoreKeys)
                if (size_t d = edit_distance(k, known); d < best_d) best_d = d, best = known;
            // Point at the key, not its value.
            auto at =
                fmt::format("{}:{}:{}", source_name, key.source().begin.line, key.source().begin.column);
            if (best_d <= 3) return fail(EINVAL, "{}: unknown key '{}', did you mean '{}'?", at, k, best);
            return fail(EINVAL, "{}: unknown key '{}'", at, k);
        }
    }
    if (!o.pool.empty() && o.pool_size == 0 && !path_exists(o.pool))
        return fail(EINVAL, "{}: 'pool' needs 'pool_size' to create '{}'", source_name, o.pool);
    // dm-thin: the pool's devices come as a pair, and a missing data file needs a size.
    if (o.thin_data_device.empty() != o.thin_metadata_device.empty())
        return fail(EINVAL, "{}: 'thin_data_device' and 'thin_metadata_device' must be set together",
                    source_name);
    if (!o.thin_data_device.empty() && !o.pool.empty())
        return fail(EINVAL, "{}: 'pool' (a loopback btrfs pool) and 'thin_data_device' exclude each other",
                    source_name);
    if (!o.thin_data_device.empty() && o.thin_data_size == 0 && !path_exists(o.thin_data_device))
        return fail(EINVAL, "{}: 'thin_data_device' '{}' does not exist; set 'thin_data_size' to create it",
                    source_name, o.thin_data_device);
    return o;
}

Result<StoreOptions> load_store_options(const std::string& path) {
    if (!path_exists(path)) return StoreOptions{};
    auto text = BERTH_TRY(read_file(path));
    return parse_store_options(text, path);
}

}  // namespace berth::store
