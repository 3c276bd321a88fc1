// The allocation-free half of process-util.h: pidfd system calls without their syscall() casts,
// inline and libc-only, so that the static, C++-runtime-free berth-supervise (relay.cpp) and the
// runtime's child and signal paths use the same calls as the rest of berth. Each returns 0 or
// -errno (pidfd_open_raw: the fd, or -1 with errno).
#pragma once

#include <signal.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

namespace berth {

// pidfd_open(2) with no flags. The fd or -1 with errno.
inline int pidfd_open_raw(pid_t pid) noexcept { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

// pidfd_send_signal(2). 0 or -errno.
inline int pidfd_signal_raw(int pidfd, int sig) noexcept {
    if (::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0) < 0) return -errno;
    return 0;
}

// waitid(P_PIDFD, pidfd, info, options) retrying EINTR. 0 or -errno; with WNOHANG and the
// process still running, 0 with info->si_pid == 0.
inline int pidfd_wait_raw(int pidfd, siginfo_t* info, int options) noexcept {
    for (;;) {
        *info = siginfo_t{};
        if (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), info, options) == 0) return 0;
        if (errno != EINTR) return -errno;
    }
}

// A siginfo from waitid as a shell would report it: the exit code, or 128 + the signal.
inline int exit_code_of(const siginfo_t& info) noexcept {
    return info.si_code == CLD_EXITED ? info.si_status : 128 + info.si_status;
}

}  // namespace berth
