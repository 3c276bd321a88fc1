// The supervise loop: the one place that waits for a payload to exit while relaying signals, the
// pty and sd_notify datagrams. Three callers share it, so they cannot drift apart again (they
// had: only one of three copies handled POLLNVAL, one spun on a closed stdin):
//   - `berth run` (container.cpp), until the hand-over delay has passed or the payload exits;
//   - berth-supervise, the static libc-only supervisor `berth run` execs into;
//   - `berth exec` (exec.cpp), for the command it runs in a container.
// berth-supervise is built with -fno-exceptions -fno-rtti and no C++ runtime, so this is libc
// only: plain functions over fds and caller-owned fixed buffers; no allocation, no exceptions.
//
// What the loop does, per poll() round:
//   - the signalfd: SIGWINCH copies the caller's window size to the pty; SIGTERM/SIGINT become
//     the stop signal when one is set, and the second request is SIGKILL, each said in one line
//     (a PID 1 without a handler ignores SIGTERM: before, three silent Ctrl-C were needed to end
//     it, issue #15 item 8); without a stop signal (berth exec) they are forwarded as is like
//     every other signal;
//   - -t: stdin -> pty master, pty master -> stdout; a side that reports EOF, POLLHUP, POLLERR or
//     POLLNVAL (a caller that started us with fd 0 closed) stops being polled, so the loop never
//     spins; a reader of stdout that went away (EPIPE) makes us drop the output, not die of
//     SIGPIPE with the payload unsupervised;
//   - notify = "container": one datagram to $NOTIFY_SOCKET (notify-relay.h);
//   - [health]: the timer for the next probe, and the running probe's verdict
//     (health-supervise.h);
//   - the pidfd: the payload's exit, after which what it wrote to the pty is drained;
//   - a stop signal the payload could not hear yet (stop_unheard): every 50 ms, whether it now
//     has a handler, and then the stop signal again.
// POLLNVAL on the pidfd or the signalfd (an fd lost) is an error: the caller kills the payload.
#pragma once

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <termios.h>

namespace berth::runtime {

struct RelayHealth;  // health-supervise.h

struct Relay {
    int pidfd = -1;          // the payload; reaped here once it exits
    int signal_fd = -1;      // the signals to forward (relay_block_signals)
    int pty_master = -1;     // -t; -1 without a pty
    int notify_socket = -1;  // notify = "container"; -1 without the relay
    pid_t payload = -1;      // the pidfd's pid (notify sender check); needed only with notify_socket
    int stop_signal = 0;     // what SIGTERM/SIGINT become; 0: forwarded as is
    int stop_requests = 0;   // SIGTERM/SIGINT seen so far (also those before a hand-over)
    // The stop signal went to a payload that could not hear it: a pid namespace's init that had
    // not yet set a handler (the kernel drops the signal). It is sent again once the payload sets
    // one (a `trap ... TERM` a moment after the start), instead of the stop waiting for a second
    // request or systemd's TimeoutStopSec.
    bool stop_unheard = false;
    // With a stop signal: the container's name for the line each stop request writes to
    // `err_fd` (what was sent, what the next request does); nullptr: silent.
    const char* name = nullptr;
    int err_fd = 2;
    int in_fd = 0;  // the caller's terminal side (stdin, stdout)
    int out_fd = 1;
    // Which pty directions are still open (relay_start sets both when there is a pty).
    bool in_open = false;
    bool master_open = false;
    // out_fd = -1 with a tail buffer: what comes from the "pty" (a pipe, for a health probe) is
    // not copied anywhere; its last tail_size bytes are kept here (tail_len of them).
    char* tail = nullptr;
    size_t tail_size = 0;
    size_t tail_len = 0;
    // Scratch for the copies (caller-owned: berth-supervise passes a static buffer).
    char* buf = nullptr;
    size_t buf_size = 0;
    // On failure: the step that failed.
    const char* failed_step = nullptr;
    // [health]: probes run from this loop (health-supervise.h); nullptr without (health_start
    // done by the caller). Once the payload exits, a probe still running is killed.
    RelayHealth* health = nullptr;
};

// Before the first relay_run: copies the caller's window size to the pty, makes the master
// non-blocking and marks both directions open.
void relay_start(Relay* r) noexcept;

// Result of relay_run.
enum RelayEnd : int { kRelayExited = 0, kRelayDeadline = 1 };

// Supervises until the payload exits (kRelayExited, *status: exit code or 128 + signal) or, with
// until_msec != 0 (CLOCK_MONOTONIC, relay_monotonic_msec), until that time has passed with the
// payload still running (kRelayDeadline). -errno on failure (r->failed_step says where); the
// payload then still runs and the caller decides (all callers kill it).
int relay_run(Relay* r, uint64_t until_msec, int* status) noexcept;

// SIGKILLs the payload and waits for it; its status (128 + SIGKILL if it cannot be had). For
// berth-supervise, which has no ChildProcess to do it.
int relay_kill_and_reap(const Relay* r) noexcept;

uint64_t relay_monotonic_msec() noexcept;

// Blocks the signals the loop forwards (SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2,
// SIGWINCH) and returns a non-blocking, close-on-exec signalfd for them (or -1 with errno); the
// previous mask goes to *previous for the caller to restore.
int relay_block_signals(sigset_t* previous) noexcept;

// The caller's terminal in raw mode while the payload owns the pty (only when `fd` is a
// terminal); restored by terminal_restore.
struct SavedTerminal {
    struct termios mode;
    bool active = false;
};
void terminal_make_raw(SavedTerminal* t, int fd) noexcept;
void terminal_restore(const SavedTerminal* t, int fd) noexcept;

}  // namespace berth::runtime
