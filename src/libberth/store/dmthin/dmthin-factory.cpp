// Store's entry point for backend = "dm-thin": maps berthd.toml's dm-thin keys (DmThinConfig) onto
// DmThinOptions (keys documented in docs/STORAGE-DMTHIN.md and berthd(8)).
//   thin_pool = "NAME"             use the existing thin pool /dev/mapper/NAME (e.g. made by
//                                  lvcreate); with the two device keys: the name of berth's own pool
//   thin_data_device, thin_metadata_device
//                                  berth creates the pool on these (block devices, or files created
//                                  sparse with thin_data_size / thin_metadata_size if missing and
//                                  attached to loop devices)
//   thin_fstype, thin_volume_size, thin_block_size, thin_mkfs_options, thin_mount_options,
//   thin_min_free_data_percent, thin_min_free_metadata_percent, thin_discard: one DmThinOptions
//   field each.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <functional>

#include "basic/fs-util.h"
#include "store/backend-factory.h"
#include "store/dmthin/dmthin-backend.h"

namespace berth::store {

namespace {

Result<> ensure_sparse_file(const std::string& path, uint64_t size) {
    if (path_exists(path)) return {};
    if (size == 0)
        return fail(EINVAL, "dm-thin: '{}' does not exist and no size to create it is set (thin_data_size)",
                    path);
    UniqueFd fd(::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600));
    if (!fd) return fail_errno("create '{}'", path);
    if (::ftruncate(fd.get(), static_cast<off_t>(size)) < 0) return fail_errno("size '{}'", path);
    return {};
}

}  // namespace

Result<DmThinOptions> dmthin_options_from_store(const std::string& root, const DmThinConfig& config) {
    DmThinOptions o;
    o.state_dir = root;
    o.filesystem = config.fstype;
    o.base_size = config.volume_size;
    o.data_block_sectors = static_cast<uint32_t>(config.block_size / 512);
    o.mkfs_options = config.mkfs_options;
    o.mount_options = config.mount_options;
    o.min_free_data_percent = config.min_free_data_percent;
    o.min_free_metadata_percent = config.min_free_metadata_percent;
    o.discard_on_delete = config.discard;
    // One pool per store root, with a stable name across restarts, unless thin_pool names it.
    std::string own_name = fmt::format("berth-{:08x}", static_cast<uint32_t>(std::hash<std::string>{}(root)));
    if (!config.data_device.empty()) {
        o.pool_name = config.pool.empty() ? own_name : config.pool;
        o.data_device = config.data_device;
        o.metadata_device = config.metadata_device;
        uint64_t metadata_size = config.metadata_size
                                     ? config.metadata_size
                                     : std::max<uint64_t>(32ull << 20, config.data_size / 256);
        BERTH_TRY_VOID(ensure_sparse_file(o.data_device, config.data_size));
        BERTH_TRY_VOID(ensure_sparse_file(o.metadata_device, metadata_size));
        return o;
    }
    if (config.pool.empty())
        return fail(EINVAL,
                    "dm-thin: set 'thin_pool' (an existing pool) or 'thin_data_device' and "
                    "'thin_metadata_device' (devices or files to build one on)");
    o.pool_name = config.pool;
    return o;
}

Result<std::unique_ptr<SnapshotBackend>> make_dmthin_backend(const std::string& root,
                                                             const DmThinConfig& config) {
    auto o = BERTH_TRY(dmthin_options_from_store(root, config));
    return make_dmthin_backend(o);
}

}  // namespace berth::store
