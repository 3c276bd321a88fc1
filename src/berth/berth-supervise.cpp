// berth-supervise: stays resident while a container's payload runs, in place of the full `berth`
// (same PID: `berth run` execve()s it; see runtime/supervise-protocol.h for the hand-over).
//
// Why a separate program: `berth` maps libcrypto, libstdc++, libarchive -> libxml2 -> libicu,
// libsystemd, libnftables...; their resident pages alone put the supervisor at 13 MiB VmRSS.
// This one is linked statically against libc only, allocates nothing and uses no C++ runtime, so
// it stays well under 2 MiB. It runs the same loop as `berth run` and `berth exec`
// (runtime/relay.h, compiled in: signals, the pty, the notify relay), with the caller's terminal in
// raw mode meanwhile; at the payload's exit it execveat()s the full berth binary for the teardown.
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

#include "runtime/health-supervise.h"
#include "runtime/notify-relay.h"
#include "runtime/relay.h"
#include "runtime/sd-notify.h"
#include "runtime/supervise-protocol.h"

namespace {

using namespace berth::runtime;

struct Supervisor {
    const char* name = "";
    Relay relay;  // pidfd, signalfd, pty, notify socket, stop signal and requests
    int lock_fd = -1;
    int teardown_exe = -1;
    RelayHealth health;  // [health]: probes run through teardown_exe
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

// The shared loop (runtime/relay.h); on an internal error the payload is killed, so that the
// teardown below always follows.
int supervise(Supervisor& s) {
    static char buf[16384];
    s.relay.buf = buf;
    s.relay.buf_size = sizeof buf;
    int status = 0;
    int rc = relay_run(&s.relay, 0, &status);
    if (s.relay.health) health_stop(s.relay.health);
    if (rc == kRelayExited) return s.health.forced_status ? s.health.forced_status : status;
    say(s.relay.failed_step, -rc);
    return relay_kill_and_reap(&s.relay);
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
    Relay& r = s.relay;
    r.stop_signal = SIGTERM;
    r.name = s.name;
    bool ok = parse_int(argv[kArgPidfd], &r.pidfd) && parse_int(argv[kArgSignalFd], &r.signal_fd) &&
              parse_int(argv[kArgPtyMaster], &r.pty_master) &&
              parse_int(argv[kArgNotifySocket], &r.notify_socket) &&
              parse_int(argv[kArgStopSignal], &r.stop_signal) &&
              parse_int(argv[kArgStopRequests], &r.stop_requests) &&
              parse_int(argv[kArgLockFd], &s.lock_fd) && parse_int(argv[kArgTeardownExe], &s.teardown_exe);
    bool health = false;
    ok = ok && health_parse_arg(argv[kArgHealth], &s.health, &health);
    int status;
    if (!ok || r.pidfd < 0 || r.signal_fd < 0 || s.teardown_exe < 0) {
        say("bad arguments", EINVAL);
        status = 125;
        if (r.pidfd >= 0) (void)relay_kill_and_reap(&r);
    } else {
        if (r.notify_socket >= 0) r.payload = pid_of_pidfd(r.pidfd);
        if (health) {
            s.health.name = s.name;
            s.health.exe_fd = s.teardown_exe;
            if (int rc = health_start(&s.health); rc < 0)
                say("cannot start the health check", -rc);
            else
                r.health = &s.health;
        }
        // -t: the caller's terminal goes raw while the payload owns it (as `berth run` does).
        SavedTerminal saved;
        relay_start(&r);
        if (r.pty_master >= 0) terminal_make_raw(&saved, STDIN_FILENO);
        status = supervise(s);
        terminal_restore(&saved, STDIN_FILENO);
    }

    // As run_container() does in-process; the teardown below sends nothing to systemd.
    char stopping[384];
    int len = snprintf(stopping, sizeof stopping, "STOPPING=1\nSTATUS=Container %s exited with status %d",
                       s.name, status);
    if (len > 0)
        notify_systemd(stopping, static_cast<size_t>(len) < sizeof stopping ? static_cast<size_t>(len)
                                                                            : sizeof stopping - 1);

    // The teardown runs in the full berth binary; only the lock goes with it.
    const int done_with[] = {r.pidfd, r.signal_fd, r.pty_master, r.notify_socket};
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
