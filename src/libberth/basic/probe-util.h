// What file system a device or image file holds, read from its superblock by libblkid, rather
// than assumed from how berth once made it (a crash can leave a pool file without a file system,
// and an operator can point an option at the wrong file).
#pragma once

#include <string>

#include "basic/result.h"

namespace berth {

// The file system type ("btrfs", "ext4", "xfs"...), or "" when `path` holds none that libblkid
// knows. EUCLEAN when several signatures disagree (blkid_do_safeprobe: an ambiguous result,
// e.g. a partly overwritten old file system): never guess then.
Result<std::string> probe_filesystem(const std::string& path);

}  // namespace berth
