// The C++ side of the supervise loop for `berth run` and `berth exec` (relay.h is the loop
// itself, libc only, shared with berth-supervise): the resources around it as RAII owners.
#pragma once

#include <signal.h>

#include <optional>

#include "basic/result.h"
#include "basic/unique.h"
#include "runtime/relay.h"
#include "runtime/spawn.h"

namespace berth::runtime {

// Reads whatever is pending in a signalfd.
void drain_signalfd(int fd) noexcept;

// The forwarded signals blocked and readable from a signalfd; the previous mask comes back when
// this goes away.
class SignalsBlocked {
public:
    SignalsBlocked() = default;
    SignalsBlocked(SignalsBlocked&& o) noexcept : fd_(std::move(o.fd_)), previous_(o.previous_) {}
    SignalsBlocked& operator=(SignalsBlocked&& o) noexcept {
        if (this != &o) {
            restore();
            fd_ = std::move(o.fd_);
            previous_ = o.previous_;
        }
        return *this;
    }
    SignalsBlocked(const SignalsBlocked&) = delete;
    SignalsBlocked& operator=(const SignalsBlocked&) = delete;
    ~SignalsBlocked() { restore(); }
    int fd() const { return fd_.get(); }

private:
    friend Result<SignalsBlocked> block_forwarded_signals();
    // What is still pending was meant for a payload that is gone (or never ran): read, not
    // delivered to berth once unblocked, where a late Ctrl-C would kill it before it reports.
    void restore() noexcept {
        if (fd_) {
            drain_signalfd(fd_.get());
            ::sigprocmask(SIG_SETMASK, &previous_, nullptr);
        }
        fd_.reset();
    }
    UniqueFd fd_;
    sigset_t previous_{};
};

Result<SignalsBlocked> block_forwarded_signals();
// The first SIGINT, SIGTERM, SIGHUP or SIGQUIT pending (taken, so it is not delivered), 0 when
// none: a start asks at each step whether it was interrupted (container.cpp).
int take_stop_request() noexcept;

// The caller's terminal (stdin) in raw mode while the payload owns a pty; restored on
// destruction. restore() and make_raw() bracket a hand-over (berth-supervise does its own).
class RawTerminalScope {
public:
    explicit RawTerminalScope(bool pty) {
        if (pty) make_raw();
    }
    RawTerminalScope(const RawTerminalScope&) = delete;
    RawTerminalScope& operator=(const RawTerminalScope&) = delete;
    ~RawTerminalScope() { restore(); }
    void make_raw() noexcept;
    void restore() noexcept;

private:
    SavedTerminal saved_;
    bool raw_ = false;
};

// relay_run for a ChildProcess: its status once it exits (marked reaped), nullopt once
// `until_msec` has passed (CLOCK_MONOTONIC; 0: no limit), an error when the loop failed (the
// ChildProcess then still kills the payload when it goes away).
Result<std::optional<int>> supervise_relay(Relay* relay, ChildProcess& child, uint64_t until_msec);

}  // namespace berth::runtime
