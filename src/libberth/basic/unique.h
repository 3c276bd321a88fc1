// RAII owners for kernel and C-library resources.
//
// UniqueFd owns a file descriptor; CPtr<T, free_fn> owns a C handle (mnt_context, scmp_filter_ctx,
// cap_t, dm_task...); ScopeExit runs a lambda on scope exit unless dismissed. Each has release()
// for the moment ownership moves on (e.g. an fd handed to a child or a bus reply).
#pragma once

#include <unistd.h>

#include <memory>
#include <utility>

namespace berth {

class UniqueFd {
public:
    UniqueFd() noexcept = default;
    explicit UniqueFd(int fd) noexcept : fd_(fd) {}
    UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept {
        if (this != &other) reset(other.release());
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd() { reset(); }

    int get() const noexcept { return fd_; }
    bool valid() const noexcept { return fd_ >= 0; }
    explicit operator bool() const noexcept { return valid(); }
    int release() noexcept { return std::exchange(fd_, -1); }
    void reset(int fd = -1) noexcept {
        int old = std::exchange(fd_, fd);
        if (old >= 0) ::close(old);
    }

private:
    int fd_ = -1;
};

// Owner of a C handle freed by a plain function: CPtr<mnt_context, mnt_free_context>.
template <class T, auto FreeFn>
struct CFree {
    void operator()(T* p) const noexcept {
        if (p) FreeFn(p);
    }
};
template <class T, auto FreeFn>
using CPtr = std::unique_ptr<T, CFree<T, FreeFn>>;

template <class F>
class ScopeExit {
public:
    explicit ScopeExit(F fn) : fn_(std::move(fn)) {}
    ScopeExit(const ScopeExit&) = delete;
    ScopeExit& operator=(const ScopeExit&) = delete;
    ~ScopeExit() {
        if (armed_) fn_();
    }
    void dismiss() noexcept { armed_ = false; }

private:
    F fn_;
    bool armed_ = true;
};

}  // namespace berth
