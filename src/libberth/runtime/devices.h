// [security] devices resolved for one start: host nodes ("/dev/fuse", "/dev/kvm:rw") and CDI names
// ("nvidia.com/gpu=all", cdi/cdi.h) become the nodes bound into the container's /dev, the driver
// mounts, the environment, the hooks, and the device cgroup's allow list (device-cgroup.h).
//
// Declarations are portable: a device missing on this host is an error here, at start, naming
// it, never at validation. CDI device nodes are the host's nodes bound in (as for host paths): a
// spec that asks for another major/minor, type, mode or owner than the host node has is refused
// rather than silently given something else (berth does not mknod in the container: its /dev is
// nodev, and the device cgroup is what makes a node usable).
#pragma once

#include <string>
#include <vector>

#include "basic/result.h"
#include "cdi/cdi.h"
#include "config/declaration.h"
#include "runtime/device-cgroup.h"

namespace berth::runtime {

struct DeviceBind {
    std::string host_path;
    std::string container_path;

    bool operator==(const DeviceBind&) const = default;
};

struct DevicePlan {
    std::vector<DeviceBind> nodes;   // CDI device nodes (host-path entries: mount-plan.cpp)
    std::vector<cdi::Mount> mounts;  // CDI mounts (bind)
    std::vector<std::string> env;    // CDI env, "K=V"
    std::vector<cdi::Hook> hooks;    // CDI hooks
    std::vector<DeviceRule> rules;   // the declared devices' cgroup rules (not the standard ones)

    bool operator==(const DevicePlan&) const = default;
};

// Stats every node. The CDI registry is read (from cdi::spec_dirs()) only when a CDI name is
// declared; `registry` overrides it (tests).
Result<DevicePlan> plan_devices(const config::Declaration& decl, const cdi::Registry* registry = nullptr);

// The allow list the container's device cgroup gets: the standard nodes, then the declared ones.
std::vector<DeviceRule> device_allow_list(const DevicePlan& plan);

// The OCI state document hooks read on stdin (runtime-spec "state"): ociVersion, id, status, pid,
// bundle, annotations.
std::string oci_state_json(const std::string& id, const std::string& status, int pid,
                           const std::string& bundle);

// Runs the hooks of `kind` in order, each with the state on stdin and its own env and timeout; a
// hook that fails or times out fails the start, naming it.
Result<> run_hooks(const std::vector<cdi::Hook>& hooks, cdi::HookKind kind, const std::string& state_json);

}  // namespace berth::runtime
