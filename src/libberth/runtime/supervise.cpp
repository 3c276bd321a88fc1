#include "runtime/supervise.h"

#include <unistd.h>

namespace berth::runtime {

Result<SignalsBlocked> block_forwarded_signals() {
    SignalsBlocked s;
    s.fd_.reset(relay_block_signals(&s.previous_));
    if (!s.fd_) return fail_errno("signalfd");
    return s;
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
