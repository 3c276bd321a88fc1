// The dm-thin SnapshotBackend: every layer, container snapshot and volume is a thin device in one
// device-mapper thin pool, driven through libdevmapper (no dmsetup, no lvm, no udev).
//
//   base      an empty filesystem (ext4 or xfs, made once with the mkfs binary) on a thin volume
//   layer     a thin snapshot of its parent layer (or of base) with the diff applied, then never
//             written again (activated read-only when viewed)
//   snapshot  a thin snapshot of a layer; the runtime mounts its device node (MountSpec::Block)
//   volume    a fresh thin volume with an empty filesystem
// Snapshots are O(1) in the kernel: create_snap shares every block with the origin.
// The device <-> layer mapping lives in <state_dir>/dmthin.json, kept consistent with the pool's
// transaction id (see dmthin-metadata.h for the protocol and the recovery after a crash).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "store/backend.h"
#include "store/dmthin/dmthin-config.h"

namespace berth::store {

struct DmThinOptions {
    std::string state_dir;                 // dmthin.json + staging/view mount points
    std::string pool_name = "berth-pool";  // dm name of the thin pool (existing or to create)
    // Devices from which berth creates `pool_name` when it does not exist (block devices, or
    // regular files which are attached to loop devices, for development). Both empty: the pool
    // must already exist (e.g. made by lvcreate --type thin-pool); berth then owns it exclusively.
    std::string data_device;
    std::string metadata_device;
    uint32_t data_block_sectors = 128;      // 64 KiB pool blocks (created pools only)
    bool zero_new_blocks = true;            // never show a new device another device's old data
    uint64_t base_size = 10ull << 30;       // virtual size of every thin device, bytes
    std::string filesystem = "ext4";        // "ext4" or "xfs"
    std::vector<std::string> mkfs_options;  // extra arguments for mkfs.<filesystem>
    std::string mount_options;              // extra options for every mount ("discard", ...)
    // New thin devices are refused (ENOSPC, naming the pool) when less than this share of the
    // pool's data or metadata space is free, so the pool never fills up under a running container.
    double min_free_data_percent = 10.0;
    double min_free_metadata_percent = 10.0;
    bool discard_on_delete = true;  // BLKDISCARD a device before deleting it
    // Test seam: called at named points of every pool transaction ("create:after-message", ...).
    // An error return makes the operation stop right there without any cleanup, as a crash would.
    std::function<Result<>(std::string_view point)> fault_hook;
};

// Opens (creating the pool and the base filesystem if needed) and recovers any transaction a crash
// interrupted. ENODEV when the kernel has no device-mapper.
Result<std::unique_ptr<SnapshotBackend>> make_dmthin_backend(const DmThinOptions& options);

// Tears down everything make_dmthin_backend activated for these options: unmounts its staging and
// view mounts, removes its thin devices and (if berth created it) the pool. Data stays in the pool.
// For tests, benchmarks and `berth` maintenance; berthd never calls it.
Result<> deactivate_dmthin_pool(const DmThinOptions& options);

// berthd.toml's dm-thin keys -> DmThinOptions (see dmthin-factory.cpp for the mapping). Store
// calls make_dmthin_backend(root, DmThinConfig) from backend-factory.h, which uses this.
Result<DmThinOptions> dmthin_options_from_store(const std::string& root, const DmThinConfig& config);

// Whether the kernel supports dm-thin here (device-mapper control node usable).
bool dmthin_available();

}  // namespace berth::store
