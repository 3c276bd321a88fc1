#include "basic/process-util.h"

#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

namespace berth {

Result<int> wait_for_pid(pid_t pid, std::string_view what) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return fail_errno("wait for {} (pid {})", what, pid);
    return status;
}

int pidfd_open_raw(pid_t pid) noexcept { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

Result<UniqueFd> pidfd_open(pid_t pid) {
    int fd = pidfd_open_raw(pid);
    if (fd < 0) return fail_errno("open process {}", pid);
    return UniqueFd(fd);
}

int pidfd_signal_raw(int pidfd, int sig) noexcept {
    if (::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0) < 0) return -errno;
    return 0;
}

int pidfd_wait_raw(int pidfd, siginfo_t* info, int options) noexcept {
    for (;;) {
        *info = siginfo_t{};
        if (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), info, options) == 0) return 0;
        if (errno != EINTR) return -errno;
    }
}

int exit_code_of(const siginfo_t& info) noexcept {
    return info.si_code == CLD_EXITED ? info.si_status : 128 + info.si_status;
}

}  // namespace berth
