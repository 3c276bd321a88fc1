// Constructors of the concrete SnapshotBackends. Store::open() picks one; the shared backend
// conformance suite (tests/privileged/store) builds them directly.
#pragma once

#include <memory>
#include <string>

#include "basic/result.h"
#include "store/backend.h"
#include "store/store.h"

namespace berth::store {

// `root` is the backend's own directory (Store uses ROOT/overlay, ROOT/btrfs, ROOT/dm-thin); it is
// created if missing. The btrfs backend fails with EXDEV/ENOTSUP when `root` is not on btrfs.
Result<std::unique_ptr<SnapshotBackend>> make_overlay_backend(const std::string& root);
Result<std::unique_ptr<SnapshotBackend>> make_btrfs_backend(const std::string& root);

// Implemented in store/dmthin/ by the dm-thin library. Store only calls it when that library's
// meson.build sets `berth_store_dmthin_has_factory = true` (compiles store.cpp with
// BERTH_HAVE_DMTHIN); otherwise backend = "dm-thin" fails with ENOTSUP.
Result<std::unique_ptr<SnapshotBackend>> make_dmthin_backend(const std::string& root,
                                                             const DmThinConfig& config);

// statfs(path) says btrfs.
bool is_on_btrfs(const std::string& path);

}  // namespace berth::store
