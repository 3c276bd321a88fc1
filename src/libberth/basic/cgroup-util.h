// Where the cgroup2 hierarchy is mounted: /sys/fs/cgroup on a pure cgroup v2 host (Debian 12's
// default), /sys/fs/cgroup/unified on a hybrid one (v1 controllers at /sys/fs/cgroup/NAME), or
// wherever else an administrator mounted it. The one place that answers this: the runtime, the
// status view and the tests all ask here instead of guessing a path.
#pragma once

#include <string>

#include "basic/result.h"

namespace berth {

// The cgroup2 mount point described by the mountinfo file `mountinfo_path` (the format of
// /proc/self/mountinfo, parsed by libmount, so escaped spaces in paths are understood). Only the
// mount on top at each target counts (a tmpfs over a cgroup2 at /sys/fs/cgroup hides it). The
// standard places win (/sys/fs/cgroup, then /sys/fs/cgroup/unified), then the first cgroup2
// mount listed. ENOENT when there is none.
Result<std::string> find_cgroup2_mount(const std::string& mountinfo_path);

// Where systemd mounts cgroup2 on this host: /sys/fs/cgroup (pure v2) or /sys/fs/cgroup/unified
// (hybrid), decided by statfs() as systemd does, without reading the mount table (it runs on
// every container start); ENOENT elsewhere. Remembered once found (single-threaded callers).
// In libberth-basic; find_cgroup2_mount() is in libberth-basic-mount (libmount).
Result<std::string> cgroup2_mount_point();

}  // namespace berth
