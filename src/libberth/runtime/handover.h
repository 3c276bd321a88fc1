// Handing a running container to berth-supervise and tearing it down afterwards (the protocol is
// described in supervise-protocol.h). Both halves run in the supervisor's process: the first in
// `berth run` right after the payload starts, the second in `berth internal-teardown`, which
// berth-supervise execs once the payload has exited.
#pragma once

#include <string>

#include "basic/result.h"

namespace berth::runtime {

struct HandoverFds {
    int pidfd = -1;
    int signal_fd = -1;
    int pty_master = -1;     // -1 without -t
    int notify_socket = -1;  // -1 without the notify relay
    int lock_fd = -1;
};

// What berth-supervise needs of the health check besides the fds: health_format_arg()'s text, or
// "-" without one (health-supervise.h).

// Replaces this process image with `supervisor_exe`, passing it `fds` (they lose close-on-exec)
// and an O_PATH fd of `teardown_exe` (the full berth binary). Returns only if that failed; the
// fds are then as they were and the caller supervises in-process.
Error hand_over_supervision(const std::string& supervisor_exe, const std::string& teardown_exe,
                            const std::string& name, int stop_signal, int stop_requests,
                            const HandoverFds& fds, const std::string& health = "-");

// `berth internal-teardown` (berth-supervise has sent STOPPING=1 already): undoes what
// run_container() set up for `name`, from its runtime state file ("teardown"): kills what is left
// in the payload cgroup and removes it, removes the host side of the network, releases the store
// snapshot, unlinks the notify socket, the state file and the lock. `lock_fd` must be the
// inherited, flocked NAME.lock (so a container whose supervisor is alive cannot be torn down by
// hand). Returns `status` (the payload's), or an error if the cgroup could not be removed (as
// run_container()).
Result<int> teardown_handed_over(const std::string& name, int status, int lock_fd);

}  // namespace berth::runtime
