// cgroup2_mount_point(): asked on every container start, so it looks only where systemd mounts
// cgroup2 (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host), one statfs() each, and
// needs no mount table parser: berth's start path does not load libmount for it.
#include <linux/magic.h>
#include <sys/vfs.h>

#include "basic/cgroup-util.h"

namespace berth {

Result<std::string> cgroup2_mount_point() {
    // Only an answer is kept: a caller that runs before the hierarchy is mounted asks again.
    static std::string cached;
    if (!cached.empty()) return cached;
    for (const char* standard : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}) {
        struct statfs st {};
        if (::statfs(standard, &st) == 0 && st.f_type == CGROUP2_SUPER_MAGIC) return cached = standard;
    }
    return fail(
        ENOENT,
        "no cgroup2 file system at /sys/fs/cgroup or /sys/fs/cgroup/unified (where systemd mounts it)");
}

}  // namespace berth
