// The supervise loop (relay.h). libc only: compiled into berth-runtime and into the static
// berth-supervise (-fno-exceptions -fno-rtti, no C++ runtime).
#include "runtime/relay.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "basic/process-raw.h"
#include "basic/time-util.h"
#include "runtime/health-supervise.h"
#include "runtime/notify-relay.h"

namespace berth::runtime {

namespace {

// Writes all of it, waiting out EAGAIN (a non-blocking pty); gives up on any other error (the
// other side is gone: what is left is dropped, the payload goes on).
void relay_write(int fd, const char* p, size_t n) noexcept {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EAGAIN) {
            struct pollfd pfd = {fd, POLLOUT, 0};
            (void)poll(&pfd, 1, 1000);
            continue;
        }
        if (w <= 0) return;
        p += w;
        n -= static_cast<size_t>(w);
    }
}

void copy_window_size(const Relay* r) noexcept {
    struct winsize ws;
    if (r->pty_master >= 0 && ioctl(r->in_fd, TIOCGWINSZ, &ws) == 0) ioctl(r->pty_master, TIOCSWINSZ, &ws);
}

int send_signal(const Relay* r, int sig) noexcept { return pidfd_signal_raw(r->pidfd, sig); }

// 1 when reaped (*status set), 0 while it runs, -errno on error.
int reap(const Relay* r, int* status, bool block = false) noexcept {
    siginfo_t info;
    if (int rc = pidfd_wait_raw(r->pidfd, &info, WEXITED | (block ? 0 : WNOHANG)); rc < 0) return rc;
    if (info.si_pid == 0) return 0;
    *status = exit_code_of(info);
    return 1;
}

// One line of at most 511 bytes (what snprintf into a 512-byte buffer said: n) to err_fd.
void say_line(const Relay* r, const char* line, int n) noexcept {
    if (n > 0) relay_write(r->err_fd, line, static_cast<size_t>(n) < 512 ? static_cast<size_t>(n) : 511);
}

// One line per stop request, so that a payload that ignores the stop signal is not a silent
// wait: the first says what was sent and what another request does, the second why it is
// needed (PID 1 has no default action for SIGTERM) and what avoids it.
void say_stop(const Relay* r, int received, bool kill_now) noexcept {
    if (!r->name) return;
    const char* got = sigabbrev_np(received);
    const char* stop = sigabbrev_np(r->stop_signal);
    char line[512];
    int n;
    if (!kill_now)
        n = snprintf(line, sizeof line,
                     "berth run: container '%s': SIG%s: stopping, SIG%s sent to the payload; "
                     "Ctrl-C (SIGINT) again kills it\n",
                     r->name, got ? got : "?", stop ? stop : "?");
    else
        n = snprintf(line, sizeof line,
                     "berth run: container '%s': SIG%s again: the payload has not exited on SIG%s "
                     "(a PID 1 without a handler ignores it; `init = true` forwards signals to the "
                     "command): killing it (SIGKILL)\n",
                     r->name, got ? got : "?", stop ? stop : "?");
    say_line(r, line, n);
}

// What `sig` would do to the payload now, from /proc/PID/status.
enum class Heard { kCaught, kIgnored, kDropped, kOther };
Heard would_hear(const Relay* r, int sig) noexcept {
    if (sig == SIGKILL || sig == SIGSTOP) return Heard::kOther;  // never dropped, never caught
    pid_t pid = r->payload > 0 ? r->payload : pid_of_pidfd(r->pidfd);
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/status", static_cast<int>(pid));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Heard::kOther;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return Heard::kOther;
    buf[n] = '\0';
    auto mask_of = [&](const char* key) -> unsigned long long {
        const char* p = strstr(buf, key);
        return p ? strtoull(p + strlen(key), nullptr, 16) : 0;
    };
    const unsigned long long bit = 1ULL << (sig - 1);
    if (mask_of("\nSigCgt:") & bit) return Heard::kCaught;
    if (mask_of("\nSigIgn:") & bit) return Heard::kIgnored;
    // Its pid in its own namespace is the last number of NSpid: 1 for an init.
    const char* ns = strstr(buf, "\nNSpid:");
    const char* end = ns ? strchr(ns + 1, '\n') : nullptr;
    if (!ns || !end) return Heard::kOther;
    const char* last = end;
    while (last > ns && last[-1] != '\t' && last[-1] != ' ') --last;
    return strtol(last, nullptr, 10) == 1 ? Heard::kDropped : Heard::kOther;
}

