// What each thin device of a live pool owns, from thin-provisioning-tools' thin_ls.
//
// The pool's status line only says how many data blocks the whole pool has mapped; a container's
// thin device maps every block of its image too, so the kernel cannot say what a container adds.
// thin_ls walks the pool metadata and counts, per device, the blocks it maps (MAPPED), those no
// other device maps (EXCLUSIVE: what removing it would free) and the rest (SHARED). A live pool's
// metadata changes under a reader, so thin_ls reads a metadata snapshot: "reserve_metadata_snap"
// (which commits the pool's transaction first), thin_ls --metadata-snap on the metadata device,
// "release_metadata_snap" - always, even when thin_ls failed, because a pool keeps one snapshot at
// most and holding it pins metadata blocks. One thin_ls answers for every device at once.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "basic/result.h"

namespace berth::store::dmthin {

struct ThinDeviceUsage {
    uint64_t mapped_blocks = 0;
    uint64_t exclusive_blocks = 0;
    uint64_t shared_blocks = 0;
};

// The thin_ls invocation (after the program name) whose output parse_thin_ls reads.
std::vector<std::string> thin_ls_arguments(const std::string& metadata_device);

// Pure: parses `thin_ls --no-headers -o DEV,MAPPED_BLOCKS,EXCLUSIVE_BLOCKS,SHARED_BLOCKS` output
// (one device per line, space-separated) into device id -> usage.
Result<std::map<uint32_t, ThinDeviceUsage>> parse_thin_ls(std::string_view text);

// Pure: the metadata device ("major:minor") of a thin-pool table line's params.
Result<std::pair<uint32_t, uint32_t>> thin_pool_metadata_devno(const std::string& table_params);

// The block device node of major:minor, from /sys/dev/block/M:m/uevent's DEVNAME (devtmpfs names).
Result<std::string> block_device_node(uint32_t major, uint32_t minor);

// Per-device usage of the live pool `pool_name`, read with thin_ls from a metadata snapshot (see
// above). ENOENT when thin_ls is not installed. Serialised within the process (one snapshot per
// pool); the store lock keeps other processes off the pool.
Result<std::map<uint32_t, ThinDeviceUsage>> thin_pool_device_usage(const std::string& pool_name);

}  // namespace berth::store::dmthin
