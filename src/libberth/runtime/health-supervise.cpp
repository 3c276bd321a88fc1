// The supervisor's half of health checks (health-supervise.h). libc only: compiled into
// berth-runtime and into the static berth-supervise (-fno-exceptions -fno-rtti, no C++ runtime).
#include "runtime/health-supervise.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "basic/process-raw.h"
#include "basic/time-util.h"
#include "runtime/relay.h"
#include "runtime/sd-notify.h"

extern char** environ;

namespace berth::runtime {

namespace {

constexpr uint64_t kHelperGraceMs = 10000;  // a helper that outlives its timeout by this is killed
constexpr uint64_t kStopGraceMs = 10000;    // stop/restart: SIGKILL if the stop signal is ignored

void say(const char* name, const char* text) noexcept {
    char line[1024];
    int n = snprintf(line, sizeof line, "berth: container '%s': health: %s\n", name, text);
    if (n > 0)
        (void)!write(STDERR_FILENO, line,
                     static_cast<size_t>(n) < sizeof line ? static_cast<size_t>(n) : sizeof line - 1);
}

void notify(const char* text) noexcept { (void)notify_systemd(text); }

uint64_t since_start(const RelayHealth* h) noexcept {
    uint64_t now = relay_monotonic_msec();
    return now > h->started_msec ? now - h->started_msec : 0;
}

void close_fd(int* fd) noexcept {
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

// The earliest thing the timer has to wake us for.
void rearm(RelayHealth* h) noexcept {
    uint64_t at = UINT64_MAX;
    const uint64_t due[] = {h->next_probe_msec, h->probe_deadline_msec, h->kill_at_msec};
    for (uint64_t t : due)
        if (t && t < at) at = t;
    struct itimerspec spec;
    memset(&spec, 0, sizeof spec);
    if (at != UINT64_MAX) {
        if (at == 0) at = 1;
        spec.it_value.tv_sec = static_cast<time_t>(at / 1000);
        spec.it_value.tv_nsec = static_cast<long>(at % 1000) * 1000000;
    }
    (void)timerfd_settime(h->timer_fd, TFD_TIMER_ABSTIME, &spec, nullptr);
}

// While notify = "healthy" has not said READY=1 and the start period lasts: ask systemd for time
// until the next probe has had its chance (plus its timeout), so TimeoutStartSec= does not end a
// slow start the health check allows.
void extend_start_timeout(const RelayHealth* h, uint64_t delay_ms) noexcept {
    if (!h->notify_ready || h->machine.ever_passed) return;
    if (!health_in_start_period(h->machine.timing, since_start(h))) return;
    char text[96];
    unsigned long long usec =
        (static_cast<unsigned long long>(delay_ms) + h->machine.timing.timeout_ms + kHelperGraceMs) * 1000ULL;
    snprintf(text, sizeof text, "EXTEND_TIMEOUT_USEC=%llu", usec);
    notify(text);
}

void schedule(RelayHealth* h, uint64_t delay_ms) noexcept {
    h->next_probe_msec = relay_monotonic_msec() + delay_ms;
    extend_start_timeout(h, delay_ms);
    rearm(h);
}

// <run dir>/containers/NAME.health: {"status": ..., "failing_streak": N, "changed_at_usec": T}.
void publish(const RelayHealth* h, uint64_t changed_at_usec) noexcept {
    const char* dir = getenv("BERTH_RUN_DIR");
    if (!dir || !*dir) dir = "/run/berth";
    char path[512], tmp[540], text[256];
    if (snprintf(path, sizeof path, "%s/containers/%s.health", dir, h->name) >= static_cast<int>(sizeof path))
        return;
    snprintf(tmp, sizeof tmp, "%s.tmp-%d", path, static_cast<int>(getpid()));
    int n = snprintf(text, sizeof text,
                     "{\"status\": \"%s\", \"failing_streak\": %u, \"changed_at_usec\": %llu}\n",
                     health_state_name(h->machine.state), h->machine.failing_streak,
                     static_cast<unsigned long long>(changed_at_usec));
    (void)unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return;
    bool ok = n > 0 && write(fd, text, static_cast<size_t>(n)) == n;
    close(fd);
    if (!ok || rename(tmp, path) < 0) (void)unlink(tmp);
}

// The helper, as a child: its stdout is `out`, nothing else of ours stays open.
[[noreturn]] void exec_helper(const RelayHealth* h, int out) noexcept {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(out, 1) < 0) _exit(127);
    // Everything else goes: the lock, the pidfd, the signalfd, the pty (the exe fd is
    // close-on-exec and needed until execveat()).
    for (int fd = 3; fd < 1024; ++fd)
        if (fd != h->exe_fd) close(fd);
    char timeout[32];
    snprintf(timeout, sizeof timeout, "%llu", static_cast<unsigned long long>(h->machine.timing.timeout_ms));
    char arg0[] = "berth", cmd[] = "internal-health-probe", opt[] = "--timeout-ms";
    char name[256];
    snprintf(name, sizeof name, "%s", h->name);
    char* const args[] = {arg0, cmd, opt, timeout, name, nullptr};
    syscall(SYS_execveat, h->exe_fd, "", args, environ, AT_EMPTY_PATH);
    char line[128];
    int n = snprintf(line, sizeof line, "126 0\ncannot execute berth for the probe: %s", strerror(errno));
    if (n > 0) (void)!write(1, line, static_cast<size_t>(n));
    _exit(126);
}

void start_probe(RelayHealth* h) noexcept {
    h->next_probe_msec = 0;
    h->out_len = 0;
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        schedule(h, h->machine.timing.interval_ms);
        return;
    }
    fcntl(h->exe_fd, F_SETFD, FD_CLOEXEC);
    pid_t pid = fork();
    if (pid == 0) exec_helper(h, pipefd[1]);
    close(pipefd[1]);
    int pidfd = pid > 0 ? pidfd_open_raw(pid) : -1;
    if (pidfd < 0) {
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
        }
        close(pipefd[0]);
        schedule(h, h->machine.timing.interval_ms);
        return;
    }
    fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
    h->probe_pidfd = pidfd;
    h->probe_out = pipefd[0];
    h->probe_deadline_msec = relay_monotonic_msec() + h->machine.timing.timeout_ms + kHelperGraceMs;
    rearm(h);
}

