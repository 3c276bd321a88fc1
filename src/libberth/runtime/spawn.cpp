#include "runtime/spawn.h"

#include <linux/sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

namespace berth::runtime {

Result<> ChildProcess::signal(int sig) const {
    if (!running()) return fail(ESRCH, "process {} already reaped", pid_);
    if (::syscall(SYS_pidfd_send_signal, pidfd_.get(), sig, nullptr, 0) < 0)
        return fail_errno("signal process {}", pid_);
    return {};
}

Result<std::optional<int>> ChildProcess::wait(bool block) {
    if (!pidfd_.valid() || reaped_) return fail(ECHILD, "process {} already reaped", pid_);
    siginfo_t info{};
    for (;;) {
        int rc = ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_.get()), &info,
                          WEXITED | (block ? 0 : WNOHANG));
        if (rc < 0 && errno == EINTR) continue;
        if (rc < 0) return fail_errno("wait for process {}", pid_);
        break;
    }
    if (info.si_pid == 0) return std::optional<int>{};
    reaped_ = true;
    if (info.si_code == CLD_EXITED) return std::optional<int>{info.si_status};
    return std::optional<int>{128 + info.si_status};
}

void ChildProcess::kill_and_reap() noexcept {
    if (!pidfd_.valid() || reaped_) return;
    ::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
    siginfo_t info{};
    while (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_.get()), &info, WEXITED) < 0 &&
           errno == EINTR) {
    }
    reaped_ = true;
}

Result<ChildProcess> clone_child(uint64_t flags, int cgroup_fd, bool* in_child) {
    int pidfd = -1;
    struct clone_args args;
    std::memset(&args, 0, sizeof args);
    args.flags = flags | CLONE_PIDFD | (cgroup_fd >= 0 ? CLONE_INTO_CGROUP : 0);
    args.pidfd = reinterpret_cast<uint64_t>(&pidfd);
    args.exit_signal = SIGCHLD;
    if (cgroup_fd >= 0) args.cgroup = static_cast<uint64_t>(cgroup_fd);
    long pid = ::syscall(SYS_clone3, &args, sizeof args);
    if (pid < 0) return fail_errno("clone3");
    if (pid == 0) {
        *in_child = true;
        return ChildProcess();
    }
    *in_child = false;
    return ChildProcess(static_cast<pid_t>(pid), UniqueFd(pidfd));
}

}  // namespace berth::runtime
