#include "basic/chase.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace berth {

namespace {
// EAGAIN persists only while something renames or mounts under the tree in a loop; give up
// then rather than spin (the kernel's own lookup retries once before returning it).
constexpr int kMaxAttempts = 64;
}  // namespace

int chase_raw(int dirfd, const char* path, int flags, Resolve resolve, mode_t mode) noexcept {
    struct open_how how {};
    how.flags = static_cast<uint64_t>(static_cast<unsigned>(flags)) | O_CLOEXEC;
    how.mode = (flags & (O_CREAT | __O_TMPFILE)) ? mode : 0;
    how.resolve = static_cast<uint64_t>(resolve);
    for (int attempt = 0;; ++attempt) {
        long fd = ::syscall(SYS_openat2, dirfd, path, &how, sizeof how);
        if (fd >= 0) return static_cast<int>(fd);
        if ((errno != EINTR && errno != EAGAIN) || attempt + 1 >= kMaxAttempts) return -1;
    }
}

Result<UniqueFd> chase(int dirfd, const std::string& path, int flags, Resolve resolve, mode_t mode) {
    int fd = chase_raw(dirfd, path.c_str(), flags, resolve, mode);
    if (fd < 0) return fail_errno("open '{}'", path);
    return UniqueFd(fd);
}

}  // namespace berth
