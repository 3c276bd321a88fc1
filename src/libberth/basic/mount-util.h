// The mount table and mount points.
//
// /proc/self/mountinfo escapes spaces, tabs, newlines and backslashes in paths ("\040"), so it is
// read with libmount, which unescapes them, never split on spaces. Whether a directory is a
// mount point is the kernel's answer (statx STATX_ATTR_MOUNT_ROOT, or the mount ids of the
// directory and its parent before Linux 5.8), never a st_dev comparison: a btrfs subvolume has
// its own st_dev without being a mount, and a bind mount within one file system keeps st_dev.
#pragma once

#include <string>
#include <vector>

#include "basic/result.h"

namespace berth {

struct MountEntry {
    uint64_t id = 0;
    uint64_t parent_id = 0;
    std::string target;  // unescaped: "/run/a b", not "/run/a\040b"
    std::string root;    // the mounted file system's directory ("/" or a bind mount's source dir)
    std::string fstype;
    std::string source;
    std::string options;  // per-mount and file-system options, comma-separated
};

// Every entry of a mountinfo file (default: this process's), in the file's order.
Result<std::vector<MountEntry>> read_mount_table(const std::string& mountinfo = "/proc/self/mountinfo");

// Targets of the mounts at `dir` and below it (whole path components: "/a/b" is not below
// "/a/bc"), deepest first: the order to unmount them in.
Result<std::vector<std::string>> mounts_at_or_below(const std::string& dir,
                                                    const std::string& mountinfo = "/proc/self/mountinfo");

// true when `path` (not followed if it is a symlink) is the root of a mount; false when it is
// not, or cannot be looked at.
bool is_mount_point(const std::string& path);

}  // namespace berth
