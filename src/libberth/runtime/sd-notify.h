// sd_notify(3) by hand: one datagram to $NOTIFY_SOCKET, as crun does.
//
// Why not libsystemd's sd_notify(): `berth run` is the main process of berth@NAME.service, and
// binding libsystemd at start (with libgcrypt, liblzma, libzstd, liblz4 behind it) cost every
// container start about 0.65 ms of CPU for three datagrams (issue #3: start latency). With this,
// the `berth` binary binds libsystemd only when it talks to a bus or reads the journal
// (src/lazy-link). Shared by `berth run` and the libc-only berth-supervise, so it must stay free of
// anything but libc: no allocation, no exceptions.
//
// Supported addresses: an absolute path or '@' for the abstract namespace (what systemd 252 hands
// out). Unlike sd_notify() it never unsets $NOTIFY_SOCKET (the payload's relay socket is set up
// separately).
#pragma once

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace berth::runtime {

// Sends `length` bytes of `text` to systemd. Returns 1 if sent, 0 without $NOTIFY_SOCKET (not
// under a Type=notify unit), -errno on failure (as sd_notify()).
inline int notify_systemd(const char* text, size_t length) noexcept {
    const char* path = getenv("NOTIFY_SOCKET");
    if (!path || !*path) return 0;
    if (path[0] != '/' && path[0] != '@') return -EAFNOSUPPORT;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    size_t len = strlen(path);
    if (len >= sizeof sa.sun_path) return -EINVAL;
    memcpy(sa.sun_path, path, len);
    if (sa.sun_path[0] == '@') sa.sun_path[0] = '\0';
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    ssize_t n = sendto(fd, text, length, MSG_NOSIGNAL, reinterpret_cast<struct sockaddr*>(&sa),
                       static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + len));
    int err = n < 0 ? errno : 0;
    close(fd);
    return err ? -err : 1;
}

inline int notify_systemd(const char* text) noexcept { return notify_systemd(text, strlen(text)); }

}  // namespace berth::runtime