// The tail of the probe's output on one line, for the journal.
void one_line_tail(const char* text, size_t len, char* buf, size_t size) noexcept {
    size_t start = len > size - 1 ? len - (size - 1) : 0;
    size_t n = 0;
    for (size_t i = start; i < len && n < size - 1; ++i) {
        char c = text[i];
        buf[n++] =
            (c == '\n' || c == '\r' || c == '\t') ? ' ' : (static_cast<unsigned char>(c) < 0x20 ? '?' : c);
    }
    while (n > 0 && buf[n - 1] == ' ') --n;
    buf[n] = '\0';
}

void act(RelayHealth* h, int action, int payload_pidfd, int stop_signal) noexcept {
    switch (action) {
        case kHealthActKill:
            say(h->name, "on_failure = \"kill\": killing the payload (SIGKILL)");
            (void)pidfd_signal_raw(payload_pidfd, SIGKILL);
            break;
        case kHealthActRestart:
        case kHealthActStop:
            say(h->name, action == kHealthActRestart
                             ? "on_failure = \"restart\": stopping the payload to restart it"
                             : "on_failure = \"stop\": stopping the payload");
            h->forced_status = action == kHealthActRestart ? kHealthRestartStatus : kHealthStopStatus;
            (void)pidfd_signal_raw(payload_pidfd, stop_signal > 0 ? stop_signal : SIGTERM);
            h->kill_at_msec = relay_monotonic_msec() + kStopGraceMs;
            rearm(h);
            break;
        default:
            break;
    }
}

void finish_probe(RelayHealth* h, int payload_pidfd, int stop_signal, bool killed) noexcept {
    siginfo_t info;
    if (killed) (void)pidfd_signal_raw(h->probe_pidfd, SIGKILL);
    int helper_status = pidfd_wait_raw(h->probe_pidfd, &info, WEXITED) == 0 ? exit_code_of(info) : 255;
    close_fd(&h->probe_pidfd);
    close_fd(&h->probe_out);
    h->probe_deadline_msec = 0;
    h->out[h->out_len < sizeof h->out ? h->out_len : sizeof h->out - 1] = '\0';
    // The verdict: "EXIT DURATION_US\n" + output tail.
    int exit_status = -1;  // -1 from the helper: the command timed out
    bool reported = false;
    unsigned long long duration_us = 0;
    const char* tail = "";
    if (!killed && helper_status == 0) {
        char* end = nullptr;
        long v = strtol(h->out, &end, 10);
        if (end != h->out && *end == ' ') {
            reported = true;
            exit_status = static_cast<int>(v);
            duration_us = strtoull(end + 1, &end, 10);
            tail = *end == '\n' ? end + 1 : end;
        }
    }
    if (!killed && !reported) {
        const char* nl = strchr(h->out, '\n');
        tail = nl ? nl + 1 : h->out;
    }
    killed = killed || (reported && exit_status < 0);
    const bool passed = reported && exit_status == 0;
    const HealthStep step = health_record(&h->machine, passed, since_start(h));
    if (step.changed) h->changed_at_usec = now_usec(CLOCK_REALTIME);
    publish(h, h->changed_at_usec);
    if (step.changed) {
        char line[768], out_line[300];
        one_line_tail(tail, strlen(tail), out_line, sizeof out_line);
        if (passed)
            snprintf(line, sizeof line, "%s -> %s", health_state_name(step.from), health_state_name(step.to));
        else if (killed)
            snprintf(line, sizeof line, "%s -> %s: the probe did not finish within its timeout",
                     health_state_name(step.from), health_state_name(step.to));
        else if (!reported)
            snprintf(line, sizeof line, "%s -> %s: the probe could not run (status %d): %s",
                     health_state_name(step.from), health_state_name(step.to), helper_status, out_line);
        else
            snprintf(line, sizeof line, "%s -> %s: probe exited with status %d after %llu ms%s%s",
                     health_state_name(step.from), health_state_name(step.to), exit_status,
                     duration_us / 1000, *out_line ? ": " : "", out_line);
        say(h->name, line);
        char status[320];
        snprintf(status, sizeof status, "STATUS=Container %s running, %s", h->name,
                 health_state_name(step.to));
        notify(status);
    }
    if (step.first_pass && h->notify_ready) notify("READY=1");
    if (step.watchdog && h->watchdog) notify("WATCHDOG=1");
    if (step.action != kHealthActNone) act(h, step.action, payload_pidfd, stop_signal);
    schedule(h, step.next_in_ms);
}

}  // namespace