// A stop signal the payload could not hear (stop_unheard): sent again once it can.
void resend_unheard_stop(Relay* r) noexcept {
    Heard now = would_hear(r, r->stop_signal);
    if (now == Heard::kDropped) return;
    r->stop_unheard = false;
    if (now != Heard::kCaught) return;  // it ignores it now, or is gone: the second request kills
    (void)send_signal(r, r->stop_signal);
    if (!r->name) return;
    const char* stop = sigabbrev_np(r->stop_signal);
    char line[512];
    say_line(r, line,
             snprintf(line, sizeof line,
                      "berth run: container '%s': the payload set its handler for SIG%s after the stop "
                      "request (an init drops a signal it has no handler for): sent again\n",
                      r->name, stop ? stop : "?"));
}

void forward_signals(Relay* r) noexcept {
    struct signalfd_siginfo si;
    while (read(r->signal_fd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
        int sig = static_cast<int>(si.ssi_signo);
        if (sig == SIGWINCH) {
            copy_window_size(r);
        } else if (r->stop_signal > 0 && (sig == SIGTERM || sig == SIGINT)) {
            // The stop signal; a second request means "now".
            const bool kill_now = ++r->stop_requests >= 2;
            say_stop(r, sig, kill_now);
            r->stop_unheard = !kill_now && would_hear(r, r->stop_signal) == Heard::kDropped;
            (void)send_signal(r, kill_now ? SIGKILL : r->stop_signal);
        } else {
            (void)send_signal(r, sig);
        }
    }
}

// Keeps the last tail_size bytes of the output (out_fd = -1: a probe's).
void keep_tail(Relay* r, const char* p, size_t n) noexcept {
    if (!r->tail || r->tail_size == 0) return;
    if (n >= r->tail_size) {
        memcpy(r->tail, p + n - r->tail_size, r->tail_size);
        r->tail_len = r->tail_size;
        return;
    }
    size_t keep = r->tail_len + n > r->tail_size ? r->tail_size - n : r->tail_len;
    memmove(r->tail, r->tail + r->tail_len - keep, keep);
    memcpy(r->tail + keep, p, n);
    r->tail_len = keep + n;
}

void relay_output(Relay* r, int to, const char* p, size_t n) noexcept {
    if (to < 0)
        keep_tail(r, p, n);
    else
        relay_write(to, p, n);
}

// One read from `from` to `to`; false once `from` is done (EOF, or an error other than a retry).
bool copy_once(Relay* r, int from, int to) noexcept {
    ssize_t n = read(from, r->buf, r->buf_size);
    if (n > 0) {
        relay_output(r, to, r->buf, static_cast<size_t>(n));
        return true;
    }
    return n < 0 && (errno == EAGAIN || errno == EINTR);
}

int fail_at(Relay* r, const char* step, int err) noexcept {
    r->failed_step = step;
    return -err;
}

}  // namespace

int relay_kill_and_reap(const Relay* r) noexcept {
    (void)send_signal(r, SIGKILL);
    int status = 128 + SIGKILL;
    (void)reap(r, &status, true);
    return status;
}

uint64_t relay_monotonic_msec() noexcept { return now_usec(CLOCK_MONOTONIC) / 1000; }

void relay_start(Relay* r) noexcept {
    // A stop request taken before a hand-over that the payload could not hear: still pending.
    if (r->stop_signal > 0 && r->stop_requests == 1)
        r->stop_unheard = would_hear(r, r->stop_signal) == Heard::kDropped;
    if (r->pty_master < 0) return;
    copy_window_size(r);
    fcntl(r->pty_master, F_SETFL, fcntl(r->pty_master, F_GETFL) | O_NONBLOCK);
    r->in_open = r->master_open = true;
}

