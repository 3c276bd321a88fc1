// Running one container in the foreground: the supervisor behind `berth run` and the unit's
// ExecStart. prepare -> clone -> set up from outside (id maps, assembled root for a user namespace, network)
// -> child builds its root and pivots -> identity resolved from the container's /etc/passwd -> exec ->
// supervise (signals, pty, notify relay) -> tear down. Every resource is RAII-owned, so a failure at any step
// leaves nothing behind: no process, no cgroup, no state file; mounts exist only in the child's mount
// namespace.
#pragma once

#include <functional>
#include <string>

#include "basic/result.h"
#include "config/declaration.h"

namespace berth::runtime {

struct RunOptions {
    bool systemd = false;       // --systemd: delegated cgroup split, sd_notify
    bool interactive = false;   // -i: keep stdin
    bool tty = false;           // -t: pty
    std::string cgroup_parent;  // by hand: parent cgroup directory; empty = <cgroup2 mount>/berth
    // One-time notices for the user ("controller X missing: Y not applied"); may be empty.
    std::function<void(const std::string&)> warn;
    // Called once the payload runs (tests and benchmarks use it); may be empty.
    std::function<void(pid_t payload_pid)> on_started;
    // Once the payload has run for handover_delay_ms, hand supervision to this small executable
    // (berth-supervise) in the same process, and tear down in `teardown_exe` (the full berth
    // binary) when the payload has exited: see supervise-protocol.h. Then run_container() does
    // not return on success: the process exits with the payload's status. Empty = supervise in
    // this process. If the hand-over fails, run_container() says so through `warn` and goes on
    // supervising in this process.
    std::string supervisor_exe;
    std::string teardown_exe;
    // How long the payload runs before the hand-over: a quick command is done before and never
    // pays for the two execs (about 4 ms), and releases its image snapshot through the private
    // berthd that prepared it (bus::StorageSession), which a longer run lets go of here. 0 = at
    // once.
    int handover_delay_ms = 100;
};

// Runs the container until its payload exits; returns the payload's exit status (or 128+signal)
// (or never returns, after a hand-over: see RunOptions::supervisor_exe).
// Errors read "container 'NAME': <step>: <cause>".
Result<int> run_container(const config::Declaration& decl, const RunOptions& options);

}  // namespace berth::runtime
