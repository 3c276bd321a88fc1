#include "runtime/spawn.h"

#include <linux/sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "basic/process-util.h"

namespace berth::runtime {

Result<> ChildProcess::signal(int sig) const {
    if (!running()) return fail(ESRCH, "process {} already reaped", pid_);
    if (int r = pidfd_signal_raw(pidfd_.get(), sig); r < 0) return fail(-r, "signal process {}", pid_);
    return {};
}

Result<std::optional<int>> ChildProcess::wait(bool block) {
    if (!pidfd_.valid() || reaped_) return fail(ECHILD, "process {} already reaped", pid_);
    siginfo_t info{};
    if (int r = pidfd_wait_raw(pidfd_.get(), &info, WEXITED | (block ? 0 : WNOHANG)); r < 0)
        return fail(-r, "wait for process {}", pid_);
    if (info.si_pid == 0) return std::optional<int>{};
    reaped_ = true;
    return std::optional<int>{exit_code_of(info)};
}

void ChildProcess::kill_and_reap() noexcept {
    if (!pidfd_.valid() || reaped_) return;
    (void)pidfd_signal_raw(pidfd_.get(), SIGKILL);
    siginfo_t info{};
    (void)pidfd_wait_raw(pidfd_.get(), &info, WEXITED);
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
