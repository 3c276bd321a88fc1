// Store's entry point for backend = "dm-thin": maps berthd.toml's [store] options onto
// DmThinOptions.
//   thin_pool = "NAME"   use the existing thin pool /dev/mapper/NAME (e.g. made by lvcreate)
//   pool = "PATH"        otherwise berth creates the pool on PATH: a block device or a file
//                        (sparse, pool_size bytes, created if missing, attached to a loop device);
//                        the metadata device is "PATH.tmeta" beside it (a file made the same way,
//                        1/256 of the data size, at least 32 MiB).
//   thin_fstype, thin_volume_size   filesystem and virtual size of the thin volumes.
#include <fcntl.h>
#include <unistd.h>

#include <functional>

#include "basic/fs-util.h"
#include "store/backend-factory.h"
#include "store/dmthin/dmthin-backend.h"

namespace berth::store {

namespace {

Result<> ensure_sparse_file(const std::string& path, uint64_t size) {
    if (path_exists(path)) return {};
    if (size == 0) return fail(EINVAL, "dm-thin: '{}' does not exist and no pool_size is set", path);
    UniqueFd fd(::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600));
    if (!fd) return fail_errno("create '{}'", path);
    if (::ftruncate(fd.get(), static_cast<off_t>(size)) < 0) return fail_errno("size '{}'", path);
    return {};
}

}  // namespace

Result<DmThinOptions> dmthin_options_from_store(const std::string& root, const StoreOptions& options) {
    DmThinOptions o;
    o.state_dir = root;
    o.filesystem = options.thin_fstype;
    o.base_size = options.thin_volume_size;
    if (!options.thin_pool.empty()) {
        o.pool_name = options.thin_pool;
        return o;
    }
    if (options.pool.empty())
        return fail(EINVAL, "dm-thin: set 'thin_pool' (an existing pool) or 'pool' (a device or file to build one on)");
    // One pool per store root, with a stable name across restarts.
    o.pool_name = fmt::format("berth-{:08x}", static_cast<uint32_t>(std::hash<std::string>{}(root)));
    o.data_device = options.pool;
    o.metadata_device = options.pool + ".tmeta";
    BERTH_TRY_VOID(ensure_sparse_file(o.data_device, options.pool_size));
    BERTH_TRY_VOID(ensure_sparse_file(o.metadata_device, std::max<uint64_t>(32ull << 20, options.pool_size / 256)));
    return o;
}

Result<std::unique_ptr<SnapshotBackend>> make_dmthin_backend(const std::string& root, const StoreOptions& options) {
    auto o = BERTH_TRY(dmthin_options_from_store(root, options));
    return make_dmthin_backend(o);
}

}  // namespace berth::store
