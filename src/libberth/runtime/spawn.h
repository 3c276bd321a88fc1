// Process creation for the runtime: clone3() with namespaces, a pidfd, and optionally straight
// into a cgroup (CLONE_INTO_CGROUP), so the payload never runs a single instruction outside its
// cgroup and its cgroup namespace is rooted there. ChildProcess owns the pidfd: a child that is
// still running when its owner goes away (error paths) is SIGKILLed and reaped.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>

#include "basic/result.h"
#include "basic/unique.h"

namespace berth::runtime {

class ChildProcess {
public:
    ChildProcess() = default;
    ChildProcess(pid_t pid, UniqueFd pidfd) : pid_(pid), pidfd_(std::move(pidfd)) {}
    ChildProcess(ChildProcess&&) noexcept = default;
    ChildProcess& operator=(ChildProcess&&) noexcept = default;
    ~ChildProcess() { kill_and_reap(); }

    pid_t pid() const { return pid_; }
    int pidfd() const { return pidfd_.get(); }
    bool running() const { return pidfd_.valid() && !reaped_; }

    Result<> signal(int sig) const;
    // Non-blocking when `block` is false: nullopt while it still runs. The value is the exit code,
    // or 128 + signal.
    Result<std::optional<int>> wait(bool block);
    void kill_and_reap() noexcept;
    // Another waiter (the relay loop, relay.h) reaped it through our pidfd.
    void mark_reaped() noexcept { reaped_ = true; }

private:
    pid_t pid_ = 0;
    UniqueFd pidfd_;
    bool reaped_ = false;
};

// Forks like fork(2) (returns 0 in the child, which continues on a copy of our memory) with
// `flags` (CLONE_NEW*), a pidfd, and, when cgroup_fd >= 0, born in that cgroup.
Result<ChildProcess> clone_child(uint64_t flags, int cgroup_fd, bool* in_child);

}  // namespace berth::runtime
