// dm-ops: the few device-mapper operations the dm-thin backend needs, through libdevmapper.
//
// Every call goes through one RAII task (DmTask = CPtr<dm_task, dm_task_destroy>), so the kernel is
// only ever reached here. udev is never involved: init_devmapper() turns udev synchronisation off
// and the library creates /dev/mapper nodes itself (we mknod as a fallback), which is what makes
// the backend work in containers and in an initramfs. libdevmapper's own log output is captured
// (library code never logs) and appended to the error of the failing call, so the kernel's words
// reach the user together with the device name.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "basic/result.h"

namespace berth::store::dmthin {

// Idempotent process-wide setup: udev sync off, libdevmapper logging captured.
Result<> init_devmapper();  // loads libdevmapper (dlopen) the first time

// Is the device-mapper control device usable in this kernel?
bool devmapper_available();

struct DmInfo {
    bool exists = false;
    bool suspended = false;
    bool read_only = false;
    int32_t open_count = 0;
    uint32_t major = 0, minor = 0;
};

// Parsed "thin-pool" status line (see Documentation/admin-guide/device-mapper/thin-provisioning.rst).
struct ThinPoolStatus {
    uint64_t transaction_id = 0;
    uint64_t metadata_used = 0, metadata_total = 0;  // 4 KiB metadata blocks
    uint64_t data_used = 0, data_total = 0;          // data blocks (data_block_sectors each)
    bool read_only = false;                          // "ro" or metadata needs check
    bool out_of_data_space = false;
    bool failed = false;  // "Fail"
};

// Pure: parses the params string of a thin-pool status. Exposed for unit tests.
Result<ThinPoolStatus> parse_thin_pool_status(const std::string& params);

// Pure: the table line parameters for a thin-pool / thin target.
std::string thin_pool_params(const std::string& metadata_dev, const std::string& data_dev,
                             uint32_t data_block_sectors, uint64_t low_water_blocks, bool zero_blocks);
std::string thin_params(const std::string& pool_dev, uint32_t device_id);

std::string mapper_path(const std::string& name);  // "/dev/mapper/<name>"

Result<DmInfo> dm_info(const std::string& name);
// Creates and activates `name` with a single target; makes the /dev/mapper node.
Result<> dm_create(const std::string& name, uint64_t sectors, const std::string& target,
                   const std::string& params, bool read_only);
// Removes `name`. If it is busy and `deferred` is set, schedules deferred removal (the kernel
// removes it at last close) and returns success; otherwise a busy device is an EBUSY error.
// A device that does not exist is success.
Result<> dm_remove(const std::string& name, bool deferred);
Result<> dm_suspend(const std::string& name);
Result<> dm_resume(const std::string& name);
Result<> dm_message(const std::string& name, const std::string& message);
// Params of the first target's status line.
Result<std::string> dm_status(const std::string& name);
// Params of the first target's table line (a thin-pool's names its devices as major:minor).
Result<std::string> dm_table(const std::string& name);
// Names of all active dm devices whose name starts with `prefix`.
Result<std::vector<std::string>> dm_list(const std::string& prefix);

Result<ThinPoolStatus> thin_pool_status(const std::string& pool_name);

// Size in 512-byte sectors of a block device or regular file.
Result<uint64_t> device_sectors(const std::string& path);

// Issues BLKDISCARD over the whole block device (so the space goes back to whatever is below).
Result<> discard_device(const std::string& path);

}  // namespace berth::store::dmthin
