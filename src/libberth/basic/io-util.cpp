#include "basic/io-util.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>

namespace berth {

namespace {

// EAGAIN on a non-blocking fd: wait until it is ready. false (errno set) when poll fails.
bool wait_ready(int fd, short events) noexcept {
    struct pollfd pfd {
        fd, events, 0
    };
    for (;;) {
        int r = ::poll(&pfd, 1, -1);
        if (r >= 0) return true;
        if (errno != EINTR) return false;
    }
}

// The loop both directions share; `op` is ::read or ::write. A read of 0 bytes is the end of
// the file; a write of 0 bytes is -EIO, since retrying it could spin forever.
template <class Byte, class Op>
ssize_t transfer_all(int fd, Byte* data, size_t size, WaitWhenBlocked wait, short events, Op op) noexcept {
    size_t done = 0;
    while (done < size) {
        ssize_t n = op(fd, data + done, size - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN && wait == WaitWhenBlocked::Yes) {
                if (!wait_ready(fd, events)) return -errno;
                continue;
            }
            return -errno;
        }
        if (n == 0) {
            if (events == POLLOUT) return -EIO;
            break;
        }
        done += static_cast<size_t>(n);
    }
    return static_cast<ssize_t>(done);
}

}  // namespace

int write_all_raw(int fd, const void* data, size_t size, WaitWhenBlocked wait) noexcept {
    ssize_t r = transfer_all(fd, static_cast<const char*>(data), size, wait, POLLOUT, ::write);
    return r < 0 ? static_cast<int>(r) : 0;
}

ssize_t read_all_raw(int fd, void* data, size_t size, WaitWhenBlocked wait) noexcept {
    return transfer_all(fd, static_cast<char*>(data), size, wait, POLLIN, ::read);
}

Result<> write_all(int fd, std::string_view data, std::string_view what) {
    int r = write_all_raw(fd, data.data(), data.size());
    if (r < 0) return fail(-r, "write {}", what);
    return {};
}

Result<std::string> read_all(int fd, std::string_view what, size_t max_size) {
    std::string out;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail_errno("read {}", what);
        }
        if (n == 0) break;
        out.append(buf, static_cast<size_t>(n));
        if (out.size() > max_size) return fail(EFBIG, "{} is larger than {} bytes", what, max_size);
    }
    return out;
}

}  // namespace berth
