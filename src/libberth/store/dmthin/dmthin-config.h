// berthd.toml's dm-thin keys (thin_* in [store]; docs/STORAGE-DMTHIN.md), as the dm-thin code reads
// them. StoreOptions carries one of these; the store never looks inside it: parse_dmthin_key
// (dmthin-toml.h) fills it, dmthin_options_from_store (dmthin-backend.h) turns it into
// DmThinOptions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace berth::store {

struct DmThinConfig {
    // Either pool names an existing pool (LVM's, say), or data_device and metadata_device (block
    // devices, or files attached to loop devices) are what berth builds its own pool on (named
    // pool if set, else "berth-<hash of root>").
    std::string pool;                          // thin_pool
    std::string data_device, metadata_device;  // thin_data_device, thin_metadata_device
    uint64_t data_size = 0;                    // thin_data_size: a missing data file is created sparse
    uint64_t metadata_size = 0;                // thin_metadata_size (0: data/256, >= 32 MiB)
    uint64_t block_size = 64ull << 10;         // thin_block_size of a pool berth creates
    std::string fstype = "ext4";               // thin_fstype: "ext4" | "xfs"
    uint64_t volume_size = 10ull << 30;        // thin_volume_size
    std::vector<std::string> mkfs_options;     // thin_mkfs_options: extra mkfs.<fstype> arguments
    std::string mount_options;                 // thin_mount_options ("discard", ...)
    double min_free_data_percent = 10.0;       // thin_min_free_data_percent
    double min_free_metadata_percent = 10.0;   // thin_min_free_metadata_percent
    bool discard = true;                       // thin_discard: discard blocks before deleting a device

    // A pool is configured: backend "auto" then means dm-thin.
    bool configured() const { return !pool.empty() || !data_device.empty(); }
};

}  // namespace berth::store
