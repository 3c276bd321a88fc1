#include "runtime/supervise.h"

#include <sys/signalfd.h>
#include <unistd.h>

namespace berth::runtime {

Result<SignalsBlocked> block_forwarded_signals() {
    SignalsBlocked s;
    s.fd_.reset(relay_block_signals(&s.previous_));
    if (!s.fd_) return fail_errno("signalfd");
    return s;
}

void drain_signalfd(int fd) noexcept {
    struct signalfd_siginfo si;
    while (::read(fd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
    }
}

int take_stop_request() noexcept {
    // Only the stop signals are taken; SIGWINCH, SIGUSR1... stay for the payload's relay.
    sigset_t stop;
    sigemptyset(&stop);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) sigaddset(&stop, sig);
    struct timespec zero {};
    int sig = ::sigtimedwait(&stop, nullptr, &zero);
    return sig > 0 ? sig : 0;
}

void RawTerminalScope::make_raw() noexcept {
    terminal_make_raw(&saved_, STDIN_FILENO);
    raw_ = saved_.active;
}

void RawTerminalScope::restore() noexcept {
    if (!raw_) return;
    terminal_restore(&saved_, STDIN_FILENO);
    raw_ = false;
}

Result<std::optional<int>> supervise_relay(Relay* relay, ChildProcess& child, uint64_t until_msec) {
    int status = 0;
    int rc = relay_run(relay, until_msec, &status);
    if (rc == kRelayDeadline) return std::optional<int>{};
    if (rc < 0) return fail(-rc, "{}", relay->failed_step);
    child.mark_reaped();
    return std::optional<int>{status};
}

}  // namespace berth::runtime
