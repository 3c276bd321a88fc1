// Loop devices for the loopback btrfs pool (and the btrfs test fixture).
#pragma once

#include <string>

#include "basic/result.h"
#include "basic/unique.h"

namespace berth::store {

// An attached loop device. With LO_FLAGS_AUTOCLEAR the kernel detaches it when its last user goes
// away: so after mounting it, closing this object leaves the mount as the only user, and
// unmounting frees the device. Without a mount, closing detaches it at once.
struct LoopDevice {
    std::string path;  // /dev/loopN
    UniqueFd fd;
};

Result<LoopDevice> attach_loop(const std::string& file, bool read_only = false);

// Creates a sparse file of `size` bytes (fails if it exists).
Result<> create_sparse_file(const std::string& path, uint64_t size);

// Runs mkfs.btrfs on a device or file (posix_spawn, output discarded; error names the exit code).
Result<> make_btrfs(const std::string& device, const std::string& label = "berth");

// Mounts a btrfs device at `target`.
Result<> mount_btrfs(const std::string& device, const std::string& target);

}  // namespace berth::store
