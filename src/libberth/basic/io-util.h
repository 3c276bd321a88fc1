// Reading and writing whole buffers: one loop for each direction, so EINTR, short writes and
// non-blocking descriptors are handled the same way everywhere.
//
// The *_raw functions allocate nothing and touch only errno: they are safe between clone() and
// exec() and in signal handlers. They return 0 (or a byte count) on success and -errno on failure.
// The Result functions wrap them for ordinary code and name `what` in the error.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "basic/result.h"

namespace berth {

enum class WaitWhenBlocked : bool {
    No,   // EAGAIN on a non-blocking fd is an error.
    Yes,  // EAGAIN waits (poll POLLOUT/POLLIN) and retries: pty masters, pipes set O_NONBLOCK.
};

// Writes all `size` bytes, retrying on EINTR and after short writes. 0, or -errno (write() that
// returns 0 reports -EIO, so a broken fd cannot spin forever).
int write_all_raw(int fd, const void* data, size_t size, WaitWhenBlocked wait = WaitWhenBlocked::No) noexcept;

// Reads until `size` bytes arrived or end of file. The number of bytes read (less than `size`
// only at end of file), or -errno.
ssize_t read_all_raw(int fd, void* data, size_t size, WaitWhenBlocked wait = WaitWhenBlocked::No) noexcept;

Result<> write_all(int fd, std::string_view data, std::string_view what);

// Reads `fd` to its end; EFBIG past `max_size` bytes.
Result<std::string> read_all(int fd, std::string_view what, size_t max_size = SIZE_MAX);

}  // namespace berth
