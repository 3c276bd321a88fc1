// The receiving end of the notify relay (notify = "container"): one datagram from the relay
// socket, judged by its sender, filtered, forwarded to systemd. Shared by `berth run`
// (the supervise loop, relay.cpp) and the libc-only berth-supervise, so libc only: no allocation,
// no exceptions.
//
// Who may speak for the service. The socket is bound into the container at /run/host/notify and
// is 0666, because the payload may run as any uid (a user namespace's, or a daemon that dropped
// root) and must still reach it. Its host path, <run dir>/containers/NAME.notify, lies in a 0711
// directory (a user namespace's root must pass through it when the child binds the socket), so a
// host user who guesses the name can reach it too and, before this check, could tell systemd
// READY=1, STOPPING=1 or a false STATUS for any container. The socket therefore has SO_PASSCRED:
// the kernel attaches every sender's pid and uid, which the sender cannot forge (only with
// CAP_SYS_ADMIN/CAP_SETUID over its own namespaces, i.e. within the container). A datagram is the
// container's when its sender
//   - runs in the container's PID namespace (any process of the container, whatever its uid);
//   - has a uid of the container's user namespace (when it has one: uids no host user holds),
//     which needs no /proc lookup and so also holds for a sender that has exited meanwhile
//     (`systemd-notify --ready` exits right after sending);
//   - has the uid the container's PID 1 runs as (the declared user, as the host sees it): also
//     for a sender that has exited. Without a user namespace that uid may be a host user's; that
//     user can already signal and ptrace the payload, so it gains nothing here;
//   - or is root (host uid 0: root may tell systemd anything anyway; also the container's root
//     without a user namespace, short-lived senders included).
// Anything else is read and dropped. Known limit, as with systemd's NotifyAccess=all: a sender
// that matches none of the uids above and exits before the supervisor looks at /proc/PID (a
// `systemd-notify` run as another user than PID 1's) is dropped too.
//
// Passed file descriptors (FDSTORE=1) are never installed: the control buffer has room for the
// credentials only, so the kernel discards them.
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include "runtime/sd-notify.h"
#include "runtime/supervise-protocol.h"

namespace berth::runtime {

// Before the payload starts: every datagram then carries its sender's credentials.
inline int enable_notify_credentials(int sock) noexcept {
    int one = 1;
    return setsockopt(sock, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0 ? -errno : 0;
}

namespace notify_detail {

inline bool same_namespace(pid_t a, pid_t b, const char* kind) noexcept {
    char pa[64], pb[64];
    if (a > 0)
        snprintf(pa, sizeof pa, "/proc/%d/ns/%s", a, kind);
    else
        snprintf(pa, sizeof pa, "/proc/self/ns/%s", kind);
    snprintf(pb, sizeof pb, "/proc/%d/ns/%s", b, kind);
    struct stat sa, sb;
    if (stat(pa, &sa) < 0 || stat(pb, &sb) < 0) return false;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

// The start of /proc/PID/NAME (one read, at most size - 1 bytes), NUL-terminated; false if unreadable.
inline bool read_proc_text(pid_t pid, const char* name, char* buf, size_t size) noexcept {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", pid, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n <= 0) return false;
    buf[n] = '\0';
    return true;
}

// Whether host uid `uid` is one of the ids /proc/PID/uid_map maps (lines "inside outside count",
// the outside ids as our namespace sees them).
inline bool uid_in_map(pid_t pid, uid_t uid) noexcept {
    char buf[1024];
    if (!read_proc_text(pid, "uid_map", buf, sizeof buf)) return false;
    for (char* line = buf; line && *line;) {
        char* next = strchr(line, '\n');
        if (next) *next++ = '\0';
        char* end = nullptr;
        (void)strtoul(line, &end, 10);  // inside
        unsigned long outside = strtoul(end, &end, 10);
        unsigned long count = strtoul(end, &end, 10);
        if (count > 0 && uid >= outside && uid - outside < count) return true;
        line = next;
    }
    return false;
}

// The real uid of `pid` (the "Uid:" line of /proc/PID/status), or false.
inline bool real_uid_of(pid_t pid, uid_t* uid) noexcept {
    char buf[2048];
    if (!read_proc_text(pid, "status", buf, sizeof buf)) return false;
    const char* p = strstr(buf, "\nUid:");
    if (!p) return false;
    char* end = nullptr;
    unsigned long v = strtoul(p + 5, &end, 10);
    if (end == p + 5) return false;
    *uid = static_cast<uid_t>(v);
    return true;
}

}  // namespace notify_detail

// Whether a datagram with these credentials is the container's, whose PID 1 is `payload`.
inline bool notify_sender_is_the_container(const struct ucred& cred, pid_t payload) noexcept {
    if (cred.uid == 0) return true;
    if (payload <= 0) return false;
    uid_t init_uid;
    if (notify_detail::real_uid_of(payload, &init_uid) && cred.uid == init_uid) return true;
    if (!notify_detail::same_namespace(0, payload, "user") && notify_detail::uid_in_map(payload, cred.uid))
        return true;
    return cred.pid > 0 && notify_detail::same_namespace(cred.pid, payload, "pid");
}

// The pid a pidfd refers to ("Pid:" in /proc/self/fdinfo/FD), or -1.
inline pid_t pid_of_pidfd(int pidfd) noexcept {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", pidfd);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = '\0';
    const char* p = strstr(buf, "\nPid:");
    if (!p) return -1;
    long pid = strtol(p + 5, nullptr, 10);
    return pid > 0 ? static_cast<pid_t>(pid) : -1;
}

// Reads one datagram from the relay socket and, when it is the container's, forwards what a
// payload may say about the service (kRelayedNotifyFields: never MAINPID, the supervisor is the
// main process). Returns 1 when something was forwarded, 0 when nothing was (no datagram, a
// foreign sender, no relayed field, a datagram too long), -errno on a receive error.
inline int relay_notify_datagram(int sock, pid_t payload) noexcept {
    char in[4096], out[4096 + 1];
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(struct ucred))];
    } control;
    memset(&control, 0, sizeof control);
    struct iovec iov = {in, sizeof in - 1};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    ssize_t n = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) return errno == EAGAIN || errno == EINTR ? 0 : -errno;
    if (n == 0 || (msg.msg_flags & MSG_TRUNC)) return 0;
    const struct ucred* cred = nullptr;
    for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
            c->cmsg_len == CMSG_LEN(sizeof(struct ucred)))
            cred = reinterpret_cast<const struct ucred*>(CMSG_DATA(c));
        else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)  // none fit; if one did
            for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); ++i) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                close(fd);
            }
    }
    // Without credentials (SO_PASSCRED missing) nobody can be told apart: fail closed.
    if (!cred || !notify_sender_is_the_container(*cred, payload)) return 0;
    in[n] = '\0';
    size_t used = 0;
    for (char* line = in; line && *line;) {
        char* next = strchr(line, '\n');
        size_t len = next ? static_cast<size_t>(next - line) : strlen(line);
        for (const char* a : kRelayedNotifyFields)
            if (strncmp(line, a, strlen(a)) == 0 && used + len + 1 <= sizeof out - 1) {
                memcpy(out + used, line, len);
                used += len;
                out[used++] = '\n';
                break;
            }
        line = next ? next + 1 : nullptr;
    }
    if (!used) return 0;
    notify_systemd(out, used);
    return 1;
}

}  // namespace berth::runtime
