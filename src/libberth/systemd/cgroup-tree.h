// The process tree of a unit's cgroup, as `systemctl status` draws it: every sub-cgroup (for a
// berth unit: supervisor/ and payload/) with the processes in it. Roots are parameters so tests
// point them at a temporary directory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "basic/result.h"

namespace berth::systemd {

struct CgroupNode {
    std::string path;            // relative to the cgroup2 root, "/berth.slice/berth@web.service/payload"
    std::vector<uint32_t> pids;  // cgroup.procs
    std::vector<std::string> commands;  // /proc/PID/cmdline, spaces for NULs ("" if gone)
    std::vector<CgroupNode> children;   // sorted by name
};

// Reads `control_group` (as in systemd's ControlGroup property) under `cgroup_root` (the cgroup2
// mount: cgroup2_mount_point() in basic/cgroup-util.h).
Result<CgroupNode> read_cgroup_tree(const std::string& cgroup_root, const std::string& control_group,
                                    const std::string& proc_root = "/proc");

// Renders like systemd-cgls: "CGroup: /x.service" then "├─supervisor", "│ └─12 berth run ...".
std::vector<std::string> render_cgroup_tree(const CgroupNode& root);

}  // namespace berth::systemd
