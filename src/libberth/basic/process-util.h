// Waiting for and signalling child processes: waitpid/waitid retried on EINTR, pidfd system
// calls without their syscall() casts. The *_raw functions allocate nothing and return 0 or
// -errno (or a fd), so the runtime's child and signal paths can use them.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <string_view>

#include "basic/result.h"
#include "basic/unique.h"

namespace berth {

// waitpid(pid, 0) until it reports, retrying EINTR. The wait status (WIFEXITED...).
Result<int> wait_for_pid(pid_t pid, std::string_view what);

// pidfd_open(2) with no flags. The fd or -1 with errno.
int pidfd_open_raw(pid_t pid) noexcept;
Result<UniqueFd> pidfd_open(pid_t pid);

// pidfd_send_signal(2). 0 or -errno.
int pidfd_signal_raw(int pidfd, int sig) noexcept;

// waitid(P_PIDFD, pidfd, info, options) retrying EINTR. 0 or -errno; with WNOHANG and the
// process still running, 0 with info->si_pid == 0.
int pidfd_wait_raw(int pidfd, siginfo_t* info, int options) noexcept;

// A siginfo from waitid as a shell would report it: the exit code, or 128 + the signal.
int exit_code_of(const siginfo_t& info) noexcept;

}  // namespace berth
