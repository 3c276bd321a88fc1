// The runtime state of a running container, for `berth exec`, `berth list` and `berth status`:
// <run dir>/containers/NAME.json, written once the payload runs, removed when the supervisor
// exits; root's alone (0600: `env` holds secrets from environment_files). The supervisor holds an
// exclusive flock on NAME.lock (0600 too) for its whole life, so a state file whose lock is free is
// stale (the supervisor was SIGKILLed) and is ignored.
//
// Format (JSON object):
//   name             string
//   pid              payload pid in the host pid namespace (the container's PID 1)
//   supervisor_pid   the `berth run` process (MAINPID under systemd)
//   cgroup           payload cgroup, filesystem path under the cgroup2 mount
//                    (cgroup2_mount_point(): "/sys/fs/cgroup/berth/web" on a cgroup v2 host)
//   started_at_usec  CLOCK_REALTIME microseconds when the payload was exec'd
//   network_mode     "none" | "host" | "veth" | "bridge"
//   address          container address ("10.0.0.2/24") or ""
//   hostname         string
//   user_namespace   null or {"base": N, "size": N}
//   uid, gid, groups the payload's identity (container ids)
//   env              ["K=V", ...]  the payload's environment
//   workdir          string
//   bounding, effective  capability masks (numbers)
//   no_new_privileges bool
//   seccomp          path of the payload's BPF program, "" when unconfined
//   health           null, or the health check: {"command": [...], "interval_us", "timeout_us",
//                    "start_period_us", "start_interval_us", "retries", "on_failure" (0 none,
//                    1 kill, 2 restart, 3 stop), "notify_healthy", "watchdog"}
// Beside it, while a health check runs: NAME.health (the supervisor's: {"status", "failing_streak",
// "changed_at_usec"}) and NAME.probes.json (the last probes, written by each probe).
//   teardown         what `berth internal-teardown` undoes once the payload has exited, when
//                    supervision was handed to berth-supervise (supervise-protocol.h):
//     cgroup_remove    cgroup directory to empty and remove
//     cgroup_prune     its parent, removed too when empty by then ("" = keep)
//     notify_socket    the notify relay socket's path ("" = none)
//     snapshot         true when a store snapshot is to be released (image containers)
//     network          null, or the host side of the network: {"host_interface", "own_link",
//                      "nft_remove" (nftables script), "own_nft", "localnet_bridge"}
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "basic/result.h"
#include "config/declaration.h"
#include "runtime/user-namespace.h"
#include "store/types.h"

namespace berth::runtime {

// The host side of a container's network, as NetworkAttachment::detach() needs it.
struct NetworkTeardown {
    std::string host_interface;
    bool own_link = false;
    std::string nft_remove;
    bool own_nft = false;
    std::string localnet_bridge;
    // The host ends of the container's links on its second, third, ... declared network.
    std::vector<std::string> more_interfaces;
    // Loopback proxies of TCP ports published on ::1 (network/loopback-proxy.h): pid and target.
    std::vector<std::pair<pid_t, std::string>> loopback_proxies;
};

struct Teardown {
    std::string cgroup_remove;
    std::string cgroup_prune;
    std::string notify_socket;
    bool snapshot = false;
    std::optional<NetworkTeardown> network;
};

// The container's health check as it runs (runtime/health.h): the declaration's [health] with
// the defaults filled in. `berth internal-health-probe` and `berth health` run `command`.
struct HealthSpec {
    std::vector<std::string> command;
    uint64_t interval_us = 0, timeout_us = 0, start_period_us = 0, start_interval_us = 0;
    uint32_t retries = 0;
    int on_failure = 0;  // HealthAction
    bool notify_healthy = false;
    bool watchdog = false;
};

struct RuntimeState {
    std::string name;
    pid_t pid = 0;
    pid_t supervisor_pid = 0;
    std::string cgroup;
    uint64_t started_at_usec = 0;
    // The image it runs, as the store resolved the declared reference ("sha256:..."): what a
    // registry tag named when it started; "" when not known (a local image name, a rootfs).
    std::string image_id;
    std::string network_mode;
    std::string address;
    std::string hostname;
    std::optional<IdRange> user_namespace;
    uint32_t uid = 0, gid = 0;
    std::vector<uint32_t> groups;
    std::vector<std::string> env;
    std::string workdir = "/";
    uint64_t bounding = 0, effective = 0;
    bool no_new_privileges = true;
    std::string seccomp;
    std::optional<HealthSpec> health;
    Teardown teardown;
};

std::string state_to_json(const RuntimeState& state);
Result<RuntimeState> state_from_json(const std::string& text, const std::string& origin);

// <run dir>/containers is 0711: only root lists it or reads what is in it (NAME.json and
// NAME.lock are 0600), but a user namespace's root can still reach the NAME.notify socket by path
// when the child binds it into the container (the socket checks its senders itself).
inline constexpr mode_t kContainersRunDirMode = 0711;
// Creates <run dir>/containers with that mode (tightening an existing wider one); its path.
Result<std::string> prepare_containers_run_dir();

std::string state_file_path(const std::string& name);
Result<> write_state(const RuntimeState& state);
// Reads NAME's state; ESRCH "container 'NAME' is not running" when absent or stale.
Result<RuntimeState> read_state(const std::string& name);
void remove_state(const std::string& name);  // and the health files beside it

// The health check of a declaration over its image's HEALTHCHECK (`image` may be null: a rootfs
// directory has none), defaults filled in. The declaration wins: its [health] command replaces the
// image's test, `command = []` disables the image's check, and each timing key left unset takes
// the image's value, then Docker's default. An image's CMD-SHELL runs as /bin/sh -c. nullopt
// without a check. EINVAL when notify = "healthy" or watchdog = true has no check to follow.
Result<std::optional<HealthSpec>> resolve_health(const config::Declaration& decl,
                                                 const store::ImageConfig* image = nullptr);

// NAME.health as the supervisor publishes it.
struct HealthStatus {
    std::string status;  // "starting" | "healthy" | "unhealthy"
    uint32_t failing_streak = 0;
    uint64_t changed_at_usec = 0;
};
std::optional<HealthStatus> read_health_status(const std::string& name);

// One probe, as NAME.probes.json keeps the last few.
struct ProbeRecord {
    uint64_t at_usec = 0;  // CLOCK_REALTIME when it started
    int exit_status = 0;   // -1: it did not finish within its timeout
    uint64_t duration_us = 0;
    std::string output;  // the tail of what it wrote
};
std::vector<ProbeRecord> read_probe_history(const std::string& name);
// Appends `probe`, keeping the last kProbeHistory; under an flock so `berth health` and the
// supervisor's probe do not lose each other's record.
inline constexpr size_t kProbeHistory = 5;
Result<> append_probe_record(const std::string& name, const ProbeRecord& probe);

// Names of the containers with a live supervisor.
std::vector<std::string> list_running();

}  // namespace berth::runtime
