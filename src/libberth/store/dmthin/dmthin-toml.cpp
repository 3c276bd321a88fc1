// berthd.toml's dm-thin keys (see dmthin-toml.h). Built into berth-store with options.cpp, the
// only other file that includes toml++.
#include "store/dmthin/dmthin-toml.h"

#include "basic/fs-util.h"
#include "store/toml-values.h"

namespace berth::store {

namespace {

constexpr std::string_view kKeys[] = {
    "thin_pool",          "thin_data_device",           "thin_metadata_device",
    "thin_data_size",     "thin_metadata_size",         "thin_block_size",
    "thin_fstype",        "thin_volume_size",           "thin_mkfs_options",
    "thin_mount_options", "thin_min_free_data_percent", "thin_min_free_metadata_percent",
    "thin_discard",
};

}  // namespace

std::span<const std::string_view> dmthin_config_keys() { return kKeys; }

Result<bool> parse_dmthin_key(DmThinConfig& o, std::string_view k, const toml::node& node,
                              const std::string& source_name) {
    using namespace toml_value;
    auto at = [&](const toml::node& n) { return where(n, source_name); };
    if (k == "thin_pool") {
        BERTH_TRY_VOID(read_string(node, k, source_name, o.pool));
        // A dm name: no '/', not empty, within DM_NAME_LEN with room for "-thin-<id>".
        if (o.pool.empty() || o.pool.find('/') != std::string::npos || o.pool.size() > 100)
            return fail(EINVAL, "{}: 'thin_pool' must be a device-mapper name (no '/', 1-100 characters)",
                        at(node));
    } else if (k == "thin_data_device") {
        BERTH_TRY_VOID(read_absolute_path(node, k, source_name, o.data_device));
    } else if (k == "thin_metadata_device") {
        BERTH_TRY_VOID(read_absolute_path(node, k, source_name, o.metadata_device));
    } else if (k == "thin_data_size") {
        BERTH_TRY_VOID(read_size(node, k, source_name, o.data_size));
    } else if (k == "thin_metadata_size") {
        BERTH_TRY_VOID(read_size(node, k, source_name, o.metadata_size));
        // The kernel's thin-pool metadata limit is just under 16 GiB; 2 MiB is its floor.
        if (o.metadata_size < (2ull << 20) || o.metadata_size > (16ull << 30))
            return fail(EINVAL, "{}: 'thin_metadata_size' must be between 2M and 16G", at(node));
    } else if (k == "thin_block_size") {
        BERTH_TRY_VOID(read_size(node, k, source_name, o.block_size));
        // dm-thin: a multiple of 64 KiB between 64 KiB and 1 GiB.
        if (o.block_size < (64ull << 10) || o.block_size > (1ull << 30) || o.block_size % (64ull << 10) != 0)
            return fail(EINVAL, "{}: 'thin_block_size' must be a multiple of 64K between 64K and 1G",
                        at(node));
    } else if (k == "thin_fstype") {
        BERTH_TRY_VOID(read_string(node, k, source_name, o.fstype));
        if (o.fstype != "ext4" && o.fstype != "xfs")
            return fail(EINVAL, "{}: unknown thin_fstype '{}' (ext4, xfs)", at(node), o.fstype);
    } else if (k == "thin_volume_size") {
        BERTH_TRY_VOID(read_size(node, k, source_name, o.volume_size));
        if (o.volume_size < (64ull << 20))
            return fail(EINVAL, "{}: 'thin_volume_size' must be at least 64M", at(node));
    } else if (k == "thin_mkfs_options") {
        auto* a = node.as_array();
        if (!a) return fail(EINVAL, "{}: 'thin_mkfs_options' must be an array of strings", at(node));
        o.mkfs_options.clear();
        for (const toml::node& e : *a) {
            auto v = e.value<std::string>();
            if (!v) return fail(EINVAL, "{}: 'thin_mkfs_options' must be an array of strings", at(e));
            o.mkfs_options.push_back(*v);
        }
    } else if (k == "thin_mount_options") {
        BERTH_TRY_VOID(read_string(node, k, source_name, o.mount_options));
    } else if (k == "thin_min_free_data_percent" || k == "thin_min_free_metadata_percent") {
        double& out =
            k == "thin_min_free_data_percent" ? o.min_free_data_percent : o.min_free_metadata_percent;
        auto v = node.value<double>();  // integers convert too
        if (!v || !(*v >= 0.0 && *v < 100.0))
            return fail(EINVAL, "{}: '{}' must be a number from 0 to below 100", at(node), k);
        out = *v;
    } else if (k == "thin_discard") {
        BERTH_TRY_VOID(read_bool(node, k, source_name, o.discard));
    } else {
        return false;
    }
    return true;
}

Result<> check_dmthin_config(const DmThinConfig& o, bool btrfs_pool_set, const std::string& source_name) {
    if (o.data_device.empty() != o.metadata_device.empty())
        return fail(EINVAL, "{}: 'thin_data_device' and 'thin_metadata_device' must be set together",
                    source_name);
    if (!o.data_device.empty() && btrfs_pool_set)
        return fail(EINVAL, "{}: 'pool' (a loopback btrfs pool) and 'thin_data_device' exclude each other",
                    source_name);
    if (!o.data_device.empty() && o.data_size == 0 && !path_exists(o.data_device))
        return fail(EINVAL, "{}: 'thin_data_device' '{}' does not exist; set 'thin_data_size' to create it",
                    source_name, o.data_device);
    return {};
}

}  // namespace berth::store
