// berth-supervise: stays resident while a container's payload runs, in place of the full `berth`
// (same PID: `berth run` execve()s it; see runtime/supervise-protocol.h for the hand-over).
//
// Why a separate program: `berth` maps libcrypto, libstdc++, libarchive -> libxml2 -> libicu,
// libsystemd, libnftables...; their resident pages alone put the supervisor at 13 MiB VmRSS.
// This one is linked statically against libc only, allocates nothing and uses no C++ runtime, so
// it stays well under 2 MiB. It does exactly what runtime/container.cpp's supervise() does:
//   - signals from the signalfd: SIGTERM/SIGINT become the stop signal (the third request is
//     SIGKILL), SIGWINCH resizes the pty, anything else is forwarded as is;
//   - -t: stdin -> pty master -> stdout, with the caller's terminal in raw mode meanwhile;
//   - notify = "container": the payload's sd_notify datagrams, from the container's processes
//     only, filtered, to $NOTIFY_SOCKET (runtime/notify-relay.h, shared with berth run);
//   - the payload's exit: drain the pty, then execveat() the full berth binary for the teardown.
// On any internal error it kills the payload and still goes on to the teardown: a container is
// never left unsupervised with its cgroup, network and state behind.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "runtime/notify-relay.h"
#include "runtime/sd-notify.h"
#include "runtime/supervise-protocol.h"

namespace {

using namespace berth::runtime;

struct Supervisor {
    const char* name = "";
    int pidfd = -1;
    int signal_fd = -1;
    int pty_master = -1;
    int notify_socket = -1;
    pid_t payload = -1;  // the pidfd's pid, for the notify relay's sender check
    int stop_signal = SIGTERM;
    int stop_requests = 0;
    int lock_fd = -1;
    int teardown_exe = -1;
};

void say(const char* what, int err) {
    // One line to stderr (the journal under systemd); fprintf would be fine too, but this keeps
    // stdio's buffers out of the resident set.
    char line[640];
    int n = snprintf(line, sizeof line, "berth-supervise: %s%s%s\n", what, err ? ": " : "",
                     err ? strerror(err) : "");
    if (n > 0)
        (void)!write(STDERR_FILENO, line,
                     static_cast<size_t>(n) < sizeof line ? static_cast<size_t>(n) : sizeof line - 1);
}

bool parse_int(const char* text, int* out) {
    if (!text || !*text) return false;
    char* end = nullptr;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || *end || v < -1 || v > 1 << 30) return false;
    *out = static_cast<int>(v);
    return true;
}

void write_all(int fd, const char* p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EAGAIN) {
            struct pollfd pfd = {fd, POLLOUT, 0};
            poll(&pfd, 1, 1000);
            continue;
        }
        if (w <= 0) return;
        p += w;
        n -= static_cast<size_t>(w);
    }
}

int send_signal(const Supervisor& s, int sig) {
    return static_cast<int>(syscall(SYS_pidfd_send_signal, s.pidfd, sig, nullptr, 0));
}

// The payload's status: exit code, or 128 + signal. -1 while it runs; -2 on error.
int reap(const Supervisor& s, bool block) {
    siginfo_t info;
    for (;;) {
        memset(&info, 0, sizeof info);
        int rc = waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(s.pidfd), &info,
                        WEXITED | (block ? 0 : WNOHANG));
        if (rc < 0 && errno == EINTR) continue;
        if (rc < 0) return -2;
        break;
    }
    if (info.si_pid == 0) return -1;
    return info.si_code == CLD_EXITED ? info.si_status : 128 + info.si_status;
}

int kill_and_reap(const Supervisor& s) {
    (void)send_signal(s, SIGKILL);
    int status = reap(s, true);
    return status >= 0 ? status : 128 + SIGKILL;
}

