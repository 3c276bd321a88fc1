// ChildFd: the fd owner for code between clone() and exec() (child.cpp).
//
// There a failing step is reported with its errno (child_fail), so closing a temporary fd on the
// way out must not change errno; close() may (EINTR, EIO), and the child used to save and
// restore errno around each close by hand, ten times over. This owner closes on scope exit and
// leaves errno as the failed step set it. A UniqueFd inside: no allocation, no exceptions,
// async-signal-safe like the rest of the child.
#pragma once

#include <errno.h>

#include <utility>

#include "basic/unique.h"

namespace berth::runtime {

class ChildFd {
public:
    ChildFd() noexcept = default;
    explicit ChildFd(int fd) noexcept : fd_(fd) {}
    ChildFd(ChildFd&&) noexcept = default;
    ChildFd& operator=(ChildFd&& other) noexcept {
        reset();
        fd_ = std::move(other.fd_);
        return *this;
    }
    ~ChildFd() { reset(); }

    int get() const noexcept { return fd_.get(); }
    bool valid() const noexcept { return fd_.valid(); }
    explicit operator bool() const noexcept { return fd_.valid(); }
    // Closes the fd now, errno untouched.
    void reset() noexcept {
        const int saved = errno;
        fd_.reset();
        errno = saved;
    }

private:
    UniqueFd fd_;
};

}  // namespace berth::runtime
