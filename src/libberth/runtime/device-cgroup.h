// The container's device cgroup on cgroup v2: a BPF_CGROUP_DEVICE program attached to its cgroup.
//
// cgroup v2 has no devices.allow file; without a program attached, a payload holding CAP_MKNOD
// (capabilities_add = ["MKNOD"]) makes /dev/sda on a file system without nodev and reads the host's
// disk. The kernel runs every program attached to the cgroup and its ancestors on each open/mknod
// of a device node, and the access is allowed only if all of them allow it; so the runtime builds
// one small program from an allow list (the standard /dev nodes plus the declared devices) and
// attaches it with BPF_F_ALLOW_MULTI (systemd's own program on a unit's cgroup stays in force).
//
// The program is built by a pure function (unit-tested instruction by instruction) and loaded with
// the raw bpf() syscall: libbpf is not needed for ~10 instructions a rule. The program's context
// is struct bpf_cgroup_dev_ctx: access_type = (access << 16) | type, major, minor.
#pragma once

#include <linux/bpf.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "basic/result.h"
#include "basic/unique.h"

namespace berth::runtime {

enum class DeviceType : char { Char = 'c', Block = 'b', All = 'a' };

struct DeviceRule {
    DeviceType type = DeviceType::Char;
    std::optional<uint32_t> major;  // nullopt: any
    std::optional<uint32_t> minor;
    std::string access = "rwm";  // a subset of "rwm"

    bool operator==(const DeviceRule&) const = default;
};

// null zero full random urandom tty console ptmx, and the pty slaves (/dev/pts/*): what every
// container's /dev holds (mount-plan.cpp).
const std::vector<DeviceRule>& standard_device_rules();

// "c 1:3 rwm" (as devices.allow and systemd's DeviceAllow= write it; '*' for any number).
std::string format_device_rule(const DeviceRule& rule);

// The allow list -> instructions: the first matching rule allows, anything else is denied.
std::vector<bpf_insn> build_device_program(const std::vector<DeviceRule>& rules);

// Loads the program and attaches it to the cgroup directory open at `cgroup_fd`. The attachment
// lives as long as the cgroup: the program fd is closed on return.
Result<> attach_device_program(int cgroup_fd, const std::vector<bpf_insn>& program);

}  // namespace berth::runtime
