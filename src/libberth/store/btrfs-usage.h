// Exclusive size of a btrfs subvolume without quota groups: the bytes a container's writable
// snapshot (or a volume) adds on top of the layer it was made from. See btrfs-usage.cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "basic/result.h"

namespace berth::store {

// Bytes of file data in `tree` that no other subvolume shares: extents FIEMAP does not flag
// FIEMAP_EXTENT_SHARED (including not yet written-back, delayed-allocation data) plus the inline
// data of new or changed files. `base` is the subvolume `tree` was snapshotted from, if any:
// files whose inode is unchanged since the snapshot (same inode number, ctime and size there) are
// known to share everything and are skipped without a FIEMAP call. Each inode is counted once.
Result<uint64_t> btrfs_exclusive_bytes(const std::string& tree, const std::optional<std::string>& base);

}  // namespace berth::store