int relay_run(Relay* r, uint64_t until_msec, int* status) noexcept {
    constexpr short kDone = POLLIN | POLLHUP | POLLERR | POLLNVAL;
    // Writing to a stdout whose reader went away must fail with EPIPE, not kill the supervisor;
    // the disposition is put back on the way out (it would reach a later exec otherwise).
    struct sigaction ignore, previous_pipe;
    memset(&ignore, 0, sizeof ignore);
    ignore.sa_handler = SIG_IGN;
    const bool restore_pipe = r->pty_master >= 0 && sigaction(SIGPIPE, &ignore, &previous_pipe) == 0;
    int result;
    for (;;) {
        int timeout = -1;
        if (until_msec) {
            uint64_t now = relay_monotonic_msec();
            if (now >= until_msec) {
                result = kRelayDeadline;
                break;
            }
            timeout = static_cast<int>(until_msec - now);
        }
        if (r->stop_unheard) timeout = timeout < 0 || timeout > 50 ? 50 : timeout;
        struct pollfd fds[7];
        int n = 0;
        fds[n++] = {r->pidfd, POLLIN, 0};
        fds[n++] = {r->signal_fd, POLLIN, 0};
        int i_in = -1, i_master = -1, i_notify = -1;
        if (r->in_open) {
            i_in = n;
            fds[n++] = {r->in_fd, POLLIN, 0};
        }
        if (r->master_open) {
            i_master = n;
            fds[n++] = {r->pty_master, POLLIN, 0};
        }
        if (r->notify_socket >= 0) {
            i_notify = n;
            fds[n++] = {r->notify_socket, POLLIN, 0};
        }
        int i_timer = -1, i_probe = -1;
        if (r->health && r->health->timer_fd >= 0) {
            i_timer = n;
            fds[n++] = {r->health->timer_fd, POLLIN, 0};
        }
        if (r->health && r->health->probe_out >= 0) {
            i_probe = n;
            fds[n++] = {r->health->probe_out, POLLIN, 0};
        }
        if (poll(fds, static_cast<nfds_t>(n), timeout) < 0) {
            if (errno == EINTR) continue;
            result = fail_at(r, "poll", errno);
            break;
        }
        if ((fds[0].revents | fds[1].revents) & POLLNVAL) {
            result = fail_at(r, "lost the payload's pidfd or the signalfd", EBADF);
            break;
        }
        if (fds[1].revents & POLLIN) forward_signals(r);
        if (r->stop_unheard) resend_unheard_stop(r);
        if (i_in >= 0 && (fds[i_in].revents & kDone)) r->in_open = copy_once(r, r->in_fd, r->pty_master);
        if (i_master >= 0 && (fds[i_master].revents & kDone))
            r->master_open = copy_once(r, r->pty_master, r->out_fd) && !(fds[i_master].revents & POLLNVAL);
        if (i_notify >= 0 && (fds[i_notify].revents & POLLIN))
            (void)relay_notify_datagram(r->notify_socket, r->payload);
        if (i_probe >= 0 && (fds[i_probe].revents & kDone))
            health_on_output(r->health, r->pidfd, r->stop_signal);
        if (i_timer >= 0 && (fds[i_timer].revents & POLLIN)) health_on_timer(r->health, r->pidfd);
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            int rc = reap(r, status);
            if (rc == 0) continue;
            if (rc < 0) {
                result = fail_at(r, "wait for the payload", -rc);
                break;
            }
            // Drain what the payload wrote to the pty before it exited (the master is
            // non-blocking: this ends at EAGAIN, or EIO once the last slave fd is closed).
            while (r->master_open) {
                ssize_t got = read(r->pty_master, r->buf, r->buf_size);
                if (got <= 0) break;
                relay_output(r, r->out_fd, r->buf, static_cast<size_t>(got));
            }
            if (r->health) health_stop(r->health);
            result = kRelayExited;
            break;
        }
        // A stdin in POLLNVAL: read() said EBADF and copy_once closed it above.
    }
    if (restore_pipe) sigaction(SIGPIPE, &previous_pipe, nullptr);
    return result;
}

int relay_block_signals(sigset_t* previous) noexcept {
    sigset_t forwarded;
    sigemptyset(&forwarded);
    const int signals[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
    for (int sig : signals) sigaddset(&forwarded, sig);
    sigprocmask(SIG_BLOCK, &forwarded, previous);
    int fd = signalfd(-1, &forwarded, SFD_CLOEXEC | SFD_NONBLOCK);
    if (fd < 0) {
        int saved = errno;
        sigprocmask(SIG_SETMASK, previous, nullptr);
        errno = saved;
    }
    return fd;
}

void terminal_make_raw(SavedTerminal* t, int fd) noexcept {
    t->active = false;
    if (!isatty(fd) || tcgetattr(fd, &t->mode) != 0) return;
    struct termios raw = t->mode;
    cfmakeraw(&raw);
    t->active = tcsetattr(fd, TCSANOW, &raw) == 0;
}

void terminal_restore(const SavedTerminal* t, int fd) noexcept {
    if (t->active) tcsetattr(fd, TCSANOW, &t->mode);
}

}  // namespace berth::runtime
