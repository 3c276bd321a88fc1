// Stage 3 of `berth run` (container.cpp): the start (nspawn's "outer child" / "inner child").
// Plans the mounts, clones the child into its namespaces and cgroup (child.cpp), and talks it
// through the sync-socket protocol of child.h: id maps, the root assembled for a user namespace and the
// network from outside, then Go; the child builds its root and says Mounted (with the pty master for -t); the
// identity is resolved from the container's own /etc/passwd and sent with the command as Launch; EOF on the
// channel means the payload was exec'd.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "basic/result.h"
#include "basic/unique.h"
#include "bus/storage-client.h"
#include "config/declaration.h"
#include "runtime/cgroup.h"
#include "runtime/container-rootfs.h"
#include "runtime/container-security.h"
#include "runtime/container.h"
#include "runtime/devices.h"
#include "runtime/identity.h"
#include "runtime/network-seam.h"
#include "runtime/secrets.h"
#include "runtime/spawn.h"
#include "runtime/supervise.h"

namespace berth::runtime {

struct Launched;

struct LaunchInputs {
    const config::Declaration* decl = nullptr;
    const RunOptions* options = nullptr;
    ContainerRoot* root = nullptr;  // its stale scratch is removed while the child mounts
    const SecurityPlan* security = nullptr;
    const std::vector<bus::PreparedVolume>* volumes = nullptr;
    const ContainerCgroup* cgroup = nullptr;
    const DevicePlan* devices = nullptr;  // [security] devices resolved (devices.h)
    std::string notify_socket;            // host path of the relay socket; "" without
    std::vector<std::string> command;
    std::string hostname;
    int signal_fd = -1;  // the forwarded signals, blocked by run_container() for the whole run
    const std::vector<SecretValue>* secrets = nullptr;  // may be null: none
    const ListenFds* listen = nullptr;                  // may be null: none
    // Called when the payload's process is complete, just before it is let exec (may be empty):
    // the state `berth exec` reads is on disk before the payload runs, so a payload that says it
    // is up can be entered at once. An error stops the start.
    std::function<Result<>(const Launched&)> before_exec;
};

// A payload that runs. Members in this order so that, going away on an error, the network goes
// first, then the payload (killed and reaped).
struct Launched {
    int signal_fd = -1;  // LaunchInputs::signal_fd: what the supervise loop forwards
    ChildProcess child;
    UniqueFd pty_master;  // -t
    std::unique_ptr<AttachedNetwork> network;
    Identity identity;
    std::vector<std::string> env;
    // For the payload's execve only, never recorded (the state file's `env` is `env` above): the
    // `environment = "VAR"` secrets and the socket activation variables, which name this process.
    std::vector<std::string> payload_only_env;
    std::string workdir;
    uint64_t effective_caps = 0;
};

Result<> launch_container(const LaunchInputs& in, Launched* out);

}  // namespace berth::runtime