bool health_parse_arg(const char* text, RelayHealth* h, bool* enabled) noexcept {
    *enabled = false;
    if (!text) return false;
    if (strcmp(text, "-") == 0) return true;
    unsigned long long v[8];
    const char* p = text;
    for (int i = 0; i < 8; ++i) {
        char* end = nullptr;
        errno = 0;
        v[i] = strtoull(p, &end, 10);
        if (errno || end == p || (i < 7 ? *end != ':' : *end != '\0')) return false;
        p = end + 1;
    }
    if (v[0] == 0 || v[1] == 0 || v[3] == 0 || v[4] == 0 || v[4] > 1000 ||
        v[5] > static_cast<unsigned long long>(kHealthActStop))
        return false;
    HealthTiming& t = h->machine.timing;
    t.interval_ms = v[0];
    t.timeout_ms = v[1];
    t.start_period_ms = v[2];
    t.start_interval_ms = v[3];
    t.retries = static_cast<uint32_t>(v[4]);
    t.on_failure = static_cast<int>(v[5]);
    h->notify_ready = (v[6] & 1) != 0;
    h->watchdog = (v[6] & 2) != 0;
    h->started_msec = v[7];
    *enabled = true;
    return true;
}

int health_format_arg(const RelayHealth& h, char* buf, size_t size) noexcept {
    const HealthTiming& t = h.machine.timing;
    int n = snprintf(
        buf, size, "%llu:%llu:%llu:%llu:%u:%d:%d:%llu", static_cast<unsigned long long>(t.interval_ms),
        static_cast<unsigned long long>(t.timeout_ms), static_cast<unsigned long long>(t.start_period_ms),
        static_cast<unsigned long long>(t.start_interval_ms), t.retries, t.on_failure,
        (h.notify_ready ? 1 : 0) | (h.watchdog ? 2 : 0), static_cast<unsigned long long>(h.started_msec));
    return n > 0 && static_cast<size_t>(n) < size ? n : -1;
}

int health_start(RelayHealth* h) noexcept {
    h->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (h->timer_fd < 0) return -errno;
    h->changed_at_usec = now_usec(CLOCK_REALTIME);
    publish(h, h->changed_at_usec);
    // The first probe: a start interval (or an interval) after the payload started.
    uint64_t delay = health_next_delay(h->machine, since_start(h));
    uint64_t elapsed = since_start(h);
    schedule(h, delay > elapsed ? delay - elapsed : 0);
    return 0;
}

void health_on_timer(RelayHealth* h, int payload_pidfd) noexcept {
    uint64_t expirations;
    (void)!read(h->timer_fd, &expirations, sizeof expirations);
    const uint64_t now = relay_monotonic_msec();
    if (h->kill_at_msec && now >= h->kill_at_msec) {
        h->kill_at_msec = 0;
        say(h->name, "the payload did not stop in time: killing it (SIGKILL)");
        (void)pidfd_signal_raw(payload_pidfd, SIGKILL);
    }
    if (h->probe_pidfd >= 0 && h->probe_deadline_msec && now >= h->probe_deadline_msec)
        finish_probe(h, payload_pidfd, 0, true);
    else if (h->probe_pidfd < 0 && h->next_probe_msec && now >= h->next_probe_msec && !h->forced_status)
        start_probe(h);
    rearm(h);
}

void health_on_output(RelayHealth* h, int payload_pidfd, int stop_signal) noexcept {
    for (;;) {
        char scratch[512];
        char* into = h->out_len < sizeof h->out - 1 ? h->out + h->out_len : scratch;
        size_t room = h->out_len < sizeof h->out - 1 ? sizeof h->out - 1 - h->out_len : sizeof scratch;
        ssize_t n = read(h->probe_out, into, room);
        if (n > 0) {
            if (into != scratch) h->out_len += static_cast<size_t>(n);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
        break;  // EOF (or an error): the helper is done
    }
    finish_probe(h, payload_pidfd, stop_signal, false);
}

void health_stop(RelayHealth* h) noexcept {
    if (h->probe_pidfd >= 0) {
        siginfo_t info;
        (void)pidfd_signal_raw(h->probe_pidfd, SIGKILL);
        (void)pidfd_wait_raw(h->probe_pidfd, &info, WEXITED);
    }
    close_fd(&h->probe_pidfd);
    close_fd(&h->probe_out);
    close_fd(&h->timer_fd);
}

}  // namespace berth::runtime