// The loop of runtime/container.cpp's supervise(); returns the payload's status.
int supervise(Supervisor& s) {
    bool stdin_open = s.pty_master >= 0;
    bool master_open = s.pty_master >= 0;
    static char buf[16384];
    for (;;) {
        struct pollfd fds[5];
        int n = 0;
        fds[n++] = {s.pidfd, POLLIN, 0};
        fds[n++] = {s.signal_fd, POLLIN, 0};
        int i_stdin = -1, i_master = -1, i_notify = -1;
        if (stdin_open) {
            i_stdin = n;
            fds[n++] = {STDIN_FILENO, POLLIN, 0};
        }
        if (master_open) {
            i_master = n;
            fds[n++] = {s.pty_master, POLLIN, 0};
        }
        if (s.notify_socket >= 0) {
            i_notify = n;
            fds[n++] = {s.notify_socket, POLLIN, 0};
        }
        if (poll(fds, static_cast<nfds_t>(n), -1) < 0) {
            if (errno == EINTR) continue;
            say("poll", errno);
            return kill_and_reap(s);
        }
        if ((fds[0].revents | fds[1].revents) & POLLNVAL) {
            say("lost the payload's pidfd or the signalfd", EBADF);
            return kill_and_reap(s);
        }
        if (fds[1].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(s.signal_fd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
                int sig = static_cast<int>(si.ssi_signo);
                if (sig == SIGWINCH) {
                    struct winsize ws;
                    if (s.pty_master >= 0 && ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0)
                        ioctl(s.pty_master, TIOCSWINSZ, &ws);
                    continue;
                }
                if (sig == SIGTERM || sig == SIGINT) {
                    // The stop signal; a third request means "now".
                    (void)send_signal(s, ++s.stop_requests >= 3 ? SIGKILL : s.stop_signal);
                    continue;
                }
                (void)send_signal(s, sig);
            }
        }
        if (i_stdin >= 0 && (fds[i_stdin].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL))) {
            ssize_t r = read(STDIN_FILENO, buf, sizeof buf);
            if (r <= 0)
                stdin_open = false;
            else
                write_all(s.pty_master, buf, static_cast<size_t>(r));
        }
        if (i_master >= 0 && (fds[i_master].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL))) {
            ssize_t r = read(s.pty_master, buf, sizeof buf);
            if (r > 0)
                write_all(STDOUT_FILENO, buf, static_cast<size_t>(r));
            else if (r == 0 || (errno != EAGAIN && errno != EINTR))
                master_open = false;
        }
        if (i_notify >= 0 && (fds[i_notify].revents & POLLIN))
            (void)relay_notify_datagram(s.notify_socket, s.payload);
        if (fds[0].revents & POLLIN) {
            int status = reap(s, false);
            if (status == -1) continue;
            if (status == -2) {
                say("wait for the payload", errno);
                return kill_and_reap(s);
            }
            // Drain what the payload wrote to the pty before it exited.
            while (master_open) {
                ssize_t r = read(s.pty_master, buf, sizeof buf);
                if (r <= 0) break;
                write_all(STDOUT_FILENO, buf, static_cast<size_t>(r));
            }
            return status;
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    Supervisor s;
    if (argc != kSuperviseArgc || strcmp(argv[kArgProtocol], kSuperviseProtocol) != 0) {
        // Run by hand, or by a berth of another build: nothing is ours to supervise.
        say("internal helper of `berth run`, not to be run directly (or protocol mismatch)", 0);
        return 125;
    }
    s.name = argv[kArgName];
    bool ok = parse_int(argv[kArgPidfd], &s.pidfd) && parse_int(argv[kArgSignalFd], &s.signal_fd) &&
              parse_int(argv[kArgPtyMaster], &s.pty_master) &&
              parse_int(argv[kArgNotifySocket], &s.notify_socket) &&
              parse_int(argv[kArgStopSignal], &s.stop_signal) &&
              parse_int(argv[kArgStopRequests], &s.stop_requests) &&
              parse_int(argv[kArgLockFd], &s.lock_fd) && parse_int(argv[kArgTeardownExe], &s.teardown_exe);
    int status;
    if (!ok || s.pidfd < 0 || s.signal_fd < 0 || s.teardown_exe < 0) {
        say("bad arguments", EINVAL);
        status = 125;
        if (s.pidfd >= 0) {
            (void)send_signal(s, SIGKILL);
            (void)reap(s, true);
        }
    } else {
        if (s.notify_socket >= 0) s.payload = pid_of_pidfd(s.pidfd);
        // -t: the caller's terminal goes raw while the payload owns it (as supervise() does).
        struct termios saved;
        bool restore_tty = false;
        if (s.pty_master >= 0) {
            struct winsize ws;
            if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0) ioctl(s.pty_master, TIOCSWINSZ, &ws);
            fcntl(s.pty_master, F_SETFL, fcntl(s.pty_master, F_GETFL) | O_NONBLOCK);
            if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0) {
                struct termios raw = saved;
                cfmakeraw(&raw);
                restore_tty = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
            }
        }
        status = supervise(s);
        if (restore_tty) tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    }

    // As run_container() does in-process; the teardown below sends nothing to systemd.
    char stopping[384];
    int len = snprintf(stopping, sizeof stopping, "STOPPING=1\nSTATUS=Container %s exited with status %d",
                       s.name, status);
    if (len > 0)
        notify_systemd(stopping, static_cast<size_t>(len) < sizeof stopping ? static_cast<size_t>(len)
                                                                            : sizeof stopping - 1);

    // The teardown runs in the full berth binary; only the lock goes with it.
    const int done_with[] = {s.pidfd, s.signal_fd, s.pty_master, s.notify_socket};
    for (int fd : done_with)
        if (fd >= 0) close(fd);
    char status_arg[16], lock_arg[16];
    snprintf(status_arg, sizeof status_arg, "%d", status);
    snprintf(lock_arg, sizeof lock_arg, "%d", s.lock_fd);
    char name_copy[256];
    snprintf(name_copy, sizeof name_copy, "%s", s.name);
    char arg0[] = "berth", cmd[32], status_opt[] = "--status", lock_opt[] = "--lock-fd";
    snprintf(cmd, sizeof cmd, "%s", kTeardownCommand);
    char* const args[] = {arg0, cmd, status_opt, status_arg, lock_opt, lock_arg, name_copy, nullptr};
    // Close-on-exec is fine for an ELF binary and keeps the fd out of the teardown.
    fcntl(s.teardown_exe, F_SETFD, FD_CLOEXEC);
    // The fd was opened before the first exec, so a binary replaced or removed since (a package
    // upgrade) still runs. What can still fail: a transient ENOMEM/EAGAIN, or the very file
    // changed in place (chmod, truncated, overwritten). One retry after a pause covers the first;
    // the second is reported.
    int err = 0;
    for (int attempt = 0; attempt < 2; ++attempt) {
        if (attempt > 0) {
            struct timespec pause = {0, 200 * 1000 * 1000};
            nanosleep(&pause, nullptr);
        }
        syscall(SYS_execveat, s.teardown_exe, "", args, environ, AT_EMPTY_PATH);
        err = errno;
    }
    // The exit status still reaches the caller (systemd); the cgroup, network and state of the
    // container stay until its next start, which removes them (run_container(): a stale empty
    // cgroup, a leftover veth host end and nftables chains, the state file; the lock is ours to
    // release by exiting).
    char line[512];
    snprintf(
        line, sizeof line,
        "container '%s': cannot execute berth for the teardown (%s); its cgroup, network and state are left "
        "for its next start to remove",
        s.name, strerror(err));
    say(line, 0);
    return status;
}
